"""Command validation of the simulated robot: the profile's checks with its own error type.

A command is a joint-position target: the full 14-D vector (layout in
:mod:`motus_recorder.schema`) or one arm's 7 values (6 joints in rad, then the gripper in the
profile's unit). Every command is checked *before* it is applied; a rejected command is never
applied, and the error names the joint, the value and the limits. The check itself is
:func:`motus_recorder.profile.check_positions`; this module only picks the error type.
"""

from __future__ import annotations

import numpy as np

from motus_recorder.profile import RobotProfile


class CommandRejected(ValueError):  # noqa: N818 - the agreed interface name
    """A joint command is malformed, non-finite or outside the profile's position limits."""


def check_arm_vector(
    profile: RobotProfile, arm: str, q: np.ndarray, what: str = "command"
) -> np.ndarray:
    """:meth:`RobotProfile.check_arm_vector` raising :class:`CommandRejected`.

    Args:
        profile: robot profile giving names and position limits.
        arm: ``left`` or ``right``.
        q: float (7,): 6 joint positions (rad) then the gripper (profile unit).
        what: prefix for the error message (e.g. ``"left hold target"``).

    Returns:
        ``q`` as float64 (7,).

    Raises:
        CommandRejected: wrong shape, a NaN/Inf value or a value outside
            ``[position_min, position_max]``; the message names the first offending joint.
    """
    return profile.check_arm_vector(arm, q, what, error=CommandRejected)


def check_joint_vector(profile: RobotProfile, q: np.ndarray, what: str = "command") -> np.ndarray:
    """:meth:`RobotProfile.check_joint_vector` raising :class:`CommandRejected`.

    Args:
        profile: robot profile giving names and position limits.
        q: float (14,) in the 14-D layout.
        what: prefix for the error message (e.g. ``"joint command"``).

    Returns:
        ``q`` as float64 (14,).

    Raises:
        CommandRejected: wrong shape, a NaN/Inf value or a value outside the limits; the
            message names the joint, its 14-D index, the value and the limits.
    """
    return profile.check_joint_vector(q, what, error=CommandRejected)
