"""Stage-3 fine-tuning loop: one CPU process, one GPU, or many GPUs with torchrun + DDP or FSDP2.

Per step (docs/motus.md §2.1): frozen-encoder features of the batch (VAE clip latents, VLM
features, T5 context; :mod:`features`), then :func:`~motus_policy.model.losses.training_loss`
(independent shift-5 video / action noise, clean condition latent) under bf16 autocast on CUDA
(fp32 on CPU), backward (summed over ``grad_accum_steps`` micro-batches), global-norm gradient
clipping, AdamW and the warm-up / linear-decay ``LambdaLR``.

Strategies (``TrainConfig.strategy``): ``ddp`` keeps a full replica per process (PyTorch DDP);
``fsdp`` shards the network, its gradients and the AdamW state over the processes with FSDP2, one
unit per MoT layer, and checkpoints them with DCP (:mod:`fsdp`); ``auto`` asks the memory plan
(:mod:`memory_plan`). Activation checkpointing wraps each MoT layer (either strategy).

Reproducibility: the batch of step n is a function of (seed, epoch, position) only
(:mod:`samples`), and the noise of a sample is a function of (seed, step, the sample's slot in
the step's global batch) (:func:`sample_noise`), so a run on P processes with batch b per process
draws the same samples and noise as one process with batch P x b, and its losses agree to
rounding. Checkpoints hold every RNG state, so on CPU a resumed run reproduces the uninterrupted
loss sequence bit for bit (with the same intra-op thread count: CPU reductions depend on it). On
CUDA, bf16 kernels are not bit-deterministic, so a resumed run matches only to rounding.

Fast path (``preload`` / ``precompute_features``): frames decoded once into RAM and every
sample's frozen features encoded before the first step (:meth:`MotusEpisodeDataset.preload`,
:meth:`FeatureEncoder.precompute`); the items and their sampling are unchanged. Under DDP rank 0
runs the feature pass first and the other ranks then read its disk cache (or, with the cache
disabled, encode for themselves).

Threads: :meth:`Trainer.run` runs on the calling thread; DataLoader workers only decode video.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import random
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from motus_policy.model.checkpoint import save_official_checkpoint
from motus_policy.model.losses import training_loss
from motus_policy.model.normalization import MIN_NORMALIZATION_RANGE, NormalizationStats
from motus_policy.model.policy import MotusPolicy, PolicyConfig
from motus_policy.model.scheduler import sample_training_sigmas
from motus_policy.training import checkpointing as ckpt
from motus_policy.training import fsdp
from motus_policy.training.config import TrainConfig
from motus_policy.training.data import MotusEpisodeDataset, action_source_for_stage
from motus_policy.training.distributed import (
    DistInfo,
    barrier,
    ensure_process_group,
    init_distributed,
)
from motus_policy.training.features import FeatureEncoder
from motus_policy.training.memory_plan import choose_strategy
from motus_policy.training.samples import (
    EpisodeSamples,
    ResumableDistributedSampler,
    collate_batch,
    keep_raw_composite,
)
from motus_policy.training.schedule import build_optimizer
from motus_policy.training.starting_point import build_policy
from motus_policy.training.stats import action_rate_hz, qpos_source, resolve_stats
from motus_policy.training.validation import autocast_for, evaluate, write_report

log = logging.getLogger(__name__)

OFFICIAL_DIR = "final_official"
"""``<out>/final_official/mp_rank_00_model_states.pt``: the result in the official layout."""

RUN_MARKERS = ("checkpoints", "train_log.jsonl", "final")
"""Entries of a run folder that a new run (without ``resume``) would overwrite."""


class RunFolderInUseError(ValueError):
    """``out_dir`` already holds a run and ``resume`` is not set."""


class LossModule(nn.Module):
    """Conditioning + loss in one ``forward`` so DDP / FSDP see every trainable parameter.

    ``forward(latents (B, C, T', h, w), actions (B, A, D), state (B, D) or None, text
    (B, L, text_dim), vlm (B, Lu, vlm_hidden_size), sigmas, noise)`` ->
    ``(loss, video_loss, action_loss)`` scalars; ``sigmas`` / ``noise`` from
    :func:`sample_noise`.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, latents, actions, state, text, vlm, sigmas, noise):
        """See the class docstring."""
        cond = self.model.prepare_conditioning(text, vlm)
        out = training_loss(self.model, latents, actions, state, cond, sigmas=sigmas, noise=noise)
        return out.loss, out.video_loss, out.action_loss


