"""Piecewise-linear trajectories over int-ns stamps: upsample action chunks to the control rate.

Positions-only chunks are interpolated linearly between action stamps (C0, like
joint_trajectory_controller with positions only, house-style Anchor 6; LeRobot's
``ActionInterpolator``). Velocity jumps at knots are bounded downstream by the safety gate's
per-step clamp.
"""

from __future__ import annotations

import numpy as np


class PiecewiseLinear:
    """A trajectory through knots ``(stamps_ns[k], values[k])``.

    Sampling before the first knot returns the first value; after the last knot, the last value
    (hold). Immutable after construction; safe to share between threads.

    Args:
        stamps_ns: int64 (K,) strictly increasing knot times, K >= 1.
        values: float (K, D) knot values.

    Raises:
        ValueError: shapes disagree, K == 0, or stamps are not strictly increasing.
    """

    def __init__(self, stamps_ns: np.ndarray, values: np.ndarray):
        stamps = np.asarray(stamps_ns, dtype=np.int64)
        vals = np.asarray(values, dtype=np.float64)
        if stamps.ndim != 1 or stamps.size == 0 or vals.ndim != 2 or vals.shape[0] != stamps.size:
            raise ValueError(
                f"expected stamps (K,) and values (K, D) with K >= 1, got {stamps.shape} "
                f"and {vals.shape}"
            )
        if np.any(np.diff(stamps) <= 0):
            raise ValueError(f"stamps must be strictly increasing, got {stamps.tolist()}")
        self.stamps_ns = stamps
        self.values = vals

    @property
    def start_ns(self) -> int:
        """Time of the first knot."""
        return int(self.stamps_ns[0])

    @property
    def end_ns(self) -> int:
        """Time of the last knot."""
        return int(self.stamps_ns[-1])

    def covers(self, t_ns: int) -> bool:
        """True when ``start_ns <= t_ns <= end_ns``."""
        return self.start_ns <= t_ns <= self.end_ns

    def sample(self, t_ns: int) -> np.ndarray:
        """float64 (D,) value at ``t_ns`` (linear between knots, clamped outside)."""
        s = self.stamps_ns
        if t_ns <= s[0]:
            return self.values[0].copy()
        if t_ns >= s[-1]:
            return self.values[-1].copy()
        i = int(np.searchsorted(s, t_ns, side="right"))  # s[i-1] <= t < s[i]
        a = (t_ns - s[i - 1]) / float(s[i] - s[i - 1])
        return (1.0 - a) * self.values[i - 1] + a * self.values[i]

    def sample_many(self, t_ns: np.ndarray) -> np.ndarray:
        """float64 (N, D) values at each of ``t_ns`` (N,)."""
        t = np.asarray(t_ns, dtype=np.int64)
        return np.stack(
            [np.interp(t, self.stamps_ns, self.values[:, j]) for j in range(self.values.shape[1])],
            axis=1,
        )
