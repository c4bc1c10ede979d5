"""ac_one_relay_node over real DDS (issue #15): the AC-One vendor driver's RobotStatus is not
installable here, so the vendor side is played by std_msgs/Float64MultiArray (field ``data``),
passed through the node's ``vendor_message_type`` / ``vendor_position_field`` parameters. Vendor
state arrives as JointState (profile names, gripper in rad); JointState commands arrive on the
vendor topic converted (gripper normalised); bad commands are logged and never forwarded. The
node as a subprocess on the shipped ac_one profile, a real rclpy probe."""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest

pytestmark = [pytest.mark.ros, pytest.mark.timeout(150)]

NAMES = ["joint1", "joint2", "joint3", "joint4", "joint5", "joint6", "gripper"]
STAND_IN = ["-p", "vendor_message_type:=std_msgs/msg/Float64MultiArray",
            "-p", "vendor_position_field:=data"]  # fmt: skip


class Inbox:
    """Messages received on one topic, thread-safe."""

    def __init__(self) -> None:
        self.msgs: list = []
        self.lock = threading.Lock()

    def __call__(self, msg) -> None:
        with self.lock:
            self.msgs.append(msg)

    def wait(self, pred, timeout_s: float, what: str, proc):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                hit = [m for m in self.msgs if pred(m)]
            if hit:
                return hit[-1]
            time.sleep(0.05)
        raise AssertionError(f"no {what} within {timeout_s} s\n" + proc.output()[-3000:])

    def clear(self) -> None:
        with self.lock:
            self.msgs.clear()


def _joint_state(names, positions, stamp_ns=0):
    from motus_recorder.ros.conversions import joint_state_to_msg

    return joint_state_to_msg(names, np.asarray(positions, float), stamp_ns)


def test_relay_converts_state_and_commands_and_refuses_bad_commands(
    spawn_node, ros_context, spin_in_background
):
    from rclpy.node import Node
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Float64MultiArray

    relay = spawn_node("motus_policy.ros.ac_one_relay_node", *STAND_IN)
    relay.wait_for("READY", timeout_s=60)
    node = Node("vendor_side", context=ros_context)
    vendor_state = {s: node.create_publisher(Float64MultiArray, f"/arm_slave_{s}_status", 10)
                    for s in "lr"}  # fmt: skip
    commands = node.create_publisher(JointState, "/motus/arm_master_l_status", 10)
    states, vendor_cmds = Inbox(), Inbox()
    node.create_subscription(JointState, "/motus/arm_slave_r_status", states, 10)
    node.create_subscription(Float64MultiArray, "/arm_master_l_status", vendor_cmds, 10)
    spin_in_background(node, ros_context)

    # vendor state -> JointState: names from the profile, gripper normalised -> rad
    joints = [0.1, 0.2, 0.3, -0.4, 0.5, -0.6]
    deadline = time.monotonic() + 30
    while not states.msgs and time.monotonic() < deadline:
        vendor_state["r"].publish(Float64MultiArray(data=[*joints, 0.5]))
        time.sleep(0.1)
    msg = states.wait(lambda m: True, 5, "JointState on /motus/arm_slave_r_status", relay)
    assert list(msg.name) == NAMES
    np.testing.assert_allclose(msg.position, [*joints, -1.7], atol=1e-12)
    assert msg.header.stamp.sec > 0  # no vendor header: stamped on receipt

    # JointState command -> vendor array, gripper rad -> normalised
    good = [0.2, 0.1, 0.3, -0.2, 0.4, -0.5, -3.4]
    order = [6, 0, 5, 1, 4, 2, 3]  # any name order
    cmd = _joint_state([NAMES[i] for i in order], [good[i] for i in order], 123_000_000_000)
    deadline = time.monotonic() + 30
    while not vendor_cmds.msgs and time.monotonic() < deadline:
        commands.publish(cmd)
        time.sleep(0.1)
    out = vendor_cmds.wait(lambda m: True, 5, "a command on /arm_master_l_status", relay)
    np.testing.assert_allclose(out.data, [*good[:6], 1.0], atol=1e-12)

    # bad commands: NaN, past a limit, a missing name, names/positions mismatch -> not forwarded
    time.sleep(0.3)
    vendor_cmds.clear()
    bad = [
        _joint_state(NAMES, [*good[:6], math.nan]),
        _joint_state(NAMES, [5.0, *good[1:]]),
        _joint_state(NAMES[:6], good[:6]),
    ]
    short = _joint_state(NAMES, good)
    short.position = good[:5]
    for msg in [*bad, short]:
        commands.publish(msg)
        time.sleep(1.1)  # refusals are logged at most once a second
    time.sleep(0.5)
    assert vendor_cmds.msgs == [], [list(m.data) for m in vendor_cmds.msgs]
    log = relay.output()
    reasons = [
        "non-finite command for ['gripper']",
        "command outside the limits [rad]: ['joint1=5 not in [-1.25, 0.9]']",
        "command lacks joints ['gripper']",
        "command has 7 names but 5 positions",
    ]
    for reason in reasons:
        assert f"command refused, not forwarded: arm left: {reason}" in log, log[-3000:]

    # a good command after the bad ones still goes through
    commands.publish(_joint_state(NAMES, [*good[:6], 0.0]))
    out = vendor_cmds.wait(lambda m: True, 10, "the good command after the bad ones", relay)
    np.testing.assert_allclose(out.data, [*good[:6], 0.0], atol=1e-12)
    node.destroy_node()
    assert relay.stop() == 0, relay.output()[-3000:]


def test_leader_mode_relays_the_leader_arms_and_commands_nothing(
    spawn_node, ros_context, spin_in_background
):
    """leader:=true: the vendor leader arms' state (on the vendor command topic while teaching)
    becomes JointState on driver.leader_topic; the relay publishes nothing on vendor topics."""
    from rclpy.node import Node
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Float64MultiArray

    relay = spawn_node("motus_policy.ros.ac_one_relay_node", *STAND_IN, "-p", "leader:=true")
    relay.wait_for("READY", timeout_s=60)
    assert "(leader," in relay.output()
    node = Node("leader_side", context=ros_context)
    leader = node.create_publisher(Float64MultiArray, "/arm_master_l_status", 10)
    inbox = Inbox()
    node.create_subscription(JointState, "/motus/arm_master_l_status", inbox, 10)
    spin_in_background(node, ros_context)
    q = [0.0, 0.5, 0.5, 0.0, 0.0, 0.0, 0.25]
    deadline = time.monotonic() + 30
    while not inbox.msgs and time.monotonic() < deadline:
        leader.publish(Float64MultiArray(data=q))
        time.sleep(0.1)
    msg = inbox.wait(lambda m: True, 5, "leader JointState", relay)
    assert list(msg.name) == NAMES
    np.testing.assert_allclose(msg.position, [*q[:6], -0.85], atol=1e-12)
    published = {t for t, _ in node.get_publisher_names_and_types_by_node("ac_one_relay", "/")}
    assert published & {"/arm_master_l_status", "/arm_master_r_status"} == set(), published
    node.destroy_node()
    assert relay.stop() == 0, relay.output()[-3000:]
