"""The in-process Motus backend: :class:`PolicyBackend` over :class:`MotusPolicy`.

numpy in, numpy out; torch stays behind this module (docs/architecture.md §5). The checkpoint is a
folder written by ``MotusPolicy.save_pretrained`` (weights, config, normalisation stats,
tokenizers) or the special value ``tiny-random`` (random-weight tiny Motus with the profile's
limits as normalisation stats; for tests and plumbing checks only, its actions are meaningless).

Threads: ``load`` on the configuring thread; ``infer`` / ``reset`` on the inference worker only.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from motus_policy.backends.base import FRAME_MODES, check_mode
from motus_policy.types import ActionChunk, Observation
from motus_recorder.profile import RobotProfile
from motus_recorder.share import embedded_checkpoint_dir

TINY_RANDOM = "tiny-random"


class MotusBackend:
    """Motus as a policy backend.

    Args:
        profile: the robot profile; its ``record_rate_hz`` must be an integer multiple g of the
            checkpoint's action rate (actions are trained every g-th recorded frame).
        checkpoint: folder written by ``MotusPolicy.save_pretrained``, the short name of a
            checkpoint shipped with the package (``aloha_sim_tiny``, found by
            :func:`motus_recorder.share.embedded_checkpoint_dir`), or ``"tiny-random"``.
        device: ``cpu``, ``cuda[:i]`` or ``auto`` (CUDA when available).
        dtype: run precision, ``auto`` (bf16 on CUDA, fp32 on CPU: the official precision),
            ``float32`` or ``bfloat16``. bf16 keeps the time embeddings, AdaLN tables and RoPE
            in fp32 / float64 (``MotusPolicy.to_runtime``) and rounds the sampling grid through
            bf16 as upstream (docs/motus.md §2.2).
        seed: seed of the initial noise; each chunk uses ``seed + chunk index`` so runs are
            reproducible.

    Raises:
        ValueError: empty checkpoint path, an unknown ``dtype``, or an action rate that
            disagrees with the profile.
        FileNotFoundError: the checkpoint folder does not exist / no shipped checkpoint has
            that short name (the message lists the shipped ones).
    """

    def __init__(
        self,
        profile: RobotProfile,
        checkpoint: str,
        device: str = "cpu",
        seed: int = 0,
        dtype: str = "auto",
    ):
        if not checkpoint:
            raise ValueError(
                "motus.checkpoint: expected a checkpoint folder (MotusPolicy.save_pretrained) "
                f"or {TINY_RANDOM!r}, got an empty string"
            )
        if checkpoint != TINY_RANDOM and not Path(checkpoint).is_dir():
            if os.sep in checkpoint or "/" in checkpoint:
                raise FileNotFoundError(f"motus.checkpoint: no checkpoint folder at {checkpoint}")
            # a short name: a checkpoint shipped with the package (installed or source tree)
            checkpoint = str(embedded_checkpoint_dir(checkpoint))
        self.profile = profile
        self.checkpoint = checkpoint
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = device
        from motus_policy.model.modeling_motus import resolve_dtype

        self.dtype = resolve_dtype(dtype, device)  # ValueError on a bad name, before loading
        self.seed = int(seed)
        self.policy = None
        self._chunks = 0

    def _config(self) -> dict:
        """The checkpoint's config.json (clear errors naming the file when missing / corrupt)."""
        from motus_policy.model.pretrained import read_config

        return read_config(self.checkpoint)

    @property
    def action_rate_hz(self) -> float:
        """Action rate of the checkpoint (read from its config.json before loading)."""
        if self.policy is not None:
            return float(self.policy.config.action_rate_hz)
        if self.checkpoint == TINY_RANDOM:
            return self.profile.record_rate_hz
        return float(self._config()["policy"]["action_rate_hz"])

    @property
    def chunk_size(self) -> int:
        """Actions per chunk A (read from the checkpoint's config.json before loading)."""
        if self.policy is not None:
            return int(self.policy.model.config.action_chunk_size)
        from motus_policy.model.configuration_motus import MotusConfig

        if self.checkpoint == TINY_RANDOM:
            return MotusConfig.from_preset("tiny").action_chunk_size
        return MotusConfig.from_dict(self._config()["motus"]).action_chunk_size

    @property
    def qpos_source(self) -> str | None:
        """The checkpoint's training qpos ("command" / "state"), from its config.json.

        None when it does not say (official checkpoints, ours from before the field).
        """
        if self.policy is not None:
            return self.policy.config.qpos_source
        if self.checkpoint == TINY_RANDOM:
            return None
        return self._config()["policy"].get("qpos_source")

    @property
    def recommended_n_action_steps(self) -> int | None:
        """Actions per chunk the checkpoint recommends executing before re-planning.

        From its config.json's ``policy.recommended_n_action_steps`` (readable before loading).
        None when it does not say (official checkpoints, ``tiny-random``, ours from before the
        field); the runtime then executes whole chunks for ``n_action_steps`` 0.
        """
        if self.policy is not None:
            return getattr(self.policy.config, "recommended_n_action_steps", None)
        if self.checkpoint == TINY_RANDOM:
            return None
        return self._config()["policy"].get("recommended_n_action_steps")

    @property
    def video_frame_offsets_ns(self) -> tuple[int, ...]:
        """Frame j (0-based) at ``(j + 1) * r * action period`` (needs load).

        Source: docs/motus.md §3.2.
        """
        if self.policy is None:
            raise RuntimeError("MotusBackend.video_frame_offsets_ns before load()")
        cfg = self.policy.model.config
        period_ns = round(1e9 / self.action_rate_hz)
        r = cfg.video_action_freq_ratio
        return tuple((j + 1) * r * period_ns for j in range(cfg.num_video_frames))

    def load(self, progress: Callable[[str], None] | None = None) -> None:
        """Load the checkpoint and warm up with one prediction on a blank observation."""
        from motus_policy.model.normalization import NormalizationStats
        from motus_policy.model.policy import MotusPolicy, build_tiny_policy

        say = progress or (lambda _msg: None)
        t0 = time.monotonic()
        if self.checkpoint == TINY_RANDOM:
            say("building random-weight tiny Motus (plumbing checks only)")
            stats = NormalizationStats(self.profile.position_min, self.profile.position_max)
            policy = build_tiny_policy(
                seed=self.seed, stats=stats, action_rate_hz=self.profile.record_rate_hz
            )
        else:
            say(f"loading Motus checkpoint {self.checkpoint} on {self.device}")
            policy = MotusPolicy.from_pretrained(self.checkpoint)
        policy.to_runtime(self.device, self.dtype)
        rate = float(policy.config.action_rate_hz)
        stride = self.profile.record_rate_hz / rate
        if rate <= 0 or abs(stride - round(stride)) > 1e-6 or round(stride) < 1:
            raise ValueError(
                f"checkpoint action rate {rate} Hz does not divide profile {self.profile.name}'s "
                f"record_rate_hz {self.profile.record_rate_hz} Hz: actions are trained every g-th "
                "recorded frame (g integer, docs/motus.md §3.2): a checkpoint for another robot"
            )
        self.policy = policy
        say(
            f"Motus loaded in {time.monotonic() - t0:.1f} s ({self.device}, "
            f"{str(self.dtype).removeprefix('torch.')}); warming up"
        )
        blank = Observation(
            images={
                c.name: np.zeros((c.height, c.width, 3), np.uint8) for c in self.profile.cameras
            },
            state=np.clip(np.zeros(14), self.profile.position_min, self.profile.position_max),
            stamp_ns=0,
        )
        self.policy.predict(blank, mode="vla", seed=self.seed)
        say(f"Motus ready (A={self.chunk_size}, {rate:g} Hz) after {time.monotonic() - t0:.1f} s")

    def infer(
        self,
        obs: Observation,
        *,
        mode: str,
        num_steps: int,
        action_prefix: np.ndarray | None,
        instruction: str,
        future_frames: np.ndarray | None = None,
    ) -> ActionChunk:
        """Predict one chunk; see :meth:`PolicyBackend.infer`.

        Frames are decoded only in frame modes (joint / wm / vgm); actions are de-normalised.
        """
        if self.policy is None:
            raise RuntimeError("MotusBackend.infer before load()")
        check_mode(mode)
        if instruction and instruction != obs.instruction:
            obs = dataclasses.replace(obs, instruction=instruction)
        chunk = self.policy.predict(
            obs,
            mode=mode,
            num_steps=num_steps,
            return_frames=mode in FRAME_MODES,
            action_prefix=action_prefix,
            future_frames=future_frames if mode == "idm" else None,
            seed=self.seed + self._chunks,
        )
        self._chunks += 1
        return chunk

    def reset(self) -> None:
        """Restart the noise seed sequence (episode boundary)."""
        self._chunks = 0
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
