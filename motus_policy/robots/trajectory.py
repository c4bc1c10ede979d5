"""The one joint-trajectory core: piecewise-linear knots over int-ns times (ROS-free, numpy).

Every trajectory on the robot side and in the runtime is sampled here: the Piper driver node
and the simulated robot follow ``trajectory_msgs/JointTrajectory`` commands with
:class:`TrajectoryFollower`; the runtime's chunk scheduler upsamples action chunks to the control
rate with :class:`PiecewiseLinear` (positions only, so C0 between knots: velocity jumps at
knots are bounded downstream by the safety gate's per-step clamp).

:class:`TrajectoryFollower` has the semantics of ros2_controllers' joint_trajectory_controller
(``joint_trajectory_controller/src/joint_trajectory_controller.cpp`` and ``trajectory.cpp``)
where they matter to a policy:

- point ``k`` is due at ``start_ns + time_from_start[k]``; a start time of 0 means "now";
- if the first point lies in the future, the arm moves linearly in time from where it is when
  the trajectory arrives (``current``) to that point; if it lies in the past, the elapsed part
  is skipped;
- between points the target is interpolated linearly; after the last point it is held;
- a new trajectory is validated in full (shape, finite values, position limits, non-negative
  and strictly increasing times) *before* it replaces the active one: a rejected trajectory
  leaves the active one running.

Threads: :class:`PiecewiseLinear` is immutable and may be shared; :class:`TrajectoryFollower` is
not thread-safe (its owner serialises ``set`` / ``hold`` / ``sample``: one thread or a lock).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from motus_recorder import schema
from motus_recorder.profile import RobotProfile, check_positions


class PiecewiseLinear:
    """A trajectory through knots ``(stamps_ns[k], values[k])``, linear between them.

    Sampling before the first knot returns the first value; after the last knot, the last value
    (hold). Values are not checked for finiteness (a caller such as the safety gate judges
    them). Immutable after construction; safe to share between threads.

    Args:
        stamps_ns: int (K,) strictly increasing knot times, ns, K >= 1 (stored as int64).
        values: float (K, D) knot values (stored as float64).

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
        """Time of the first knot, ns."""
        return int(self.stamps_ns[0])

    @property
    def end_ns(self) -> int:
        """Time of the last knot (the hold starts here), ns."""
        return int(self.stamps_ns[-1])

    def covers(self, t_ns: int) -> bool:
        """True when ``start_ns <= t_ns <= end_ns``."""
        return self.start_ns <= t_ns <= self.end_ns

    def sample(self, t_ns: int) -> np.ndarray:
        """float64 (D,) value at ``t_ns``: linear between knots, clamped outside.

        With ``s[i-1] <= t < s[i]`` and ``a = (t - s[i-1]) / (s[i] - s[i-1])`` the value is
        ``(1 - a) v[i-1] + a v[i]``.
        """
        s = self.stamps_ns
        if t_ns <= s[0]:
            return self.values[0].copy()
        if t_ns >= s[-1]:
            return self.values[-1].copy()
        i = int(np.searchsorted(s, t_ns, side="right"))  # s[i-1] <= t < s[i]
        a = (t_ns - s[i - 1]) / float(s[i] - s[i - 1])
        return (1.0 - a) * self.values[i - 1] + a * self.values[i]

    def sample_many(self, t_ns: np.ndarray) -> np.ndarray:
        """float64 (N, D) values at each of ``t_ns`` int (N,) (``np.interp`` per dimension).

        Equal to :meth:`sample` at each time up to floating-point rounding.
        """
        t = np.asarray(t_ns, dtype=np.int64)
        return np.stack(
            [np.interp(t, self.stamps_ns, self.values[:, j]) for j in range(self.values.shape[1])],
            axis=1,
        )


