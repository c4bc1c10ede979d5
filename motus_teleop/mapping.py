"""Leader -> follower joint mapping for teleoperation (ROS-free, numpy, injected clock).

Per step, for one arm's vector of ``n`` values (joints then gripper, 14-D layout order):

1. joints: ``y = scale * leader + offset``; grippers: linear map of the leader range
   ``[leader_gripper_min, leader_gripper_max]`` onto the follower range, clamped;
2. clamp to the follower's position limits (the robot profile);
3. rate limit: move at most ``velocity_max * dt`` from the last output (``dt`` = time since the
   last step), the same implicit velocity cap the AgileX inference scripts apply per 200 Hz step
   (agilexrobotics/aloha-agilex ``act/aloha_inference-ros2.py``);
4. hold: while the deadman is released, the leader stream is older than ``stale_timeout_s``, or
   no leader sample has arrived, the last output is repeated (never extrapolated).

The rate limiter starts from the follower's *measured* position (:meth:`TeleopMapper.seed`), so
engaging teleop with the leader far from the follower moves the follower there at the speed
limit instead of jumping. No output is produced before a seed.

Threads: not thread-safe; the owner serialises calls (one executor thread).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from motus_recorder.schema import NS_PER_S


@dataclass
class TeleopMappingConfig:
    """Mapping of one arm (``n`` = joints + gripper values).

    Attributes:
        scale / offset: per-value joint mapping ``y = scale * x + offset`` (gripper entries are
            ignored: the gripper uses the range mapping).
        position_min / position_max: follower limits (rad; gripper in its profile unit).
        velocity_max_per_s: follower speed limits per value (unit/s), > 0.
        gripper_index: index of the gripper value in the vector, or -1 for none.
        leader_gripper_min / leader_gripper_max: leader gripper range (leader unit), min != max.
        stale_timeout_s: hold when the newest leader sample is older than this (s), > 0.
    """

    scale: tuple[float, ...]
    offset: tuple[float, ...]
    position_min: tuple[float, ...]
    position_max: tuple[float, ...]
    velocity_max_per_s: tuple[float, ...]
    gripper_index: int = -1
    leader_gripper_min: float = 0.0
    leader_gripper_max: float = 1.0
    stale_timeout_s: float = 0.1

    def __post_init__(self):
        fields = ("scale", "offset", "position_min", "position_max", "velocity_max_per_s")
        n = len(self.scale)
        for name in fields:
            value = tuple(float(v) for v in getattr(self, name))
            setattr(self, name, value)
            if len(value) != n or n == 0:
                raise ValueError(f"{name} must have {n} (> 0) entries like scale, got {value!r}")
            if not all(math.isfinite(v) for v in value):
                raise ValueError(f"{name} must be finite, got {value!r}")
        if any(lo >= hi for lo, hi in zip(self.position_min, self.position_max, strict=True)):
            raise ValueError(
                f"position_min must be < position_max, got {self.position_min} / "
                f"{self.position_max}"
            )
        if any(v <= 0 for v in self.velocity_max_per_s):
            raise ValueError(f"velocity_max_per_s must be > 0, got {self.velocity_max_per_s!r}")
        if not -1 <= self.gripper_index < n:
            raise ValueError(f"gripper_index must be -1 or in [0, {n}), got {self.gripper_index}")
        if self.leader_gripper_min == self.leader_gripper_max:
            raise ValueError(
                "leader_gripper_min and leader_gripper_max must differ, both are "
                f"{self.leader_gripper_min!r}"
            )
        if not (math.isfinite(self.stale_timeout_s) and self.stale_timeout_s > 0):
            raise ValueError(f"stale_timeout_s must be > 0, got {self.stale_timeout_s!r}")

    @property
    def size(self) -> int:
        """Number of values ``n``."""
        return len(self.scale)


@dataclass(frozen=True)
class TeleopOutput:
    """One step's result: ``command`` float64 (n,) or None, ``holding`` and why, step time."""

    command: np.ndarray | None
    holding: bool
    reason: str
    stamp_ns: int


