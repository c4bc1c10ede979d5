"""Benchmark of ``motus-eval replay`` without a model: how much faster than real time it runs.

Run: ``python -m benchmarks.replay [--seconds 8] [--modes vla,joint] [--storage mcap]``. Writes
a bag like a recording of the profile's robot (default ``aloha_agilex_2``: three 480 x 640 rgb8
cameras at 30 Hz, both arms' ``JointState`` at ``--joint-rate-hz``, camera-like images: a moving
gradient plus sensor noise) with ``rosbags``, then runs ``motus-eval replay`` on it with the
do-nothing ``hold`` baseline (A = 48 at the record rate, the CLI's defaults) once per mode and
prints, per mode, the wall and CPU time and the ratio recording duration / wall time (issue #15
§9 asks for >= 5 on a quiet 2-core machine). ``vla`` compares actions only; ``joint`` (the
CLI's default mode) also scores the baseline's imagined frames (copies of the observation's
composite, four per chunk) against the recorded ones with PSNR / SSIM at the model's frame
size, which costs ~2.5 ms per frame here. ``--profile-top N`` also prints the N most expensive
functions (cProfile; its overhead slows the run).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import tempfile
import time
from pathlib import Path

import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from motus_policy.cli.eval import main as eval_main
from motus_recorder.profile import load_profile

TS = get_typestore(Stores.ROS2_JAZZY)


def _header(ns: int):
    time_t = TS.types["builtin_interfaces/msg/Time"]
    return TS.types["std_msgs/msg/Header"](
        stamp=time_t(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000), frame_id=""
    )


def write_bench_bag(
    path: Path,
    profile_name: str,
    seconds: float,
    joint_rate_hz: float,
    storage: str = "mcap",
    seed: int = 0,
) -> int:
    """Write a camera-like recording of ``seconds`` into the bag folder ``path``.

    Cameras at the profile's size and ``record_rate_hz`` (rgb8 ``sensor_msgs/Image``), both
    arms' ``JointState`` (6 joints + gripper, the profile's names) at ``joint_rate_hz`` moving
    slowly inside the limits. Returns the number of messages written.
    """
    prof = load_profile(profile_name)
    rng = np.random.default_rng(seed)
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    t0 = 1_700_000_000_000_000_000
    image_t = TS.types["sensor_msgs/msg/Image"]
    joint_t = TS.types["sensor_msgs/msg/JointState"]
    lo, hi = prof.position_min, prof.position_max
    events: list[tuple[int, str, object]] = []
    n_img = int(seconds * prof.record_rate_hz)
    n_joint = int(seconds * joint_rate_hz)
    for k in range(n_joint):
        events.append((t0 + round(k * 1e9 / joint_rate_hz), "joint", k))
    for k in range(n_img):
        events.append((t0 + round(k * 1e9 / prof.record_rate_hz), "image", k))
    events.sort(key=lambda e: (e[0], e[1]))
    base = {
        c.name: np.add.outer(np.arange(c.height), np.arange(c.width)).astype(np.int32)
        for c in prof.cameras
    }
    count = 0
    with Writer(path, version=9, storage_plugin=plugin) as w:
        cams = [
            (c, w.add_connection(c.topic, image_t.__msgtype__, typestore=TS)) for c in prof.cameras
        ]
        arms = [
            (a, w.add_connection(a.state_topic, joint_t.__msgtype__, typestore=TS))
            for a in prof.arms
        ]
        for ns, kind, k in events:
            if kind == "joint":
                q = lo + (hi - lo) * (0.5 + 0.3 * np.sin(0.5 * k / joint_rate_hz + np.arange(14)))
                for i, (arm, conn) in enumerate(arms):
                    msg = joint_t(
                        header=_header(ns),
                        name=list(arm.joint_state_names),
                        position=q[7 * i : 7 * i + 7].astype(np.float64),
                        velocity=np.zeros(0),
                        effort=np.zeros(0),
                    )
                    w.write(conn, ns, TS.serialize_cdr(msg, conn.msgtype))
                    count += 1
                continue
            for cam, conn in cams:
                noise = rng.integers(0, 24, size=(cam.height, cam.width, 1), dtype=np.int32)
                img = ((base[cam.name][..., None] + 3 * k + noise + (0, 40, 80)) % 256).astype(
                    np.uint8
                )
                msg = image_t(
                    header=_header(ns),
                    height=cam.height,
                    width=cam.width,
                    encoding="rgb8",
                    is_bigendian=0,
                    step=3 * cam.width,
                    data=img.reshape(-1),
                )
                w.write(conn, ns, TS.serialize_cdr(msg, conn.msgtype))
                count += 1
    return count


def main(argv: list[str] | None = None) -> int:
    """Write the bag, replay it once per mode, print the figures; returns 0.

    Raises:
        SystemExit: a replay exited non-zero (the message names the mode and the exit code).
    """
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="aloha_agilex_2")
    ap.add_argument("--seconds", type=float, default=8.0, help="recording length [s]")
    ap.add_argument("--joint-rate-hz", type=float, default=200.0)
    ap.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    ap.add_argument(
        "--modes",
        default="vla,joint,joint+copy",
        help="comma-separated replay --mode values; '+copy' adds --copy-frames (vla: actions; "
        "joint: actions, and frames when the backend predicts them; joint+copy: also the "
        "hold baseline's copy-last-frame frames, scored with PSNR / SSIM)",
    )
    ap.add_argument("--profile-top", type=int, default=0, help="print the N costliest functions")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        bag = Path(tmp) / "bag"
        t = time.perf_counter()
        n = write_bench_bag(bag, args.profile, args.seconds, args.joint_rate_hz, args.storage)
        print(f"bag: {n} messages, {args.seconds:g} s, written in {time.perf_counter() - t:.1f} s")
        for entry in args.modes.split(","):
            mode, _, extra = entry.partition("+")
            if extra not in ("", "copy"):
                raise SystemExit(f"--modes: expected MODE or MODE+copy, got {entry!r}")
            cmd = ["replay", "--bag", str(bag), "--profile", args.profile, "--backend", "hold"]
            cmd += ["--mode", mode, "--out", str(Path(tmp) / f"out_{mode}{extra}")]
            cmd += ["--copy-frames"] if extra else []
            prof = cProfile.Profile() if args.profile_top else None
            wall, cpu = time.perf_counter(), time.process_time()
            if prof:
                prof.enable()
            rc = eval_main(cmd)
            if prof:
                prof.disable()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            if rc != 0:
                raise SystemExit(f"replay --mode {entry}: exit {rc}")
            print(
                f"replay ({entry}, hold, {args.storage}): wall {wall:.2f} s, CPU {cpu:.2f} s; "
                f"real-time ratio {args.seconds / wall:.2f}x "
                f"(CPU-time ratio {args.seconds / cpu:.2f}x)",
                flush=True,
            )
            if prof:
                s = io.StringIO()
                pstats.Stats(prof, stream=s).sort_stats("cumulative").print_stats(args.profile_top)
                print(s.getvalue())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
