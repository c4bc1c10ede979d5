"""PiperArm + the real piper-sdk over python-can's virtual bus, against the fake arm."""

from __future__ import annotations

import itertools
import math
import struct
import time

import numpy as np
import pytest

from motus_policy.robots.piper.driver import (
    CommandRejectedError,
    PiperArm,
    PiperArmConfig,
    connect_piper,
    m_to_um,
    rad_to_mdeg,
)
from motus_policy.robots.piper.fake import FakePiperArm, FakePiperConfig
from motus_recorder.profile import load_profile

_ids = itertools.count()
ARM = load_profile("aloha_agilex_2").arm("left")


def wait_until(pred, timeout_s=3.0, poll_s=0.01):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(poll_s)
    return pred()


@pytest.fixture
def rig():
    """A fake follower on a fresh virtual channel and a PiperArm talking to it via the SDK."""
    channel = f"vpiper_core_{next(_ids)}"
    fake = FakePiperArm(FakePiperConfig(channel=channel, time_constant_s=0.05)).start()
    sdk = connect_piper(channel, "virtual")
    arm = PiperArm(PiperArmConfig.from_arm_profile(ARM), sdk)
    yield fake, arm
    sdk.DisconnectPort()
    fake.stop()


def test_unit_conversions_are_exact():
    assert rad_to_mdeg(np.array([math.pi / 2, -math.radians(30.0)])) == [90_000, -30_000]
    assert m_to_um(0.05) == 50_000
    assert m_to_um(0.0998) == 99_800


def test_config_from_profile_and_validation():
    cfg = PiperArmConfig.from_arm_profile(ARM)
    assert cfg.names[-1] == "left_gripper" and len(cfg.names) == 7
    with pytest.raises(ValueError, match="speed_rate_percent"):
        PiperArmConfig.from_arm_profile(ARM, speed_rate_percent=0)
    with pytest.raises(ValueError, match="gripper_effort_nm"):
        PiperArmConfig.from_arm_profile(ARM, gripper_effort_nm=9.0)
    sim_arm = load_profile("aloha_sim").arm("left")
    with pytest.raises(ValueError, match="gripper unit must be 'm'"):
        PiperArmConfig.from_arm_profile(sim_arm)


def test_command_reaches_arm_exactly_and_feedback_follows_with_lag(rig):
    fake, arm = rig
    assert arm.enable(), "fake arm never reported enabled"
    q = np.array([0.3, 0.5, -0.4, 0.2, -0.1, 0.6])
    fake.clear_frames()
    arm.command(q, gripper_m=0.05)
    want = rad_to_mdeg(q)
    assert wait_until(lambda: len(fake.frames_seen(0x157)) >= 1)
    # Exact integer units on the wire: 0.001 deg big-endian int32 pairs, gripper 0.001 mm.
    got = []
    for can_id in (0x155, 0x156, 0x157):
        got.extend(struct.unpack(">ii", fake.frames_seen(can_id)[-1][1]))
    assert got == want
    assert wait_until(lambda: fake.frames_seen(0x159))
    grip_frame = fake.frames_seen(0x159)[-1][1]
    assert struct.unpack(">iHBB", grip_frame) == (50_000, 1000, 0x01, 0)
    # MotionCtrl_2 (CAN mode, MOVE J, speed 50) precedes the joint frames.
    ids = [f[0] for f in fake.frames_seen()]
    assert ids.index(0x151) < ids.index(0x155)
    assert fake.frames_seen(0x151)[-1][1][:3] == bytes([0x01, 0x01, 50])
    # First-order lag: not there at once, converged after ~10 time constants.
    early = arm.read_state().joints_rad
    assert np.max(np.abs(early - q)) > 0.05
    assert wait_until(lambda: np.max(np.abs(arm.read_state().joints_rad - q)) < 1e-3, 3.0)
    reading = arm.read_state()
    assert abs(reading.gripper_m - 0.05) < 1e-4
    assert reading.sdk_time_s > 0


@pytest.mark.parametrize(
    ("q", "grip", "match"),
    [
        ([0.0, float("nan"), 0, 0, 0, 0], 0.01, "left_joint2 is nan"),
        ([0.0, 0.5, 0.1, 0, 0, 0], 0.01, r"left_joint3 = 0\.1000 outside \["),
        ([3.0, 0.5, -0.1, 0, 0, 0], 0.01, "left_joint1"),
        ([0.0, 0.5, -0.1, 0, 0, 0], 0.2, "left_gripper"),
        ([0.0, 0.5, -0.1, 0, 0, 0], float("inf"), "left_gripper"),
        ([0.0, 0.5], 0.01, "expected 6 values"),
    ],
)
def test_bad_commands_are_rejected_and_nothing_is_sent(rig, q, grip, match):
    fake, arm = rig
    time.sleep(0.05)
    fake.clear_frames()
    with pytest.raises(CommandRejectedError, match=match):
        arm.command(np.array(q), gripper_m=grip)
    time.sleep(0.05)
    sent = {f[0] for f in fake.frames_seen()}
    assert not sent & {0x151, 0x155, 0x156, 0x157, 0x159}, sent


def test_estop_sends_frame_holds_arm_and_refuses_commands(rig):
    fake, arm = rig
    assert arm.enable()
    arm.estop()
    assert wait_until(lambda: fake.frames_seen(0x150))
    assert fake.frames_seen(0x150)[-1][1][0] == 0x01
    assert wait_until(lambda: fake.state()["estopped"])
    with pytest.raises(CommandRejectedError, match="e-stopped"):
        arm.command(np.zeros(6) + np.array([0, 0.2, -0.2, 0, 0, 0]))
    arm.resume()
    assert wait_until(lambda: not fake.state()["estopped"])
    assert fake.frames_seen(0x150)[-1][1][0] == 0x02
    arm.command(np.array([0, 0.2, -0.2, 0, 0, 0]))  # accepted again


def test_disable_reports_not_enabled(rig):
    fake, arm = rig
    assert arm.enable()
    arm.disable()
    assert wait_until(lambda: not arm.is_enabled())
    assert fake.frames_seen(0x471)[-1][1][:2] == bytes([7, 0x01])


def test_leader_mode_reads_leader_joint_commands():
    channel = f"vpiper_leader_{next(_ids)}"
    script = lambda t: (np.array([10_000, 20_000, -30_000, 0, 5_000, -1_000]), 40_000.0)  # noqa: E731
    fake = FakePiperArm(FakePiperConfig(channel=channel, leader=True), leader_script=script)
    fake.start()
    sdk = connect_piper(channel, "virtual")
    try:
        arm = PiperArm(PiperArmConfig.from_arm_profile(ARM), sdk)
        arm.configure_as_leader()
        assert wait_until(lambda: fake.frames_seen(0x470))
        assert fake.frames_seen(0x470)[-1][1][0] == 0xFA
        assert wait_until(lambda: arm.read_leader_command() is not None)
        time.sleep(0.05)
        lead = arm.read_leader_command()
        np.testing.assert_array_equal(
            np.round(np.degrees(lead.joints_rad) * 1000),
            [10_000, 20_000, -30_000, 0, 5_000, -1_000],
        )
        assert lead.gripper_m == pytest.approx(0.04)
    finally:
        sdk.DisconnectPort()
        fake.stop()
