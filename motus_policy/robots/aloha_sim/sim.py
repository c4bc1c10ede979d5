"""Simulated bimanual ALOHA: gym-aloha 0.1.5's joint-space tasks without per-step rendering.

:class:`AlohaSim` builds the same dm_control environment as ``gym_aloha.env.AlohaEnv`` (physics
from ``ASSETS_DIR/bimanual_viperx_<task>.xml``, ``TransferCubeTask`` / ``InsertionTask``,
``control.Environment(physics, task, time_limit=inf, control_timestep=DT, n_sub_steps=None,
flat_observation=False)``) and seeds it exactly as ``AlohaEnv.reset(seed=...)`` does, so a seed
gives the same object pose here and in ``gym.make("gym_aloha/AlohaTransferCube-v0")``.

Two differences, both for speed (docs/platform.md §9):

- the task's ``get_observation`` is overridden to return joint state only. gym-aloha's renders
  three 480x640 cameras on every step (6.9 steps/s); stepping here never renders;
- :meth:`AlohaSim.render` renders only the profile's cameras (``camera.source`` = MuJoCo camera
  name) with shadows off (``model.light_castshadow[:] = 0``, 3.5-4.5x faster on llvmpipe).

Sim time (:attr:`AlohaSim.sim_time_ns`) counts control steps exactly in int ns. It starts at
``start_time_s`` (default 1 s; ROS treats time 0 as "unset") and is **monotonic across resets**:
a reset continues one control period after the last step, so ``/clock`` never jumps back and
subscribers' time-based buffers stay valid.

Threading: not thread-safe. One thread owns an instance (steps, resets and renders it); MuJoCo's
OpenGL context is made current by the rendering thread. The global ``BOX_POSE`` that gym-aloha's
tasks read at reset is written under a module lock.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from dm_control import mujoco
from dm_control.rl import control
from gym_aloha import constants as aloha_constants
from gym_aloha.tasks import sim as aloha_tasks
from gym_aloha.utils import sample_box_pose, sample_insertion_pose

from motus_policy.robots.aloha_sim.commands import CommandRejected, check_joint_vector
from motus_policy.robots.aloha_sim.tasks import TASKS
from motus_recorder import schema
from motus_recorder.profile import RobotProfile

__all__ = [
    "TASKS",
    "AlohaSim",
    "AlohaSimConfig",
    "CommandRejected",
    "initial_object_pose",
    "load_physics",
]

DT_S = float(aloha_constants.DT)
"""Control period of gym-aloha, s (0.02 s = 50 Hz; 10 physics substeps of 2 ms)."""

CONTROL_PERIOD_NS = round(DT_S * 1e9)

_ROBOT_QPOS = 16
"""Robot entries of ``physics.data.qpos``: 8 per arm (6 joints + 2 finger slides)."""
_OBJECT_QPOS = 7
"""Free-joint entries per object: position xyz (m) + quaternion wxyz."""

_BOX_POSE_LOCK = threading.Lock()


@dataclass(frozen=True)
class AlohaSimConfig:
    """Settings of one simulated ALOHA.

    Attributes:
        task: ``transfer_cube`` or ``insertion``.
        image_height: rendered image height, px; 0 = each camera's profile height (480).
        image_width: rendered image width, px; 0 = each camera's profile width (640).
        cameras: profile camera names to render; empty = all of the profile's cameras.
        shadows: render shadows (4x slower on llvmpipe, with shadow-map artefacts).
        start_time_s: sim time at the first reset, s (> 0: ROS treats time 0 as unset).
    """

    task: str = "transfer_cube"
    image_height: int = 0
    image_width: int = 0
    cameras: tuple[str, ...] = ()
    shadows: bool = False
    start_time_s: float = 1.0

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task: expected one of {list(TASKS)}, got {self.task!r}")
        for name in ("image_height", "image_width"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 4096:
                raise ValueError(f"{name}: expected an int in [0, 4096] (0 = profile), got {v!r}")
        if not isinstance(self.cameras, tuple) or not all(
            isinstance(c, str) and c for c in self.cameras
        ):
            raise ValueError(f"cameras: expected a tuple of camera names, got {self.cameras!r}")
        if len(set(self.cameras)) != len(self.cameras):
            raise ValueError(f"cameras: duplicate names in {self.cameras!r}")
        if not isinstance(self.shadows, bool):
            raise ValueError(f"shadows: expected a bool, got {self.shadows!r}")
        if not (math.isfinite(self.start_time_s) and self.start_time_s > 0):
            raise ValueError(
                f"start_time_s: expected a finite number > 0, got {self.start_time_s}"
            )


def _joint_observation(task: aloha_tasks.BimanualViperXTask, physics: mujoco.Physics) -> dict:
    """gym-aloha's observation without the three per-step camera renders."""
    return {
        "qpos": task.get_qpos(physics),
        "qvel": task.get_qvel(physics),
        "env_state": task.get_env_state(physics),
    }


