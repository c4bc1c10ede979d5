"""End to end: fake Piper leader -> piper_arm_node (leader) -> teleop_node -> piper_arm_node
(follower, fake arm) -> follower feedback tracks the leader. Three node subprocesses."""

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
@pytest.mark.timeout(120)
def test_leader_to_follower_through_teleop(spawn_node, ros_context, spin_in_background):
    from rclpy.node import Node
    from sensor_msgs.msg import JointState

    from motus_recorder.ros.conversions import msg_to_positions

    common = ("-p", "fake_arm:=true", "-p", "can_interface:=virtual")
    leader = spawn_node(
        "motus_policy.ros.piper_arm_node", *common, "-p", "leader:=true",
        "-p", "can_channel:=vchain_leader", "-r", "__node:=piper_leader", name="leader",
    )  # fmt: skip
    follower = spawn_node(
        "motus_policy.ros.piper_arm_node", *common, "-p", "auto_enable:=true",
        "-p", "can_channel:=vchain_follower", "-r", "__node:=piper_follower", name="follower",
    )  # fmt: skip
    teleop = spawn_node("motus_teleop.ros.teleop_node", name="teleop")
    for proc in (leader, follower, teleop):
        proc.wait_for("READY", 60)

    node = Node("chain_test", context=ros_context)
    lock = threading.Lock()
    lead, foll = [], []

    def keep(store):
        def cb(msg):
            with lock:
                store.append((time.monotonic(), msg_to_positions(msg, NAMES)))

        return cb

    node.create_subscription(JointState, LEFT.driver["leader_topic"], keep(lead), 50)
    node.create_subscription(JointState, LEFT.state_topic, keep(foll), 50)
    spin_in_background(node, ros_context)
    time.sleep(4.0)
    with lock:
        lead_q = np.stack([q for _, q in lead])
        foll_t = np.array([t for t, _ in foll])
        foll_q = np.stack([q for _, q in foll])
    assert len(lead_q) > 100 and len(foll_q) > 100
    # Static leader joints (2: 30 deg, 3: -30 deg) are reached by the follower.
    np.testing.assert_allclose(foll_q[-1, 1:3], lead_q[-1, 1:3], atol=2e-3)
    # The moving joint 1 (+-20 deg at 0.5 Hz) is tracked with a small lag once engaged.
    late = foll_t > foll_t[-1] - 1.5
    assert np.ptp(foll_q[late, 0]) > np.radians(20.0)
    lag_err = np.max(np.abs(foll_q[-1, 0] - lead_q[-20:, 0]).min())
    assert lag_err < np.radians(3.0), np.degrees(lag_err)
    node.destroy_node()
