"""``motus-eval``: judge a policy on recorded bags (open loop) and in simulation (closed loop).

Subcommands:

* ``replay``: rebuild observations from a rosbag2 bag, predict chunks, compare with the recorded
  future; writes replay.json / replay.md / plots (/ frames.mp4) into ``--out``.
* ``sim``: N closed-loop episodes on the simulated ALOHA with the expert or the policy node;
  writes sim_eval.json / sim_eval.md (/ videos) into ``--out``.
* ``table``: one row per result file (agent, task, n, success rate, 95 % CI).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from motus_policy.backends.base import FRAME_MODES
from motus_policy.cli.options import add_options, config_kwargs
from motus_policy.evaluation.lockstep import LockstepConfig
from motus_policy.evaluation.replay import ReplayConfig
from motus_policy.robots.aloha_sim.tasks import TASKS
from motus_policy.runtime.config import PolicyRuntimeConfig

REPLAY_FIELDS = ("mode", "num_steps", "instruction", "rate_hz", "every_n_ticks", "max_chunks")
"""ReplayConfig fields that are ``motus-eval replay`` options (the staleness bounds come from
the profile)."""
LOCKSTEP_RUNTIME_FIELDS = ("strategy", "mode", "n_action_steps")
"""PolicyRuntimeConfig fields that are ``motus-eval lockstep`` options (the rest: defaults)."""


def _backend(ns, action_rate_hz: float, profile):
    if ns.backend == "motus":
        if not ns.checkpoint:
            raise SystemExit("replay: --backend motus needs --checkpoint DIR")
        from motus_policy.backends.motus import MotusBackend  # the lead's; heavy imports

        return MotusBackend(profile, ns.checkpoint, device=ns.device)
    from motus_policy.evaluation.baselines import ConstantVelocityBaseline, HoldBaseline

    kw = {
        "chunk_size": ns.chunk_size,
        "action_rate_hz": action_rate_hz,
        "copy_frames": ns.copy_frames,
    }
    if ns.backend == "hold":
        return HoldBaseline(**kw)
    v = np.full(14, ns.baseline_velocity, dtype=np.float64)
    return ConstantVelocityBaseline(velocity_per_s=v, **kw)


def cmd_replay(ns) -> int:
    """Run ``motus-eval replay``."""
    from tqdm import tqdm

    from motus_policy.evaluation.bag_reader import StreamMap, index_bag, open_bag
    from motus_policy.evaluation.replay import run_replay, tick_times
    from motus_policy.evaluation.replay_report import SideBySideVideo, write_report
    from motus_recorder.profile import load_profile

    profile = load_profile(ns.profile)
    rate = ns.rate_hz = ns.rate_hz or profile.record_rate_hz
    config = ReplayConfig(
        **config_kwargs(ns, ReplayConfig, REPLAY_FIELDS),
        joint_state_staleness_s=profile.joint_state_staleness_s,
        camera_staleness_s=tuple((c.name, c.staleness_s) for c in profile.cameras),
    )
    backend = _backend(ns, rate, profile)
    backend.load(progress=lambda line: print(f"[replay] {line}", file=sys.stderr))
    if ns.mode in FRAME_MODES and ns.backend != "motus" and not ns.copy_frames:
        print(
            f"[replay] {ns.backend} predicts no frames: actions only (--copy-frames scores the "
            "copy-last-frame reference, about 2 ms per frame)",
            file=sys.stderr,
        )
    out = Path(ns.out)
    out.mkdir(parents=True, exist_ok=True)
    streams = StreamMap.from_profile(profile)
    with open_bag(ns.bag) as reader:
        index = index_bag(reader, streams, allow_damaged=ns.allow_damaged)
        if not index.integrity.ok:
            print(
                f"[replay] WARNING: DAMAGED BAG {ns.bag}: {index.integrity.lost} mapped messages "
                "lost; replaying what could be read (--allow-damaged). "
                + "; ".join(index.integrity.problems),
                file=sys.stderr,
            )
        bar = tqdm(total=len(tick_times(index, rate)), desc="replay", unit="tick")
        with SideBySideVideo(out / "frames.mp4", fps=rate) as video:
            result = run_replay(
                reader,
                index,
                streams,
                backend,
                config,
                on_frame_pair=video if ns.video else None,
                progress=lambda n: bar.update(n - bar.n),
            )
        bar.close()
    meta = {
        "bag": str(ns.bag),
        "backend": ns.backend,
        "checkpoint": ns.checkpoint,
        "mode": ns.mode,
        "copy_frames": bool(ns.copy_frames) if ns.backend != "motus" else None,
        "rate_hz": rate,
        "bag_integrity": index.integrity.as_dict(),
    }
    summary = write_report(result, profile, meta, out)
    a = summary["actions"]
    print(
        f"[replay] {summary['chunks_compared']} chunks: MAE arm {a['mae_arm_joints']:.4g} rad, "
        f"MAE gripper {a['mae_gripper']:.4g}; skipped {sum(summary['skipped'].values())} ticks; "
        f"report in {out}/replay.md"
    )
    return 0


def cmd_sim(ns) -> int:
    """Run ``motus-eval sim``."""
    from motus_policy.cli.eval_sim import run_sim_eval, seed_list

    try:
        seed_list(*ns.seeds, ns.episodes)
    except ValueError as exc:
        raise SystemExit(f"motus-eval sim: {exc}") from None
    return run_sim_eval(ns)


def cmd_lockstep(ns) -> int:
    """Run ``motus-eval lockstep`` (in-process, zero-latency closed loop)."""
    from tqdm import tqdm

    from motus_policy.backends.motus import MotusBackend
    from motus_policy.cli.eval_sim import seed_list, write_results
    from motus_policy.evaluation.lockstep import LockstepEvaluator, run_lockstep
    from motus_policy.evaluation.sim_eval import format_summary, summarize
    from motus_recorder.profile import load_profile, with_image_size

    try:
        seeds = seed_list(*ns.seeds, ns.episodes)
        h, w = (int(v) for v in ns.image_size.lower().split("x"))
        profile = with_image_size(load_profile("aloha_sim"), h, w)
        backend = MotusBackend(profile, ns.checkpoint, device=ns.device)
        runtime = PolicyRuntimeConfig(
            **config_kwargs(ns, PolicyRuntimeConfig, LOCKSTEP_RUNTIME_FIELDS)
        )  # n_action_steps 0: the checkpoint's recommendation, resolved by the runtime
        config = LockstepConfig(**config_kwargs(ns, LockstepConfig), runtime=runtime)
    except (ValueError, FileNotFoundError) as exc:
        raise SystemExit(f"motus-eval lockstep: {exc}") from None
    backend.load(lambda line: print(line, flush=True))
    ev = LockstepEvaluator(profile, backend, config)
    bar = tqdm(total=len(seeds), desc=f"lockstep {ns.task}", unit="ep")
    wins = 0

    def progress(o) -> None:
        nonlocal wins
        wins += o.success
        bar.update(1)
        bar.set_postfix(success=f"{wins}/{bar.n}", last_reward=o.max_reward)

    try:
        outcomes = run_lockstep(ev, seeds, progress)
    finally:
        bar.close()
        ev.close()
    summary = summarize(
        "policy (lockstep)", ns.task, outcomes, label=ns.label or str(ns.checkpoint)
    )
    write_results(summary, Path(ns.out))
    print(format_summary(summary))
    return 0


def cmd_table(ns) -> int:
    """Run ``motus-eval table``."""
    from motus_policy.evaluation.sim_eval import comparison_table

    summaries = []
    for p in ns.results:
        try:
            summaries.append({**json.loads(Path(p).read_text()), "_file": str(p)})
        except (OSError, json.JSONDecodeError) as exc:
            raise SystemExit(f"table: cannot read {p}: {exc}") from None
    try:
        print(comparison_table(summaries, markdown=ns.markdown))
    except ValueError as exc:
        raise SystemExit(f"motus-eval table: {exc}") from None
    return 0


def parse_seeds(text: str) -> tuple[int, int | None]:
    """``"100"`` -> (100, None): --episodes seeds from 100; ``"100:150"`` -> (100, 150)."""
    parts = text.split(":")
    try:
        if len(parts) == 1:
            return int(parts[0]), None
        if len(parts) == 2:
            return int(parts[0]), int(parts[1])
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"--seeds: expected START or START:END, got {text!r}")


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of ``motus-eval``."""
    ap = argparse.ArgumentParser(
        prog="motus-eval",
        description="Evaluate a Motus policy: open-loop on recorded bags (replay), closed-loop "
        "in simulation (sim), and compare results (table).",
    )
    sub = ap.add_subparsers(dest="command", required=True)

    r = sub.add_parser(
        "replay",
        help="open-loop replay of a recorded rosbag2 bag",
        description="Rebuild observations from a rosbag2 bag (sqlite3 or mcap) at the policy "
        "rate with the policy node's observation assembly, predict action chunks and compare "
        "them with the recorded future joint positions. Writes replay.json, replay.md, "
        "joints.png, error_vs_horizon.png (and frames.mp4 in frame modes with --video).",
    )
    r.add_argument("--bag", required=True, help="rosbag2 folder (metadata.yaml + .db3/.mcap)")
    r.add_argument(
        "--profile",
        default="aloha_agilex_2",
        help="robot profile name or YAML path; its camera topics, arm state topics and joint "
        "names map the bag (write a YAML to read a bag with other topic names)",
    )
    r.add_argument("--checkpoint", help="Motus checkpoint folder (with --backend motus)")
    r.add_argument("--device", default="auto", help="Motus device: auto | cpu | cuda[:i]")
    r.add_argument(
        "--backend",
        choices=["motus", "hold", "constant_velocity"],
        default=None,
        help="model: motus (needs --checkpoint; the default when given), hold (repeat the "
        "state: the do-nothing baseline) or constant_velocity (extrapolation baseline)",
    )
    add_options(
        r,
        ReplayConfig,
        REPLAY_FIELDS,
        flags={"every_n_ticks": "--every"},
        overrides={
            "mode": {"default": "joint", "help_extra": "joint = actions + frames"},
            "rate_hz": {"default": None, "help_extra": "default: the profile's"},
        },
    )
    r.add_argument("--chunk-size", type=int, default=48, help="A for the fake backends")
    r.add_argument(
        "--baseline-velocity",
        type=float,
        default=0.0,
        help="per-joint velocity of the constant_velocity baseline (unit/s)",
    )
    r.add_argument(
        "--copy-frames",
        action="store_true",
        help="hold / constant_velocity in a frame mode (joint, wm): imagine the observation's "
        "composite unchanged, so the report has the copy-last-frame PSNR / SSIM to judge a "
        "model's frames against (about 2 ms of scoring per frame, 3.2 frames per 30 Hz tick "
        "with 48-action / 4-frame chunks); without it the baselines predict no frames and "
        "only actions are scored",
    )
    r.add_argument("--video", action="store_true", help="write frames.mp4 (frame modes)")
    r.add_argument(
        "--allow-damaged",
        action="store_true",
        help="replay a damaged bag (messages lost against metadata.yaml / the MCAP summary, "
        "a CRC mismatch, an unreadable chunk) as far as it reads, with a warning and the count "
        "lost in replay.json; without it such a bag is an error (exit 2)",
    )
    r.add_argument("--out", default="outputs/replay", help="output folder")
    r.set_defaults(func=cmd_replay)

    s = sub.add_parser(
        "sim",
        help="closed-loop episodes in the MuJoCo ALOHA simulation",
        description="Start (or attach to) the simulated ALOHA with an agent, run episodes on "
        "the given seeds and report the success rate with its Wilson 95 % interval, reward "
        "curves, optional videos and the policy node's latency. Writes sim_eval.json and "
        "sim_eval.md into --out.",
    )
    s.add_argument("--task", default="transfer_cube", choices=TASKS)
    s.add_argument(
        "--episodes",
        type=int,
        default=None,
        help="number of episodes (default: the size of --seeds START:END)",
    )
    s.add_argument(
        "--seeds",
        type=parse_seeds,
        default=parse_seeds("100000"),
        help="START or START:END (END exclusive); default 100000 (held out)",
    )
    s.add_argument("--agent", choices=["expert", "policy"], default="expert")
    s.add_argument(
        "--bringup",
        default=None,
        help="bring-up description to start (default: sim_expert for expert, sim for policy)",
    )
    s.add_argument(
        "--attach",
        action="store_true",
        help="do not start nodes: evaluate the graph that is already running",
    )
    s.add_argument("--label", default=None, help="name of this run in tables (e.g. checkpoint)")
    s.add_argument("--policy-node", default="motus_policy", help="policy node name (~/status)")
    s.add_argument(
        "--checkpoint",
        default=None,
        help="Motus checkpoint folder for --agent policy (default: the bring-up's)",
    )
    s.add_argument(
        "--bringup-arg",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra bring-up argument, e.g. image_height=240 (repeatable)",
    )
    s.add_argument(
        "--video-topic",
        default=None,
        help="camera topic to record one MP4 per episode from (e.g. /cam_high/image_raw)",
    )
    s.add_argument("--out", default="outputs/sim_eval", help="output folder")
    s.set_defaults(func=cmd_sim)

    lk = sub.add_parser(
        "lockstep",
        help="closed-loop episodes in one process, inference with zero latency (no ROS)",
        description="Run the policy runtime (scheduler, interpolation, safety gate) and a "
        "Motus checkpoint against the MuJoCo ALOHA in one process; the simulator waits for "
        "every inference, so this measures the checkpoint, not the deployment. Fast: use it "
        "for checkpoint selection and success-vs-steps curves; `motus-eval sim` measures the "
        "deployed stack. Writes sim_eval.json and sim_eval.md into --out.",
    )
    lk.add_argument("--checkpoint", required=True, help="Motus checkpoint folder")
    add_options(lk, LockstepConfig, ("task",))
    lk.add_argument("--episodes", type=int, default=None, help="number of episodes")
    lk.add_argument(
        "--seeds",
        type=parse_seeds,
        default=parse_seeds("100000"),
        help="START or START:END (END exclusive); default 100000 (held out)",
    )
    add_options(
        lk,
        PolicyRuntimeConfig,
        LOCKSTEP_RUNTIME_FIELDS,
        overrides={
            "mode": {
                "choices": ("joint", "vla"),
                "help": "Motus mode (default joint, as the policy node and make demo; the "
                "embedded checkpoint: joint 12/20, vla 3/20 on the same seeds)",
            },
            "n_action_steps": {"default": 0},
        },
    )
    add_options(lk, LockstepConfig, ("episode_length_s",))
    lk.add_argument("--image-size", default="240x320", help="rendered camera HxW")
    lk.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    lk.add_argument("--label", default=None, help="name of this run in tables")
    lk.add_argument("--out", default="outputs/lockstep", help="output folder")
    lk.set_defaults(func=cmd_lockstep)

    t = sub.add_parser(
        "table",
        help="compare sim results: one row per RESULT.json",
        description="Print one row per sim_eval.json: agent/label, task, n, success rate, 95 % "
        "Wilson interval.",
    )
    t.add_argument("results", nargs="+", help="sim_eval.json files")
    t.add_argument("--markdown", action="store_true", help="Markdown table instead of text")
    t.set_defaults(func=cmd_table)
    return ap


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``motus-eval``; returns the exit status."""
    ns = build_parser().parse_args(argv)
    if ns.command == "replay" and ns.backend is None:
        ns.backend = "motus" if ns.checkpoint else "hold"
    from motus_policy.evaluation.bag_reader import BagError

    try:
        return ns.func(ns)
    except BagError as exc:
        print(f"motus-eval {ns.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
