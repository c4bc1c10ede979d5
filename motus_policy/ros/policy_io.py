"""Message conversion for the policy node: inputs, commands, trajectories, status, diagnostics.

Command layouts (profile ``command_interface``, motus_recorder/profile.py): ``joint_state`` — one
JointState per arm (6 joints + gripper); ``joint_trajectory`` — one JointTrajectory per arm naming
the 7 joints; ``joint_trajectory_controller`` — the ros2_control layout: the JointTrajectory names
only the 6 arm joints (what a ``joint_trajectory_controller`` configured for the arm joints
accepts; it rejects a trajectory naming a joint it does not own) and the gripper goes as
std_msgs/Float64MultiArray ``[position]`` to the arm's ``gripper_command_topic`` (a
``forward_command_controller`` / ``position_controllers/JointGroupPositionController``
``~/commands`` topic). The FollowJointTrajectory / GripperCommand actions are not offered:
``control_msgs`` is not installable from PyPI (``pip download ros-jazzy-control-msgs`` finds no
distribution), so the topic interfaces of those controllers are used.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
from builtin_interfaces.msg import Duration
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Float64MultiArray, String
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from motus_policy.runtime.observation import ObservationAssembler
from motus_recorder import schema
from motus_recorder.profile import ArmProfile, RobotProfile
from motus_recorder.ros.conversions import (
    any_image_to_rgb,
    joint_state_to_msg,
    msg_to_positions,
    ns_to_time,
    time_to_ns,
)


def arm_slices(profile: RobotProfile) -> list[tuple[ArmProfile, list[str], slice]]:
    """Per arm: the profile, its 7 joint names (joints + gripper) and its 14-D slice."""
    return [
        (arm, list(arm.joint_state_names), schema.ARM_SLICES[arm.name]) for arm in profile.arms
    ]


def joint_command_msgs(profile: RobotProfile, q: np.ndarray, stamp_ns: int) -> list:
    """(14,) command -> one sensor_msgs/JointState per arm, in ``profile.arms`` order."""
    return [joint_state_to_msg(names, q[sl], stamp_ns) for _, names, sl in arm_slices(profile)]


def trajectory_msgs(
    profile: RobotProfile, stamps_ns: np.ndarray, points: np.ndarray, arm_only: bool = False
) -> list[JointTrajectory]:
    """(K,) stamps + (K, 14) points -> one JointTrajectory per arm.

    ``header.stamp`` is the time of the first point and ``time_from_start`` is relative to it
    (joint_trajectory_controller semantics, ros2_controllers
    ``joint_trajectory_controller/doc/trajectory.rst``). With ``arm_only`` the trajectory names
    the arm's 6 joints only (``joint_trajectory_controller`` layout, the gripper goes through
    :func:`gripper_command_msgs`); otherwise the 6 joints and the gripper.
    """
    out = []
    t0 = int(stamps_ns[0])
    n = schema.ARM_JOINTS if arm_only else schema.ARM_JOINTS + 1
    for _, names, sl in arm_slices(profile):
        msg = JointTrajectory()
        msg.header.stamp = ns_to_time(t0)
        msg.joint_names = names[:n]
        for t, q in zip(stamps_ns, points, strict=True):
            dt = int(t) - t0
            pt = JointTrajectoryPoint()
            pt.positions = [float(x) for x in q[sl][:n]]
            pt.time_from_start = Duration(sec=dt // 1_000_000_000, nanosec=dt % 1_000_000_000)
            msg.points.append(pt)
        out.append(msg)
    return out


def gripper_command_msgs(profile: RobotProfile, q: np.ndarray) -> list[Float64MultiArray]:
    """(14,) command -> per arm a std_msgs/Float64MultiArray ``[gripper position]``.

    The position is in the profile's gripper unit (``arms[].gripper.unit``), in ``profile.arms``
    order; for a ``forward_command_controller`` with the gripper joint as its one joint.
    """
    out = []
    for _, _, sl in arm_slices(profile):
        msg = Float64MultiArray()
        msg.data = [float(q[sl][schema.ARM_JOINTS])]
        out.append(msg)
    return out


def status_msg(status: dict) -> String:
    """Status dict -> std_msgs/String with compact JSON."""
    return String(data=json.dumps(status, separators=(",", ":"), default=str))


def diagnostics_msg(node_name: str, status: dict, stamp_ns: int) -> DiagnosticArray:
    """One DiagnosticStatus: OK while running, WARN while holding, ERROR on e-stop.

    ``message`` carries the hold reason, which names the stream and why.
    """
    level = {"running": DiagnosticStatus.OK, "estop": DiagnosticStatus.ERROR}.get(
        status["state"], DiagnosticStatus.WARN
    )
    sched = status.get("scheduler", {})
    values = {
        "state": status["state"],
        "mode": status["mode"],
        "d": sched.get("d"),
        "chunk_age_s": sched.get("chunk_age_s"),
        "latency_ms_max": sched.get("latency_ms_max"),
        "holds": status.get("holds"),
    }
    st = DiagnosticStatus(
        level=level,
        name=f"{node_name}: policy",
        message=status.get("reason") or status["state"],
        hardware_id=node_name,
        values=[KeyValue(key=k, value=str(v)) for k, v in values.items()],
    )
    arr = DiagnosticArray(status=[st])
    arr.header.stamp = ns_to_time(stamp_ns)
    return arr


def image_callback(assembler: Callable[[], ObservationAssembler], name: str):
    """Subscription callback: sensor_msgs/Image or CompressedImage -> ``update_image``.

    Compressed images (JPEG / PNG) are decoded here; an image that does not convert marks the
    camera invalid (``assembler().mark_invalid``) instead of raising.
    """

    def cb(msg: Image | CompressedImage) -> None:
        stamp = time_to_ns(msg.header.stamp)
        try:
            img = any_image_to_rgb(msg)
        except ValueError as exc:
            assembler().mark_invalid(name, str(exc), stamp)
            return
        assembler().update_image(name, img, stamp)

    return cb


def joints_callback(assembler: Callable[[], ObservationAssembler], arm: str, names: list[str]):
    """Subscription callback: sensor_msgs/JointState -> ``assembler().update_joints``."""

    def cb(msg: JointState) -> None:
        stamp = time_to_ns(msg.header.stamp)
        try:
            q = msg_to_positions(msg, names)
        except ValueError as exc:
            assembler().mark_invalid(arm, str(exc), stamp)
            return
        assembler().update_joints(arm, q, stamp)

    return cb
