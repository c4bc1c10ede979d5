"""Smooth 50 Hz joint trajectories from tool-space keyframes, for both arms at once.

A plan is a sequence of *moves*. In each move every arm either holds, moves its tool point
along a straight line while its orientation slerps (IK at every row, seeded with the previous
row), or moves in joint space to the IK solution of a target pose (for large reorientations).
All moves follow a min-jerk time law s(t) = 10 t^3 - 15 t^4 + 6 t^5 (Flash & Hogan 1985),
whose peak speed is 1.875x the mean. A move lasts long enough that no joint exceeds
``joint_speed_fraction * velocity_max`` and the tool's mean speed stays below
``tool_speed_m_s``; it is stretched and re-sampled until every row-to-row change is within the
profile's ``velocity_max * control_period_s``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from motus_recorder import schema
from motus_teleop.expert.config import ExpertConfig
from motus_teleop.expert.ik import QPOS_ARM, ArmIK

ARM_SLICE = {"left": schema.LEFT_ARM, "right": schema.RIGHT_ARM}
GRIPPER_INDEX = {"left": schema.LEFT_GRIPPER, "right": schema.RIGHT_GRIPPER}
MIN_JERK_PEAK = 1.875


def min_jerk(n: int) -> np.ndarray:
    """Min-jerk phase s_k for k = 1..n (s_n = 1), shape (n,)."""
    t = np.arange(1, n + 1, dtype=np.float64) / n
    return 10 * t**3 - 15 * t**4 + 6 * t**5


@dataclass(frozen=True)
class Pose:
    """Tool point position (3,) m and ``gripper_link`` rotation (3, 3), world frame."""

    pos: np.ndarray
    rot: np.ndarray


class MotionBuilder:
    """Accumulates plan rows (14-D joint targets, grippers normalised) move by move.

    Args:
        config: expert configuration (speeds, period).
        ik: IK on a private physics copy.
        start_qpos: (14,) current joint vector in the 14-D layout.
        velocity_max: (14,) per-dimension speed limit (rad/s, gripper units/s).
    """

    def __init__(
        self, config: ExpertConfig, ik: ArmIK, start_qpos: np.ndarray, velocity_max: np.ndarray
    ):
        self.config = config
        self.ik = ik
        self.q = np.asarray(start_qpos, dtype=np.float64).copy()
        self.vmax = np.asarray(velocity_max, dtype=np.float64)
        self.rows: list[np.ndarray] = []
        self.pose = {side: self._forward(side, self.q[ARM_SLICE[side]]) for side in ARM_SLICE}

    def _forward(self, side: str, q_arm: np.ndarray) -> Pose:
        physics = self.ik.physics
        physics.data.qpos[QPOS_ARM[side]] = q_arm
        physics.forward()
        rot = physics.named.data.xmat[f"vx300s_{side}/gripper_link"].reshape(3, 3).copy()
        link = physics.named.data.xpos[f"vx300s_{side}/gripper_link"].copy()
        return Pose(link + self.ik.tool_offset_m * rot[:, 0], rot)

    def _steps(self, seconds: float) -> int:
        return max(1, int(np.ceil(seconds / self.config.control_period_s - 1e-9)))

    def hold(self, seconds: float) -> None:
        """Repeats the current row for ``seconds``."""
        self.rows.extend(self.q.copy() for _ in range(self._steps(seconds)))

    def move(
        self,
        left: Pose | None = None,
        right: Pose | None = None,
        grippers: dict[str, float] | None = None,
        joint_space: bool = False,
        min_s: float | None = None,
    ) -> None:
        """One synchronised move of both arms (and grippers) to new targets.

        Args:
            left: target tool pose of the left arm; None keeps the arm where it is.
            right: target tool pose of the right arm; None keeps the arm where it is.
            grippers: optional {"left"|"right": normalised opening} targets.
            joint_space: interpolate joints to the target's IK solution instead of a straight
                tool line (used for large reorientations).
            min_s: shortest duration; defaults to ``config.min_move_s``.

        Raises:
            IKError: a target (or a row of a straight line) is out of reach.
        """
        targets = {s: p for s, p in (("left", left), ("right", right)) if p is not None}
        goal = self.q.copy()
        for side, pose in targets.items():
            goal[ARM_SLICE[side]] = self.ik.solve(
                side, pose.pos, pose.rot, self.q[ARM_SLICE[side]]
            )
        for side, value in (grippers or {}).items():
            goal[GRIPPER_INDEX[side]] = value
        cfg = self.config
        joint_s = MIN_JERK_PEAK * np.max(
            np.abs(goal - self.q) / (cfg.joint_speed_fraction * self.vmax)
        )
        tool_s = max(
            (
                np.linalg.norm(p.pos - self.pose[s].pos) / cfg.tool_speed_m_s
                for s, p in targets.items()
            ),
            default=0.0,
        )
        duration = max(joint_s, tool_s, cfg.min_move_s if min_s is None else min_s)
        limit = self.vmax * cfg.control_period_s
        for _ in range(8):
            rows = self._sample(goal, targets, self._steps(duration), joint_space)
            steps = np.abs(np.diff(np.vstack([self.q, rows]), axis=0))
            worst = float(np.max(steps / limit))
            if worst <= 0.98:
                break
            duration *= worst / 0.9
        else:
            raise RuntimeError(f"move exceeds velocity limits by {worst:.2f}x after stretching")
        self.rows.extend(rows)
        self.q = rows[-1].copy()
        for side, pose in targets.items():
            self.pose[side] = Pose(np.asarray(pose.pos, np.float64), np.asarray(pose.rot))

    def _sample(
        self, goal: np.ndarray, targets: dict[str, Pose], n: int, joint_space: bool
    ) -> np.ndarray:
        s = min_jerk(n)
        rows = self.q + s[:, None] * (goal - self.q)
        if joint_space:
            return rows
        for side, pose in targets.items():
            start = self.pose[side]
            slerp = Slerp([0.0, 1.0], Rotation.from_matrix(np.stack([start.rot, pose.rot])))
            rots = slerp(s).as_matrix()
            q_arm = self.q[ARM_SLICE[side]]
            for k in range(n):
                pos = start.pos + s[k] * (np.asarray(pose.pos) - start.pos)
                q_arm = self.ik.solve(side, pos, rots[k], q_arm)
                rows[k, ARM_SLICE[side]] = q_arm
        return rows

    def plan(self) -> np.ndarray:
        """All rows so far, (T, 14) float64."""
        return np.asarray(self.rows, dtype=np.float64).reshape(-1, 14)
