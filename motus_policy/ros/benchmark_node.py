"""Benchmark of ``policy_node``'s command stream over DDS (two processes).

Starts ``policy_node`` (scripted backend with a realistic latency) as a subprocess, plays a fake
aloha_sim robot in this process (three 480x640 cameras at 25 Hz, joint states at 50 Hz),
configures and activates the node through its lifecycle services, and records the JointState
commands of the left arm. Prints the period error (median / p99 of |interval - period|) and the
missed periods (> 1.5 periods) both of the node's header stamps (its timer) and of the arrival
times here (timer + DDS).

    python -m motus_policy.ros.benchmark_node --seconds 10 --rate-hz 30 --latency-s 0.15
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rclpy
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState

from motus_policy.ros.conversions import image_to_msg, joint_state_to_msg, time_to_ns
from motus_recorder.profile import load_profile

REPO = Path(__file__).resolve().parents[2]


class _FakeRobot(Node):
    def __init__(self, profile):
        super().__init__("benchmark_fake_robot")
        self.profile = profile
        self.imgs = {c.name: np.zeros((c.height, c.width, 3), np.uint8) for c in profile.cameras}
        self.cams = {
            c.name: self.create_publisher(Image, c.topic, qos_profile_sensor_data)
            for c in profile.cameras
        }
        self.arms = [self.create_publisher(JointState, a.state_topic, 10) for a in profile.arms]
        self.arrivals: list[int] = []
        self.stamps: list[int] = []
        self.create_subscription(JointState, profile.arms[0].command_topic, self._on_cmd, 100)
        self.create_timer(1.0 / profile.cameras[0].rate_hz, self._pub_cams)
        self.create_timer(1.0 / profile.joint_state_rate_hz, self._pub_joints)
        self.change_state = self.create_client(ChangeState, "/motus_policy/change_state")

    def _pub_cams(self):
        now = self.get_clock().now().nanoseconds
        for name, pub in self.cams.items():
            pub.publish(image_to_msg(self.imgs[name], now))

    def _pub_joints(self):
        now = self.get_clock().now().nanoseconds
        for pub, arm in zip(self.arms, self.profile.arms, strict=True):
            pub.publish(
                joint_state_to_msg([*arm.joint_names, arm.gripper.joint_name], [0.1] * 7, now)
            )

    def _on_cmd(self, msg):
        self.arrivals.append(time.monotonic_ns())
        self.stamps.append(time_to_ns(msg.header.stamp))


def _figures(t_ns: list[int], period_ns: int, prefix: str) -> dict:
    iv = np.diff(np.asarray(t_ns, dtype=np.int64)) / 1e6
    if iv.size == 0:
        return {f"{prefix}_commands": 0}
    err = np.abs(iv - period_ns / 1e6)
    return {
        f"{prefix}_period_err_median_ms": float(np.median(err)),
        f"{prefix}_period_err_p99_ms": float(np.percentile(err, 99)),
        f"{prefix}_missed_periods": int(np.count_nonzero(iv > 1.5 * period_ns / 1e6)),
    }


def _transition(node: _FakeRobot, ex: SingleThreadedExecutor, tid: int) -> bool:
    assert node.change_state.wait_for_service(timeout_sec=30.0), "policy_node not reachable"
    req = ChangeState.Request()
    req.transition.id = tid
    fut = node.change_state.call_async(req)
    ex.spin_until_future_complete(fut, timeout_sec=60.0)
    return bool(fut.done() and fut.result().success)


def run(seconds: float, rate_hz: float, latency_s: float, strategy: str) -> dict:
    """Run both processes; returns the figures."""
    os.environ.setdefault("ROS_DOMAIN_ID", str(random.randint(101, 200)))
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ.setdefault(
        "FASTRTPS_DEFAULT_PROFILES_FILE", str(REPO / "config" / "dds" / "fastdds_shm.xml")
    )
    log = tempfile.NamedTemporaryFile("w", suffix="_policy_node.log", delete=False)  # noqa: SIM115
    args = [f"control_rate_hz:={rate_hz}", f"strategy:={strategy}", "n_execute:=8"]
    args += [f"scripted.latency_s:={latency_s}", "scripted.chunk_size:=48", "mode:=vla"]
    cmd = [sys.executable, "-m", "motus_policy.ros.policy_node", "--ros-args"]
    for a in args:
        cmd += ["-p", a]
    proc = subprocess.Popen(
        cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    rclpy.init()
    robot = _FakeRobot(load_profile("aloha_sim"))
    ex = SingleThreadedExecutor()
    ex.add_node(robot)
    try:
        t_end = time.monotonic() + 1.0
        while time.monotonic() < t_end:
            ex.spin_once(timeout_sec=0.01)
        if not (
            _transition(robot, ex, Transition.TRANSITION_CONFIGURE)
            and _transition(robot, ex, Transition.TRANSITION_ACTIVATE)
        ):
            raise RuntimeError(f"lifecycle transition failed; node log: {log.name}")
        t_start = time.monotonic_ns() + int(2e9)  # skip ramp-in / first chunk
        t_end = time.monotonic() + 2.0 + seconds
        while time.monotonic() < t_end:
            ex.spin_once(timeout_sec=0.01)
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(10)
        robot.destroy_node()
        rclpy.try_shutdown()
    keep = [i for i, t in enumerate(robot.arrivals) if t >= t_start]
    period_ns = int(1e9 / rate_hz)
    out = {"commands": len(keep)}
    out.update(_figures([robot.stamps[i] for i in keep], period_ns, "node_stamp"))
    out.update(_figures([robot.arrivals[i] for i in keep], period_ns, "arrival"))
    return out


def main(argv: list[str] | None = None) -> None:
    """CLI entry point: prints one line per figure."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rate-hz", type=float, default=30.0)
    ap.add_argument("--latency-s", type=float, default=0.15)
    ap.add_argument("--strategy", default="prefix")
    a = ap.parse_args(argv)
    figures = run(a.seconds, a.rate_hz, a.latency_s, a.strategy)
    print(f"policy_node benchmark: {a.seconds:.0f} s at {a.rate_hz:.0f} Hz, {a.strategy}, "
          f"scripted latency {a.latency_s * 1e3:.0f} ms, 3x480x640 cameras")  # fmt: skip
    for key, value in figures.items():
        print(f"  {key:32s} {value:.3f}" if isinstance(value, float) else f"  {key:32s} {value}")


if __name__ == "__main__":
    main()
