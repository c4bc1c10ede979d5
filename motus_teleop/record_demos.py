"""Record scripted-expert demonstrations in the simulation, through the ROS graph.

``python -m motus_teleop.record_demos --task transfer_cube --episodes 50`` starts the
``record_sim`` bring-up (sim node in lockstep, expert node as the leader arms, teleop node mapping
them to the sim's follower arms, recorder node on sim time)
and, per seed: resets the sim with the seed (the expert plans and waits), opens a recorder
episode at the initial state, releases the expert (which waits for ``~/go``), waits for
success, records ``--tail-s`` more seconds, then saves the episode, or discards it when the
expert failed within the task's time limit. Prints a summary; ``motus-dataset validate ROOT``
checks the result.

The lockstep chain advances only on messages, so one message lost stalls it. Before the first
episode every node's ``~/ready`` must report its topics *matched* (not only discovered:
:mod:`motus_recorder.ros.matching`); each service call is retried a bounded number of times when
its answer does not come; ``/expert/go`` is repeated until the expert acts on the *new* episode
(its answer carries the episode's ``start_ns``); and if sim time does not advance within
:data:`START_TIMEOUT_S` after the go, the episode is discarded and the seed reset again (at most
:data:`START_ATTEMPTS` times), which republishes every one-shot message. Each failure names the
service, topic or node at fault.
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
from motus_policy.robots.aloha_sim.tasks import TASKS
from motus_recorder.profile import load_profile

READY_TIMEOUT_S = 120.0
"""Wall time for every node's ``~/ready`` to report its topics matched before the first episode."""
GO_TIMEOUT_S = 60.0
"""Wall time for the expert to plan a reset episode (it needs the reset's states and poses)."""
START_TIMEOUT_S = 60.0
"""Wall time for the first two sim steps after the go; far above a step's cost under load (a
step of the 96x128 test episodes takes tens of ms; record_demos' own figures, tests/ros)."""
START_ATTEMPTS = 3
"""Resets of one seed whose episode did not start, before giving up."""
CALL_ATTEMPTS = 3
"""Tries of one service call whose answer did not come (SimEvalClient's timeout each)."""
POLL_PERIOD_S = 0.2
"""Wait between two polls of a not-yet-ready service."""


class EpisodeStartError(RuntimeError):
    """The episode's lockstep chain did not start moving (a one-shot message was lost)."""


def _retrying(call, what: str, attempts: int = CALL_ATTEMPTS):
    """``call()``, repeated when it raises TimeoutError (no answer); at most ``attempts`` tries.

    Raises:
        TimeoutError: every try timed out (the message names ``what`` and the last error).
    """
    for _ in range(attempts):
        try:
            return call()
        except TimeoutError as exc:
            last = exc
    raise TimeoutError(f"{what}: no answer in {attempts} tries ({last})")


def _poll_trigger(client, service: str, timeout_s: float, accept=None) -> str:
    """Call the Trigger ``service`` until it succeeds (and ``accept(message)``); its message.

    Raises:
        TimeoutError: not so within ``timeout_s`` of wall time; the message is the last answer.
    """
    deadline, last = time.monotonic() + timeout_s, ""
    while True:
        ok, msg = _retrying(lambda: client.call_trigger(service), service)
        if ok and (accept is None or accept(msg)):
            return msg
        last = msg
        if time.monotonic() > deadline:
            raise TimeoutError(f"{service} not successful after {timeout_s:.0f} s: {last}")
        client.executor.spin_once(timeout_sec=POLL_PERIOD_S)


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
        # discovered is not matched: wait until every node's own endpoints are connected
        for service in ("/teleop/ready", "/expert/ready", "/recorder/ready"):
            _poll_trigger(client, service, READY_TIMEOUT_S)
        bar = tqdm(total=ns.episodes, desc=f"record {ns.task}", unit="ep")
        period_s = 1.0 / profile.control_rate_hz
        last_start_ns = -1  # sim time is monotonic across resets: a new episode starts later
        started = False

        def is_new(msg: str) -> bool:
            return int(json.loads(msg)["start_ns"]) > last_start_ns

        def start_and_go() -> None:
            # Lockstep: sim time stands still at the reset until the expert acts, so the
            # recorder's first frame is exactly the episode's initial state. Teleop resumes
            # from the follower's new (reset) pose.
            nonlocal last_start_ns, started
            ok, msg = _retrying(lambda: client.call_trigger("/recorder/start"), "recorder start")
            if not ok:
                raise RuntimeError(f"recorder refused to start: {msg}")
            _retrying(lambda: client.call_set_bool("/teleop/hold", False), "teleop release")
            try:  # the expert may still be acting on the last episode until the announcement
                msg = _poll_trigger(client, "/expert/go", GO_TIMEOUT_S, accept=is_new)
            except TimeoutError as exc:
                raise EpisodeStartError(
                    f"the expert did not plan the new episode: {exc}"
                ) from None
            last_start_ns = int(json.loads(msg)["start_ns"])
            try:
                client.run_for(2 * period_s, wall_timeout_s=START_TIMEOUT_S)
            except TimeoutError:
                _ok, why = _retrying(lambda: client.call_trigger("/teleop/ready"), "teleop ready")
                raise EpisodeStartError(
                    f"sim time did not advance within {START_TIMEOUT_S:.0f} s after the expert "
                    f"started (a lockstep message was lost); teleop: {why}"
                ) from None
            started = True

        def run_seed(seed: int):
            """One episode of ``seed``, reset again when its chain did not start."""
            nonlocal started
            for attempt in range(1, START_ATTEMPTS + 1):
                started = False
                # teleop holds across the reset
                _retrying(lambda: client.call_set_bool("/teleop/hold", True), "teleop hold")
                try:
                    return client.run_episode(
                        seed, length_s, wall_timeout_s=30 * length_s, after_reset=start_and_go
                    )
                except (TimeoutError, RuntimeError) as exc:
                    if started:
                        raise  # stalled mid-episode: not a start-up loss
                    _retrying(lambda: client.call_trigger("/recorder/discard"), "discard")
                    tqdm.write(
                        f"seed {seed}: episode did not start (try {attempt}/{START_ATTEMPTS}): "
                        f"{exc}",
                        file=sys.stderr,
                    )
                    error = exc
            raise RuntimeError(
                f"seed {seed}: episode did not start in {START_ATTEMPTS} resets: {error}"
            )

        try:
            for seed in range(ns.seed_start, ns.seed_start + attempts):
                if saved >= ns.episodes:
                    break
                outcome = run_seed(seed)
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