class TrajectoryFollower:
    """Holds at most one active trajectory of a joint group and samples it (JTC semantics).

    Args:
        names: the n joint names, in the order of every position vector (used in errors).
        lower: float (n,) lower position limits; None = no limits (only finiteness checked).
        upper: float (n,) upper position limits; None = no limits.
        label: prefix of error messages (e.g. the arm, ``"left"``); may be empty.
        error: the ValueError subclass raised for a rejected trajectory or hold target.
        initial: float (n,) position held until the first trajectory; None = no trajectory
            (:meth:`sample` returns None).

    Raises:
        ValueError: limits of the wrong shape; (or ``error``) an invalid ``initial``.
    """

    def __init__(
        self,
        names: Sequence[str],
        lower: np.ndarray | None = None,
        upper: np.ndarray | None = None,
        *,
        label: str = "",
        error: type[ValueError] = ValueError,
        initial: np.ndarray | None = None,
    ):
        self.names = tuple(names)
        n = len(self.names)
        self._lower = np.full(n, -np.inf) if lower is None else np.asarray(lower, np.float64)
        self._upper = np.full(n, np.inf) if upper is None else np.asarray(upper, np.float64)
        if self._lower.shape != (n,) or self._upper.shape != (n,):
            raise ValueError(
                f"limits: expected shape ({n},) for {n} names, got {self._lower.shape} and "
                f"{self._upper.shape}"
            )
        self._prefix = f"{label} " if label else ""
        self._error = error
        self._plan: PiecewiseLinear | None = None
        if initial is not None:
            self._plan = self._hold_plan(initial, f"{self._prefix}initial target")

    @classmethod
    def for_arm(
        cls,
        profile: RobotProfile,
        arm: str,
        *,
        error: type[ValueError] = ValueError,
        initial: np.ndarray | None = None,
    ) -> TrajectoryFollower:
        """A follower of one arm's 7 values (6 joints, then the gripper) within its limits.

        Names from :attr:`ArmProfile.joint_state_names`, limits from the profile's
        ``position_min`` / ``position_max`` (rad; gripper in the profile unit); errors are
        prefixed with the arm name.

        Raises:
            KeyError: unknown arm.
        """
        sl = schema.ARM_SLICES[arm]
        return cls(
            profile.arm(arm).joint_state_names,
            profile.position_min[sl],
            profile.position_max[sl],
            label=arm,
            error=error,
            initial=initial,
        )

    @property
    def active(self) -> bool:
        """True while a trajectory (or held position) is loaded, until :meth:`clear`."""
        return self._plan is not None

    @property
    def trajectory(self) -> PiecewiseLinear | None:
        """The active trajectory's knots (the start knot from ``current`` included), or None."""
        return self._plan

    @property
    def end_ns(self) -> int | None:
        """Time of the last point (the hold starts here), ns; None without a trajectory."""
        return None if self._plan is None else self._plan.end_ns

    def clear(self) -> None:
        """Drop the active trajectory (:meth:`sample` returns None until the next one)."""
        self._plan = None

    def _check(self, q: np.ndarray, what: str) -> np.ndarray:
        return check_positions(q, self.names, self._lower, self._upper, what, error=self._error)

    def _hold_plan(self, position: np.ndarray, what: str) -> PiecewiseLinear:
        q = self._check(position, what)
        return PiecewiseLinear(np.zeros(1, dtype=np.int64), q.reshape(1, -1).copy())

    def hold(self, position: np.ndarray) -> None:
        """Replace any trajectory by holding ``position`` float (n,) from now on.

        Raises:
            ValueError: (or ``error``) wrong shape, non-finite or outside the limits; the
                active trajectory stays.
        """
        self._plan = self._hold_plan(position, f"{self._prefix}hold target")

    def validate(self, offsets_ns: np.ndarray, positions: np.ndarray) -> tuple[np.ndarray, ...]:
        """Check a trajectory's points without loading it.

        Args:
            offsets_ns: int (K,) ``time_from_start`` of each point, ns: K >= 1, >= 0, strictly
                increasing.
            positions: float (K, n) targets: finite and inside the limits.

        Returns:
            ``(offsets_ns, positions)`` as int64 (K,) and a float64 (K, n) copy.

        Raises:
            ValueError: (or ``error``) no point, a shape mismatch, a negative or non-increasing
                time, or a non-finite / out-of-limit position; the message names the point
                (and for positions the joint, value and limits).
        """
        what = f"{self._prefix}trajectory"
        err = self._error
        t = np.asarray(offsets_ns)
        n = len(self.names)
        if t.ndim != 1 or t.size == 0:
            raise err(f"{what}: expected at least one point (K >= 1), got times {t.shape}")
        p = np.array(positions, dtype=np.float64)
        if p.shape != (t.size, n):
            raise err(
                f"{what}: expected positions of shape ({t.size}, {n}) for {t.size} times, "
                f"got {p.shape}"
            )
        t = t.astype(np.int64)
        if (t < 0).any():
            i = int(np.argmax(t < 0))
            raise err(f"{what}: point {i} has negative time_from_start {t[i]} ns")
        if t.size > 1 and (np.diff(t) <= 0).any():
            i = int(np.argmax(np.diff(t) <= 0)) + 1
            raise err(
                f"{what}: time_from_start must increase strictly; point {i} at {t[i]} ns "
                f"follows {t[i - 1]} ns"
            )
        for k in range(t.size):
            self._check(p[k], f"{what} point {k}")
        return t, p

    def set(
        self,
        start_ns: int,
        offsets_ns: np.ndarray,
        positions: np.ndarray,
        now_ns: int,
        current: np.ndarray,
    ) -> None:
        """Validate a trajectory, then make it the active one.

        Args:
            start_ns: trajectory start time (the message's header stamp), ns; 0 (or less)
                means ``now_ns``.
            offsets_ns: int (K,) ``time_from_start`` of each point, ns (see :meth:`validate`).
            positions: float (K, n) targets (rad; grippers in their unit).
            now_ns: current time, ns.
            current: float (n,) where the joints are now: the start of the first segment when
                the first point lies in the future (then checked like a point).

        Raises:
            ValueError: (or ``error``) see :meth:`validate`; also a non-finite / out-of-limit
                ``current`` when it is used. The active trajectory stays.
        """
        t, p = self.validate(offsets_ns, positions)
        t0 = int(start_ns) if start_ns > 0 else int(now_ns)
        times = t0 + t
        if times[0] > now_ns:  # start from the current position
            cur = self._check(current, f"{self._prefix}current position")
            times = np.concatenate([[int(now_ns)], times])
            p = np.vstack([cur, p])
        self._plan = PiecewiseLinear(times, p)

    def sample(self, now_ns: int) -> np.ndarray | None:
        """float64 (n,) target due at ``now_ns`` (the last point after the end); None if none."""
        return None if self._plan is None else self._plan.sample(now_ns)

    def finished(self, now_ns: int) -> bool:
        """True when there is no trajectory or ``now_ns`` is at or past its last point."""
        return self._plan is None or now_ns >= self._plan.end_ns
