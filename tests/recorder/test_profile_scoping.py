"""Robot profiles: joint names scoped per arm, relative topics, camera transport, JTC layout.

Issue #15 §3, §4, §6 (motus_recorder/profile.py module docstring).
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from motus_recorder.profile import ProfileError, load_profile, profile_from_dict, resolve_topic

REPO = Path(__file__).resolve().parents[2]


def _data(name: str) -> dict:
    return yaml.safe_load((REPO / "config" / "robots" / f"{name}.yaml").read_text())


def test_same_joint_names_on_both_arms_are_scoped_per_arm():
    prof = load_profile("aloha_agilex_2_vendor")
    left, right = prof.arms
    assert (
        left.joint_state_names == right.joint_state_names == tuple(f"joint{i}" for i in range(7))
    )
    assert (left.state_topic, left.command_topic) == ("/puppet/joint_left", "/master/joint_left")
    assert (right.state_topic, right.command_topic) == (
        "/puppet/joint_right",
        "/master/joint_right",
    )
    # the 14-D labels stay unique: prefixed with the arm because the names are shared
    assert prof.joint_names[:2] == ("left/joint0", "left/joint1")
    assert prof.joint_names[7:9] == ("right/joint0", "right/joint1")
    assert len(set(prof.joint_names)) == 14
    # profiles whose arms use distinct names keep the plain names as labels
    assert load_profile("aloha_sim").joint_names[0] == "left_waist"


def test_names_must_be_unique_within_an_arm_and_per_shared_topic():
    data = _data("aloha_agilex_2_vendor")
    dup = copy.deepcopy(data)
    dup["arms"][0]["joint_names"][5] = "joint0"
    with pytest.raises(ProfileError, match=r"arms\[0\]: joint names must be unique within an arm"):
        profile_from_dict(dup)
    grip = copy.deepcopy(data)
    grip["arms"][1]["gripper"]["joint_name"] = "joint3"
    with pytest.raises(ProfileError, match=r"\['joint3'\] repeated"):
        profile_from_dict(grip)
    shared = copy.deepcopy(data)
    for arm in shared["arms"]:
        arm["state_topic"] = "/joint_states"
    with pytest.raises(ProfileError, match="share the state_topic /joint_states but also joint"):
        profile_from_dict(shared)


def test_camera_transport_follows_the_topic_unless_given():
    prof = load_profile("aloha_agilex_2_vendor")
    assert [c.transport for c in prof.cameras] == ["compressed"] * 3
    assert prof.cameras[0].topic == "/camera_f/color/image_raw/compressed"
    assert not any(c.compressed for c in load_profile("aloha_agilex_2").cameras)
    data = _data("aloha_agilex_2")
    data["cameras"][0]["transport"] = "compressed"
    assert profile_from_dict(data).cameras[0].compressed
    data["cameras"][0]["transport"] = "h264"
    with pytest.raises(ProfileError, match=r"cameras\[0\].transport: expected one of"):
        profile_from_dict(data)


def test_relative_topics_resolve_in_the_namespace():
    assert resolve_topic("left_arm/joint_states", "/robot1") == "/robot1/left_arm/joint_states"
    assert resolve_topic("left_arm/joint_states", "/") == "/left_arm/joint_states"
    assert resolve_topic("/puppet/joint_left", "/robot1") == "/puppet/joint_left"
    raw = load_profile("aloha_sim", namespace=None)
    assert raw.arms[0].state_topic == "left_arm/joint_states"
    assert load_profile("aloha_sim").arms[0].state_topic == "/left_arm/joint_states"
    ns = load_profile("aloha_sim", namespace="/robot1")
    assert ns.arms[1].command_topic == "/robot1/right_arm/joint_command"
    assert ns.cameras[2].topic == "/robot1/cam_right_wrist/image_raw"
    assert ns.clock_topic == "/clock"  # absolute: ROS sim time always reads /clock
    assert ns.extras["reset_service"] == "/robot1/sim/reset"  # *_topic / *_service extras too
    for bad in ("left arm/js", "/a//b", "1abc", "a/", "~/x"):
        data = _data("aloha_sim")
        data["arms"][0]["state_topic"] = bad
        with pytest.raises(ProfileError, match=r"arms\[0\].state_topic: expected a topic name"):
            profile_from_dict(data)
    with pytest.raises(ValueError, match="expected an absolute namespace"):
        raw.in_namespace("robot1")


def test_trajectory_controller_layout_needs_its_topics():
    data = _data("aloha_sim")
    data["command_interface"] = "joint_trajectory_controller"
    with pytest.raises(ProfileError, match=r"needs arms\[\].gripper_command_topic"):
        profile_from_dict(data)
    for i, arm in enumerate(data["arms"]):
        arm["gripper_command_topic"] = f"gripper_{i}_controller/commands"
    prof = profile_from_dict(data)
    assert prof.arms[1].gripper_command_topic == "gripper_1_controller/commands"
    vendor = _data("aloha_agilex_2_vendor")  # no trajectory topic: joint_state only
    vendor["command_interface"] = "joint_trajectory"
    with pytest.raises(ProfileError, match=r"needs arms\[\].trajectory_topic"):
        profile_from_dict(vendor)


def test_ac_one_profile_follows_the_vendor_ros2_topics():
    # github.com/Vertax42/AC_One act/data/config.yaml and v2_joint_control.yaml (profile comment)
    prof = load_profile("ac_one")
    # JointState under /motus/ (ac_one_relay_node), the vendor's RobotStatus on its own names
    assert [a.state_topic for a in prof.arms] == [
        "/motus/arm_slave_l_status", "/motus/arm_slave_r_status",
    ]  # fmt: skip
    assert [a.command_topic for a in prof.arms] == [
        "/motus/arm_master_l_status", "/motus/arm_master_r_status",
    ]  # fmt: skip
    assert [a.driver["vendor_state_topic"] for a in prof.arms] == [
        "/arm_slave_l_status", "/arm_slave_r_status",
    ]  # fmt: skip
    assert [a.driver["vendor_command_topic"] for a in prof.arms] == [
        "/arm_master_l_status", "/arm_master_r_status",
    ]  # fmt: skip
    assert prof.cameras[0].topic == "/camera/camera_h/color/image_rect_raw/compressed"
    assert all(c.compressed for c in prof.cameras)
    assert prof.arms[0].joint_state_names == (*(f"joint{i}" for i in range(1, 7)), "gripper")
    assert prof.arms[0].driver["vendor_message_type"] == "arx5_arm_msg/msg/RobotStatus"


def test_vendor_bringup_starts_only_the_policy_on_the_vendor_profile():
    from motus_policy.bringup import load_bringup

    nodes = load_bringup("aloha_vendor").resolve()
    assert [n.name for n in nodes] == ["motus_policy"]
    assert nodes[0].parameters["profile"] == "aloha_agilex_2_vendor"
