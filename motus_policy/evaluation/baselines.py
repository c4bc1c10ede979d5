"""Baseline policies for replay: deterministic :class:`~motus_policy.backends.base.PolicyBackend`.

Fakes at the model boundary only: their predictions can be computed by hand, so replay metrics can
be asserted exactly. ``hold`` repeats the observed state (the "do nothing" baseline every policy
must beat); ``constant_velocity`` extrapolates the state at a constant per-joint velocity.

Frames: a baseline predicts none by default, in every mode, so a replay without a model scores
actions only and runs well above real time (issue #15 §9). With ``copy_frames=True`` it
"imagines" the observation's T-layout composite unchanged in frame modes: the copy-last-frame
reference against which a model's predicted frames (PSNR / SSIM) are judged. Scoring those copies
costs about 1.5-2.5 ms per frame on a 2-core CPU (benchmarks/README.md, replay.py), i.e. 3.2
frames per 33 ms tick with the 48-action / 4-frame chunk.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from motus_policy.backends.base import FRAME_MODES, check_mode
from motus_policy.types import ActionChunk, Observation
from motus_recorder import schema
from motus_recorder.composite import compose_t_layout


class HoldBaseline:
    """Every action = the observed state; frames (opt-in) = the observed composite.

    Args:
        chunk_size: A, actions per chunk (>= 1).
        action_rate_hz: action rate (> 0).
        frames_per_chunk: F predicted frames in frame modes with ``copy_frames``, due at
            ``t0 + (j + 1) * (A // F) * period`` (1 <= F <= A).
        copy_frames: in frame modes, return F copies of the observation's composite (the
            copy-last-frame reference); False (default): no frames in any mode.

    Raises:
        ValueError: an argument out of its range.
    """

    def __init__(
        self,
        chunk_size: int = 48,
        action_rate_hz: float = 30.0,
        frames_per_chunk: int = 4,
        copy_frames: bool = False,
    ):
        if chunk_size < 1:
            raise ValueError(f"chunk_size: expected >= 1, got {chunk_size}")
        if action_rate_hz <= 0:
            raise ValueError(f"action_rate_hz: expected > 0, got {action_rate_hz}")
        if not 1 <= frames_per_chunk <= chunk_size:
            raise ValueError(f"frames_per_chunk: expected 1..{chunk_size}, got {frames_per_chunk}")
        self._a = int(chunk_size)
        self._rate = float(action_rate_hz)
        self._f = int(frames_per_chunk)
        self.copy_frames = bool(copy_frames)
        self.calls = 0
        self.last_future_frames: np.ndarray | None = None

    @property
    def action_rate_hz(self) -> float:
        """Action rate, Hz."""
        return self._rate

    @property
    def chunk_size(self) -> int:
        """A."""
        return self._a

    def load(self, progress: Callable[[str], None] | None = None) -> None:
        """Nothing to load."""
        if progress:
            progress(f"{type(self).__name__}: no weights")

    def reset(self) -> None:
        """Nothing to forget."""

    def _actions(self, obs: Observation, period_s: float) -> np.ndarray:
        return np.repeat(obs.state[None, :].astype(np.float32), self._a, axis=0)

    @property
    def video_frame_offsets_ns(self) -> tuple[int, ...]:
        """Frame j (0-based) at ``(j + 1) * (A // F) * period`` after the observation."""
        period_ns = round(1e9 / self._rate)
        stride = self._a // self._f
        return tuple((j + 1) * stride * period_ns for j in range(self._f))

    def infer(
        self, obs, *, mode, num_steps, action_prefix, instruction, future_frames=None
    ) -> ActionChunk:
        """Deterministic chunk from ``obs`` (see the class docstring).

        ``future_frames`` (idm) are kept in :attr:`last_future_frames` and otherwise ignored.
        """
        check_mode(mode)
        self.calls += 1
        self.last_future_frames = future_frames
        period_ns = round(1e9 / self._rate)
        actions = self._actions(obs, period_ns / 1e9)
        if action_prefix is not None:
            actions[: len(action_prefix)] = action_prefix
        frames = stamps = None
        if mode in FRAME_MODES and self.copy_frames:
            comp = compose_t_layout(*(obs.images[c] for c in schema.CAMERA_NAMES))
            frames = np.repeat(comp[None], self._f, axis=0)
            stride = self._a // self._f
            stamps = tuple(obs.stamp_ns + (j + 1) * stride * period_ns for j in range(self._f))
        return ActionChunk(actions, obs.stamp_ns, period_ns, frames, stamps)


class ConstantVelocityBaseline(HoldBaseline):
    """Action k = state + velocity * (k + 1) * period: constant-velocity extrapolation.

    Args:
        velocity_per_s: float (14,) per-joint velocity (rad/s; gripper unit/s); default zeros.
        **kwargs: as :class:`HoldBaseline`.
    """

    def __init__(self, velocity_per_s: np.ndarray | None = None, **kwargs):
        super().__init__(**kwargs)
        v = np.zeros(schema.STATE_DIM) if velocity_per_s is None else np.asarray(velocity_per_s)
        if v.shape != (schema.STATE_DIM,) or not np.all(np.isfinite(v)):
            raise ValueError(f"velocity_per_s: expected finite (14,), got {v}")
        self.velocity_per_s = v.astype(np.float64)

    def _actions(self, obs: Observation, period_s: float) -> np.ndarray:
        k = np.arange(1, self._a + 1, dtype=np.float64)[:, None]
        return (obs.state[None, :] + self.velocity_per_s[None, :] * k * period_s).astype(
            np.float32
        )
