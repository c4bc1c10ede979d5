"""Evaluate the scripted expert headless over many seeds.

Usage::

    python -m motus_teleop.expert --task transfer_cube --episodes 50 [--seed-start 0] \
        [--video PATH]

Prints the success rate with a Wilson 95 % interval, the failing seeds and the wall time.
``--video`` renders the first episode (``cam_high``, the scene's top camera, 240x320, shadows off)
to an MP4.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from motus_policy.evaluation.stats import wilson_interval
from motus_policy.robots.aloha_sim.sim import AlohaSim, AlohaSimConfig
from motus_teleop.expert.config import TASKS
from motus_teleop.expert.episode import run_episode
from motus_teleop.expert.expert import make_expert

VIDEO_HW = (240, 320)
VIDEO_CAMERA = "cam_high"
"""Profile camera of the video (MuJoCo camera ``top``)."""
VIDEO_FPS = 25
"""Every second 50 Hz step is rendered (the profile's camera / record rate)."""


def record_video(task: str, seed: int, path: Path) -> bool:
    """Runs one episode while rendering :data:`VIDEO_CAMERA` to an H.264 MP4 at ``path``.

    Returns:
        Whether the episode succeeded.
    """
    os.environ.setdefault("MUJOCO_GL", "egl")
    import av  # noqa: PLC0415  (only needed for --video)

    expert = make_expert(task)
    h, w = VIDEO_HW
    sim_config = AlohaSimConfig(task=task, image_height=h, image_width=w, cameras=(VIDEO_CAMERA,))
    sim = AlohaSim(sim_config, expert.profile)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial.mp4")
    container = av.open(str(tmp), mode="w")
    stream = container.add_stream("libx264", rate=VIDEO_FPS)
    stream.height, stream.width = VIDEO_HW
    stream.pix_fmt = "yuv420p"

    def on_step(k: int, sim: AlohaSim) -> None:
        if k % 2 == 0:
            rgb = sim.render([VIDEO_CAMERA])[VIDEO_CAMERA]
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            container.mux(stream.encode(frame))

    try:
        result = run_episode(task, seed, expert, on_step=on_step, sim=sim)
        container.mux(stream.encode())
    except BaseException:
        container.close()
        tmp.unlink(missing_ok=True)
        raise
    finally:
        sim.close()
    container.close()
    tmp.replace(path)
    return result.success


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the process exit code (0)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", choices=TASKS, required=True)
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--seed-start", type=int, default=0)
    parser.add_argument("--video", type=Path, default=None, help="MP4 of the first episode")
    args = parser.parse_args(argv)
    if args.episodes < 1:
        parser.error(f"--episodes: expected >= 1, got {args.episodes}")

    if args.video is not None:
        ok = record_video(args.task, args.seed_start, args.video)
        print(f"video of seed {args.seed_start} ({'success' if ok else 'failure'}): {args.video}")

    expert = make_expert(args.task)
    seeds = range(args.seed_start, args.seed_start + args.episodes)
    failed: list[tuple[int, float]] = []
    start = time.perf_counter()
    bar = tqdm(seeds, desc=args.task, unit="ep")
    for seed in bar:
        result = run_episode(args.task, seed, expert)
        if not result.success:
            failed.append((seed, result.max_reward))
        bar.set_postfix(fail=len(failed))
    wall = time.perf_counter() - start
    n = len(seeds)
    ok = n - len(failed)
    lo, hi = wilson_interval(ok, n)
    print(
        f"{args.task}: {ok}/{n} = {100 * ok / n:.1f} % success "
        f"(Wilson 95 % [{100 * lo:.1f}, {100 * hi:.1f}] %), "
        f"seeds {seeds.start}..{seeds.stop - 1}, wall {wall:.1f} s ({wall / n:.2f} s/episode)"
    )
    print("failing seeds (max reward):", ", ".join(f"{s} ({r:g})" for s, r in failed) or "none")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
