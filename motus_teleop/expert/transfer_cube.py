"""Planner for transfer_cube: the right arm picks the cube, both arms meet, the left takes it.

Grasp geometry (finger hulls reach 0.154 m along the gripper x axis, ik.py):
the right gripper comes straight down and closes with its fingertips at the cube's centre
height, so the cube's lower half sticks out past the fingertips. After lifting, the right
gripper turns horizontal (pointing -x, towards the left arm) at the hand-over point, so that
free half faces the left gripper, which approaches along +x, closes on it a few mm short of
the right fingertips, and holds the cube while the right gripper opens and backs away.
Success (gym-aloha reward 4) = left finger touches the cube and the cube is off the table.
"""

from __future__ import annotations

import numpy as np

from motus_teleop.expert.config import ExpertConfig
from motus_teleop.expert.ik import DOWN, FINGERTIP_M, gripper_rotation, yaw_of
from motus_teleop.expert.motion import MotionBuilder, Pose

CUBE_HALF_M = 0.02
"""Half edge of ``red_box`` (bimanual_viperx_transfer_cube.xml); it rests with its centre here."""
MEET_POINT_M = np.array([0.0, 0.5, 0.25])
"""Cube centre at the hand-over: midway between the arm bases (x = +-0.469, y = 0.5)."""
TIP_GAP_M = 0.005
"""Gap left between the left and right fingertips at the hand-over."""
APPROACH_BACKOFF_M = 0.1
"""Distance from the hand-over along x at which the left gripper waits before closing in."""

ALONG_Y = np.array([0.0, 1.0, 0.0])


def plan_transfer_cube(
    builder: MotionBuilder, object_poses: np.ndarray, cfg: ExpertConfig
) -> None:
    """Appends the transfer moves to ``builder``.

    Args:
        builder: motion builder at the episode's start state.
        object_poses: (1, 7) cube pose ``[x, y, z, qw, qx, qy, qz]`` (its free-joint qpos).
        cfg: expert configuration.
    """
    tip = FINGERTIP_M - builder.ik.tool_offset_m  # tool point -> fingertip along x
    cube = np.array([object_poses[0, 0], object_poses[0, 1], CUBE_HALF_M])
    yaw = yaw_of(object_poses[0, 3:], period=np.pi / 2)
    top_down = gripper_rotation(DOWN, [-np.sin(yaw), np.cos(yaw), 0.0])
    right_horizontal = gripper_rotation([-1.0, 0.0, 0.0], ALONG_Y)
    left_horizontal = gripper_rotation([1.0, 0.0, 0.0], ALONG_Y)
    open_, closed = cfg.gripper_open, cfg.gripper_closed

    grasp = cube + np.array([0.0, 0.0, tip])
    above = grasp + np.array([0.0, 0.0, cfg.approach_height_m])
    right_handover = MEET_POINT_M + np.array([tip, 0.0, 0.0])
    left_grasp = MEET_POINT_M - np.array([TIP_GAP_M + tip, 0.0, 0.0])
    left_wait = left_grasp - np.array([APPROACH_BACKOFF_M, 0.0, 0.0])

    # Right arm above the cube, left arm to its waiting pose, both grippers open.
    builder.move(
        right=Pose(above, top_down),
        left=Pose(left_wait, left_horizontal),
        grippers={"right": open_, "left": open_},
        joint_space=True,
    )
    builder.move(right=Pose(grasp, top_down))
    builder.move(grippers={"right": closed}, min_s=cfg.gripper_move_s)
    builder.hold(cfg.settle_s)
    builder.move(right=Pose(cube + np.array([0.0, 0.0, cfg.lift_height_m]), top_down))
    builder.move(right=Pose(right_handover, right_horizontal), joint_space=True)
    builder.move(left=Pose(left_grasp, left_horizontal))
    builder.move(grippers={"left": closed}, min_s=cfg.gripper_move_s)
    builder.hold(cfg.settle_s)
    builder.move(grippers={"right": open_}, min_s=cfg.gripper_move_s)
    builder.move(
        right=Pose(right_handover + np.array([APPROACH_BACKOFF_M, 0.0, 0.0]), right_horizontal)
    )
