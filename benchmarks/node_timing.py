"""Benchmark of ``policy_node``'s command stream over DDS, per backend / process / loop setup.

Plays a fake aloha_sim robot in this process (three 480x640 cameras at 25 Hz, joint states at
50 Hz) and, for each setup in ``--setups``, starts ``policy_node`` as a subprocess, configures and
activates it through its lifecycle services, records the left arm's JointState commands for
``--seconds`` while inference runs, reads the node's ``~/status`` and stops it. All setups run
one after the other in the same invocation, so their figures can be compared as ratios on a
noisy machine.

A setup is ``BACKEND:PLACE:LOOP``: BACKEND ``scripted`` (fake with ``--latency-s`` of sleep),
``busy`` (the same fake computing in pure Python for ``--latency-s``: holds the GIL, like a
model whose Python code launches many small GPU kernels) or ``motus`` (``MotusBackend`` on
``--checkpoint``, CPU by default); PLACE ``inproc`` (inference thread in the node process) or
``child`` (``backend_process:=true``, :class:`~motus_policy.backends.remote.RemoteBackend`);
LOOP ``thread`` (dedicated control thread) or ``timer`` (executor timer). ``--priority`` is the
node's ``control_priority`` (SCHED_FIFO); ``--robot-priority`` runs this process (the fake
robot, the receiver of the commands) SCHED_FIFO too, so the arrival figures show DDS rather
than this process's scheduling.

Printed per setup: the command period error (median / p99 of |interval - period|, ms) and missed
periods (interval > 1.5 periods) of the node's header stamps (when the node published) and of the
arrival times here (plus DDS), the observation -> first-action latency measured by the node
(stamp of the observation a chunk was computed from -> the first command published after that
chunk was integrated), and the backend's inference time. Then the child / in-process ratios.

    python -m benchmarks.node_timing --seconds 10 --rate-hz 30 --latency-s 0.15
"""

from __future__ import annotations

import argparse
import json
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
from std_msgs.msg import String

from motus_policy.runtime.control_loop import period_figures
from motus_recorder.profile import load_profile
from motus_recorder.ros.conversions import image_to_msg, joint_state_to_msg, time_to_ns

REPO = Path(__file__).resolve().parents[1]
TINY_CHECKPOINT = REPO / "motus_policy" / "checkpoints" / "aloha_sim_tiny"
DEFAULT_SETUPS = (
    "scripted:inproc:timer",
    "scripted:inproc:thread",
    "scripted:child:timer",
    "busy:inproc:timer",
    "busy:child:timer",
    "motus:inproc:timer",
    "motus:child:timer",
)
WARMUP_S = 2.0
"""Skipped after activation (ramp-in, first chunk)."""


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
        self.status: dict = {}
        self.create_subscription(JointState, profile.arms[0].command_topic, self._on_cmd, 100)
        self.create_subscription(String, "/motus_policy/status", self._on_status, 10)
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
            pub.publish(joint_state_to_msg(list(arm.joint_state_names), [0.1] * 7, now))

    def _on_cmd(self, msg):
        self.arrivals.append(time.monotonic_ns())
        self.stamps.append(time_to_ns(msg.header.stamp))

    def _on_status(self, msg):
        self.status = json.loads(msg.data)


def _figures(t_ns: list[int], period_ns: int, prefix: str) -> dict:
    f = period_figures(np.diff(np.asarray(t_ns, dtype=np.int64)), period_ns)
    return {
        f"{prefix}_period_err_median_ms": f["period_err_median_ms"],
        f"{prefix}_period_err_p99_ms": f["period_err_p99_ms"],
        f"{prefix}_missed_periods": f["missed_periods"],
    }


def _transition(node: _FakeRobot, ex: SingleThreadedExecutor, tid: int) -> bool:
    if not node.change_state.wait_for_service(timeout_sec=60.0):
        raise RuntimeError("policy_node not reachable")
    req = ChangeState.Request()
    req.transition.id = tid
    fut = node.change_state.call_async(req)
    ex.spin_until_future_complete(fut, timeout_sec=180.0)
    return bool(fut.done() and fut.result().success)


def _spin(ex: SingleThreadedExecutor, seconds: float) -> None:
    t_end = time.monotonic() + seconds
    while time.monotonic() < t_end:
        ex.spin_once(timeout_sec=0.01)


