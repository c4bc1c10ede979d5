"""Closed-loop evaluation bookkeeping (ROS-free): episode outcomes and the summary table.

The ROS side (:mod:`motus_policy.ros.sim_eval_client`) resets the simulator with each seed, lets
the agent under test (scripted expert or policy node) act, and records an :class:`EpisodeOutcome`;
this module turns outcomes into the success rate with its Wilson 95 % interval.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from motus_policy.evaluation.stats import format_rate, wilson_interval


@dataclass(frozen=True)
class EpisodeOutcome:
    """One closed-loop episode.

    Attributes:
        seed: simulator seed (object placement).
        success: the task's success condition was reached within the time limit.
        max_reward: highest task reward seen (gym-aloha: 0..4).
        sim_duration_s: simulated seconds until success or the time limit.
        wall_duration_s: wall-clock seconds the episode took.
    """

    seed: int
    success: bool
    max_reward: float
    sim_duration_s: float
    wall_duration_s: float


def summarize(agent: str, task: str, outcomes: Sequence[EpisodeOutcome]) -> dict:
    """Summary dict: agent, task, n, successes, rate, 95 % Wilson interval, failed seeds."""
    n = len(outcomes)
    k = sum(o.success for o in outcomes)
    lo, hi = wilson_interval(k, n)
    return {
        "agent": agent,
        "task": task,
        "episodes": n,
        "successes": k,
        "success_rate": k / n if n else float("nan"),
        "ci95": [lo, hi],
        "failed_seeds": [o.seed for o in outcomes if not o.success],
        "mean_wall_s": sum(o.wall_duration_s for o in outcomes) / n if n else float("nan"),
        "outcomes": [asdict(o) for o in outcomes],
    }


def format_summary(summary: dict) -> str:
    """One human-readable line per summary (what `make demo` prints)."""
    rate = format_rate(summary["successes"], summary["episodes"])
    failed = summary["failed_seeds"]
    tail = f"; failed seeds {failed}" if failed else ""
    return f"{summary['agent']} on {summary['task']}: success {rate}{tail}"


def to_json(summary: dict) -> str:
    """Pretty JSON of a summary."""
    return json.dumps(summary, indent=2)
