"""Follow one arm's JointTrajectory command by linear interpolation (ROS-free).

Semantics follow ros2_control's joint_trajectory_controller where they matter to a policy:

- each point's ``time_from_start`` is relative to the trajectory's start time (the message's
  ``header.stamp``; a zero stamp means "start now", which the node resolves before calling us);
- if the first point lies in the future, the arm moves from where it is at load time to that
  point, linearly in time;
- between points the target is interpolated linearly, sampled at each physics step;
- after the last point the last point is held until a new trajectory arrives;
- a new trajectory replaces the old one at once.

Every trajectory is validated in full before it replaces the current one (strictly increasing,
non-negative times; finite positions inside the profile limits); a rejected trajectory leaves the
current one in force.

Threading: not thread-safe; call from one thread (the simulator's stepping thread) or under a lock.
"""

from __future__ import annotations

import numpy as np

from motus_policy.robots.aloha_sim.commands import CommandRejected, check_arm_vector
from motus_recorder import schema
from motus_recorder.profile import RobotProfile


class TrajectoryFollower:
    """Linear-interpolating follower for one arm (6 joints + gripper, 7 values).

    Args:
        profile: robot profile (joint names and position limits).
        arm: ``left`` or ``right``.
        initial: float (7,) target held until the first trajectory (e.g. the current pose).

    Raises:
        CommandRejected: ``initial`` is not a valid arm vector.
    """

    def __init__(self, profile: RobotProfile, arm: str, initial: np.ndarray):
        self.profile = profile
        self.arm = arm
        initial = np.asarray(initial, dtype=np.float64)
        check_arm_vector(profile, arm, initial, what=f"{arm} initial target")
        self._times_ns = np.zeros(1, dtype=np.int64)
        self._points = initial.reshape(1, -1).copy()

    def hold(self, position: np.ndarray) -> None:
        """Drop any trajectory and hold ``position`` (7,); raises CommandRejected if invalid."""
        position = np.asarray(position, dtype=np.float64)
        check_arm_vector(self.profile, self.arm, position, what=f"{self.arm} hold target")
        self._times_ns = np.zeros(1, dtype=np.int64)
        self._points = position.reshape(1, -1).copy()

    def load(
        self,
        times_from_start_ns: np.ndarray,
        positions: np.ndarray,
        start_ns: int,
        now_ns: int,
        current: np.ndarray,
    ) -> None:
        """Validate and start a trajectory.

        Args:
            times_from_start_ns: int (K,) point times relative to ``start_ns``, ns, K >= 1,
                strictly increasing, >= 0.
            positions: float (K, 7) targets (rad; gripper in the profile unit).
            start_ns: absolute start time (the message stamp, or ``now_ns`` for stamp 0), ns.
            now_ns: current (sim) time, ns.
            current: float (7,) where the arm is now; the start of the first segment when the
                first point lies in the future.

        Raises:
            CommandRejected: empty trajectory, shape mismatch, non-increasing or negative
                times, or a non-finite / out-of-limit position (the message names the point and
                the joint). The current trajectory stays in force.
        """
        what = f"{self.arm} trajectory"
        t = np.asarray(times_from_start_ns)
        p = np.asarray(positions, dtype=np.float64)
        n = schema.ARM_JOINTS + 1
        if t.ndim != 1 or t.size == 0:
            raise CommandRejected(f"{what}: expected at least one point, got {t.size}")
        if p.shape != (t.size, n):
            raise CommandRejected(
                f"{what}: expected positions of shape ({t.size}, {n}), got {p.shape}"
            )
        t = t.astype(np.int64)
        if (t < 0).any():
            i = int(np.argmax(t < 0))
            raise CommandRejected(f"{what}: point {i} has negative time_from_start {t[i]} ns")
        if t.size > 1 and (np.diff(t) <= 0).any():
            i = int(np.argmax(np.diff(t) <= 0)) + 1
            raise CommandRejected(
                f"{what}: time_from_start must increase strictly; point {i} at {t[i]} ns "
                f"follows {t[i - 1]} ns"
            )
        for k in range(t.size):
            check_arm_vector(self.profile, self.arm, p[k], what=f"{what} point {k}")
        abs_t = int(start_ns) + t
        if abs_t[0] > now_ns:
            cur = np.asarray(current, dtype=np.float64)
            check_arm_vector(self.profile, self.arm, cur, what=f"{self.arm} current position")
            abs_t = np.concatenate([[int(now_ns)], abs_t])
            p = np.vstack([cur, p])
        self._times_ns = abs_t
        self._points = p.copy()

    def sample(self, now_ns: int) -> np.ndarray:
        """Target at ``now_ns``: float (7,), interpolated linearly, clamped to the ends."""
        t = self._times_ns
        if now_ns <= t[0]:
            return self._points[0].copy()
        if now_ns >= t[-1]:
            return self._points[-1].copy()
        k = int(np.searchsorted(t, now_ns, side="right"))  # t[k-1] <= now < t[k]
        a = (now_ns - t[k - 1]) / float(t[k] - t[k - 1])
        return (1.0 - a) * self._points[k - 1] + a * self._points[k]

    @property
    def end_ns(self) -> int:
        """Time of the last point (the hold starts here), ns."""
        return int(self._times_ns[-1])