def node_args(
    setup: str,
    rate_hz: float,
    latency_s: float,
    strategy: str,
    checkpoint: str,
    device: str,
    priority: int = 0,
) -> list[str]:
    """``-p`` parameters of ``policy_node`` for ``setup`` (``BACKEND:PLACE:LOOP``).

    Raises:
        ValueError: a malformed setup.
    """
    try:
        kind, place, loop = setup.split(":")
    except ValueError:
        raise ValueError(f"setup: expected BACKEND:PLACE:LOOP, got {setup!r}") from None
    if kind not in ("scripted", "busy", "motus") or place not in ("inproc", "child"):
        raise ValueError(
            f"setup: expected scripted|busy|motus:inproc|child:thread|timer, got {setup!r}"
        )
    args = [f"control_rate_hz:={rate_hz}", f"strategy:={strategy}", "n_execute:=8", "mode:=vla"]
    backend = "motus" if kind == "motus" else "scripted"
    args += [f"backend:={backend}", f"backend_process:={str(place == 'child').lower()}"]
    args += [f"control_loop:={loop}", "status_period_s:=0.25", f"control_priority:={priority}"]
    if backend == "scripted":
        args += [f"scripted.latency_s:={latency_s}", "scripted.chunk_size:=48"]
        args += [f"scripted.busy:={str(kind == 'busy').lower()}"]
    else:
        args += [f"motus.checkpoint:={checkpoint}", f"motus.device:={device}"]
    return args


