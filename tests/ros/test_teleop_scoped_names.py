"""teleop_node with leader arms that use the same joint names (issue #15 §3).

Piper's own naming (joint1..joint6 + gripper on both arms), each leader on its own topic: a
message on the left leader topic feeds the left arm only, though its names would also match the
right arm's. Profile: config/robots/aloha_agilex_2.yaml with the names made equal per arm.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import yaml

pytestmark = [pytest.mark.ros, pytest.mark.timeout(90)]

REPO = Path(__file__).resolve().parents[2]
NAMES = [*(f"joint{i}" for i in range(1, 7)), "gripper"]


def test_each_leader_topic_feeds_only_its_own_arm(
    tmp_path, spawn_node, ros_context, spin_in_background
):
    from rclpy.node import Node
    from sensor_msgs.msg import JointState

    from motus_recorder.profile import load_profile
    from motus_recorder.ros.conversions import joint_state_to_msg

    data = yaml.safe_load((REPO / "config/robots/aloha_agilex_2.yaml").read_text())
    for arm in data["arms"]:
        arm["joint_names"] = NAMES[:6]
        arm["gripper"]["joint_name"] = NAMES[6]
    path = tmp_path / "piper_names.yaml"
    path.write_text(yaml.safe_dump(data))
    prof = load_profile(path)
    proc = spawn_node(
        "motus_teleop.ros.teleop_node",
        "-p", f"profile:={path}", "-p", "require_follower_state:=false",
    )  # fmt: skip
    proc.wait_for("READY", 60)
    node = Node("leaders", context=ros_context)
    got: dict[str, list[np.ndarray]] = {"left": [], "right": []}
    for arm in prof.arms:
        node.create_subscription(
            JointState,
            arm.command_topic,
            lambda m, a=arm.name: got[a].append(np.array(m.position)),
            50,
        )
    leaders = {
        a.name: node.create_publisher(JointState, a.driver["leader_topic"], 10) for a in prof.arms
    }
    spin_in_background(node, ros_context)
    target = {
        "left": np.array([0.3, 1.0, -1.0, 0.2, 0.1, 0.0, 0.02]),
        "right": np.array([-0.3, 2.0, -2.0, -0.2, -0.1, 0.5, 0.08]),
    }
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        now = node.get_clock().now().nanoseconds
        for side, pub in leaders.items():
            pub.publish(joint_state_to_msg(NAMES, target[side], now))
        if all(len(v) >= 20 for v in got.values()):
            break
        time.sleep(0.01)
    for side in ("left", "right"):
        assert len(got[side]) >= 20, (got, proc.output()[-2000:])
        assert np.allclose(got[side][-1], target[side], atol=1e-6), (side, got[side][-1])