def sample_noise(
    seed: int, step: int, slots: list[int], video_shape: tuple[int, ...],
    action_shape: tuple[int, ...], num_train_timesteps: int, shift: float,
) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:  # fmt: skip
    """σ and ε of the samples in ``slots`` of optimiser step ``step`` (0-based).

    Each sample's values come from its own generator seeded with ``(seed, step, slot)`` through
    ``numpy.random.SeedSequence``, drawn in the order σ_video, σ_action (one index each into the
    shift-5 table, docs/motus.md §2.1), ε_video, ε_action; so they do not depend on how the global
    batch is split over processes and micro-batches.

    Args:
        seed: the run's seed.
        step: completed optimiser steps before this one.
        slots: the samples' positions in the step's global batch (``Trainer._slots``).
        video_shape: (C, T', h, w) of one sample's latents.
        action_shape: (A, action_dim).
        num_train_timesteps: σ table length (``MotusConfig``).
        shift: σ table shift (``MotusConfig.train_shift``).

    Returns:
        ``((σ_video (B,), σ_action (B,)), (ε_video (B, C, T', h, w), ε_action (B, A, D)))``,
        float32 on the CPU, B = ``len(slots)``.
    """
    sig_v, sig_a, eps_v, eps_a = [], [], [], []
    for slot in slots:
        entropy = [seed, step, slot]
        g = torch.Generator().manual_seed(
            int(np.random.SeedSequence(entropy).generate_state(1)[0])
        )
        sig_v.append(sample_training_sigmas(1, num_train_timesteps, shift, generator=g))
        sig_a.append(sample_training_sigmas(1, num_train_timesteps, shift, generator=g))
        eps_v.append(torch.randn((1, *video_shape), generator=g))
        eps_a.append(torch.randn((1, *action_shape), generator=g))
    return (torch.cat(sig_v), torch.cat(sig_a)), (torch.cat(eps_v), torch.cat(eps_a))


@dataclass
class TrainResult:
    """What :meth:`Trainer.run` did (rank-local except ``losses``, averaged over ranks).

    Attributes:
        final_dir: ``save_pretrained`` folder of the final weights (rank 0), else None.
        checkpoint: last resumable checkpoint folder (rank 0), else None.
        official: ``<out>/final_official/mp_rank_00_model_states.pt`` (rank 0, with
            ``export_official``), else None.
        losses: (step, loss) of every step run in this process, mean over ranks.
        steps_per_s: optimiser steps per second in this process, first step excluded.
        val_metrics: the last validation's metrics (rank 0).
    """

    final_dir: Path | None = None
    checkpoint: Path | None = None
    official: Path | None = None
    losses: list[tuple[int, float]] = field(default_factory=list)
    steps_per_s: float = float("nan")
    val_metrics: dict[str, float] = field(default_factory=dict)


