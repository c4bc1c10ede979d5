"""Benchmark of the recording path: validate + T-layout + H.264 encode + save, camera-like data.

Run: ``python -m benchmarks.recorder [--profile aloha_agilex_2] [--frames 300]``. Prints the
sustained frames per second of ``add_frame`` (encoding overlapped on the worker thread) and of
the whole episode including the final flush and file commit, against the record rate.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

from motus_recorder.composite import compose_t_layout
from motus_recorder.episode import Frame
from motus_recorder.profile import load_profile
from motus_recorder.writers.motus_format import MotusFormatWriter, WriterConfig
from motus_recorder.writers.video import VideoEncoder


def _frames(profile, n: int, rng: np.random.Generator):
    """Camera-like frames: a moving gradient plus sensor noise (noise dominates x264 cost)."""
    cams = profile.cameras
    base = {
        c.name: np.add.outer(np.arange(c.height), np.arange(c.width)).astype(np.int32)
        for c in cams
    }
    lo, hi = profile.position_min, profile.position_max
    for k in range(n):
        images = {}
        for c in cams:
            noise = rng.integers(0, 24, size=(c.height, c.width, 1), dtype=np.int32)
            img = (base[c.name][..., None] + 3 * k + noise + np.array([0, 40, 80])) % 256
            images[c.name] = img.astype(np.uint8)
        q = lo + (hi - lo) * (0.5 + 0.3 * np.sin(0.05 * k + np.arange(14)))
        yield Frame(t_ns=1 + k * round(1e9 / profile.record_rate_hz), images=images, qpos=q)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="aloha_agilex_2")
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--preset", default="veryfast")
    args = ap.parse_args(argv)
    profile = load_profile(args.profile)
    frames = list(_frames(profile, args.frames, np.random.default_rng(0)))
    with tempfile.TemporaryDirectory() as root:
        cfg = WriterConfig(root=root, task="bench", preset=args.preset, queue_size=512)
        w = MotusFormatWriter(cfg, profile)
        w.start_episode("benchmark")
        t0 = time.perf_counter()
        for f in frames:
            w.add_frame(f)
        t1 = time.perf_counter()
        w.save_episode()
        t2 = time.perf_counter()
        w.close()
    h, wd = w.composite_hw
    n = len(frames)
    composites = [compose_t_layout(*(f.images[c] for c in profile.camera_names)) for f in frames]
    with tempfile.TemporaryDirectory() as d:
        enc = VideoEncoder(f"{d}/v.mp4", wd, h, profile.record_rate_hz, preset=args.preset)
        t3 = time.perf_counter()
        for c in composites:
            enc.write(c)
        enc.close()
        t4 = time.perf_counter()
    print(f"profile {profile.name}: composite {wd}x{h}, {n} frames, libx264 {args.preset} crf 23")
    print(f"H.264 encode alone (one thread calling PyAV): {n / (t4 - t3):.0f} frames/s")
    print(f"add_frame (validate + compose + enqueue): {n / (t1 - t0):.0f} frames/s")
    fps = n / (t2 - t0)
    print(
        f"end to end incl. encode flush + commit: {fps:.1f} frames/s (record rate "
        f"{profile.record_rate_hz:.0f} Hz -> {fps / profile.record_rate_hz:.1f}x real time)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