class TeleopMapper:
    """Maps a leader stream to rate-limited, clamped follower commands for one arm."""

    def __init__(self, config: TeleopMappingConfig, clock: Callable[[], int]):
        self.config = config
        self._clock = clock
        c = config
        self._scale, self._offset = np.array(c.scale), np.array(c.offset)
        self._lo, self._hi = np.array(c.position_min), np.array(c.position_max)
        self._vmax = np.array(c.velocity_max_per_s)
        self._leader: np.ndarray | None = None
        self._leader_ns = 0
        self._last: np.ndarray | None = None
        self._last_ns = 0
        self._hold = False

    def map(self, leader: np.ndarray) -> np.ndarray:
        """Steps 1-2 only (offset/scale or gripper range, then clamp), float64 (n,)."""
        c = self.config
        y = self._scale * leader + self._offset
        g = c.gripper_index
        if g >= 0:
            frac = (leader[g] - c.leader_gripper_min) / (
                c.leader_gripper_max - c.leader_gripper_min
            )
            y[g] = self._lo[g] + float(np.clip(frac, 0.0, 1.0)) * (self._hi[g] - self._lo[g])
        return np.clip(y, self._lo, self._hi)

    def update_leader(self, leader: np.ndarray) -> None:
        """Store the newest leader sample (receive time = now).

        Raises:
            ValueError: wrong shape or NaN/inf (the sample is dropped; staleness then holds).
        """
        x = np.asarray(leader, dtype=np.float64)
        if x.shape != (self.config.size,):
            raise ValueError(f"leader sample must have shape ({self.config.size},), got {x.shape}")
        if not np.all(np.isfinite(x)):
            raise ValueError(f"leader sample contains NaN/inf: {x.tolist()}")
        self._leader, self._leader_ns = x, self._clock()

    def seed(self, follower: np.ndarray) -> None:
        """Start the rate limiter from the follower's measured position (n,) if not yet seeded."""
        if self._last is None:
            y = np.asarray(follower, dtype=np.float64)
            if y.shape != (self.config.size,) or not np.all(np.isfinite(y)):
                raise ValueError(
                    f"follower position must be finite ({self.config.size},), got {y}"
                )
            self._last, self._last_ns = np.clip(y, self._lo, self._hi), self._clock()

    def reseed(self, follower: np.ndarray) -> None:
        """Restart the rate limiter from ``follower`` (n,).

        For a follower that was moved while teleop held (a reset in simulation). Raises
        ValueError like :meth:`seed`.
        """
        self._last = None
        self.seed(follower)

    @property
    def seeded(self) -> bool:
        """True once :meth:`seed` has given a starting position."""
        return self._last is not None

    @property
    def has_leader(self) -> bool:
        """True once :meth:`update_leader` has stored a sample."""
        return self._leader is not None

    def set_hold(self, hold: bool) -> None:
        """Deadman: True holds the last output (released), False follows the leader again."""
        self._hold = bool(hold)

    def step(self) -> TeleopOutput:
        """Compute the command due now (see the module docstring for the steps)."""
        now = self._clock()
        if self._last is None:
            return TeleopOutput(None, True, "waiting for the follower position (seed)", now)
        dt = max(now - self._last_ns, 0) / NS_PER_S
        self._last_ns = now
        reason = ""
        if self._hold:
            reason = "hold requested (deadman released)"
        elif self._leader is None:
            reason = "no leader sample yet"
        elif now - self._leader_ns > self.config.stale_timeout_s * NS_PER_S:
            age = (now - self._leader_ns) / NS_PER_S
            reason = f"leader stale ({age:.3f} s > {self.config.stale_timeout_s} s)"
        if reason:
            return TeleopOutput(self._last.copy(), True, reason, now)
        target = self.map(self._leader)
        limit = self._vmax * dt
        self._last = self._last + np.clip(target - self._last, -limit, limit)
        return TeleopOutput(self._last.copy(), False, "following", now)
