"""Linear interpolation of a time-stamped joint trajectory (ROS-free).

Semantics follow ``trajectory_msgs/JointTrajectory`` as ros2_controllers'
joint_trajectory_controller reads it (anchors.md §2.6): point ``k`` is due at
``start_ns + time_from_start[k]``; the arm moves linearly from where it was when the trajectory
arrived to the first point, between points, and holds the last point afterwards. A new trajectory
replaces the old one.

Threads: not thread-safe; the owner serialises ``set`` and ``sample`` (one executor thread).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TrajectoryPlan:
    """Knots ``times_ns`` int64 (K,) strictly increasing, ``positions`` float64 (K, n)."""

    times_ns: np.ndarray
    positions: np.ndarray


class TrajectoryInterpolator:
    """Holds at most one trajectory and samples it at any time."""

    def __init__(self) -> None:
        self._plan: TrajectoryPlan | None = None

    @property
    def active(self) -> bool:
        """True while a trajectory is held (until :meth:`clear`)."""
        return self._plan is not None

    def clear(self) -> None:
        """Drop the current trajectory."""
        self._plan = None

    def set(
        self,
        start_ns: int,
        offsets_ns: np.ndarray,
        positions: np.ndarray,
        now_ns: int,
        current: np.ndarray,
    ) -> None:
        """Load a trajectory.

        Args:
            start_ns: trajectory start time (header stamp; 0 means ``now_ns``).
            offsets_ns: int (K,) time_from_start of each point, strictly increasing, >= 0.
            positions: float (K, n) targets, all finite.
            now_ns: current time.
            current: float (n,) position the arm is at now (interpolation starts here).

        Raises:
            ValueError: empty, non-increasing times, NaN/inf, or shape mismatch.
        """
        offsets = np.asarray(offsets_ns, dtype=np.int64)
        pos = np.asarray(positions, dtype=np.float64)
        cur = np.asarray(current, dtype=np.float64)
        if pos.ndim != 2 or pos.shape[0] == 0 or offsets.shape != (pos.shape[0],):
            raise ValueError(
                f"expected K >= 1 points with K times, got positions {pos.shape} "
                f"and times {offsets.shape}"
            )
        if cur.shape != (pos.shape[1],):
            raise ValueError(f"current position has shape {cur.shape}, expected ({pos.shape[1]},)")
        if not np.all(np.isfinite(pos)):
            raise ValueError("trajectory positions contain NaN or inf")
        if offsets[0] < 0 or np.any(np.diff(offsets) <= 0):
            raise ValueError(
                f"time_from_start must be >= 0 and strictly increasing, got {offsets.tolist()}"
            )
        t0 = int(start_ns) if start_ns > 0 else int(now_ns)
        times = t0 + offsets
        if times[0] > now_ns:  # start from the current position, JTC-style
            times = np.concatenate([[now_ns], times])
            pos = np.vstack([cur, pos])
        self._plan = TrajectoryPlan(times_ns=times, positions=pos)

    def sample(self, now_ns: int) -> np.ndarray | None:
        """Position (n,) due at ``now_ns``; the last point after the end; None if no trajectory."""
        plan = self._plan
        if plan is None:
            return None
        t = plan.times_ns
        if now_ns <= t[0]:
            return plan.positions[0].copy()
        if now_ns >= t[-1]:
            return plan.positions[-1].copy()
        k = int(np.searchsorted(t, now_ns, side="right")) - 1
        w = (now_ns - t[k]) / float(t[k + 1] - t[k])
        return (1.0 - w) * plan.positions[k] + w * plan.positions[k + 1]

    def finished(self, now_ns: int) -> bool:
        """True when there is no trajectory or ``now_ns`` is past its last point."""
        return self._plan is None or now_ns >= self._plan.times_ns[-1]
