"""Headless episodes of gym-aloha's joint-space tasks driven by the scripted expert.

The episodes run on the simulated robot's core, :class:`~motus_policy.robots.aloha_sim.sim.
AlohaSim`: the environment gym_aloha/env.py builds (same XML, task class, DT,
``n_sub_steps=None``), seeded as ``AlohaEnv.reset(seed=seed)`` seeds it (``BOX_POSE`` written
under the simulator's lock), whose steps never render; cameras render only on request
(:meth:`AlohaSim.render`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from motus_policy.robots.aloha_sim.sim import AlohaSim, AlohaSimConfig
from motus_teleop.expert.expert import ScriptedExpert, make_expert


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
    on_step: Callable[[int, AlohaSim], None] | None = None,
    sim: AlohaSim | None = None,
) -> EpisodeResult:
    """Plans and executes one episode headless; rows past the plan's end repeat its last row.

    Args:
        task: "transfer_cube" or "insertion".
        seed: object placement seed (as ``AlohaEnv.reset(seed=seed)``).
        expert: planner to use; a default one for ``task`` when None.
        on_step: optional callback ``(step_index, sim)`` after each step (e.g. to render).
        sim: simulator of ``task`` to run on (it is reset to ``seed``; e.g. one configured
            with the cameras ``on_step`` renders); None = a fresh one with the expert's
            profile, closed afterwards.

    Returns:
        The :class:`EpisodeResult`.

    Raises:
        ValueError: the expert or ``sim`` is set up for another task.
        CommandRejected: a plan row outside the profile's limits (the expert checks its plan,
            so this means a bug).
    """
    expert = expert or make_expert(task)
    if expert.config.task != task:
        raise ValueError(f"expert: planned for {expert.config.task!r}, episode task is {task!r}")
    own = sim is None
    if sim is None:
        sim = AlohaSim(AlohaSimConfig(task=task), expert.profile)
    elif sim.config.task != task:
        raise ValueError(f"sim: simulates {sim.config.task!r}, episode task is {task!r}")
    try:
        sim.reset(seed)
        t0 = time.perf_counter()
        plan = expert.plan(sim.qpos14(), sim.object_poses())
        t1 = time.perf_counter()
        steps = expert.config.episode_steps
        rewards = np.zeros(steps)
        for k in range(steps):
            rewards[k] = sim.step(plan[min(k, len(plan) - 1)])
            if on_step is not None:
                on_step(k, sim)
        t2 = time.perf_counter()
        max_reward = sim.max_reward
    finally:
        if own:
            sim.close()
    return EpisodeResult(
        task=task,
        seed=seed,
        success=bool(rewards.max() >= max_reward),
        max_reward=float(rewards.max()),
        rewards=rewards,
        plan_s=t1 - t0,
        sim_s=t2 - t1,
    )
