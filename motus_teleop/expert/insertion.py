"""Planner for insertion: left grasps the socket, right grasps the peg, both lift, peg goes in.

Geometry (bimanual_viperx_insertion.xml): the peg is a 0.12 x 0.02 x 0.02 m bar (rests with
its centre 0.01 m above the table); the socket is a 0.12 m square tube (outer 0.044 m, inner
0.036 m; it rests on its bottom wall with its centre 0.022 m up) with a 0.08 m ``pin`` along its
axis. Both lie along the world x axis. Each gripper comes straight down with its fingers along
y and closes on the object's long sides, tips just above the table. Both objects are lifted and
held top-down, coaxial along x, the socket's open end facing the peg; the right arm then pushes
the peg along -x until its end meets the pin (gym-aloha reward 4 = peg touches ``pin``).
"""

from __future__ import annotations

import numpy as np

from motus_teleop.expert.config import ExpertConfig
from motus_teleop.expert.ik import DOWN, FINGERTIP_M, gripper_rotation, yaw_of
from motus_teleop.expert.motion import MotionBuilder, Pose

PEG_REST_Z_M = 0.01
SOCKET_REST_Z_M = 0.022
TIP_CLEARANCE_M = 0.006
"""Fingertip height above the table when closing on an object."""
PEG_GRASP_OFFSET_M = 0.01
"""Peg grasped this far towards +x from its centre, away from the end that goes in."""
SOCKET_HOLD_M = np.array([-0.1, 0.5, 0.2])
"""Socket centre while the peg goes in."""
PEG_TOUCH_OFFSET_M = 0.10
"""Peg centre - socket centre along x when the peg's end meets the pin (0.04 + 0.06)."""
PRE_INSERT_GAP_M = 0.04
"""Extra x distance of the peg before the final push."""
INSERT_OVERSHOOT_M = 0.015
"""How far past first contact with the pin the push aims (the contact stops the peg)."""
INSERT_SPEED_M_S = 0.05


def _top_down(yaw: float) -> np.ndarray:
    fingers = np.array([-np.sin(yaw), np.cos(yaw), 0.0])
    return gripper_rotation(DOWN, fingers)


def plan_insertion(builder: MotionBuilder, object_poses: np.ndarray, cfg: ExpertConfig) -> None:
    """Appends the insertion moves to ``builder``.

    Args:
        builder: motion builder at the episode's start state.
        object_poses: (2, 7) peg then socket poses ``[x, y, z, qw, qx, qy, qz]``.
        cfg: expert configuration.
    """
    tip = FINGERTIP_M - builder.ik.tool_offset_m
    peg_yaw = yaw_of(object_poses[0, 3:], period=np.pi)
    socket_yaw = yaw_of(object_poses[1, 3:], period=np.pi)
    peg_axis = np.array([np.cos(peg_yaw), np.sin(peg_yaw), 0.0])
    peg = np.array([object_poses[0, 0], object_poses[0, 1], PEG_REST_Z_M])
    socket = np.array([object_poses[1, 0], object_poses[1, 1], SOCKET_REST_Z_M])
    open_, closed = cfg.gripper_open, cfg.gripper_closed
    up = np.array([0.0, 0.0, 1.0])
    carry = _top_down(0.0)

    peg_grasp = peg + PEG_GRASP_OFFSET_M * peg_axis
    peg_grasp[2] = TIP_CLEARANCE_M + tip
    socket_grasp = socket.copy()
    socket_grasp[2] = TIP_CLEARANCE_M + tip
    lift = cfg.lift_height_m
    approach = cfg.approach_height_m

    # Tool points relative to the held objects' centres (grasp height above the rest centre).
    socket_tool_dz = socket_grasp[2] - SOCKET_REST_Z_M
    peg_tool_dz = peg_grasp[2] - PEG_REST_Z_M
    socket_hold = SOCKET_HOLD_M + socket_tool_dz * up
    touch_x = SOCKET_HOLD_M[0] + PEG_TOUCH_OFFSET_M + PEG_GRASP_OFFSET_M
    peg_touch = np.array([touch_x, SOCKET_HOLD_M[1], SOCKET_HOLD_M[2] + peg_tool_dz])
    peg_pre = peg_touch + np.array([PRE_INSERT_GAP_M, 0.0, 0.0])
    peg_in = peg_touch - np.array([INSERT_OVERSHOOT_M, 0.0, 0.0])

    builder.move(
        left=Pose(socket_grasp + approach * up, _top_down(socket_yaw)),
        right=Pose(peg_grasp + approach * up, _top_down(peg_yaw)),
        grippers={"left": open_, "right": open_},
        joint_space=True,
    )
    builder.move(
        left=Pose(socket_grasp, _top_down(socket_yaw)), right=Pose(peg_grasp, _top_down(peg_yaw))
    )
    builder.move(grippers={"left": closed, "right": closed}, min_s=cfg.gripper_move_s)
    builder.hold(cfg.settle_s)
    builder.move(
        left=Pose(socket_grasp + lift * up, _top_down(socket_yaw)),
        right=Pose(peg_grasp + lift * up, _top_down(peg_yaw)),
    )
    builder.move(left=Pose(socket_hold, carry), right=Pose(peg_pre, carry))
    builder.hold(cfg.settle_s)
    builder.move(
        right=Pose(peg_in, carry), min_s=np.linalg.norm(peg_pre - peg_in) / INSERT_SPEED_M_S
    )