class _TransferCubeTask(aloha_tasks.TransferCubeTask):
    """gym-aloha's TransferCubeTask whose observation never renders."""

    def get_observation(self, physics: mujoco.Physics) -> dict:
        return _joint_observation(self, physics)


class _InsertionTask(aloha_tasks.InsertionTask):
    """gym-aloha's InsertionTask whose observation never renders."""

    def get_observation(self, physics: mujoco.Physics) -> dict:
        return _joint_observation(self, physics)


_TASK_SPECS = {
    "transfer_cube": ("bimanual_viperx_transfer_cube.xml", _TransferCubeTask, 1),
    "insertion": ("bimanual_viperx_insertion.xml", _InsertionTask, 2),
}


def load_physics(task: str) -> mujoco.Physics:
    """A fresh joint-space physics of ``task``: ``ASSETS_DIR/bimanual_viperx_<task>.xml``.

    The scene gym_aloha/env.py loads for the task; the simulator and the scripted expert's
    private IK model both come from here.

    Raises:
        ValueError: unknown task (the message lists :data:`TASKS`).
    """
    if task not in _TASK_SPECS:
        raise ValueError(f"task: expected one of {list(TASKS)}, got {task!r}")
    return mujoco.Physics.from_xml_path(str(aloha_constants.ASSETS_DIR / _TASK_SPECS[task][0]))


def initial_object_pose(task: str, seed: int | None) -> np.ndarray:
    """The object pose gym-aloha's ``AlohaEnv.reset(seed)`` writes to ``BOX_POSE[0]``.

    Returns:
        float64 (7 * N,): ``[x, y, z, qw, qx, qy, qz]`` per object (transfer_cube: box;
        insertion: peg then socket), from ``gym_aloha.utils.sample_box_pose`` /
        ``sample_insertion_pose``.
    """
    if task == "transfer_cube":
        return np.asarray(sample_box_pose(seed), dtype=np.float64)
    if task == "insertion":
        return np.concatenate(sample_insertion_pose(seed)).astype(np.float64)
    raise ValueError(f"task: expected one of {list(TASKS)}, got {task!r}")


