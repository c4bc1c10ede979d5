"""policy_node in the ros2_control layout over real DDS (issue #15 §4).

``command_interface: joint_trajectory_controller``: per arm a JointTrajectory naming only the 6
arm joints on the arm controller's topic, and the gripper as Float64MultiArray on a
forward_command_controller's ``~/commands``. The fake controller here behaves like
ros2_controllers' joint_trajectory_controller configured for the 6 arm joints (as AgileX's
ros2_controllers.yaml does): it rejects a trajectory naming any other joint. The state comes the
joint_state_broadcaster way: one /joint_states with both arms' 14 joints (distinct names, one
shared topic).
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


def jtc_profile(tmp_path: Path) -> Path:
    data = yaml.safe_load((REPO / "config/robots/aloha_agilex_2.yaml").read_text())
    data.update(name="jtc_test", command_interface="joint_trajectory_controller")
    data.update(control_rate_hz=50.0, joint_state_staleness_s=0.5)
    for arm in data["arms"]:
        side = arm["name"]
        arm["state_topic"] = "/joint_states"
        arm["trajectory_topic"] = f"/{side}_arm_controller/joint_trajectory"
        arm["gripper_command_topic"] = f"/{side}_gripper_controller/commands"
    for cam in data["cameras"]:
        cam["staleness_s"] = 0.5
    path = tmp_path / "jtc_test.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


class FakeControllers:
    """Two JTCs (6 joints each) + two gripper forward controllers + broadcaster + cameras."""

    def __init__(self, ctx, profile):
        from rclpy.node import Node
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import Image, JointState
        from std_msgs.msg import Float64MultiArray, String
        from trajectory_msgs.msg import JointTrajectory

        self.profile = profile
        self.node = n = Node("fake_controller_manager", context=ctx)
        self.q = (profile.position_min + profile.position_max) / 2
        self.accepted: dict[str, list] = {"left": [], "right": []}
        self.rejected: list[str] = []
        self.gripper: dict[str, list[list[float]]] = {"left": [], "right": []}
        self.status: dict | None = None
        self.js_pub = n.create_publisher(JointState, "/joint_states", 10)
        self.cam_pubs = [
            n.create_publisher(Image, c.topic, qos_profile_sensor_data) for c in profile.cameras
        ]
        for arm in profile.arms:
            n.create_subscription(
                JointTrajectory, arm.trajectory_topic, lambda m, a=arm: self._on_traj(a, m), 10
            )
            n.create_subscription(
                Float64MultiArray,
                arm.gripper_command_topic,
                lambda m, a=arm.name: self.gripper[a].append(list(m.data)),
                10,
            )
        n.create_subscription(String, "/motus_policy/status", self._on_status, 10)
        n.create_timer(0.02, self._publish)

    def _on_traj(self, arm, msg):
        # joint_trajectory_controller: every name must be one of the controller's joints
        if set(msg.joint_names) - set(arm.joint_names) or not msg.points:
            self.rejected.append(f"{arm.name}: {list(msg.joint_names)}")
            return
        self.accepted[arm.name].append(msg)

    def _on_status(self, msg):
        self.status = json.loads(msg.data)

    def _publish(self):
        from motus_recorder.ros.conversions import image_to_msg, joint_state_to_msg

        now = self.node.get_clock().now().nanoseconds
        names = [n for a in self.profile.arms for n in a.joint_state_names]
        self.js_pub.publish(joint_state_to_msg(names, self.q, now))
        for pub in self.cam_pubs:
            pub.publish(image_to_msg(np.zeros((*HW, 3), np.uint8), now))


def test_policy_drives_trajectory_and_gripper_controllers(
    spawn_node, ros_context, spin_in_background, tmp_path
):
    from motus_recorder.profile import load_profile

    path = jtc_profile(tmp_path)
    profile = load_profile(path)
    node = spawn_node(
        "motus_policy.ros.policy_node",
        "-p", f"profile:={path}", "-p", "autostart:=true",
        "-p", f"image_height:={HW[0]}", "-p", f"image_width:={HW[1]}",
        "-p", "n_action_steps:=4", "-p", "ramp_in_s:=0.2", "-p", "status_period_s:=0.2",
    )  # fmt: skip
    ctl = FakeControllers(ros_context, profile)
    spin_in_background(ctl.node, ros_context)
    node.wait_for("READY")
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline and not (
        len(ctl.accepted["left"]) >= 3 and len(ctl.gripper["right"]) >= 20
    ):
        time.sleep(0.05)
    assert not ctl.rejected, ctl.rejected
    assert ctl.status and ctl.status["state"] == "running", (ctl.status, node.output())
    for side, arm in zip(("left", "right"), profile.arms, strict=True):
        assert len(ctl.accepted[side]) >= 3, node.output()
        traj = ctl.accepted[side][-1]
        assert list(traj.joint_names) == list(arm.joint_names)  # 6 arm joints, no gripper
        assert all(len(p.positions) == 6 for p in traj.points)
        grip = ctl.gripper[side]
        assert len(grip) >= 20 and all(len(g) == 1 for g in grip)
        assert all(arm.gripper.min <= g[0] <= arm.gripper.max for g in grip)