def run_setup(robot: _FakeRobot, ex, setup: str, seconds: float, args: list[str]) -> dict:
    """Start the node with ``args``, measure for ``seconds`` after the warm-up, stop it."""
    log = tempfile.NamedTemporaryFile("w", suffix="_policy_node.log", delete=False)  # noqa: SIM115
    cmd = [
        sys.executable,
        "-m",
        "motus_policy.ros.policy_node",
        "--ros-args",
    ]
    for a in args:
        cmd += ["-p", a]
    proc = subprocess.Popen(
        cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    robot.arrivals.clear()
    robot.stamps.clear()
    robot.status = {}
    try:
        if not (
            _transition(robot, ex, Transition.TRANSITION_CONFIGURE)
            and _transition(robot, ex, Transition.TRANSITION_ACTIVATE)
        ):
            raise RuntimeError(f"{setup}: lifecycle transition failed; node log: {log.name}")
        t_start = time.monotonic_ns() + int(WARMUP_S * 1e9)
        _spin(ex, WARMUP_S + seconds)
        status = dict(robot.status)
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        _spin(ex, 0.5)  # let the old node's entities disappear from the graph
    keep = [i for i, t in enumerate(robot.arrivals) if t >= t_start]
    rate_hz = float(next(a for a in args if a.startswith("control_rate_hz")).split("=")[1])
    period_ns = int(round(1e9 / rate_hz))
    out: dict = {"commands": len(keep)}
    out.update(_figures([robot.stamps[i] for i in keep], period_ns, "node_stamp"))
    out.update(_figures([robot.arrivals[i] for i in keep], period_ns, "arrival"))
    timing = status.get("timing") or {}
    for k in ("obs_to_action_ms_median", "obs_to_action_ms_p99", "skipped_deadlines"):
        out[k] = timing.get(k)
    out["infer_ms_median"] = (status.get("infer_ms") or {}).get("median")
    out["chunks"] = status.get("chunks")
    out["holds"] = status.get("holds")
    out["log"] = log.name
    return out


def run(
    setups, seconds: float, rate_hz: float, latency_s: float, strategy: str, checkpoint: str,
    device: str, priority: int = 0, torch_threads: int = 1, robot_priority: int = 0,
) -> dict[str, dict]:  # fmt: skip
    """Run every setup against one fake robot; returns ``{setup: figures}``."""
    os.environ.setdefault("ROS_DOMAIN_ID", str(random.randint(101, 200)))
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ.setdefault(
        "FASTRTPS_DEFAULT_PROFILES_FILE", str(REPO / "config" / "dds" / "fastdds_shm.xml")
    )
    if robot_priority > 0:  # this process only: the node subprocesses start SCHED_OTHER
        policy = os.SCHED_FIFO | os.SCHED_RESET_ON_FORK
        os.sched_setscheduler(0, policy, os.sched_param(robot_priority))
    if torch_threads > 0:  # the node's env, inherited by its backend process: same for both
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(torch_threads)
    arg_lists = {
        s: node_args(s, rate_hz, latency_s, strategy, checkpoint, device, priority) for s in setups
    }
    rclpy.init()
    robot = _FakeRobot(load_profile("aloha_sim"))
    ex = SingleThreadedExecutor()
    ex.add_node(robot)
    results = {}
    try:
        _spin(ex, 1.0)
        for setup in setups:
            key = setup if setup not in results else f"{setup}#{len(results)}"
            results[key] = run_setup(robot, ex, setup, seconds, arg_lists[setup])
            print(f"{setup}: done", flush=True)
    finally:
        robot.destroy_node()
        rclpy.try_shutdown()
    return results


def _fmt(v) -> str:
    if v is None:
        return "-"
    return f"{v:.2f}" if isinstance(v, float) else str(v)


COLUMNS = (
    ("node_stamp_period_err_median_ms", "err med"),
    ("node_stamp_period_err_p99_ms", "err p99"),
    ("node_stamp_missed_periods", "missed"),
    ("arrival_period_err_p99_ms", "arr p99"),
    ("arrival_missed_periods", "arr miss"),
    ("obs_to_action_ms_median", "o->a med"),
    ("obs_to_action_ms_p99", "o->a p99"),
    ("infer_ms_median", "infer"),
    ("commands", "cmds"),
    ("holds", "holds"),
)


def report(results: dict[str, dict]) -> str:
    """The printed table (ms) and the child / in-process ratios."""
    lines = ["setup                     " + " ".join(f"{h:>9s}" for _, h in COLUMNS)]
    for setup, r in results.items():
        lines.append(f"{setup:25s} " + " ".join(f"{_fmt(r.get(k)):>9s}" for k, _ in COLUMNS))
    inproc: dict[tuple[str, str], tuple[str, dict]] = {}  # latest in-process run per kind/loop
    for setup, r in results.items():
        kind, place, loop = setup.split("#")[0].split(":")
        if place == "inproc":
            inproc[kind, loop] = (setup, r)
            continue
        if (kind, loop) not in inproc:
            continue
        name, other = inproc[kind, loop]
        for key in ("node_stamp_period_err_p99_ms", "obs_to_action_ms_median"):
            a, b = r.get(key), other.get(key)
            if a is not None and b:
                lines.append(f"ratio {setup} / {name} {key}: {a / b:.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """CLI entry point: prints one row per setup, then the ratios."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rate-hz", type=float, default=30.0)
    ap.add_argument("--latency-s", type=float, default=0.15, help="scripted backend latency")
    ap.add_argument("--strategy", default="prefix")
    ap.add_argument("--setups", nargs="+", default=list(DEFAULT_SETUPS))
    ap.add_argument("--checkpoint", default=str(TINY_CHECKPOINT))
    ap.add_argument("--device", default="cpu")
    ap.add_argument(
        "--priority", type=int, default=10, help="control_priority (SCHED_FIFO) of the node"
    )
    ap.add_argument(
        "--torch-threads", type=int, default=1, help="OMP_NUM_THREADS of the node (0: unset)"
    )
    ap.add_argument(
        "--robot-priority", type=int, default=0, help="SCHED_FIFO priority of this process"
    )
    a = ap.parse_args(argv)
    results = run(
        a.setups, a.seconds, a.rate_hz, a.latency_s, a.strategy, a.checkpoint, a.device,
        a.priority, a.torch_threads, a.robot_priority,
    )  # fmt: skip
    print(f"policy_node benchmark: {a.seconds:.0f} s per setup at {a.rate_hz:.0f} Hz, "
          f"{a.strategy}, scripted latency {a.latency_s * 1e3:.0f} ms, motus {a.checkpoint} on "
          f"{a.device} ({a.torch_threads or 'default'} torch threads), control_priority "
          f"{a.priority}, robot priority {a.robot_priority}, 3x480x640 cameras at 25 Hz; "
          "times in ms")  # fmt: skip
    print(report(results))


if __name__ == "__main__":
    main()
