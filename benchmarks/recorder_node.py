"""Recorder benchmark over real DDS: drops and encode speed at the real robot's data rates.

``python -m benchmarks.recorder_node --seconds 10`` starts ``recorder_node`` (profile
``aloha_agilex_2``: three 640x480 rgb8 cameras at 30 Hz) as a process and publishes from this
process camera-like images at 30 Hz and, per arm, the measured and the commanded JointState (the
recorder's qpos with its default ``qpos_source: command``, e.g. teleop_node's output) at 200 Hz.
Each sample is stamped at its scheduled time, as a driver stamps at exposure / readout (stamping
at publish time measured this process's scheduling jitter as drops). It waits for
``/recorder/ready`` (every stream matched), keeps publishing while the start and stop calls are
in flight (their clients are created up front, so the episode's ends see no gap), records one
episode for ``--seconds``, saves it and prints: frames recorded vs expected, drops per stream
(from the episode's sync statistics) and the save time (encode flush + commit). Exit status 0
when no frame was dropped. Targets (issues 4 and 15): 0 drops, encoding >= 1.5x real time.
(Before the benchmarks/ folder this was ``motus_recorder/ros/bench_recorder.py``.)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState
from std_srvs.srv import Trigger

from motus_recorder.profile import load_profile
from motus_recorder.ros.conversions import image_to_msg, joint_state_to_msg

REPO = Path(__file__).resolve().parents[1]


JOINT_PERIOD_S = 1.0 / 200.0
"""Joint state and command period: the Piper driver's 200 Hz (profile aloha_agilex_2)."""
FRAME_PERIOD_S = 1.0 / 30.0
"""Camera period: 30 Hz (profile aloha_agilex_2)."""
SERVICE_TIMEOUT_S = 120.0
"""Longest wait for a service answer (``~/stop`` flushes the encoder and writes files)."""


def _result(fut, name: str) -> str:
    res = fut.result()
    if res is None or not res.success:
        raise RuntimeError(f"{name} failed: {res and res.message}")
    return res.message


