"""Inverse kinematics for one ViperX 300s arm on a private copy of the gym-aloha physics.

The gripper's *tool point* is a point on the gripper's x axis (the approach axis, pointing out
of the palm between the fingers), ``tool_offset_m`` in front of ``vx300s_<side>/gripper_link``.
The finger collision hulls reach from 0.064 m to 0.154 m along that axis (measured from the
meshes in gym_aloha/assets), so an offset of ~0.13 m puts the object between the finger pads.
The fingers slide along the gripper's y axis.

IK uses ``dm_control.utils.inverse_kinematics.qpos_from_site_pose`` on the calibration site
``cali_<side>_site1`` (fixed on ``gripper_link`` at +0.15 m along x, vx300s_<side>.xml).
"""

from __future__ import annotations

import numpy as np
from dm_control import mujoco
from dm_control.utils import inverse_kinematics

from motus_policy.robots.aloha_sim.sim import load_physics

ARM_JOINTS = ("waist", "shoulder", "elbow", "forearm_roll", "wrist_angle", "wrist_rotate")
SITE_OFFSET_M = 0.15
"""Distance of ``cali_<side>_site1`` from ``gripper_link`` along the gripper x axis."""

FINGERTIP_M = 0.154
"""Fingertip distance from ``gripper_link`` along its x axis (finger collision hulls)."""
DOWN = np.array([0.0, 0.0, -1.0])

QPOS_ARM = {"left": slice(0, 6), "right": slice(8, 14)}
"""Arm joints in the raw physics qpos (8 per arm: 6 joints + 2 finger slides)."""


class IKError(RuntimeError):
    """No joint solution reaches the requested tool pose within tolerance."""


def gripper_rotation(approach: np.ndarray, fingers: np.ndarray) -> np.ndarray:
    """Rotation matrix (3, 3) of ``gripper_link`` from two world directions.

    Args:
        approach: (3,) direction the gripper points (its x axis), any length > 0.
        fingers: (3,) direction the fingers slide along (its y axis); the component along
            ``approach`` is removed.

    Returns:
        (3, 3) float64 with columns x, y, z = x cross y.
    """
    x = np.asarray(approach, dtype=np.float64)
    x = x / np.linalg.norm(x)
    y = np.asarray(fingers, dtype=np.float64)
    y = y - x * float(x @ y)
    y = y / np.linalg.norm(y)
    return np.stack([x, y, np.cross(x, y)], axis=1)


def mat_to_quat(rot: np.ndarray) -> np.ndarray:
    """(3, 3) rotation matrix to a (4,) ``[w, x, y, z]`` quaternion."""
    quat = np.zeros(4)
    mujoco.wrapper.mjbindings.mjlib.mju_mat2Quat(quat, np.ascontiguousarray(rot).ravel())
    return quat


def yaw_of(quat: np.ndarray, period: float) -> float:
    """Yaw (rad) of an object lying flat, wrapped to [-period/2, period/2).

    Args:
        quat: (4,) ``[w, x, y, z]`` orientation.
        period: symmetry of the object about z (pi/2 for a cube, pi for a bar).
    """
    w, x, y, z = np.asarray(quat, dtype=np.float64)
    yaw = np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))
    return float((yaw + period / 2) % period - period / 2)


class ArmIK:
    """IK for both arms on a private physics copy (never the running sim).

    Not thread-safe: one instance per thread.
    """

    def __init__(self, task: str, tool_offset_m: float, tol_m: float = 1e-3):
        """Loads the task's scene, the simulator's (``aloha_sim.sim.load_physics``).

        Args:
            task: "transfer_cube" or "insertion".
            tool_offset_m: tool point distance in front of ``gripper_link`` (m).
            tol_m: largest accepted residual of the IK solution (m, weighted with rad).
        """
        self.physics = load_physics(task)
        self.tool_offset_m = tool_offset_m
        self.tol_m = tol_m
        ranges = self.physics.model.jnt_range[QPOS_ARM["left"]]
        self.lower, self.upper = ranges[:, 0].copy(), ranges[:, 1].copy()

    def solve(
        self, side: str, tool_pos: np.ndarray, rot: np.ndarray, q_seed: np.ndarray
    ) -> np.ndarray:
        """Joint angles (6,) rad that put the tool point at ``tool_pos`` with orientation ``rot``.

        Args:
            side: "left" or "right".
            tool_pos: (3,) world position of the tool point (m).
            rot: (3, 3) world rotation of ``gripper_link`` (see :func:`gripper_rotation`).
            q_seed: (6,) initial guess (rad); the solution is the local one near it.

        Raises:
            IKError: the residual exceeds ``tol_m`` (target out of reach).
        """
        q_seed = np.asarray(q_seed, dtype=np.float64)
        best = None
        # The two fingers are mirror images: a rotation by pi about the approach axis grips
        # the same way. Try both and keep the solution nearest the seed.
        for flip in (1.0, -1.0):
            r = np.asarray(rot, dtype=np.float64) * np.array([1.0, flip, flip])
            q, err = self._solve_once(side, np.asarray(tool_pos, np.float64), r, q_seed)
            if err > self.tol_m or np.any(q < self.lower) or np.any(q > self.upper):
                continue
            dist = float(np.max(np.abs(q - q_seed)))
            if best is None or dist < best[1]:
                best = (q, dist)
        if best is None:
            raise IKError(
                f"{side} arm: no IK solution within joint limits for tool at "
                f"{np.round(tool_pos, 3).tolist()}"
            )
        return best[0]

    def _solve_once(
        self, side: str, tool_pos: np.ndarray, rot: np.ndarray, q_seed: np.ndarray
    ) -> tuple[np.ndarray, float]:
        site_pos = tool_pos + (SITE_OFFSET_M - self.tool_offset_m) * rot[:, 0]
        self.physics.data.qpos[QPOS_ARM[side]] = q_seed
        result = inverse_kinematics.qpos_from_site_pose(
            self.physics,
            f"cali_{side}_site1",
            target_pos=site_pos,
            target_quat=mat_to_quat(rot),
            joint_names=[f"vx300s_{side}/{j}" for j in ARM_JOINTS],
            tol=1e-10,
            max_steps=200,
        )
        q = result.qpos[QPOS_ARM[side]]
        q = q_seed + (q - q_seed + np.pi) % (2 * np.pi) - np.pi
        return q, float(result.err_norm)
