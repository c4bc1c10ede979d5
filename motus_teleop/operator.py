"""A scripted operator: plays a scripted expert's plan against sim time, as a leader would.

The plan is computed once per episode from the initial joint state and object poses
(:meth:`ScriptedOperator.start`); afterwards :meth:`ScriptedOperator.command` maps a time to the
plan step due at that time. Plan step ``k`` is the target for the control period that starts at
``start_ns + k * period_ns``; after the last step the final target is held.

Threads: one thread (the node's executor) calls every method.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from motus_recorder import schema


class Planner(Protocol):
    """Anything with the scripted expert's ``plan`` signature (motus_teleop.expert)."""

    def plan(self, start_qpos: np.ndarray, object_poses: np.ndarray) -> np.ndarray:
        """(14,) start joint vector, (N, 7) object poses -> (T, 14) targets at the control rate."""
        ...


@dataclass(frozen=True)
class Episode:
    """Episode announced by the simulator (``/sim/episode``)."""

    seed: int
    start_ns: int
    task: str = ""


class ScriptedOperator:
    """Turns a planner into a time-indexed 14-D command source.

    Args:
        planner: object with ``plan(start_qpos (14,), object_poses (N, 7)) -> (T, 14)``.
        period_ns: control period of the plan, int ns (20 ms for gym-aloha's 50 Hz).

    Raises:
        ValueError: non-positive period.
    """

    def __init__(self, planner: Planner, period_ns: int):
        if period_ns <= 0:
            raise ValueError(f"period_ns: expected > 0, got {period_ns}")
        self.planner = planner
        self.period_ns = int(period_ns)
        self.episode: Episode | None = None
        self._plan: np.ndarray | None = None

    @property
    def active(self) -> bool:
        """True once an episode has been planned."""
        return self._plan is not None

    def start(self, episode: Episode, start_qpos: np.ndarray, object_poses: np.ndarray) -> int:
        """Plan a new episode; returns the number of plan steps.

        Raises:
            ValueError: bad shapes, non-finite inputs, or a plan that is not finite (T, 14).
        """
        q = np.asarray(start_qpos, dtype=np.float64)
        poses = np.asarray(object_poses, dtype=np.float64)
        if q.shape != (schema.STATE_DIM,) or not np.all(np.isfinite(q)):
            raise ValueError(f"start_qpos: expected finite (14,), got {q.shape}")
        if poses.ndim != 2 or poses.shape[1] != 7 or not np.all(np.isfinite(poses)):
            raise ValueError(f"object_poses: expected finite (N, 7), got {poses.shape}")
        plan = np.asarray(self.planner.plan(q, poses), dtype=np.float64)
        if plan.ndim != 2 or plan.shape[1] != schema.STATE_DIM or len(plan) == 0:
            raise ValueError(f"planner returned {plan.shape}; expected (T, 14) with T > 0")
        if not np.all(np.isfinite(plan)):
            raise ValueError("planner returned non-finite targets")
        self.episode = episode
        self._plan = plan
        return len(plan)

    def step_index(self, now_ns: int) -> int:
        """Plan index due at ``now_ns`` (clamped to [0, T-1]); requires an active episode."""
        if self._plan is None or self.episode is None:
            raise RuntimeError("ScriptedOperator.step_index before start()")
        k = (int(now_ns) - self.episode.start_ns) // self.period_ns
        return int(min(max(k, 0), len(self._plan) - 1))

    def command(self, now_ns: int) -> np.ndarray | None:
        """float64 (14,) target due at ``now_ns``, or None before the first episode."""
        if self._plan is None:
            return None
        return self._plan[self.step_index(now_ns)].copy()
