"""The scripted expert: plans a whole episode of joint targets from the start state."""

from __future__ import annotations

import numpy as np

from motus_recorder.profile import load_profile
from motus_teleop.expert.config import ExpertConfig
from motus_teleop.expert.ik import ArmIK
from motus_teleop.expert.insertion import plan_insertion
from motus_teleop.expert.motion import MotionBuilder
from motus_teleop.expert.transfer_cube import plan_transfer_cube

N_OBJECTS = {"transfer_cube": 1, "insertion": 2}
TOOL_OFFSET_M = 0.13
"""Tool point in front of ``gripper_link`` used for IK (between the finger pads, ik.py)."""
_PLANNERS = {"transfer_cube": plan_transfer_cube, "insertion": plan_insertion}


class ScriptedExpert:
    """Plans joint-space demonstrations for the simulated ALOHA with IK on a private model.

    Deterministic: the same inputs give the same plan. Not thread-safe (owns one physics copy).

    Args:
        config: expert configuration (task, speeds, timings).
    """

    def __init__(self, config: ExpertConfig):
        self.config = config
        self.profile = load_profile(config.profile)
        self.ik = ArmIK(config.task, TOOL_OFFSET_M)

    def plan(self, start_qpos: np.ndarray, object_poses: np.ndarray) -> np.ndarray:
        """Joint targets for one episode.

        Args:
            start_qpos: (14,) current joints in the 14-D layout (rad, grippers normalised).
            object_poses: (N, 7) world poses ``[x, y, z, qw, qx, qy, qz]`` of the task objects
                (free-joint qpos): transfer_cube N = 1 (box); insertion N = 2 (peg, socket).

        Returns:
            (T, 14) float64 joint targets at ``1 / control_period_s`` Hz, T <= episode_steps,
            inside the profile's position limits and per-row velocity limits.

        Raises:
            ValueError: wrong shapes or non-finite inputs.
            IKError: an object lies out of reach.
        """
        task = self.config.task
        start = np.asarray(start_qpos, dtype=np.float64)
        poses = np.asarray(object_poses, dtype=np.float64)
        if start.shape != (14,) or not np.all(np.isfinite(start)):
            raise ValueError(f"start_qpos: expected 14 finite values, got shape {start.shape}")
        if poses.shape != (N_OBJECTS[task], 7) or not np.all(np.isfinite(poses)):
            raise ValueError(
                f"object_poses: expected finite shape ({N_OBJECTS[task]}, 7) for {task}, "
                f"got {poses.shape}"
            )
        builder = MotionBuilder(self.config, self.ik, start, self.profile.velocity_max)
        _PLANNERS[task](builder, poses, self.config)
        plan = builder.plan()
        if len(plan) > self.config.episode_steps:
            raise RuntimeError(
                f"{task} plan has {len(plan)} rows, more than the episode's "
                f"{self.config.episode_steps}"
            )
        self.profile.check_joint_vector(plan.min(axis=0), "plan minimum")
        self.profile.check_joint_vector(plan.max(axis=0), "plan maximum")
        return plan


def make_expert(task: str, **overrides: object) -> ScriptedExpert:
    """Builds the expert for ``task`` ("transfer_cube" or "insertion") with default settings.

    Args:
        task: task name.
        **overrides: ExpertConfig fields to change.
    """
    return ScriptedExpert(ExpertConfig(task=task, **overrides))
