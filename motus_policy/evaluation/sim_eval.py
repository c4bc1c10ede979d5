"""Closed-loop evaluation bookkeeping (ROS-free): episode outcomes and the summary table.

The ROS side (:mod:`motus_policy.cli.ros.sim_eval_client`) resets the simulator with each seed,
lets the agent under test (scripted expert or policy node) act, and records an
:class:`EpisodeOutcome`; this module turns outcomes into the success rate with its Wilson
95 % interval.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

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
        reward_curve: (sim seconds since the reset, reward) per reward message.
        video: path of the episode's MP4, if recorded.
    """

    seed: int
    success: bool
    max_reward: float
    sim_duration_s: float
    wall_duration_s: float
    reward_curve: tuple[tuple[float, float], ...] = ()
    video: str | None = None


def summarize(
    agent: str,
    task: str,
    outcomes: Sequence[EpisodeOutcome],
    *,
    label: str | None = None,
    latency: Mapping[str, dict] | None = None,
    aborted: str | None = None,
) -> dict:
    """Summary dict: agent, task, n, successes, rate, 95 % Wilson interval, failed seeds.

    Args:
        agent: who acted ("scripted expert", "policy").
        task: simulator task.
        outcomes: one per episode.
        label: run name for comparison tables (e.g. the checkpoint); defaults to ``agent``.
        latency: per status field, statistics from :func:`numeric_stats` (policy runs).
        aborted: why the run stopped early (the summary then covers the episodes that ran).
    """
    n = len(outcomes)
    k = sum(o.success for o in outcomes)
    lo, hi = wilson_interval(k, n)
    return {
        "agent": agent,
        "label": label or agent,
        "task": task,
        "aborted": aborted,
        "latency": dict(latency or {}),
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


def numeric_stats(values: Sequence[float]) -> dict:
    """Count, mean, p50, p90 and max of ``values`` (Nones when there are no values)."""
    v = np.asarray([x for x in values if isinstance(x, int | float) and math.isfinite(x)])
    if v.size == 0:
        return {"count": 0, "mean": None, "p50": None, "p90": None, "max": None}
    p50, p90 = np.percentile(v, [50, 90])
    return {
        "count": int(v.size),
        "mean": float(v.mean()),
        "p50": float(p50),
        "p90": float(p90),
        "max": float(v.max()),
    }


def latency_fields(statuses: Sequence[Mapping]) -> dict[str, dict]:
    """Statistics of every numeric status field named like a latency, over status JSON dicts.

    A field counts when its flattened name contains ``latency`` or ``_ms`` (the policy node's
    ``~/status`` has ``infer_ms.*`` and ``last_inference.latency_ns``). Nested dicts are flattened
    with dots (``{"inference": {"latency_ms": 80}}`` -> ``inference.latency_ms``).
    """
    series: dict[str, list[float]] = {}

    def walk(d: Mapping, prefix: str) -> None:
        for key, val in d.items():
            name = f"{prefix}{key}"
            if isinstance(val, Mapping):
                walk(val, f"{name}.")
            elif (
                ("latency" in name or "_ms" in name)
                and isinstance(val, int | float)
                and not isinstance(val, bool)
            ):
                series.setdefault(name, []).append(float(val))

    for st in statuses:
        walk(st, "")
    return {k: numeric_stats(v) for k, v in sorted(series.items())}


def to_markdown(summary: dict) -> str:
    """Markdown report of one run: headline, latency, one row per episode."""
    lines = [
        f"# {summary['label']} on {summary['task']}",
        "",
        f"**{format_rate(summary['successes'], summary['episodes'])}**",
        "",
    ]
    if summary.get("aborted"):
        lines += [f"Run aborted: {summary['aborted']}", ""]
    for name, st in summary.get("latency", {}).items():
        if st["count"]:
            lines.append(
                f"- {name}: mean {st['mean']:.1f}, p50 {st['p50']:.1f}, p90 {st['p90']:.1f}, "
                f"max {st['max']:.1f} ({st['count']} samples)"
            )
    lines += [
        "",
        "| seed | success | max reward | sim s | wall s | video |",
        "|---|---|---|---|---|---|",
    ]
    for o in summary["outcomes"]:
        lines.append(
            f"| {o['seed']} | {'yes' if o['success'] else 'no'} | {o['max_reward']:g} | "
            f"{o['sim_duration_s']:.2f} | {o['wall_duration_s']:.1f} | {o.get('video') or ''} |"
        )
    return "\n".join(lines) + "\n"


TABLE_HEADER = ("run", "agent", "task", "n", "success", "rate", "95 % CI")


def comparison_table(summaries: Sequence[Mapping], markdown: bool = False) -> str:
    """One row per run summary: label, agent, task, n, successes, rate, Wilson 95 % interval.

    Raises:
        ValueError: a summary lacks the fields :func:`summarize` writes (names the file when
            the summary carries ``_file``).
    """
    rows = []
    for s in summaries:
        try:
            n, k = int(s["episodes"]), int(s["successes"])
            lo, hi = wilson_interval(k, n)
            rate = f"{100 * k / n:.1f} %" if n else "n/a"
            rows.append(
                (
                    str(s.get("label") or s["agent"]),
                    str(s["agent"]),
                    str(s["task"]),
                    str(n),
                    str(k),
                    rate,
                    f"{100 * lo:.1f}-{100 * hi:.1f} %",
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            where = s.get("_file", "summary") if isinstance(s, Mapping) else "summary"
            raise ValueError(f"{where}: not a sim_eval result ({exc!r})") from None
    if markdown:
        out = ["| " + " | ".join(TABLE_HEADER) + " |", "|" + "---|" * len(TABLE_HEADER)]
        out += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(out)
    widths = [max(len(x) for x in col) for col in zip(TABLE_HEADER, *rows, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(fmt.format(*r) for r in (TABLE_HEADER, *rows))
