"""``motus-eval sim``: closed-loop episodes through the ROS graph, written as JSON + Markdown.

Starts a bring-up description (``sim_expert``: simulator + scripted expert; ``sim``: simulator +
policy node) with :class:`~motus_policy.bringup.runner.BringupRunner`, or attaches to a running
graph (``--attach``), then drives one episode per seed with
:class:`~motus_policy.cli.ros.sim_eval_client.SimEvalClient`. Results go to ``sim_eval.json`` and
``sim_eval.md`` in the output folder (written when complete; an aborted run is written with its
``aborted`` reason and exit status 1).
"""

from __future__ import annotations

import json
import os
import time
from contextlib import ExitStack
from pathlib import Path

from tqdm import tqdm

from motus_policy.evaluation.sim_eval import (
    format_summary,
    latency_fields,
    summarize,
    to_markdown,
)

AGENT_NAMES = {"expert": "scripted expert", "policy": "policy"}
DEFAULT_BRINGUP = {"expert": "sim_expert", "policy": "sim"}


def seed_list(start: int, end: int | None, episodes: int | None) -> list[int]:
    """Seeds from ``--seeds START[:END]`` and ``--episodes``.

    Raises:
        ValueError: END <= START, or ``episodes`` disagrees with START:END.
    """
    if end is None:
        return list(range(start, start + (episodes or 1)))
    if end <= start:
        raise ValueError(f"--seeds: END must be > START, got {start}:{end}")
    if episodes is not None and episodes != end - start:
        raise ValueError(f"--episodes {episodes} disagrees with --seeds {start}:{end}")
    return list(range(start, end))


def write_results(summary: dict, out: Path) -> None:
    """sim_eval.json and sim_eval.md in ``out`` (each renamed into place when complete)."""
    out.mkdir(parents=True, exist_ok=True)
    for name, text in (
        ("sim_eval.md", to_markdown(summary)),
        ("sim_eval.json", json.dumps(summary, indent=2)),
    ):
        tmp = out / f".{name}.partial"
        tmp.write_text(text)
        os.replace(tmp, out / name)


def bringup_args(ns) -> dict[str, str]:
    """Bring-up arguments for ``motus-eval sim``.

    The expert runs in lockstep; the policy free-runs on sim time with the given checkpoint;
    ``--bringup-arg k=v`` adds more.
    """
    args = {"task": ns.task}
    if ns.agent == "expert":
        args["mode"] = "lockstep"
    else:
        from motus_recorder.profile import load_profile

        instructions = load_profile("aloha_sim").extras.get("instructions", {})
        if ns.task in instructions:
            args["instruction"] = instructions[ns.task]  # the demonstrations' instruction
        if getattr(ns, "checkpoint", None):
            args["checkpoint"] = ns.checkpoint
    for kv in getattr(ns, "bringup_arg", []) or []:
        k, _, v = kv.partition("=")
        args[k] = v
    return args


def run_sim_eval(ns) -> int:
    """Run the episodes described by the parsed ``motus-eval sim`` arguments; returns 0/1."""
    from motus_policy.bringup import load_bringup
    from motus_policy.bringup.runner import BringupRunner
    from motus_policy.cli.ros.sim_eval_client import SimEvalClient, init_context
    from motus_recorder.profile import load_profile

    seeds = seed_list(*ns.seeds, ns.episodes)
    out = Path(ns.out)
    out.mkdir(parents=True, exist_ok=True)
    profile = load_profile("aloha_sim")
    length_s = float(profile.extras["episode_length_s"][ns.task])
    outcomes, aborted = [], None
    status_topic = f"/{ns.policy_node}/status" if ns.agent == "policy" else None
    with ExitStack() as stack:
        if not ns.attach:
            name = ns.bringup or DEFAULT_BRINGUP[ns.agent]
            nodes = load_bringup(name).resolve(bringup_args(ns))
            runner = stack.enter_context(BringupRunner(nodes, log_dir=out, echo=False))
            print(f"[sim] starting {', '.join(n.name for n in nodes)} (logs in {out}/)")
            runner.wait_ready(timeout_s=120)
        ctx = init_context()
        stack.callback(ctx.try_shutdown)
        client = SimEvalClient(
            profile,
            sim_node="aloha_sim",
            context=ctx,
            video_topic=ns.video_topic,
            video_dir=out / "videos" if ns.video_topic else None,
            status_topic=status_topic,
            policy_node=ns.policy_node if ns.agent == "policy" else None,
        )
        if ns.agent == "policy":
            client.wait_policy_active()
        stack.callback(client.close)
        bar = tqdm(seeds, desc=f"{ns.agent}/{ns.task}", unit="ep")
        try:
            for seed in bar:
                outcomes.append(client.run_episode(seed, length_s, wall_timeout_s=20 * length_s))
                bar.set_postfix(success=f"{sum(o.success for o in outcomes)}/{len(outcomes)}")
        except (TimeoutError, RuntimeError) as exc:
            aborted = str(exc)
        statuses = list(client.statuses)
    summary = summarize(
        AGENT_NAMES[ns.agent],
        ns.task,
        outcomes,
        label=ns.label,
        latency=latency_fields(statuses),
        aborted=aborted,
    )
    summary["seeds"] = seeds
    summary["generated_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    write_results(summary, out)
    print(format_summary(summary))
    if aborted:
        print(f"[sim] aborted after {len(outcomes)} episodes: {aborted}")
    print(f"[sim] results in {out / 'sim_eval.json'}")
    return 1 if aborted else 0
