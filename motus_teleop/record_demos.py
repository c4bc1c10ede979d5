"""Record scripted-expert demonstrations in the simulation, through the ROS graph.

``python -m motus_teleop.record_demos --task transfer_cube --episodes 50`` starts the
``record_sim`` bring-up (sim node in lockstep, expert node as the leader arms, teleop node mapping
them to the sim's follower arms, recorder node on sim time)
and, per seed: resets the sim with the seed (the expert plans and waits), opens a recorder
episode at the initial state, releases the expert (which waits for ``~/go``), waits for
success, records ``--tail-s`` more seconds, then saves the episode, or discards it when the
expert failed within the task's time limit. Prints a summary; ``motus-dataset validate ROOT``
checks the result.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from tqdm import tqdm

from motus_policy.bringup import load_bringup
from motus_policy.bringup.runner import BringupRunner
from motus_policy.robots.aloha_sim.tasks import TASKS
from motus_recorder.profile import load_profile


def main(argv: list[str] | None = None) -> int:
    """Record demonstrations; returns 0 when every requested episode was saved."""
    ap = argparse.ArgumentParser(
        prog="python -m motus_teleop.record_demos",
        description="Record scripted-expert demonstrations of the simulated ALOHA in Motus's "
        "fine-tuning format, through the ROS graph (expert -> sim -> recorder).",
    )
    ap.add_argument("--task", default="transfer_cube", choices=TASKS)
    ap.add_argument("--episodes", type=int, default=50, help="episodes to save (default 50)")
    ap.add_argument("--seed-start", type=int, default=0, help="first seed (default 0)")
    ap.add_argument("--root", default="data/sim", help="dataset root (default data/sim)")
    ap.add_argument("--variant", default="expert")
    ap.add_argument("--image-size", default="480x640", help="camera HxW (default 480x640)")
    ap.add_argument("--tail-s", type=float, default=0.5, help="sim seconds kept after success")
    ap.add_argument("--max-attempts", type=int, default=0, help="seeds to try (0 = 2 x episodes)")
    ap.add_argument("--log-dir", default="outputs/record_demos")
    ns = ap.parse_args(argv)

    from motus_policy.cli.ros.sim_eval_client import SimEvalClient, init_context

    profile = load_profile("aloha_sim")
    length_s = float(profile.extras["episode_length_s"][ns.task])
    h, w = ns.image_size.split("x")
    args = {
        "task": ns.task,
        "root": str(Path(ns.root).resolve()),
        "variant": ns.variant,
        "instruction": profile.extras["instructions"][ns.task],
        "image_height": h,
        "image_width": w,
    }
    nodes = load_bringup("record_sim").resolve(args)
    saved, failed, t0 = 0, [], time.monotonic()
    attempts = ns.max_attempts or 2 * ns.episodes
    with BringupRunner(nodes, log_dir=ns.log_dir, echo=False) as runner:
        runner.wait_ready(timeout_s=120)
        ctx = init_context()
        client = SimEvalClient(profile, sim_node="aloha_sim", context=ctx)
        pubs, subs = {}, {}
        for arm in profile.arms:
            pubs[f"/leader/{arm.name}_arm/joint_states"] = 1  # expert (remapped, record_sim)
            subs[f"/leader/{arm.name}_arm/joint_states"] = 1  # teleop
            pubs[arm.command_topic] = 1  # teleop
            subs[arm.command_topic] = 1  # sim
            subs[arm.state_topic] = 3  # expert, teleop, recorder
        client.wait_for_graph(pubs, subs)
        bar = tqdm(total=ns.episodes, desc=f"record {ns.task}", unit="ep")

        def start_and_go() -> None:
            # Lockstep: sim time stands still at the reset until the expert acts, so the
            # recorder's first frame is exactly the episode's initial state. Teleop resumes
            # from the follower's new (reset) pose.
            ok, msg = client.call_trigger("/recorder/start")
            if not ok:
                raise RuntimeError(f"recorder refused to start: {msg}")
            client.call_set_bool("/teleop/hold", False)
            ok, msg = client.call_trigger("/expert/go")
            if not ok:
                raise RuntimeError(f"expert did not start: {msg}")

        try:
            for seed in range(ns.seed_start, ns.seed_start + attempts):
                if saved >= ns.episodes:
                    break
                client.call_set_bool("/teleop/hold", True)  # across the reset
                outcome = client.run_episode(
                    seed, length_s, wall_timeout_s=30 * length_s, after_reset=start_and_go
                )
                if outcome.success:
                    client.run_for(ns.tail_s, wall_timeout_s=60)
                    ok, msg = client.call_trigger("/recorder/stop")
                else:
                    client.call_trigger("/recorder/discard")
                    ok, msg = False, "expert failed"
                if ok:
                    saved += 1
                    bar.update(1)
                else:
                    failed.append((seed, msg))
                bar.set_postfix(saved=saved, failed=len(failed))
        finally:
            bar.close()
            client.close()
            ctx.try_shutdown()
    took = time.monotonic() - t0
    print(
        f"saved {saved}/{ns.episodes} episodes to {ns.root}/{ns.task}/{ns.variant} in {took:.0f} s"
    )
    for seed, msg in failed:
        print(f"  seed {seed}: not saved ({msg})")
    return 0 if saved >= ns.episodes else 1


if __name__ == "__main__":
    sys.exit(main())
