"""``TrainConfig``: every setting of a stage-3 fine-tuning run (one validated dataclass).

Defaults follow the official stage-3 configs (docs/motus.md §2.1): AdamW β = (0.9, 0.95), lr 5e-5,
weight decay 0.01, grad-clip 0.5, per-GPU batch 8, linear warm-up over 200 steps to 0.99× then
linear decay to 0.4× over ``cycle_length`` (1 M steps for the real-robot configs).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

TEXT_SOURCES = ("auto", "dataset", "encoder")
VLM_IMAGES = ("model", "composite")
INIT_TRANSITIONS = ("auto", "keep_all", "reset_action_io")
DEVICES = ("auto", "cpu", "cuda")
STAGES = (2, 3)
STRATEGIES = ("auto", "ddp", "fsdp")


@dataclass(frozen=True)
class TrainConfig:
    """Settings of :class:`~motus_policy.training.trainer.Trainer`.

    Each field's ``metadata["description"]`` is its help text (the training CLI's ``--help`` is
    generated from it, :mod:`motus_policy.cli.options`); ``metadata["choices"]`` lists the
    allowed values where there is a fixed set.

    Raises:
        ValueError: a field is out of range, not one of its allowed values, or inconsistent with
            another (the message names the field).
    """

    preset: str = field(
        default="tiny",
        metadata={
            "description": "MotusConfig preset for a fresh or official start (tiny, "
            "aloha_agilex_2, ac_one, robotwin, ...); ignored when starting from our own folder "
            "or resuming"
        },
    )
    data_roots: tuple[str, ...] = field(
        default=(),
        metadata={
            "description": "dataset root(s) in the Motus real-robot layout (docs/motus.md §4.2)"
        },
    )
    out_dir: str = field(
        default="runs/motus",
        metadata={
            "description": "run folder (checkpoints/, tensorboard/, val/, train_log.jsonl, final/)"
        },
    )
    init: str | None = field(
        default=None,
        metadata={
            "description": "starting weights: an official DeepSpeed checkpoint "
            "(mp_rank_00_model_states.pt or its folder) or a save_pretrained folder; "
            "None = fresh weights"
        },
    )
    encoders: str | None = field(
        default=None,
        metadata={
            "description": "save_pretrained folder providing VAE / T5 / VLM when the network "
            "does not come with them: required for non-tiny presets; for tiny presets e.g. the "
            "encoders folder of `python -m motus_policy.cli.train_vae` (None: random tiny "
            "encoders built in code)"
        },
    )
    init_transition: str = field(
        default="auto",
        metadata={
            "description": "official-checkpoint rule (docs/motus.md §5.1): reset_action_io drops "
            "every action_expert.input_encoder / action_expert.decoder key (stage 2 -> 3), "
            "keep_all loads everything, auto resets only when those keys do not fit",
            "choices": INIT_TRANSITIONS,
        },
    )
    resume: str | None = field(
        default=None,
        metadata={
            "description": "checkpoint folder (checkpoints/step_*) or run folder (its latest) "
            "to resume"
        },
    )
    max_steps: int = field(
        default=2000,
        metadata={"description": "optimiser steps to reach (a resumed run continues up to it)"},
    )
    batch_size: int = field(default=8, metadata={"description": "samples per process and step"})
    lr: float = field(
        default=5e-5,
        metadata={"description": "peak learning rate (the schedule multiplies it)"},
    )
    betas: tuple[float, float] = field(
        default=(0.9, 0.95), metadata={"description": "AdamW betas (beta1 beta2)"}
    )
    weight_decay: float = field(
        default=0.01, metadata={"description": "AdamW decoupled weight decay"}
    )
    grad_clip: float = field(
        default=0.5,
        metadata={"description": "max global L2 norm of the gradients (0 disables)"},
    )
    warmup_steps: int = field(
        default=200, metadata={"description": "linear warm-up length [steps]"}
    )
    cycle_length: int = field(
        default=1_000_000,
        metadata={
            "description": "step at which the linear decay reaches lr x f_min, held afterwards "
            "(the real-robot configs' value)"
        },
    )
    f_start: float = field(
        default=1e-6, metadata={"description": "learning-rate factor at step 0"}
    )
    f_max: float = field(
        default=0.99, metadata={"description": "learning-rate factor at the end of warm-up"}
    )
    f_min: float = field(
        default=0.4,
        metadata={
            "description": "learning-rate factor at the end of the cycle (upstream's); e.g. "
            "cycle_length 8000 with f_min 0.02 anneals a short fine-tune"
        },
    )
    seed: int = field(
        default=0,
        metadata={
            "description": "seeds model init, data sampling and noise (rank r uses its own "
            "noise stream)"
        },
    )
    samples_per_episode: int = field(
        default=100,
        metadata={"description": "items per episode and epoch (one random condition index each)"},
    )
    max_episodes: int = field(
        default=0,
        metadata={
            "description": "train on the first N complete episodes only (roots in the order "
            "given, indices ascending; the validation episodes are the last of these), e.g. for "
            "a success-vs-demonstrations curve; 0 = all"
        },
    )
    val_episodes: int = field(
        default=1,
        metadata={"description": "episodes held out for validation (the last in dataset order)"},
    )
    val_samples: int = field(
        default=8, metadata={"description": "held-out items evaluated at each validation"}
    )
    val_every: int = field(
        default=500, metadata={"description": "steps between validations (0 disables)"}
    )
    save_every: int = field(
        default=500,
        metadata={"description": "steps between resumable checkpoints (0: only at the end)"},
    )
    keep_last: int = field(
        default=3,
        metadata={"description": "resumable checkpoints kept on disk (older ones are deleted)"},
    )
    log_every: int = field(
        default=10, metadata={"description": "steps between TensorBoard / progress updates"}
    )
    num_workers: int = field(
        default=0, metadata={"description": "DataLoader worker processes decoding video"}
    )
    feature_cache: str | None = field(
        default=None,
        metadata={
            "description": "folder of the per-sample VAE-latent / VLM-feature cache ('' "
            "disables; None: <out_dir>/feature_cache)"
        },
    )
    preload: bool = field(
        default=False,
        metadata={
            "description": "decode every episode once and keep its frames (resized to H x W) "
            "in RAM instead of decoding video per item (same items, bit for bit)"
        },
    )
    precompute_features: bool = field(
        default=False,
        metadata={
            "description": "before training, encode VAE latents / VLM features of every "
            "(episode, condition index) the sampler can draw and keep them in RAM, so every "
            "step is a cache hit (implies preload; the fast path for CPU training of the tiny "
            "preset)"
        },
    )
    vae_batch: int = field(
        default=4,
        metadata={
            "description": "clips per VAE call in the precompute pass (1 reproduces the "
            "on-the-fly latents bit for bit; larger is faster on CPU and rounds differently, "
            "~1e-6)"
        },
    )
    text_source: str = field(
        default="auto",
        metadata={
            "description": "T5 context: dataset = the episode's UMT5 .pt; encoder = the "
            "policy's T5 (cached per instruction); auto = the episode's .pt where present and "
            "the T5 for the others when text_dim is 4096, else the T5",
            "choices": TEXT_SOURCES,
        },
    )
    vlm_image: str = field(
        default="model",
        metadata={
            "description": "image given to the VLM: model = the padded H x W frame (our "
            "deployment default) or composite = the raw-resolution composite (official "
            "ac_one / aloha training, docs/motus.md §9.6)",
            "choices": VLM_IMAGES,
        },
    )
    stats_key: str = field(
        default="auto",
        metadata={
            "description": "stat.json entry for min-max normalisation; auto keeps the init "
            "folder's stats, else the config's normalization_key, else the only entry of the "
            "dataset's stat.json; none trains on raw values"
        },
    )
    device: str = field(
        default="auto",
        metadata={"description": "auto (cuda when available), cpu or cuda", "choices": DEVICES},
    )
    vla_steps: int = field(
        default=10,
        metadata={"description": "Euler steps of the validation vla prediction"},
    )
    plot: bool = field(
        default=True,
        metadata={"description": "write a PNG of predicted vs true actions at each validation"},
    )
    action_loss_weight: float | None = field(
        default=None,
        metadata={
            "description": "weight of the action MSE against the video MSE in the loss, saved "
            "with the checkpoint (None keeps the init checkpoint's / preset's; the official value "
            "is 1.0, docs/motus.md §2.1)"
        },
    )
    recommended_n_action_steps: int | None = field(
        default=None,
        metadata={
            "description": "actions per chunk the checkpoint recommends executing before "
            "re-planning, saved in its config.json (the runtime's n_action_steps 0 uses it); "
            "None: the resumed checkpoint's, else the whole chunk A"
        },
    )

    strategy: str = field(
        default="auto",
        metadata={
            "description": "data parallelism over the torchrun processes: ddp = a full replica "
            "per process (PyTorch DDP); fsdp = PyTorch FSDP2 (fully_shard), parameters, "
            "gradients and AdamW state sharded over the processes, one unit per MoT layer, "
            "sharded checkpoints (torch.distributed.checkpoint); auto = on CUDA the first of ddp, "
            "fsdp, fsdp + cpu offload that the memory plan fits in the GPU's memory "
            "(motus_policy/training/memory_plan.py), on CPU ddp",
            "choices": STRATEGIES,
        },
    )
    cpu_offload: bool = field(
        default=False,
        metadata={
            "description": "fsdp: keep the sharded parameters, gradients and AdamW state in host "
            "memory (FSDP2 CPUOffloadPolicy; the optimiser step runs on the CPU); the 1-GPU "
            "full-size setting"
        },
    )
    activation_checkpointing: bool = field(
        default=False,
        metadata={
            "description": "recompute each MoT layer's activations in the backward pass "
            "(torch.utils.checkpoint, one unit per layer of the three experts) instead of "
            "keeping them"
        },
    )
    grad_accum_steps: int = field(
        default=1,
        metadata={
            "description": "micro-batches of --batch-size per process summed into one optimiser "
            "step (global batch = batch_size x processes x grad_accum_steps)"
        },
    )
    export_official: bool = field(
        default=False,
        metadata={
            "description": "also write <out>/final_official/mp_rank_00_model_states.pt, the "
            "result in the official DeepSpeed layout (fp32, VLM included: ~35 GB at full size) "
            "for the official code"
        },
    )

    stage: int = field(
        default=3,
        metadata={
            "description": "training stage (paper §4.3): 3 = fine-tuning on recorded qpos (a "
            "finetune-mode preset); 2 = latent-action pretraining on the latent actions beside "
            "each episode (motus-dataset label-latent; a pretrain-mode preset such as "
            "latent_action_tiny, raw values, no state)",
            "choices": STAGES,
        },
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_roots", tuple(str(r) for r in self.data_roots))
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        if self.stage not in STAGES:
            raise ValueError(f"stage: expected one of {STAGES}, got {self.stage!r}")
        if not self.data_roots:
            raise ValueError("data_roots: expected at least one dataset root, got none")
        positive = (
            "max_steps", "batch_size", "samples_per_episode", "keep_last", "log_every",
            "vae_batch", "grad_accum_steps",
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
        n = self.recommended_n_action_steps
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise ValueError(f"recommended_n_action_steps: expected an int >= 1, got {n!r}")
        if self.cpu_offload and self.strategy == "ddp":
            raise ValueError("cpu_offload: needs strategy fsdp (or auto), got strategy 'ddp'")
        if self.vla_steps <= 0:
            raise ValueError(f"vla_steps: expected > 0, got {self.vla_steps}")
        for name, allowed in (
            ("text_source", TEXT_SOURCES),
            ("vlm_image", VLM_IMAGES),
            ("init_transition", INIT_TRANSITIONS),
            ("device", DEVICES),
            ("strategy", STRATEGIES),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name}: expected one of {allowed}, got {getattr(self, name)!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (stored with every checkpoint)."""
        out = dataclasses.asdict(self)
        out["data_roots"] = list(self.data_roots)
        out["betas"] = list(self.betas)
        return out