class AlohaSim:
    """One simulated bimanual ALOHA episode at a time (50 Hz joint-position control).

    Args:
        config: validated settings.
        profile: robot profile (``aloha_sim``): joint limits, cameras (``source`` = MuJoCo
            camera name) and the control rate, which must equal gym-aloha's 1 / DT = 50 Hz.

    Raises:
        ValueError: the profile's control rate is not 50 Hz, or a configured camera is not in
            the profile / its source is not a camera of the MuJoCo model.

    Call :meth:`reset` before the first :meth:`step`.
    """

    def __init__(self, config: AlohaSimConfig, profile: RobotProfile):
        if abs(profile.control_rate_hz * DT_S - 1.0) > 1e-9:
            raise ValueError(
                f"profile {profile.name!r}: control_rate_hz must be {1 / DT_S:g} (gym-aloha DT "
                f"{DT_S} s), got {profile.control_rate_hz}"
            )
        self.config = config
        self.profile = profile
        _, task_cls, n_objects = _TASK_SPECS[config.task]
        self.n_objects = n_objects
        physics = load_physics(config.task)
        self._task = task_cls()
        self._env = control.Environment(
            physics,
            self._task,
            time_limit=float("inf"),
            control_timestep=DT_S,
            n_sub_steps=None,
            flat_observation=False,
        )
        names = config.cameras or profile.camera_names
        self._cam_sizes: dict[str, tuple[int, int]] = {}
        self._cam_sources: dict[str, str] = {}
        model_cams = {physics.model.id2name(i, "camera") for i in range(physics.model.ncam)}
        for name in names:
            cam = profile.camera(name)  # KeyError lists the profile's cameras
            if cam.source not in model_cams:
                raise ValueError(
                    f"camera {name!r}: source {cam.source!r} is not a MuJoCo camera; the model "
                    f"has {sorted(model_cams)}"
                )
            self._cam_sources[name] = cam.source
            self._cam_sizes[name] = (
                config.image_height or cam.height,
                config.image_width or cam.width,
            )
        vis = physics.model.vis.global_
        vis.offheight = max([vis.offheight, *(h for h, _ in self._cam_sizes.values())])
        vis.offwidth = max([vis.offwidth, *(w for _, w in self._cam_sizes.values())])
        if not config.shadows:
            physics.model.light_castshadow[:] = 0
        self._t0_ns: int | None = None
        self._steps = 0
        self._seed: int | None = None
        self._reward = 0.0
        self._max_reward = 0.0
        self._target = np.zeros(schema.STATE_DIM)

    # -- episode control -------------------------------------------------------------------
    @property
    def physics(self) -> mujoco.Physics:
        """The dm_control Physics (read it; writing it bypasses the command checks)."""
        return self._env.physics

    def reset(self, seed: int) -> None:
        """Start an episode with gym-aloha's initial pose for ``seed``.

        Replicates ``AlohaEnv.reset(seed=seed)``: seeds the task's RandomState, sets
        ``BOX_POSE[0]`` from ``sample_box_pose(seed)`` / ``sample_insertion_pose(seed)`` and
        resets the dm_control environment (arms to ``START_ARM_POSE``).

        Raises:
            ValueError: ``seed`` is not an int in [0, 2**32).
        """
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
            raise ValueError(f"seed: expected an int, got {seed!r}")
        if not 0 <= int(seed) < 2**32:
            raise ValueError(f"seed: expected 0 <= seed < 2**32 (numpy RandomState), got {seed}")
        seed = int(seed)
        self._task.random.seed(seed)
        self._task._random = np.random.RandomState(seed)
        with _BOX_POSE_LOCK:
            aloha_tasks.BOX_POSE[0] = initial_object_pose(self.config.task, seed)
            self._env.reset()
        if self._t0_ns is None:
            self._t0_ns = round(self.config.start_time_s * 1e9)
        else:
            self._t0_ns = self.sim_time_ns + CONTROL_PERIOD_NS
        self._steps = 0
        self._seed = seed
        self._reward = float(self._task.get_reward(self.physics))
        self._max_reward = self._reward
        self._target = self.qpos14()

    def step(self, action14: np.ndarray) -> float:
        """Advance one control step (DT = 20 ms) towards absolute joint targets.

        Args:
            action14: float (14,): joint targets in rad, grippers normalised 0 closed .. 1 open
                (gym-aloha's joint-task action).

        Returns:
            The task reward after the step (0..4).

        Raises:
            CommandRejected: non-finite or out-of-limit target (names joint, value, limits);
                nothing is applied.
            RuntimeError: :meth:`reset` was never called.
        """
        if self._t0_ns is None:
            raise RuntimeError("AlohaSim.step before reset(seed)")
        a = np.asarray(action14, dtype=np.float64)
        check_joint_vector(self.profile, a, what="joint command")
        ts = self._env.step(a)
        self._steps += 1
        self._target = a.copy()
        self._reward = float(ts.reward)
        self._max_reward = max(self._max_reward, self._reward)
        return self._reward

    # -- state -----------------------------------------------------------------------------
    def qpos14(self) -> np.ndarray:
        """float64 (14,) joint positions (rad), grippers normalised (gym-aloha ``agent_pos``)."""
        return np.asarray(self._task.get_qpos(self.physics), dtype=np.float64)

    def qvel14(self) -> np.ndarray:
        """float64 (14,) joint velocities (rad/s), gripper velocities normalised per s."""
        return np.asarray(self._task.get_qvel(self.physics), dtype=np.float64)

    def object_poses(self) -> np.ndarray:
        """float64 (N, 7) ``[x, y, z, qw, qx, qy, qz]`` per object (m, unit quaternion).

        transfer_cube: the box (qpos[16:23]); insertion: peg (qpos[16:23]), socket (qpos[23:30]).
        """
        q = self.physics.data.qpos[_ROBOT_QPOS : _ROBOT_QPOS + _OBJECT_QPOS * self.n_objects]
        return np.array(q, dtype=np.float64).reshape(self.n_objects, _OBJECT_QPOS)

    def reward(self) -> float:
        """Task reward after the last step (0..4, gym-aloha's staged contact reward)."""
        return self._reward

    @property
    def max_reward(self) -> float:
        """Task maximum reward (4 = success)."""
        return float(self._task.max_reward)

    @property
    def success(self) -> bool:
        """True once the reward reached its maximum at any step of this episode."""
        return self._max_reward >= self.max_reward

    @property
    def seed(self) -> int | None:
        """Seed of the current episode (None before the first reset)."""
        return self._seed

    @property
    def episode_steps(self) -> int:
        """Control steps taken since the last reset."""
        return self._steps

    @property
    def last_target(self) -> np.ndarray:
        """float64 (14,) last applied target (the current pose right after a reset)."""
        return self._target.copy()

    @property
    def sim_time_ns(self) -> int:
        """Sim time, int ns: ``start_time_s`` + steps x 20 ms, monotonic across resets."""
        if self._t0_ns is None:
            raise RuntimeError("AlohaSim.sim_time_ns before reset(seed)")
        return self._t0_ns + self._steps * CONTROL_PERIOD_NS

    def close(self) -> None:
        """Free MuJoCo's native data and OpenGL contexts; call from the rendering thread.

        The instance must not be used afterwards. Without it, dm_control frees the EGL context
        at interpreter exit from the main thread, which fails (EGL_BAD_ACCESS) when another
        thread rendered.
        """
        self._env.physics.free()

    # -- cameras ---------------------------------------------------------------------------
    @property
    def camera_names(self) -> tuple[str, ...]:
        """Profile camera names this sim renders."""
        return tuple(self._cam_sources)

    def camera_size(self, name: str) -> tuple[int, int]:
        """(height, width) in px that :meth:`render` produces for camera ``name``."""
        return self._cam_sizes[name]

    def render(self, camera_names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Render cameras of the current state.

        Args:
            camera_names: profile camera names; None = all configured cameras.

        Returns:
            ``{name: uint8 (H, W, 3) RGB}`` with (H, W) = :meth:`camera_size`.

        Raises:
            KeyError: a name that is not a configured camera (the message lists them).
        """
        names = self.camera_names if camera_names is None else tuple(camera_names)
        out: dict[str, np.ndarray] = {}
        for name in names:
            if name not in self._cam_sources:
                raise KeyError(f"camera {name!r} is not rendered; configured: {self.camera_names}")
            h, w = self._cam_sizes[name]
            out[name] = self.physics.render(h, w, camera_id=self._cam_sources[name])
        return out
