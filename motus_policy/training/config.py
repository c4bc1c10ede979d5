"""``TrainConfig``: every setting of a stage-3 fine-tuning run (one validated dataclass).

Defaults follow the official stage-3 configs (reference §2.1): AdamW β = (0.9, 0.95), lr 5e-5,
weight decay 0.01, grad-clip 0.5, per-GPU batch 8, linear warm-up over 200 steps to 0.99× then
linear decay to 0.4× over ``cycle_length`` (1 M steps for the real-robot configs).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

TEXT_SOURCES = ("auto", "dataset", "encoder")
VLM_IMAGES = ("model", "composite")
INIT_TRANSITIONS = ("auto", "keep_all", "reset_action_io")
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class TrainConfig:
    """Settings of :class:`~motus_policy.training.trainer.Trainer`.

    Attributes:
        preset: ``MotusConfig`` preset for a fresh or official start ("tiny", "aloha_agilex_2",
            "ac_one", "robotwin"); ignored when starting from our own folder or resuming.
        data_roots: dataset roots in the Motus real-robot layout (reference §4.2).
        out_dir: run folder (checkpoints/, tensorboard/, val/, train_log.jsonl, final/).
        init: None (fresh weights), an official DeepSpeed checkpoint (``.pt`` file or a folder
            holding ``mp_rank_00_model_states.pt``) or a folder written by ``save_pretrained``.
        encoders: a ``save_pretrained`` folder whose VAE / T5 / VLM are used when the network
            does not come with them (official or fresh start of a non-tiny preset).
        init_transition: official-checkpoint rule (reference §5.1): "reset_action_io" drops every
            key containing ``action_expert.input_encoder`` / ``action_expert.decoder`` (stage
            2 -> 3), "keep_all" loads everything, "auto" resets only when those keys do not fit.
        resume: a checkpoint folder (``checkpoints/step_*``) or a run folder (its latest).
        max_steps: optimiser steps to reach (a resumed run continues up to this step).
        batch_size: samples per process and step.
        lr: peak learning rate (the schedule multiplies it).
        betas: AdamW betas.
        weight_decay: AdamW decoupled weight decay.
        grad_clip: max global L2 norm of the gradients (0 disables).
        warmup_steps: linear warm-up length.
        cycle_length: step at which the decay reaches ``f_min`` (held afterwards).
        f_start, f_max, f_min: schedule factors at step 0, end of warm-up, end of the cycle.
        seed: seeds model init, data sampling and noise (rank r uses its own noise stream).
        samples_per_episode: items per episode and epoch (one random condition index each).
        max_episodes: use only the first N complete episodes in dataset order (roots as given,
            indices ascending; validation ones included), e.g. for a success-vs-demonstrations
            curve; 0 uses all.
        val_episodes: episodes held out for validation (the last ones in dataset order).
        val_samples: held-out items evaluated at each validation.
        val_every: steps between validations (0 disables).
        save_every: steps between resumable checkpoints (0: only at the end).
        keep_last: resumable checkpoints kept on disk (older ones are deleted).
        log_every: steps between TensorBoard / progress-bar updates.
        num_workers: DataLoader worker processes (video decoding).
        feature_cache: folder for the per-sample VAE-latent / VLM-feature cache ("" disables;
            None: ``<out_dir>/feature_cache``).
        preload: decode every episode once and keep its frames (resized to H x W) in RAM
            instead of decoding video per item (same items, bit for bit).
        precompute_features: before training, encode VAE latents and VLM features of every
            (episode, condition index) the sampler can draw and keep them in RAM (implies
            ``preload``); every step is then a cache hit.
        vae_batch: clips per VAE call in the precompute pass (1 reproduces the on-the-fly
            latents bit for bit; larger is faster on CPU and rounds differently, ~1e-6).
        text_source: "dataset" = the episode's UMT5 ``.pt``; "encoder" = the policy's T5
            (cached per instruction); "auto" = the episode's ``.pt`` where present and the
            policy's T5 for the others when the config's text_dim is 4096, else the T5.
        vlm_image: image given to the VLM: "model" (padded H x W frame, our deployment default)
            or "composite" (raw-resolution composite, official ac_one/aloha training, ref §9.6).
        stats_key: stat.json entry for min-max normalisation; "auto" keeps the init folder's
            stats, else the config's ``normalization_key``, else the only entry of the
            dataset's stat.json; "none" trains on raw values.
        device: "auto" (cuda when available), "cpu" or "cuda".
        vla_steps: Euler steps of the validation ``vla`` prediction.
        plot: write a PNG of predicted vs true actions at each validation.
        action_loss_weight: overrides the network config's weight of the action MSE in the
            loss (None keeps it; the reference's is 1.0, §2.1). Saved with the checkpoint.
    """

    preset: str = "tiny"
    data_roots: tuple[str, ...] = ()
    out_dir: str = "runs/motus"
    init: str | None = None
    encoders: str | None = None
    init_transition: str = "auto"
    resume: str | None = None
    max_steps: int = 2000
    batch_size: int = 8
    lr: float = 5e-5
    betas: tuple[float, float] = (0.9, 0.95)
    weight_decay: float = 0.01
    grad_clip: float = 0.5
    warmup_steps: int = 200
    cycle_length: int = 1_000_000
    f_start: float = 1e-6
    f_max: float = 0.99
    f_min: float = 0.4
    seed: int = 0
    samples_per_episode: int = 100
    max_episodes: int = 0
    val_episodes: int = 1
    val_samples: int = 8
    val_every: int = 500
    save_every: int = 500
    keep_last: int = 3
    log_every: int = 10
    num_workers: int = 0
    feature_cache: str | None = None
    preload: bool = False
    precompute_features: bool = False
    vae_batch: int = 4
    text_source: str = "auto"
    vlm_image: str = "model"
    stats_key: str = "auto"
    device: str = "auto"
    vla_steps: int = 10
    plot: bool = True
    action_loss_weight: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_roots", tuple(str(r) for r in self.data_roots))
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        if not self.data_roots:
            raise ValueError("data_roots: expected at least one dataset root, got none")
        positive = (
            "max_steps", "batch_size", "samples_per_episode", "keep_last", "log_every", "vae_batch"
        )  # fmt: skip
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name}: expected a positive int, got {value!r}")
        non_negative = (
            "warmup_steps", "val_episodes", "val_every", "save_every", "num_workers",
            "max_episodes",
        )  # fmt: skip
        for name in non_negative:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{name}: expected an int >= 0, got {value!r}")
        if self.val_every and not (self.val_episodes and self.val_samples > 0):
            raise ValueError(
                f"val_every={self.val_every} needs val_episodes > 0 and val_samples > 0, got "
                f"{self.val_episodes} / {self.val_samples}"
            )
        if not self.lr > 0:
            raise ValueError(f"lr: expected > 0, got {self.lr}")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"betas: expected two values in [0, 1), got {self.betas}")
        if self.weight_decay < 0 or self.grad_clip < 0:
            raise ValueError(
                f"weight_decay/grad_clip: expected >= 0, got {self.weight_decay}/{self.grad_clip}"
            )
        if self.cycle_length <= self.warmup_steps:
            raise ValueError(
                f"cycle_length: expected > warmup_steps={self.warmup_steps}, "
                f"got {self.cycle_length}"
            )
        for name in ("f_start", "f_max", "f_min"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}: expected > 0, got {getattr(self, name)}")
        if self.action_loss_weight is not None and not self.action_loss_weight > 0:
            raise ValueError(f"action_loss_weight: expected > 0, got {self.action_loss_weight}")
        if self.vla_steps <= 0:
            raise ValueError(f"vla_steps: expected > 0, got {self.vla_steps}")
        for name, allowed in (
            ("text_source", TEXT_SOURCES),
            ("vlm_image", VLM_IMAGES),
            ("init_transition", INIT_TRANSITIONS),
            ("device", DEVICES),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name}: expected one of {allowed}, got {getattr(self, name)!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (stored with every checkpoint)."""
        out = dataclasses.asdict(self)
        out["data_roots"] = list(self.data_roots)
        out["betas"] = list(self.betas)
        return out
