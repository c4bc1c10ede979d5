"""teleop_node as a subprocess: leader in the test process -> follower commands over DDS."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from motus_recorder.profile import load_profile

PROFILE = load_profile("aloha_agilex_2")
LEFT = PROFILE.arm("left")
NAMES = list(LEFT.joint_state_names)


@pytest.mark.ros
@pytest.mark.timeout(90)
def test_teleop_node_clamps_rate_limits_and_holds_on_stale_leader(
    spawn_node, ros_context, spin_in_background
):
    from rclpy.node import Node
    from sensor_msgs.msg import JointState

    from motus_recorder.ros.conversions import joint_state_to_msg, msg_to_positions, time_to_ns

    proc = spawn_node("motus_teleop.ros.teleop_node", "-p", "profile:=aloha_agilex_2")
    proc.wait_for("READY", 60)
    node = Node("teleop_test", context=ros_context)
    lock = threading.Lock()
    cmds: list[tuple[int, float, np.ndarray]] = []

    def on_cmd(msg):
        with lock:
            cmds.append(
                (time_to_ns(msg.header.stamp), time.monotonic(), msg_to_positions(msg, NAMES))
            )

    node.create_subscription(JointState, LEFT.command_topic, on_cmd, 100)
    state_pub = node.create_publisher(JointState, LEFT.state_topic, 10)
    leader_pub = node.create_publisher(JointState, LEFT.driver["leader_topic"], 10)
    spin_in_background(node, ros_context)

    follower = np.zeros(7)
    # Leader far outside the limits: joint 1 at 5 rad (limit 2.618), gripper 0.5 m (limit 0.1).
    leader = np.array([5.0, 0.5, -0.5, 0.0, 0.0, 0.0, 0.5])
    # Drive for at least 1.5 s (3 rad/s covers 2.618 rad in < 1 s) and, on a loaded machine,
    # until the command reached the clamp (at most 10 s).
    t_start = time.monotonic()

    def at_limit() -> bool:
        with lock:
            return bool(cmds) and abs(cmds[-1][2][0] - LEFT.position_max_rad[0]) < 1e-6

    while time.monotonic() < t_start + 1.5 or (not at_limit() and time.monotonic() < t_start + 10):
        now = node.get_clock().now().nanoseconds
        state_pub.publish(joint_state_to_msg(NAMES, follower, now))
        leader_pub.publish(joint_state_to_msg(NAMES, leader, now))
        time.sleep(0.01)
    t_stop = time.monotonic()
    time.sleep(0.8)  # leader silent: teleop must hold (stale timeout 0.1 s)
    with lock:
        got = list(cmds)
    assert len(got) > 50, proc.output()[-2000:]
    stamps_ns = np.array([g[0] for g in got], dtype=np.int64)
    q = np.stack([g[2] for g in got])
    # Rate limit: per step |dq| <= velocity_max * dt (profile: 3 rad/s joints, 0.2 m/s gripper).
    dq = np.abs(np.diff(q, axis=0))
    dt = (np.diff(stamps_ns) / 1e9)[:, None]  # int ns diffs: exact
    vmax = np.append(LEFT.velocity_max_rad_s, LEFT.gripper.velocity_max_per_s)
    assert np.all(dq <= vmax * dt + 1e-9), np.max(dq / np.maximum(dt, 1e-9), axis=0)
    # Clamped to the follower limits, and reached them (1.5 s at 3 rad/s covers 2.618 rad).
    assert np.all(q[:, 0] <= LEFT.position_max_rad[0] + 1e-12)
    assert q[-1, 0] == pytest.approx(LEFT.position_max_rad[0])
    assert np.all(q[:, 6] <= LEFT.gripper.max + 1e-12)
    # Stale leader -> the last output is held (commands keep coming, all equal).
    held = np.stack([g[2] for g in got if g[1] > t_stop + 0.3])
    assert len(held) > 10
    assert np.all(held == held[0])
    assert "leader stale" in proc.output()

    # Deadman: ~/hold true keeps the command fixed while the leader moves; false follows again.
    from std_srvs.srv import SetBool

    def set_hold(value: bool) -> None:
        client = node.create_client(SetBool, "/teleop/hold")
        assert client.wait_for_service(timeout_sec=10)
        future = client.call_async(SetBool.Request(data=value))
        deadline = time.monotonic() + 10
        while not future.done() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert future.result().success

    def drive_leader(q: np.ndarray, seconds: float) -> float:
        t_end = time.monotonic() + seconds
        while time.monotonic() < t_end:
            leader_pub.publish(joint_state_to_msg(NAMES, q, node.get_clock().now().nanoseconds))
            time.sleep(0.01)
        return time.monotonic()

    set_hold(True)
    t_held = drive_leader(np.array([-1.0, 0.5, -0.5, 0.0, 0.0, 0.0, 0.0]), 0.5)
    with lock:
        during = np.stack([g[2] for g in cmds if t_held - 0.4 < g[1] <= t_held])
    assert len(during) > 10 and np.all(during == during[0])
    set_hold(False)
    t_free = drive_leader(np.array([-1.0, 0.5, -0.5, 0.0, 0.0, 0.0, 0.0]), 0.5)
    with lock:
        last = [g[2] for g in cmds if g[1] <= t_free][-1]
    assert last[0] < during[0][0] - 0.5  # moving toward -1 rad again
    node.destroy_node()
