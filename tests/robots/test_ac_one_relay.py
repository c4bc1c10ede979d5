"""The AC-One relay core: vendor RobotStatus positions <-> JointState (names, rad), with the
driver's gripper mapping (X5Controller.cpp: normalised = rad / -3.4) and refusals that keep a
bad command from being published. Built from the shipped ac_one profile."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from motus_policy.robots.ac_one.relay import (
    AcOneArmRelayConfig,
    RelayError,
    joint_state_to_vendor,
    vendor_to_joint_state,
)
from motus_recorder.profile import load_profile

NAMES = ("joint1", "joint2", "joint3", "joint4", "joint5", "joint6", "gripper")


@pytest.fixture
def left() -> AcOneArmRelayConfig:
    return AcOneArmRelayConfig.from_arm_profile(load_profile("ac_one").arm("left"))


def test_config_from_the_profile(left):
    assert left.joint_names == NAMES
    assert (left.vendor_state_topic, left.vendor_command_topic) == (
        "/arm_slave_l_status", "/arm_master_l_status",
    )  # fmt: skip
    assert (left.state_topic, left.command_topic) == (
        "/motus/arm_slave_l_status", "/motus/arm_master_l_status",
    )  # fmt: skip
    assert left.leader_topic == "/motus/arm_master_l_status"
    assert left.vendor_position_field == "joint_pos" and left.gripper_rad_per_unit == -3.4
    assert left.position_min_rad[6] == -3.75 and left.position_max_rad[6] == 0.4


def test_gripper_mapping_endpoints(left):
    # vendor 0 = open = 0 rad, vendor 1 = -3.4 rad (X5Controller.hpp gripper_coef_)
    joints = [0.1, 0.2, 0.3, -0.4, 0.5, -0.6]
    for vendor, rad in ((0.0, 0.0), (1.0, -3.4), (0.5, -1.7)):
        names, q = vendor_to_joint_state(left, [*joints, vendor])
        assert names == NAMES
        np.testing.assert_allclose(q, [*joints, rad])
        back = joint_state_to_vendor(left, names, q)
        np.testing.assert_allclose(back, [*joints, vendor], atol=1e-12)


def test_round_trip_and_name_order(left):
    rng = np.random.default_rng(0)
    lo, hi = np.array(left.position_min_rad), np.array(left.position_max_rad)
    lo[6], hi[6] = -3.4, 0.0  # the driver's gripper range (wider commands are clamped, below)
    for _ in range(20):
        q = rng.uniform(lo, hi)
        order = rng.permutation(7)
        names = [NAMES[i] for i in order] + ["other_joint"]  # extra names are ignored
        vendor = joint_state_to_vendor(left, names, [*q[order], 99.0])
        assert vendor.shape == (7,) and vendor.dtype == np.float64
        assert vendor[6] == pytest.approx(q[6] / -3.4)
        np.testing.assert_allclose(vendor_to_joint_state(left, vendor)[1], q, atol=1e-12)


def test_gripper_commands_past_the_drivers_range_are_clamped(left):
    # inside the profile's stat.json envelope (-3.75 .. 0.4 rad) but past the driver's 0 .. -3.4
    joints = [0.0] * 6
    assert joint_state_to_vendor(left, NAMES, [*joints, -3.7])[6] == 1.0  # fully closed
    assert joint_state_to_vendor(left, NAMES, [*joints, 0.3])[6] == 0.0  # fully open


@pytest.mark.parametrize(
    ("names", "positions", "match"),
    [
        (NAMES, [0.0] * 6 + [math.nan], r"non-finite command for \['gripper'\]"),
        (NAMES, [0.0, math.inf, 0, 0, 0, 0, 0], r"non-finite command for \['joint2'\]"),
        (NAMES, [2.0, 0, 0, 0, 0, 0, 0], r"outside the limits \[rad\]: \['joint1=2 not in"),
        (NAMES, [0.0] * 6 + [-4.0], r"gripper=-4 not in \[-3\.75, 0\.4\]"),
        (NAMES[:6], [0.0] * 6, r"lacks joints \['gripper'\]"),
        (NAMES, [0.0] * 6, "7 names but 6 positions"),
        (NAMES[:6] + ("joint1",), [0.0] * 7, "repeats joint names"),
    ],
)
def test_bad_commands_are_refused_with_the_reason(left, names, positions, match):
    with pytest.raises(RelayError, match=match):
        joint_state_to_vendor(left, names, positions)


def test_bad_vendor_state_is_refused(left):
    with pytest.raises(RelayError, match=r"has 6 values, expected 7"):
        vendor_to_joint_state(left, [0.0] * 6)
    with pytest.raises(RelayError, match="non-finite vendor state"):
        vendor_to_joint_state(left, [0.0] * 6 + [math.nan])


def test_config_refuses_a_joint_state_topic_on_a_vendor_topic(left):
    with pytest.raises(ValueError, match="one type per topic name"):
        dataclasses.replace(left, state_topic="/arm_slave_l_status")
    with pytest.raises(ValueError, match="gripper_rad_per_unit"):
        dataclasses.replace(left, gripper_rad_per_unit=0.0)
    with pytest.raises(ValueError, match="joint_names: expected 7 unique"):
        dataclasses.replace(left, joint_names=NAMES[:6])
    with pytest.raises(ValueError, match="lacks \\['vendor_state_topic'"):
        AcOneArmRelayConfig.from_arm_profile(load_profile("aloha_agilex_2_vendor").arms[0])
