"""policy_node on the AgileX vendor layout over real DDS (issue #15 §3).

JPEG CompressedImage cameras on /camera_{f,l,r}/color/image_raw/compressed, per-arm JointState
states on /puppet/joint_left|right with the same joint names (joint0..joint6) on both arms, and
the policy's JointState commands on /master/joint_left|right: the shipped
config/robots/aloha_agilex_2_vendor.yaml with only its rates and staleness limits relaxed for a
loaded test machine (control 50 Hz, staleness 0.5 s).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

pytestmark = [pytest.mark.ros, pytest.mark.timeout(120)]

REPO = Path(__file__).resolve().parents[2]
HW = (8, 10)
NODE = "motus_policy"


def relaxed_vendor_profile(tmp_path: Path) -> Path:
    data = yaml.safe_load((REPO / "config/robots/aloha_agilex_2_vendor.yaml").read_text())
    data["control_rate_hz"] = 50.0
    data["joint_state_staleness_s"] = 0.5
    for cam in data["cameras"]:
        cam["staleness_s"] = 0.5
    path = tmp_path / "aloha_agilex_2_vendor_relaxed.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


class VendorRobot:
    """The vendor driver's side: compressed cameras + /puppet states; records /master commands."""

    def __init__(self, ctx, profile):
        from rclpy.node import Node
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import CompressedImage, JointState
        from std_msgs.msg import String

        self.profile = profile
        self.node = n = Node("vendor_driver", context=ctx)
        self.cam_pubs = {
            c.name: n.create_publisher(CompressedImage, c.topic, qos_profile_sensor_data)
            for c in profile.cameras
        }
        self.arm_pubs = [n.create_publisher(JointState, a.state_topic, 10) for a in profile.arms]
        self.q = (profile.position_min + profile.position_max) / 2
        self.corrupt: set[str] = set()
        self.commands: dict[str, list] = {"left": [], "right": []}
        self.status: dict | None = None
        for arm in profile.arms:
            n.create_subscription(
                JointState, arm.command_topic, lambda m, a=arm.name: self.commands[a].append(m), 50
            )
        n.create_subscription(String, f"/{NODE}/status", self._on_status, 10)
        n.create_timer(0.02, self._publish)

    def _publish(self):
        from motus_recorder.ros.conversions import image_to_compressed_msg, joint_state_to_msg

        now = self.node.get_clock().now().nanoseconds
        img = np.full((*HW, 3), 90, np.uint8)
        for name, pub in self.cam_pubs.items():
            msg = image_to_compressed_msg(img, now, "jpeg")
            if name in self.corrupt:
                msg.data = msg.data[:20]  # a truncated JPEG
            pub.publish(msg)
        for k, (pub, arm) in enumerate(zip(self.arm_pubs, self.profile.arms, strict=True)):
            pub.publish(joint_state_to_msg(arm.joint_state_names, self.q[7 * k : 7 * k + 7], now))

    def _on_status(self, msg):
        self.status = json.loads(msg.data)

    def wait_status(self, pred, what, timeout_s=30.0):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.status is not None and pred(self.status):
                return self.status
            time.sleep(0.02)
        raise AssertionError(f"no status with {what}; last: {self.status}")


def test_policy_node_runs_on_compressed_vendor_topics(
    spawn_node, ros_context, spin_in_background, tmp_path
):
    from motus_recorder.profile import load_profile

    path = relaxed_vendor_profile(tmp_path)
    profile = load_profile(path)
    node = spawn_node(
        "motus_policy.ros.policy_node",
        "-p", f"profile:={path}", "-p", "autostart:=true",
        "-p", f"image_height:={HW[0]}", "-p", f"image_width:={HW[1]}",
        "-p", "n_action_steps:=4", "-p", "ramp_in_s:=0.2", "-p", "status_period_s:=0.2",
    )  # fmt: skip
    robot = VendorRobot(ros_context, profile)
    spin_in_background(robot.node, ros_context)
    node.wait_for("READY")
    robot.wait_status(lambda s: s["state"] == "running", "state running")
    n0 = len(robot.commands["left"])
    time.sleep(1.0)
    assert len(robot.commands["left"]) - n0 > 20, node.output()  # 50 Hz stream
    for arm in ("left", "right"):
        cmd = robot.commands[arm][-1]
        assert list(cmd.name) == [f"joint{i}" for i in range(7)]  # the vendor's names
        assert np.all(np.isfinite(cmd.position)) and len(cmd.position) == 7
    # a JPEG that does not decode: the policy holds and names the camera and why
    robot.corrupt.add("cam_left_wrist")
    robot.wait_status(
        lambda s: "cam_left_wrist" in str(s["reason"]) and "does not decode" in str(s["reason"]),
        "undecodable JPEG named",
    )
    robot.corrupt.clear()
    robot.wait_status(lambda s: s["state"] == "running", "recovery after the bad JPEG")
