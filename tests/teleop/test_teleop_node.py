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


def _trigger(node, service: str, timeout_s: float = 20.0):
    from std_srvs.srv import Trigger

    client = node.create_client(Trigger, service)
    assert client.wait_for_service(timeout_sec=timeout_s), service
    future = client.call_async(Trigger.Request())
    deadline = time.monotonic() + timeout_s
    while not future.done() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert future.done(), f"{service}: no answer"
    node.destroy_client(client)
    return future.result()


@pytest.mark.ros
@pytest.mark.timeout(120)
def test_teleop_ready_names_silent_topics_and_a_held_lockstep_teleop_never_commands(
    spawn_node, ros_context, spin_in_background
):
    """A lockstep sim steps on every command pair: a held teleop must send none, even on the
    first follower state (it used to answer it, stepping the sim before the recorder started);
    ``~/ready`` tells which topic is not matched yet, by name."""
    from rclpy.node import Node
    from sensor_msgs.msg import JointState
    from std_srvs.srv import SetBool

    from motus_recorder.ros.conversions import joint_state_to_msg

    proc = spawn_node(
        "motus_teleop.ros.teleop_node", "-p", "profile:=aloha_agilex_2",
        "-p", "publish_on_leader:=true",
    )  # fmt: skip
    proc.wait_for("READY", 60)
    node = Node("teleop_ready_test", context=ros_context)
    cmds = []
    node.create_subscription(JointState, LEFT.command_topic, cmds.append, 100)
    spin_in_background(node, ros_context)

    first = _trigger(node, "/teleop/ready")
    assert not first.success, first.message
    for topic in ("/puppet/joint_left", "/master/joint_left", "/puppet/joint_right_cmd"):
        assert topic in first.message, first.message
    assert "no follower position received yet" in first.message

    right = PROFILE.arm("right")
    pubs = {
        topic: node.create_publisher(JointState, topic, 10)
        for a in (LEFT, right)
        for topic in (a.state_topic, a.driver["leader_topic"])
    }
    node.create_subscription(JointState, right.command_topic, lambda m: None, 10)
    deadline = time.monotonic() + 30
    while not (res := _trigger(node, "/teleop/ready")).success:
        assert time.monotonic() < deadline, res.message
        time.sleep(0.2)

    hold = node.create_client(SetBool, "/teleop/hold")
    assert hold.wait_for_service(timeout_sec=10)

    def set_hold(value: bool) -> None:
        future = hold.call_async(SetBool.Request(data=value))
        deadline = time.monotonic() + 20
        while not future.done():
            assert time.monotonic() < deadline, "no answer from /teleop/hold"
            time.sleep(0.01)

    set_hold(True)
    # the follower reports its pose for the first time while teleop is held: no command
    for _ in range(5):
        stamp = node.get_clock().now().nanoseconds
        pubs[LEFT.state_topic].publish(joint_state_to_msg(NAMES, np.zeros(7), stamp))
        time.sleep(0.1)
    time.sleep(1.0)
    assert cmds == [], "a held teleop commanded the follower"
    assert "no follower position received yet on ['/puppet/joint_right']" in (
        _trigger(node, "/teleop/ready").message
    )
    # released: each leader sample is answered with one command
    set_hold(False)
    deadline = time.monotonic() + 20
    while not cmds:
        assert time.monotonic() < deadline, proc.output()[-2000:]
        stamp = node.get_clock().now().nanoseconds
        pubs["/master/joint_left"].publish(joint_state_to_msg(NAMES, np.zeros(7), stamp))
        time.sleep(0.1)
    node.destroy_node()
