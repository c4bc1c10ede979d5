"""Benchmark the simulated ALOHA: physics steps/s, render time per camera, in-process RTF.

Run: ``MUJOCO_GL=egl python -m benchmarks.sim [--task insertion] [--steps 1000]``.
Prints figures only (no pass/fail); the node's achieved RTF over DDS is printed by
``tests/ros/test_aloha_sim_node.py`` and logged by the node every 5 s.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from motus_policy.robots.aloha_sim.runner import SimRunner
from motus_policy.robots.aloha_sim.sim import DT_S, TASKS, AlohaSim, AlohaSimConfig
from motus_recorder.profile import load_profile


def main(argv: list[str] | None = None) -> None:
    """Print steps/s without rendering, ms per 480x640 render per camera, runner RTF."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="transfer_cube", choices=TASKS)
    ap.add_argument("--steps", type=int, default=1000, help="physics steps to time")
    ap.add_argument("--renders", type=int, default=20, help="renders to time per camera")
    ap.add_argument("--shadows", action="store_true", help="render with shadows (slow)")
    ns = ap.parse_args(argv)
    profile = load_profile("aloha_sim")
    sim = AlohaSim(AlohaSimConfig(task=ns.task, shadows=ns.shadows), profile)
    sim.reset(0)
    hold = sim.last_target
    hold[[6, 13]] = np.clip(hold[[6, 13]], 0, 1)
    t = time.perf_counter()
    for _ in range(ns.steps):
        sim.step(hold)
    dt = time.perf_counter() - t
    print(f"physics: {ns.steps / dt:.0f} control steps/s without rendering ({ns.task})")
    for name in sim.camera_names:
        sim.render([name])  # warm-up (context creation)
        t = time.perf_counter()
        for _ in range(ns.renders):
            sim.render([name])
        ms = (time.perf_counter() - t) / ns.renders * 1e3
        h, w = sim.camera_size(name)
        shadows = "on" if ns.shadows else "off"
        src = profile.camera(name).source
        print(f"render {name} ({src}) {h}x{w}, shadows {shadows}: {ms:.1f} ms")
    runner = SimRunner(sim, profile, render=True)
    runner.reset(0)
    n = 250
    t = time.perf_counter()
    for _ in range(n):
        runner.step()
    dt = time.perf_counter() - t
    print(
        f"runner with 3 cameras at 25 Hz: {n / dt:.1f} steps/s = RTF {n * DT_S / dt:.2f} (no DDS)"
    )
    sim.close()


if __name__ == "__main__":
    main()
