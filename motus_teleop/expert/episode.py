"""Headless episodes of gym-aloha's joint-space tasks driven by the scripted expert.

The environment is built exactly as gym_aloha/env.py builds it (same XML, task class, DT,
``n_sub_steps=None``) and seeded the same way (``sample_box_pose(seed)`` /
``sample_insertion_pose(seed)`` into ``gym_aloha.tasks.sim.BOX_POSE``), but the task's
observation skips the three 480x640 renders gym-aloha makes on every step (platform.md §9:
6.9 steps/s with them, ~3,000 without).
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from dm_control import mujoco
from dm_control.rl import control
from gym_aloha.constants import DT
from gym_aloha.tasks import sim
from gym_aloha.utils import sample_box_pose, sample_insertion_pose

from motus_teleop.expert.expert import ScriptedExpert, make_expert
from motus_teleop.expert.ik import load_physics


class _NoImages:
    """Mixin: the task's observation without camera renders."""

    def get_observation(self, physics: mujoco.Physics) -> collections.OrderedDict:
        obs = collections.OrderedDict()
        obs["qpos"] = self.get_qpos(physics)
        obs["qvel"] = self.get_qvel(physics)
        obs["env_state"] = self.get_env_state(physics)
        return obs


class HeadlessTransferCubeTask(_NoImages, sim.TransferCubeTask):
    """gym-aloha TransferCubeTask without camera renders."""


class HeadlessInsertionTask(_NoImages, sim.InsertionTask):
    """gym-aloha InsertionTask without camera renders."""


_TASKS = {"transfer_cube": HeadlessTransferCubeTask, "insertion": HeadlessInsertionTask}


def make_env(task: str, seed: int) -> control.Environment:
    """The headless joint-space environment with the objects placed for ``seed``.

    The object pose is written to ``gym_aloha.tasks.sim.BOX_POSE`` (a module global read by
    the task's ``initialize_episode``), as ``AlohaEnv.reset(seed=seed)`` does. Call
    ``reset()`` on the result before the next ``make_env``.
    """
    if task == "transfer_cube":
        sim.BOX_POSE[0] = sample_box_pose(seed)
    else:
        sim.BOX_POSE[0] = np.concatenate(sample_insertion_pose(seed))
    physics = load_physics(task)
    return control.Environment(
        physics,
        _TASKS[task](random=np.random.RandomState(seed)),
        float("inf"),
        control_timestep=DT,
        n_sub_steps=None,
        flat_observation=False,
    )


@dataclass(frozen=True)
class EpisodeResult:
    """Outcome of one episode.

    Attributes:
        task: task name.
        seed: object placement seed.
        success: the reward reached the task's maximum (4) at some step.
        max_reward: highest per-step reward.
        rewards: (T,) float64 per-step rewards.
        plan_s: wall time spent planning (s).
        sim_s: wall time spent stepping the physics (s).
    """

    task: str
    seed: int
    success: bool
    max_reward: float
    rewards: np.ndarray
    plan_s: float
    sim_s: float


def run_episode(
    task: str,
    seed: int,
    expert: ScriptedExpert | None = None,
    on_step: Callable[[int, mujoco.Physics], None] | None = None,
) -> EpisodeResult:
    """Plans and executes one episode headless; rows past the plan's end repeat its last row.

    Args:
        task: "transfer_cube" or "insertion".
        seed: object placement seed (as ``AlohaEnv.reset(seed=seed)``).
        expert: planner to use; a default one for ``task`` when None.
        on_step: optional callback ``(step_index, physics)`` after each step (e.g. render).

    Returns:
        The :class:`EpisodeResult`.
    """
    expert = expert or make_expert(task)
    if expert.config.task != task:
        raise ValueError(f"expert: planned for {expert.config.task!r}, episode task is {task!r}")
    env = make_env(task, seed)
    timestep = env.reset()
    physics = env.physics
    object_poses = physics.data.qpos[16:].reshape(-1, 7).copy()
    t0 = time.perf_counter()
    plan = expert.plan(timestep.observation["qpos"], object_poses)
    t1 = time.perf_counter()
    steps = expert.config.episode_steps
    rewards = np.zeros(steps)
    for k in range(steps):
        timestep = env.step(plan[min(k, len(plan) - 1)])
        rewards[k] = timestep.reward
        if on_step is not None:
            on_step(k, physics)
    max_reward = env.task.max_reward
    return EpisodeResult(
        task=task,
        seed=seed,
        success=bool(rewards.max() >= max_reward),
        max_reward=float(rewards.max()),
        rewards=rewards,
        plan_s=t1 - t0,
        sim_s=time.perf_counter() - t1,
    )
