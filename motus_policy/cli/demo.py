"""`make demo`: the simulated ALOHA in closed loop through the ROS graph; prints the success rate.

Default agent: the Motus policy node with the embedded default checkpoint
(``motus_policy/checkpoints/aloha_sim_tiny``), started with the ``sim`` bring-up (sim node
free-running on /clock + policy node). ``--agent expert`` runs the scripted expert instead
(``sim_expert`` bring-up, lockstep). Episodes run on held-out seeds through
:class:`SimEvalClient`; the success rate is printed with its Wilson 95 % interval; the first
policy episode is also written as a video with the imagined frames beside the real ones.
Node logs, ``results.json`` and the video go to ``--out``.
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
from motus_policy.cli.options import add_options
from motus_policy.evaluation.sim_eval import format_summary, summarize
from motus_policy.robots.aloha_sim.tasks import TASKS
from motus_policy.runtime.config import PolicyRuntimeConfig
from motus_recorder.profile import load_profile
from motus_recorder.share import embedded_checkpoint_dir

HELD_OUT_SEED_START = 100_000
"""Demo seeds start here: disjoint from the recording seeds (0..) of the embedded checkpoint."""
EMBEDDED_CHECKPOINT = "aloha_sim_tiny"
"""Short name of the embedded checkpoint; the backend finds it in the source tree or the installed
package share (motus_recorder.share.embedded_checkpoint_dir)."""
POLICY_NODE = "motus_policy"


def bringup_for(ns: argparse.Namespace) -> tuple[str, dict[str, str]]:
    """The bring-up description name and its arguments for parsed demo options."""
    if ns.agent == "expert":
        return "sim_expert", {"task": ns.task, "mode": "lockstep"}
    h, w = ns.image_size.split("x")
    instruction = load_profile("aloha_sim").extras["instructions"][ns.task]
    args = {
        "task": ns.task,
        "checkpoint": str(ns.checkpoint),
        "image_height": h,
        "image_width": w,
        "strategy": ns.strategy,
        "n_action_steps": str(ns.n_action_steps),
        "mode": ns.mode,
        "instruction": instruction,
        "real_time_factor": str(ns.real_time_factor),
    }
    return "sim", args


def build_parser() -> argparse.ArgumentParser:
    """The demo's options; strategy, n_action_steps and mode are PolicyRuntimeConfig fields."""
    ap = argparse.ArgumentParser(
        prog="make demo",
        description="Closed-loop demo on the simulated ALOHA through the ROS graph: starts the "
        "sim node and the agent as processes, runs N episodes on held-out seeds, prints the "
        "success rate with a 95 % Wilson interval. Pass options with DEMO_ARGS='...'.",
    )
    ap.add_argument("--agent", default="policy", choices=["policy", "expert"])
    ap.add_argument("--task", default="transfer_cube", choices=TASKS)
    ap.add_argument("--episodes", type=int, default=20, help="number of episodes (default 20)")
    ap.add_argument("--seed-start", type=int, default=HELD_OUT_SEED_START)
    ap.add_argument(
        "--checkpoint",
        default=str(EMBEDDED_CHECKPOINT),
        help="Motus checkpoint: a folder (save_pretrained), a shipped one by name, or tiny-random",
    )
    add_options(
        ap,
        PolicyRuntimeConfig,
        ("strategy", "n_action_steps", "mode"),
        overrides={
            "n_action_steps": {
                "default": 0,
                "help_extra": "the embedded checkpoint recommends 16, its whole 1.92 s chunk "
                "and its best setting in the model card",
            },
            "mode": {"choices": ("joint", "vla")},
        },
    )
    ap.add_argument("--image-size", default="240x320", help="sim camera HxW (default 240x320)")
    ap.add_argument("--real-time-factor", type=float, default=1.0)
    ap.add_argument("--no-video", action="store_true", help="skip the real-vs-imagined video")
    ap.add_argument("--out", default="outputs/demo", help="folder for logs, results and video")
    return ap


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns 0 when every episode ran (whatever the success rate)."""
    ap = build_parser()
    ns = ap.parse_args(argv)
    if (
        ns.agent == "policy"
        and ns.checkpoint != "tiny-random"
        and not Path(ns.checkpoint).is_dir()
    ):
        try:
            embedded_checkpoint_dir(ns.checkpoint)
        except FileNotFoundError as exc:
            ap.error(f"--checkpoint: no checkpoint folder at {ns.checkpoint}, and {exc}")

    from motus_policy.cli.ros.imagination_video import ImaginationVideo
    from motus_policy.cli.ros.sim_eval_client import SimEvalClient, init_context

    out = Path(ns.out)
    out.mkdir(parents=True, exist_ok=True)
    profile = load_profile("aloha_sim")
    length_s = float(profile.extras["episode_length_s"][ns.task])
    name, args = bringup_for(ns)
    nodes = load_bringup(name).resolve(args)
    print(f"[demo] starting {', '.join(n.name for n in nodes)} (logs in {out}/)", flush=True)
    t0 = time.monotonic()
    outcomes, video = [], None
    policy = ns.agent == "policy"
    with BringupRunner(nodes, log_dir=out, echo=False) as runner:
        runner.wait_ready(timeout_s=120)
        ctx = init_context()
        client = SimEvalClient(
            profile, sim_node="aloha_sim", context=ctx, policy_node=POLICY_NODE if policy else None
        )
        recorder = None
        if policy and not ns.no_video:
            recorder = ImaginationVideo(client.node, profile, f"/{POLICY_NODE}/imagined_frames")
        try:
            if policy:
                client.wait_policy_active()
            print(f"[demo] graph up in {time.monotonic() - t0:.1f} s", flush=True)
            seeds = range(ns.seed_start, ns.seed_start + ns.episodes)
            bar = tqdm(seeds, desc=f"{ns.agent}/{ns.task}", unit="ep")
            for i, seed in enumerate(bar):
                if recorder is not None and i == 0:
                    recorder.start(out / f"episode_seed{seed}_real_vs_imagined.mp4")
                o = client.run_episode(seed, length_s, wall_timeout_s=30 * length_s)
                if recorder is not None and i == 0:
                    video = recorder.stop()
                outcomes.append(o)
                bar.set_postfix(success=f"{sum(x.success for x in outcomes)}/{len(outcomes)}")
        finally:
            client.close()
            ctx.try_shutdown()
    label = "Motus policy" if policy else "scripted expert"
    summary = summarize(label, ns.task, outcomes)
    summary["checkpoint"] = str(ns.checkpoint) if policy else None
    (out / "results.json").write_text(json.dumps(summary, indent=2))
    print(format_summary(summary), flush=True)
    if video:
        print(f"[demo] video of seed {ns.seed_start} (real | imagined): {video}")
    print(f"[demo] results in {out / 'results.json'}; took {time.monotonic() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