def main(argv=None) -> int:
    """Run the benchmark and print the figures; 0 when no frame was dropped."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--preset", default="veryfast", help="x264 preset of the recorder")
    ap.add_argument("--root", default="", help="dataset folder (default: a new temp folder)")
    ap.add_argument("--lag-s", type=float, default=-1.0,
                    help="recorder lag_s (sampling delay, s; negative = one period)")  # fmt: skip
    ns = ap.parse_args(argv)
    prof = load_profile("aloha_agilex_2")
    if ns.root:
        root = Path(ns.root)
        root.mkdir(parents=True, exist_ok=True)
    else:
        root = Path(tempfile.mkdtemp(prefix="motus_bench_rec_"))
    # both processes need the large-SHM Fast DDS profile (docs/platform.md §1.4), set before
    # rclpy.init
    os.environ.setdefault(
        "FASTRTPS_DEFAULT_PROFILES_FILE", str(REPO / "config/dds/fastdds_shm.xml")
    )
    env = dict(os.environ)
    cmd = [sys.executable, "-m", "motus_recorder.ros.recorder_node", "--ros-args",
           "-p", "profile:=aloha_agilex_2", "-p", f"root:={root}", "-p", "task:=bench",
           "-p", f"preset:={ns.preset}", "-p", "instruction:=recorder benchmark",
           "-p", f"lag_s:={ns.lag_s}"]  # fmt: skip
    log = open(root / "recorder.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    ctx = Context()
    rclpy.init(context=ctx)
    node = rclpy.create_node("motus_bench_recorder", context=ctx)
    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(node)
    try:
        cams = [
            (c, node.create_publisher(Image, c.topic, qos_profile_sensor_data))
            for c in prof.cameras
        ]
        arms = [
            (a, list(a.joint_state_names),
             node.create_publisher(JointState, a.state_topic, 10))
            for a in prof.arms
        ]  # fmt: skip
        commands = [node.create_publisher(JointState, a.command_topic, 10) for a in prof.arms]
        clients = {
            name: node.create_client(Trigger, f"/recorder/{name}")
            for name in ("ready", "start", "stop")
        }
        rng = np.random.default_rng(0)
        base = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
        q = (prof.position_min + prof.position_max) / 2

        # Sensor-like stamps: sample k of a stream is stamped at its scheduled time (as drivers
        # stamp at exposure / readout), not at the moment this process got around to publishing
        # it; a late publish is delivered late with its true stamp (the recorder's lag absorbs it).
        clock0_ns, mono0 = node.get_clock().now().nanoseconds, time.monotonic()
        sched = {"joints": 0, "frames": 0}

        def stamp(t_s: float) -> int:
            return clock0_ns + round(t_s * 1e9)

        def publish_for(seconds: float, until=None) -> int:
            """Publish at the robot's rates for ``seconds``, or while ``until`` is pending.

            A pending future ``until`` is waited for at most SERVICE_TIMEOUT_S. Returns the
            camera frames published since ``publish_for.frames`` was last zeroed.
            """
            t_start = time.monotonic()
            while (
                time.monotonic() - t_start < seconds
                if until is None
                else not until.done() and time.monotonic() - t_start < SERVICE_TIMEOUT_S
            ):
                elapsed = time.monotonic() - mono0
                while sched["joints"] * JOINT_PERIOD_S <= elapsed:  # every due sample, in order
                    k = sched["joints"]
                    t = stamp(k * JOINT_PERIOD_S)
                    for (arm, names, pub), cmd in zip(arms, commands, strict=True):
                        sl = slice(0, 7) if arm.name == "left" else slice(7, 14)
                        target = q[sl] + 0.01 * np.sin(k / 50)
                        cmd.publish(joint_state_to_msg(names, target, t))
                        pub.publish(joint_state_to_msg(names, 0.99 * target, t))
                    sched["joints"] += 1
                while sched["frames"] * FRAME_PERIOD_S <= elapsed:
                    j = sched["frames"]
                    img = np.roll(base, j, axis=1)
                    for cam, pub in cams:
                        pub.publish(image_to_msg(img, stamp(j * FRAME_PERIOD_S), cam.name))
                    sched["frames"] += 1
                    publish_for.frames += 1
                ex.spin_once(timeout_sec=0)
                next_s = min(sched["joints"] * JOINT_PERIOD_S, sched["frames"] * FRAME_PERIOD_S)
                time.sleep(max(0.0, mono0 + next_s - time.monotonic()))
            return publish_for.frames

        publish_for.frames = 0
        t_ready = time.monotonic()
        while "READY" not in (root / "recorder.log").read_text():
            if time.monotonic() - t_ready > 60 or proc.poll() is not None:
                raise RuntimeError(
                    "recorder_node did not start:\n" + (root / "recorder.log").read_text()
                )
            time.sleep(0.1)
        for name, cli in clients.items():
            if not cli.wait_for_service(timeout_sec=60):
                raise TimeoutError(f"/recorder/{name} not available")
        t_ready = time.monotonic()
        while True:  # every stream matched (the recorder refuses to start otherwise)
            ready = clients["ready"].call_async(Trigger.Request())
            publish_for(0.0, until=ready)
            if ready.result() is not None and ready.result().success:
                break
            if time.monotonic() - t_ready > 60:
                raise TimeoutError(f"recorder not ready: {ready.result()}")
            publish_for(0.2)
        publish_for(1.0)  # warm-up: buffers
        started = clients["start"].call_async(Trigger.Request())
        publish_for(0.0, until=started)
        _result(started, "/recorder/start")
        publish_for.frames = 0
        publish_for(ns.seconds)
        t_save = time.monotonic()
        stopped = clients["stop"].call_async(Trigger.Request())
        publish_for(0.0, until=stopped)  # the recorder samples until the stop arrives
        save_s = time.monotonic() - t_save
        res = stopped.result()
        if res is None or not res.success:  # discarded: sync fault, encoder back-pressure
            print(f"recorder benchmark: FAILED, {res and res.message}")
            return 1
        msg = res.message
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=ctx)
        proc.terminate()
        proc.wait(10)
        log.close()
    meta = json.loads(next((root / "bench").rglob("meta/0.json")).read_text())
    sync = meta["sync"]
    frames = meta["frames"]
    expected = round(ns.seconds * prof.record_rate_hz)
    print(f"recorder benchmark ({ns.seconds:.0f} s, 3x640x480 rgb8 @ 30 Hz + 2 arms x "
          f"(state + command) JointState @ 200 Hz, x264 {ns.preset}): {msg}")  # fmt: skip
    print(
        f"  frames recorded {frames} of ~{expected}; drops {sync['dropped']} "
        f"({ {k: v['drops'] for k, v in sync['streams'].items()} })"
    )
    print(
        f"  save (encode flush + commit) took {save_s:.2f} s after {ns.seconds:.0f} s of capture: "
        "the encoder kept pace (a full encode queue would have failed the episode); encode "
        "throughput alone: python -m benchmarks.recorder"
    )
    return 0 if sync["dropped"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