class Trainer:
    """Fine-tunes a :class:`MotusPolicy` on Motus-format datasets.

    Args:
        config: the run's settings.
        info: distributed placement (default: from the torchrun environment).
    """

    def __init__(self, config: TrainConfig, info: DistInfo | None = None) -> None:
        self.cfg = config
        self.info = info or init_distributed(config.device)
        self.out = Path(config.out_dir)
        self.device = self.info.device
        if not config.resume:
            self._refuse_used_out_dir()
        barrier(self.info)  # every rank checked before rank 0 writes anything
        self._seed_everything()
        self.position = ckpt.TrainingPosition()
        resume_from = ckpt.find_checkpoint(config.resume) if config.resume else None
        self.policy, self.description = self._make_policy(resume_from)
        self.strategy, self.cpu_offload, why = choose_strategy(
            self.policy.model.config, config, self.info.world_size, self.device
        )
        if self.info.is_main:
            log.info("strategy %s%s: %s", self.strategy, " + cpu offload" * self.cpu_offload, why)
        if resume_from is not None:
            self._check_resume_strategy(resume_from)
        self._place_models()
        mcfg = self.policy.model.config
        self.base = MotusEpisodeDataset(
            roots=list(config.data_roots),
            stats={
                "min": self.policy.stats.min.tolist(),
                "max": self.policy.stats.max.tolist(),
                "min_range": self.policy.config.normalization_min_range,
            },
            action_chunk=mcfg.action_chunk_size,
            downsample=mcfg.global_downsample_rate,
            video_ratio=mcfg.video_action_freq_ratio,
            video_frames=mcfg.num_video_frames,
            image_hw=(mcfg.image_height, mcfg.image_width),
            text_len=mcfg.text_len,
            seed=config.seed,
            vlm_fn=keep_raw_composite if self.policy.config.vlm_image == "composite" else None,
            require_embedding=self.text_source == "dataset",
            max_episodes=config.max_episodes,
            index_rule="latent_action" if mcfg.training_mode == "pretrain" else "stage3",
            action_source=action_source_for_stage(config.stage, mcfg.training_mode),
        )
        self.train_set, self.val_set = self._split()
        cache = config.feature_cache
        cache = str(self.out / "feature_cache") if cache is None else cache
        self.features = FeatureEncoder(
            self.policy,
            self.device,
            self.text_source,
            self.policy.config.vlm_image,  # as saved with the policy (resume keeps it)
            cache or None,
            geometry={
                "g": mcfg.global_downsample_rate,
                "r": mcfg.video_action_freq_ratio,
                "F": mcfg.num_video_frames,
                "hw": [mcfg.image_height, mcfg.image_width],
            },
            vae_batch=config.vae_batch,
        )
        if config.preload or config.precompute_features:
            self._precompute()
        self.loss_module: nn.Module = LossModule(self.policy.model)
        self.layers = None
        if self.strategy == "fsdp" or config.activation_checkpointing:
            self.layers = fsdp.install_layers(self.policy.model, config.activation_checkpointing)
        if self.strategy == "fsdp":
            ensure_process_group(self.info)
            self.loss_module.layers = self.layers  # the FSDP root holds the layer units
            fsdp.shard(self.loss_module, self.layers, self.device, self.cpu_offload)
        elif self.info.distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            # static_graph: the last und block's output projection and FFN never reach the loss
            # (the und stream ends there), so a fixed set of parameters gets no gradient.
            self.loss_module = DistributedDataParallel(
                self.loss_module, device_ids=ids, static_graph=True
            )
        # after sharding: FSDP replaced the parameters by sharded ones
        self.optimizer, self.scheduler = build_optimizer(self.policy.model.parameters(), config)
        if resume_from is not None:
            self._restore(resume_from)
        self.sampler = ResumableDistributedSampler(
            self.train_set,
            num_replicas=self.info.world_size,
            rank=self.info.rank,
            shuffle=True,
            seed=config.seed,
        )
        self.loader = DataLoader(
            self.train_set,
            batch_size=config.batch_size,
            sampler=self.sampler,
            num_workers=config.num_workers,
            collate_fn=collate_batch,
            drop_last=True,
            generator=torch.Generator().manual_seed(config.seed),
        )
        k = config.grad_accum_steps
        self.batches_per_epoch = self.sampler.num_samples // config.batch_size // k * k
        if self.batches_per_epoch == 0:
            raise ValueError(
                f"batch_size x grad_accum_steps: {config.batch_size} x {k} per rank exceeds the "
                f"{self.sampler.num_samples} training samples per rank and epoch; lower them or "
                f"raise samples_per_episode"
            )

    # --- set-up --------------------------------------------------------------------------------
    def _refuse_used_out_dir(self) -> None:
        used = [m for m in RUN_MARKERS if (self.out / m).exists()]
        if used:
            raise RunFolderInUseError(
                f"out_dir: {self.out} already holds a run ({', '.join(used)}); pass --resume "
                f"auto to continue it, or choose another --out"
            )

    def _check_resume_strategy(self, path: Path) -> None:
        state, _ = ckpt.load_training_state(path, self.info.rank)
        saved = state.get("strategy", "ddp")
        if (saved == "fsdp") != (self.strategy == "fsdp"):
            raise ValueError(
                f"resume: {path} was written with strategy {saved!r}, this run uses "
                f"{self.strategy!r}; resume with --strategy {saved}"
            )

    def _seed_everything(self) -> None:
        s = self.cfg.seed + self.info.rank
        random.seed(s)
        np.random.seed(s)
        torch.manual_seed(s)

    def _make_policy(self, resume_from: Path | None) -> tuple[MotusPolicy, str]:
        cfg = self.cfg
        if resume_from is not None:
            policy = MotusPolicy.from_pretrained(resume_from / ckpt.POLICY_DIR)
            policy.model.float().train()
            desc = f"resumed {resume_from}"
        else:
            # stage 2: latent actions are used raw, as upstream (training/data.py)
            stats, key = resolve_stats(cfg) if cfg.stage == 3 else (None, "default")
            policy_cfg = PolicyConfig(  # trained here: the documented range floor
                vlm_image=cfg.vlm_image,
                stats_key=key,
                normalization_min_range=MIN_NORMALIZATION_RANGE,
            )
            policy, desc = build_policy(
                cfg.preset,
                cfg.init,
                cfg.encoders,
                cfg.init_transition,
                cfg.seed,
                stats,
                key,
                policy_cfg,
            )
            roots = list(cfg.data_roots)
            rate = action_rate_hz(roots, policy.model.config.global_downsample_rate)
            policy.config = dataclasses.replace(
                policy.config, action_rate_hz=rate, qpos_source=qpos_source(roots)
            )
        if cfg.action_loss_weight is not None:
            policy.model.config = dataclasses.replace(
                policy.model.config, action_loss_weight=float(cfg.action_loss_weight)
            )
        n_steps = cfg.recommended_n_action_steps or policy.config.recommended_n_action_steps
        chunk = policy.model.config.action_chunk_size
        if n_steps is not None and n_steps > chunk:
            raise ValueError(
                f"recommended_n_action_steps: expected <= the chunk size {chunk}, got {n_steps}"
            )
        policy.config = dataclasses.replace(  # saved in config.json with every checkpoint
            policy.config, recommended_n_action_steps=n_steps or chunk
        )
        mcfg = policy.model.config
        source = cfg.text_source
        if source == "auto":  # UMT5-XXL width: dataset .pt where present, else our T5
            source = "mixed" if mcfg.text_dim == 4096 else "encoder"
        self.text_source = source
        if policy.stats is None:
            policy.stats = NormalizationStats.identity(mcfg.action_dim)
        return policy, desc

    def _place_models(self) -> None:
        p, dev = self.policy, self.device
        if not self.cpu_offload:  # offloaded: FSDP moves each shard to the CPU itself
            p.model.to(dev)
        p.vae.to(dev)  # fp32, as Motus keeps it (docs/motus.md §3.3)
        enc_dtype = torch.bfloat16 if dev.type == "cuda" else None
        frozen = [p.vlm.model]
        if self.text_source != "dataset":  # dataset embeddings only: UMT5-XXL stays off the GPU
            frozen.append(p.text_encoder.model)
        for m in frozen:
            m.to(device=dev, dtype=enc_dtype) if enc_dtype else m.to(dev)
        p.model.train()

    def _precompute(self) -> None:
        """Frames into RAM, then (``precompute_features``) every sample's frozen features."""
        show = self.info.is_main
        t0 = time.perf_counter()
        nbytes = self.base.preload(keep_raw=self.base.vlm_fn is not None, progress=show)
        log.info(
            "preloaded %d episodes (%.0f MB of frames) in %.1f s",
            len(self.base.episodes), nbytes / 1e6, time.perf_counter() - t0,
        )  # fmt: skip
        if self.cfg.precompute_features:
            if not show:  # other ranks wait for rank 0's disk cache
                barrier(self.info)
            t0 = time.perf_counter()
            n = self.features.precompute(self.base, progress=show)
            if show:
                barrier(self.info)
            log.info(
                "precomputed features of %d (episode, condition index) samples in %.1f s "
                "(vae_batch %d)", n, time.perf_counter() - t0, self.features.vae_batch,
            )  # fmt: skip

    def _split(self) -> tuple[EpisodeSamples, EpisodeSamples | None]:
        cfg, n = self.cfg, len(self.base.episodes)
        episodes = list(range(n))
        n_val = cfg.val_episodes  # held out even when validation is off: same training set
        if n_val and n_val >= n:
            log.warning(
                "val_episodes=%d but only %d episodes: validating on training episodes", n_val, n
            )
            val_eps, train_eps = episodes[-n_val:], episodes
        else:
            val_eps, train_eps = episodes[n - n_val :] if n_val else [], episodes[: n - n_val]
        train = EpisodeSamples(self.base, train_eps, cfg.samples_per_episode, cfg.seed, stream=0)
        val = None
        if val_eps:
            per = math.ceil(cfg.val_samples / len(val_eps))
            val = EpisodeSamples(self.base, val_eps, per, cfg.seed, stream=1)
        return train, val

    def _restore(self, path: Path) -> None:
        state, rng = ckpt.load_training_state(path, self.info.rank)
        if self.strategy == "fsdp":
            fsdp.load_sharded(path / fsdp.SHARDED_DIR, self.policy.model, self.optimizer)
        else:
            self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        pos = ckpt.TrainingPosition(**state["position"])
        same = (
            state.get("world_size") == self.info.world_size
            and state.get("batch_size") == self.cfg.batch_size
        )
        if not same and pos.batch_in_epoch:
            log.warning(
                "resume: world size / batch size changed (%s/%s -> %s/%s): starting epoch %d",
                state.get("world_size"), state.get("batch_size"),
                self.info.world_size, self.cfg.batch_size, pos.epoch + 1,
            )  # fmt: skip
            pos = ckpt.TrainingPosition(pos.step, pos.epoch + 1, 0)
        self.position = pos
        if rng is not None:
            ckpt.set_rng_state(rng)
        else:
            log.warning("resume: no RNG state for rank %d; keeping fresh seeds", self.info.rank)

    # --- one step ------------------------------------------------------------------------------
    def _slots(self, micro: int, n: int) -> list[int]:
        """Positions in the step's global batch of this rank's ``n`` samples of ``micro``.

        The sampler deals positions round-robin over the ranks (``ResumableDistributedSampler``),
        so local sample j of micro-batch m is global r + P (m n + j).
        """
        r, p = self.info.rank, self.info.world_size
        return [r + p * (micro * n + j) for j in range(n)]

    def _micro_step(self, batch: dict, micro: int) -> torch.Tensor:
        latents, vlm, text = self.features(batch)
        actions = batch["action_sequence"].to(self.device)
        state = None
        mcfg = self.policy.model.config
        if mcfg.has_state:
            state = batch["initial_state"].to(self.device)
        sigmas, noise = sample_noise(
            self.cfg.seed, self.position.step, self._slots(micro, actions.shape[0]),
            tuple(latents.shape[1:]), tuple(actions.shape[1:]), mcfg.num_train_timesteps,
            mcfg.train_shift,
        )  # fmt: skip
        # Every micro-batch's gradients are reduced over the ranks (DDP's no_sync does not work
        # with its static_graph mode, which the unused und parameters need).
        with autocast_for(self.device):
            loss, v_loss, a_loss = self.loss_module(
                latents, actions, state, text, vlm, sigmas, noise
            )
        (loss / self.cfg.grad_accum_steps).backward()
        return torch.stack([loss.detach(), v_loss, a_loss]).float()

    def _step(self, batches: list[dict]) -> dict[str, float]:
        """One optimiser step over ``grad_accum_steps`` micro-batches of this rank."""
        k = len(batches)
        values = sum(self._micro_step(b, m) for m, b in enumerate(batches)) / k
        params = [p for p in self.policy.model.parameters() if p.grad is not None]
        max_norm = self.cfg.grad_clip if self.cfg.grad_clip else float("inf")
        grad_norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
        lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.info.distributed:
            dist.all_reduce(values)
            values /= self.info.world_size
        loss_f, v_f, a_f = (float(x) for x in values.cpu())
        return {
            "loss": loss_f,
            "video_loss": v_f,
            "action_loss": a_f,
            "lr": lr,
            "grad_norm": fsdp.grad_norm_value(grad_norm),
        }

    # --- validation / saving -------------------------------------------------------------------
    def _val_batches(self) -> list[dict]:
        n = min(self.cfg.val_samples, len(self.val_set))
        loader = DataLoader(
            torch.utils.data.Subset(self.val_set, range(n)),
            batch_size=self.cfg.batch_size,
            shuffle=False,
            collate_fn=collate_batch,
        )
        return list(loader)

    def validate(self, writer=None) -> dict[str, float]:
        """Run :func:`evaluate` on the held-out samples, log and plot (rank 0 writes).

        ddp / one process: rank 0 only. fsdp: every rank (the network is gathered on each for the
        duration; collective), rank 0 writes.
        """
        if self.val_set is None:
            return {}
        sharded = self.strategy == "fsdp"
        with fsdp.gathered(self.loss_module, self.layers) if sharded else nullcontext():
            metrics, example = evaluate(
                self.policy, self.features, self._val_batches(), self.cfg.vla_steps, self.device
            )
        if self.info.is_main:
            write_report(
                metrics, example, self.position.step, self.out / "val", writer, self.cfg.plot
            )
        return metrics

    def _gather_network(self) -> nn.Module | None:
        """The network to write: itself, or with fsdp a gathered plain copy on rank 0.

        Collective with fsdp; None on the other ranks.
        """
        if self.strategy != "fsdp":
            return self.policy.model
        state = fsdp.full_state_dict(self.policy.model)
        return fsdp.unsharded_copy(self.policy.model, state) if self.info.is_main else None

    def save(self) -> Path | None:
        """Resumable checkpoint of the current position (collective; rank 0 writes)."""
        state = ckpt.rng_state()
        states = [state]
        if self.info.distributed:
            states = [None] * self.info.world_size
            dist.all_gather_object(states, state)
        sharded = self.strategy == "fsdp"
        tmp = None
        if sharded:
            if self.info.is_main:
                tmp = ckpt.begin_checkpoint(self.out / "checkpoints", self.position.step)
            holder = [tmp]
            if self.info.distributed:
                dist.broadcast_object_list(holder, src=0)
            tmp = holder[0]
            fsdp.save_sharded(tmp / fsdp.SHARDED_DIR, self.policy.model, self.optimizer)
        network = self._gather_network()
        path = None
        if self.info.is_main:
            path = ckpt.save_checkpoint(
                self.out / "checkpoints",
                self.policy,
                None if sharded else self.optimizer,
                self.scheduler,
                self.position,
                {
                    "world_size": self.info.world_size,
                    "batch_size": self.cfg.batch_size,
                    "grad_accum_steps": self.cfg.grad_accum_steps,
                    "strategy": self.strategy,
                    "train_config": self.cfg.to_dict(),
                },
                states,
                self.cfg.keep_last,
                tmp=tmp,
                model=network if sharded else None,
            )
        barrier(self.info)
        return path

    def export_official(self) -> Path | None:
        """Write ``<out>/final_official/mp_rank_00_model_states.pt`` (collective; rank 0 writes).

        The ``module`` dict of the official DeepSpeed layout (docs/checkpoint-format.md §1-4,
        :func:`~motus_policy.model.checkpoint.save_official_checkpoint`) with the frozen VLM's
        ``vlm_model.*`` keys; tensors in the training dtype (fp32).
        """
        network = self._gather_network()
        path = None
        if self.info.is_main:
            path = save_official_checkpoint(
                network, self.out / OFFICIAL_DIR, self.policy.vlm.model
            )
        barrier(self.info)
        return path

    # --- loop ----------------------------------------------------------------------------------
    def run(self) -> TrainResult:
        """Train up to ``max_steps`` (resuming from the restored position)."""
        cfg, info, pos = self.cfg, self.info, self.position
        result = TrainResult()
        writer = None
        if info.is_main:
            from torch.utils.tensorboard import SummaryWriter

            self.out.mkdir(parents=True, exist_ok=True)
            writer = SummaryWriter(str(self.out / "tensorboard"), purge_step=pos.step)
            writer.add_text("run/start", f"{self.description} at step {pos.step}", pos.step)
            log.info("%s; training steps %d -> %d", self.description, pos.step, cfg.max_steps)
        bar = tqdm(total=cfg.max_steps, initial=pos.step, disable=not info.is_main, unit="step")
        log_file = self.out / "train_log.jsonl"
        if info.is_main:  # a crash after the last checkpoint left rows that will be redone
            for path in (log_file, self.out / "val" / "metrics.jsonl"):
                ckpt.truncate_log(path, pos.step)
        t_first = None
        steps_timed = 0
        last_saved, last_saved_step = None, None
        try:
            while pos.step < cfg.max_steps:
                self.train_set.set_epoch(pos.epoch)
                self.sampler.set_epoch(pos.epoch)
                self.sampler.start_index = pos.batch_in_epoch * cfg.batch_size
                micro: list[dict] = []
                for batch in self.loader:
                    micro.append(batch)
                    if len(micro) < cfg.grad_accum_steps:
                        continue
                    values = self._step(micro)
                    micro = []
                    pos.step += 1
                    pos.batch_in_epoch += cfg.grad_accum_steps
                    if pos.batch_in_epoch >= self.batches_per_epoch:
                        pos.epoch, pos.batch_in_epoch = pos.epoch + 1, 0
                    if t_first is None:
                        t_first = time.perf_counter()
                    else:
                        steps_timed += 1
                    result.losses.append((pos.step, values["loss"]))
                    if info.is_main:
                        with open(log_file, "a") as f:
                            f.write(json.dumps({"step": pos.step, **values}) + "\n")
                        bar.update(1)
                        if pos.step % cfg.log_every == 0 or pos.step == cfg.max_steps:
                            for k, v in values.items():
                                writer.add_scalar(f"train/{k}", v, pos.step)
                            bar.set_postfix(loss=f"{values['loss']:.4f}", lr=f"{values['lr']:.2e}")
                    if cfg.val_every and pos.step % cfg.val_every == 0:
                        if info.is_main or self.strategy == "fsdp":
                            result.val_metrics = self.validate(writer)
                        barrier(info)
                    if cfg.save_every and pos.step % cfg.save_every == 0:
                        last_saved, last_saved_step = self.save(), pos.step
                    if pos.step >= cfg.max_steps or pos.batch_in_epoch == 0:
                        break
            if steps_timed:
                result.steps_per_s = steps_timed / (time.perf_counter() - t_first)
            if last_saved_step != pos.step:
                last_saved = self.save()
            result.checkpoint = last_saved
            if cfg.export_official:
                result.official = self.export_official()
            if info.is_main:
                result.final_dir = ckpt.export_final(last_saved, self.out / "final")
                writer.add_scalar("time/steps_per_s", result.steps_per_s, pos.step)
        finally:
            bar.close()
            if writer is not None:
                writer.close()
        return result
