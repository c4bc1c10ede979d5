"""Command validation shared by the simulated robot and its trajectory follower.

A command is a joint-position target: the full 14-D vector (layout in
:mod:`motus_recorder.schema`) or one arm's 7 values (6 joints in rad, then the gripper in the
profile's unit). Every command is checked *before* it is applied; a rejected command is never
applied, and the error names the joint, the value and the limits.
"""

from __future__ import annotations

import numpy as np

from motus_recorder import schema
from motus_recorder.profile import RobotProfile


class CommandRejected(ValueError):  # noqa: N818 - the agreed interface name
    """A joint command is malformed, non-finite or outside the profile's position limits."""


def arm_joint_names(profile: RobotProfile, arm: str) -> tuple[str, ...]:
    """The 7 names of one arm (6 joints, then the gripper), as in its JointState messages."""
    a = profile.arm(arm)
    return (*a.joint_names, a.gripper.joint_name)


def check_arm_vector(
    profile: RobotProfile, arm: str, q: np.ndarray, what: str = "command"
) -> None:
    """Raise :class:`CommandRejected` unless ``q`` is a finite (7,) vector inside the limits.

    Args:
        profile: robot profile giving names and position limits.
        arm: ``left`` or ``right``.
        q: float (7,): 6 joint positions (rad) then the gripper (profile unit).
        what: prefix for the error message (e.g. ``"left JointState command"``).

    Raises:
        CommandRejected: wrong shape, a NaN/Inf value or a value outside
            ``[position_min, position_max]``; the message names the first offending joint.
    """
    q = np.asarray(q, dtype=np.float64)
    n = schema.ARM_JOINTS + 1
    if q.shape != (n,):
        raise CommandRejected(f"{what}: expected {n} values for arm {arm!r}, got shape {q.shape}")
    sl = schema.ARM_SLICES[arm]
    names = arm_joint_names(profile, arm)
    lo, hi = profile.position_min[sl], profile.position_max[sl]
    bad = ~np.isfinite(q)
    if bad.any():
        i = int(np.argmax(bad))
        raise CommandRejected(f"{what}: {names[i]} is {q[i]} (not finite)")
    out = (q < lo) | (q > hi)
    if out.any():
        i = int(np.argmax(out))
        raise CommandRejected(
            f"{what}: {names[i]} = {q[i]:.4f} outside limits [{lo[i]:.4f}, {hi[i]:.4f}]"
        )


def check_joint_vector(profile: RobotProfile, q: np.ndarray, what: str = "command") -> None:
    """Raise :class:`CommandRejected` unless ``q`` is a finite (14,) vector inside the limits.

    Wraps :meth:`RobotProfile.check_joint_vector` (same message: joint name, index, value,
    limits) so that callers can catch one error type for every command check.
    """
    try:
        profile.check_joint_vector(np.asarray(q, dtype=np.float64), what=what)
    except ValueError as exc:
        raise CommandRejected(str(exc)) from None
