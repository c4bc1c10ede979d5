"""`make demo`: the simulated ALOHA in closed loop through the ROS graph; prints the success rate.

Starts the bring-up description ``sim`` (aloha_sim_node in lockstep + the agent) as processes,
then drives episodes on held-out seeds through :class:`SimEvalClient` and prints the success rate
with its Wilson 95 % interval. Node logs go to ``--out``.

Agent: the scripted expert (``motus_teleop.expert``) acting as the operator, through
expert -> command topics -> sim node -> camera/joint topics.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from tqdm import tqdm

from motus_policy.bringup import load_bringup
from motus_policy.bringup.runner import BringupRunner
from motus_policy.evaluation.sim_eval import format_summary, summarize
from motus_recorder.profile import load_profile

HELD_OUT_SEED_START = 100_000
"""Demo seeds start here: disjoint from validation (0..) and recording seeds."""


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns 0 when every episode ran (whatever the success rate)."""
    ap = argparse.ArgumentParser(
        prog="make demo",
        description="Closed-loop demo on the simulated ALOHA through the ROS graph: starts the "
        "sim node and the agent as processes, runs N episodes on held-out seeds, prints the "
        "success rate with a 95 %% Wilson interval.",
    )
    ap.add_argument("--task", default="transfer_cube", choices=["transfer_cube", "insertion"])
    ap.add_argument("--episodes", type=int, default=10, help="number of episodes (default 10)")
    ap.add_argument("--seed-start", type=int, default=HELD_OUT_SEED_START)
    ap.add_argument("--out", default="outputs/demo", help="folder for node logs and results")
    ns = ap.parse_args(argv)

    from motus_policy.ros.sim_eval_client import SimEvalClient, init_context

    out = Path(ns.out)
    out.mkdir(parents=True, exist_ok=True)
    profile = load_profile("aloha_sim")
    length_s = float(profile.extras["episode_length_s"][ns.task])
    nodes = load_bringup("sim_expert").resolve({"task": ns.task, "mode": "lockstep"})
    print(f"[demo] starting {', '.join(n.name for n in nodes)} (logs in {out}/)", flush=True)
    t0 = time.monotonic()
    outcomes = []
    with BringupRunner(nodes, log_dir=out, echo=False) as runner:
        runner.wait_ready(timeout_s=120)
        print(f"[demo] graph up in {time.monotonic() - t0:.1f} s", flush=True)
        ctx = init_context()
        client = SimEvalClient(profile, sim_node="aloha_sim", context=ctx)
        try:
            seeds = range(ns.seed_start, ns.seed_start + ns.episodes)
            bar = tqdm(seeds, desc=f"expert/{ns.task}", unit="ep")
            for seed in bar:
                o = client.run_episode(seed, length_s, wall_timeout_s=20 * length_s)
                outcomes.append(o)
                bar.set_postfix(success=f"{sum(x.success for x in outcomes)}/{len(outcomes)}")
        finally:
            client.close()
            ctx.try_shutdown()
    summary = summarize("scripted expert", ns.task, outcomes)
    (out / "results.json").write_text(json.dumps(summary, indent=2))
    print(format_summary(summary), flush=True)
    print(f"[demo] results in {out / 'results.json'}; took {time.monotonic() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
