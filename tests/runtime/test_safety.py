"""Safety gate: NaN / out-of-limit rejection, velocity clamp, ramp-in, e-stop latch."""

from __future__ import annotations

import numpy as np
import pytest

from motus_policy.runtime.safety import SafetyConfig, SafetyGate
from motus_recorder.profile import load_profile

S = 1_000_000_000
T = 10 * S


@pytest.fixture
def profile():
    return load_profile("aloha_sim")


def _gate(profile, ramp_in_s=0.0, rate_hz=50.0):
    g = SafetyGate(SafetyConfig.from_profile(profile, rate_hz, ramp_in_s=ramp_in_s))
    g.activate(np.zeros(14), T)
    return g


def test_nan_target_holds_last_safe_command_and_names_joint(profile):
    g = _gate(profile)
    ok = g.filter(np.full(14, 0.01), T + S // 50)
    assert not ok.held
    bad = np.full(14, 0.02)
    bad[8] = np.nan
    res = g.filter(bad, T + 2 * S // 50)
    assert res.held and res.reason == "non-finite target right_shoulder=nan"
    np.testing.assert_array_equal(res.command, ok.command)  # the offending command is not sent


def test_out_of_limit_target_holds_naming_the_joint(profile):
    g = _gate(profile)
    bad = np.zeros(14)
    bad[2] = 1.7  # left_elbow max 1.6057
    res = g.filter(bad, T + S // 50)
    assert res.held and "left_elbow = 1.7000 > 1.6057" in res.reason
    np.testing.assert_array_equal(res.command, np.zeros(14))
    bad = np.zeros(14)
    bad[13] = -0.5
    assert "right_gripper = -0.5000 < 0.0000" in g.filter(bad, T).reason


def test_velocity_clamp_limits_each_step(profile):
    g = _gate(profile, rate_hz=50.0)
    target = np.zeros(14)
    target[0] = 1.0  # left_waist: 3 rad/s * 0.02 s = 0.06 rad per step
    target[6] = 0.5  # left_gripper: 5 /s * 0.02 s = 0.1 per step
    res = g.filter(target, T + S // 50)
    assert res.command[0] == pytest.approx(0.06) and res.command[6] == pytest.approx(0.1)
    assert set(res.clamped) == {"left_waist", "left_gripper"}
    res = g.filter(target, T + 2 * S // 50)
    assert res.command[0] == pytest.approx(0.12)


def test_ramp_in_blends_from_current_pose(profile):
    g = SafetyGate(SafetyConfig.from_profile(profile, 50.0, ramp_in_s=1.0))
    pose = np.full(14, 0.2)
    g.activate(pose, T)
    target = np.full(14, 0.25)
    assert g.ramping
    res = g.filter(target, T + S // 2)
    np.testing.assert_allclose(res.command, 0.225)  # halfway through the ramp
    res = g.filter(target, T + S + 1)
    np.testing.assert_allclose(res.command, 0.25)
    assert not g.ramping


def test_hold_then_resume_ramps_again(profile):
    g = SafetyGate(SafetyConfig.from_profile(profile, 50.0, ramp_in_s=1.0))
    g.activate(np.zeros(14), T)
    g.filter(np.zeros(14), T + 2 * S)
    assert g.hold("cam_high: stale").held
    res = g.filter(np.full(14, 0.04), T + 3 * S)  # first step after the hold: ramp restarts
    np.testing.assert_allclose(res.command, 0.0)
    res = g.filter(np.full(14, 0.04), T + 3 * S + S // 4)
    np.testing.assert_allclose(res.command, 0.01)


def test_estop_latches_until_reset(profile):
    g = _gate(profile)
    g.estop("operator")
    for k in range(3):
        res = g.filter(np.full(14, 0.01), T + k * S)
        assert res.held and res.reason == "e-stop latched: operator"
    g.reset_estop()
    res = g.filter(np.full(14, 0.03), T + 4 * S + S // 50)
    assert not res.held
    np.testing.assert_allclose(res.command, 0.03)


def test_inactive_gate_holds(profile):
    g = SafetyGate(SafetyConfig.from_profile(profile, 50.0))
    res = g.filter(np.zeros(14), T)
    assert res.held and res.command is None and res.reason == "inactive"
    with pytest.raises(ValueError, match="finite"):
        g.activate(np.full(14, np.nan), T)


def test_a_hair_past_a_limit_is_clamped_and_reported_further_is_rejected():
    prof = load_profile("aloha_sim")
    cfg = SafetyConfig.from_profile(prof, 50.0, ramp_in_s=0.0, gripper_limit_tolerance=0.02)
    gate = SafetyGate(cfg)
    pose = (prof.position_min + prof.position_max) / 2
    pose[6] = 0.99  # left gripper almost open (range 0..1)
    gate.activate(pose, 0)
    target = pose.copy()
    target[6] = 1.003  # learned-policy overshoot: within 2 % of the range
    res = gate.filter(target, 20_000_000)
    assert not res.held and res.command[6] == pytest.approx(1.0)
    assert "left_gripper" in res.clamped
    target[6] = 1.05  # 5 % past the limit: rejected, the arm holds
    res = gate.filter(target, 40_000_000)
    assert res.held and "left_gripper = 1.0500 > 1.0000" in res.reason


def test_gripper_overshoot_is_clamped_but_arm_overshoot_and_wild_gripper_hold():
    profile = load_profile("aloha_sim")
    gate = SafetyGate(SafetyConfig.from_profile(profile, 50.0, ramp_in_s=0.0))
    pose = np.clip(np.zeros(14), profile.position_min, profile.position_max)
    pose[[6, 13]] = 0.9
    gate.activate(pose, 0)
    target = pose.copy()
    target[13] = 1.08  # an open gripper predicted 8 % past fully open
    res = gate.filter(target, 20_000_000)
    assert not res.held and res.command[13] == pytest.approx(1.0)
    target[13] = 1.3  # 30 % past: not an overshoot any more
    res = gate.filter(target, 40_000_000)
    assert res.held and "right_gripper" in res.reason
    arm = pose.copy()
    arm[1] = profile.position_max[1] + 0.05 * (profile.position_max[1] - profile.position_min[1])
    res = gate.filter(arm, 60_000_000)
    assert res.held and "left_shoulder" in res.reason


def _step_max(profile, rate_hz=50.0):
    return profile.velocity_max / rate_hz


def test_activation_refuses_an_out_of_limit_pose_naming_joint_and_limit(profile):
    """Issue #14 defect 1: a bad measured pose must not seed the command (10 rad was sent)."""
    g = SafetyGate(SafetyConfig.from_profile(profile, 50.0))
    pose = np.zeros(14)
    pose[1] = 10.0  # left_shoulder, limit 1.2566
    with pytest.raises(ValueError, match=r"left_shoulder = 10\.0000 > limit 1\.2566"):
        g.activate(pose, T)
    assert g.hold("no plan yet").command is None  # nothing to publish
    assert g.filter(np.zeros(14), T + S).command is None
    # an armed gate given a bad pose at re-activation forgets its old command too
    g.activate(np.full(14, 0.1), T)
    assert g.hold("x").command is not None
    with pytest.raises(ValueError, match="left_shoulder"):
        g.activate(pose, T + S)
    assert g.hold("x").command is None and not g.active


def test_a_pose_within_the_tolerance_is_clamped_into_the_limits(profile):
    g = SafetyGate(SafetyConfig.from_profile(profile, 50.0, ramp_in_s=0.0))
    pose = np.full(14, 0.1)
    pose[1] = profile.position_max[1] + 0.01  # 0.3 % of the range past the limit
    pose[13] = 1.1  # gripper 10 % past fully open (band 25 %)
    g.activate(pose, T)
    held = g.hold("no plan yet").command
    assert held[1] == profile.position_max[1] and held[13] == 1.0


def test_reset_estop_ramps_from_the_last_published_command_within_the_step_limit(profile):
    """Issue #14 defect 3: resume from the last command, never jump to the measured pose."""
    g = SafetyGate(SafetyConfig.from_profile(profile, 50.0, ramp_in_s=0.5))
    g.activate(np.zeros(14), T)
    now = T
    for _ in range(60):
        now += S // 50
        last = g.filter(np.full(14, 0.1), now).command
    g.estop("operator")
    assert g.filter(np.full(14, 0.1), now + S).command is not None
    g.reset_estop()
    prev, now = last, now + 2 * S
    for k in range(80):  # the arm was moved by 0.4 rad: the plan now starts there
        now += S // 50
        res = g.filter(np.full(14, 0.5), now)
        assert not res.held
        assert np.all(np.abs(res.command - prev) <= _step_max(profile) + 1e-12), k
        if k == 0:  # ramp restarted from the last published command
            np.testing.assert_allclose(res.command, last)
        prev = res.command
    np.testing.assert_allclose(prev, 0.5)


def test_every_gated_command_is_finite_within_limits_and_one_step_from_the_last(profile):
    """Random targets (NaN, far out, near edges), holds, e-stops, resets and re-activations."""
    rng = np.random.default_rng(0)
    lo, hi = profile.position_min, profile.position_max
    g = SafetyGate(SafetyConfig.from_profile(profile, 50.0, ramp_in_s=0.3))
    now, prev, published = T, None, 0
    for k in range(3000):
        now += S // 50
        r = rng.random()
        if r < 0.01:  # re-activation at a measured pose, sometimes outside the band
            pose = rng.uniform(lo, hi)
            if rng.random() < 0.3:
                pose[rng.integers(14)] = rng.choice([-10.0, 10.0, np.nan])
            try:
                g.activate(pose, now)
            except ValueError as exc:
                assert "measured pose" in str(exc)
            prev = None  # activation starts a new command stream (the measured pose)
            continue
        if r < 0.02:
            g.estop("x")
        elif r < 0.04:
            g.reset_estop()
        if r < 0.05:
            res = g.hold("watchdog")
        else:
            target = rng.uniform(lo - 0.01 * (hi - lo), hi + 0.01 * (hi - lo))
            if rng.random() < 0.1:
                target[rng.integers(14)] = rng.choice([np.nan, np.inf, -np.inf, -10.0, 10.0])
            res = g.filter(target, now)
        q = res.command
        if q is None:
            continue
        published += 1
        assert np.all(np.isfinite(q)) and np.all(q >= lo) and np.all(q <= hi), k
        if prev is not None:
            assert np.all(np.abs(q - prev) <= _step_max(profile) * (1 + 1e-9)), k
        prev = q
    assert published > 1000, published


def test_a_corrupted_last_command_is_never_republished(profile):
    g = _gate(profile)
    g.last_command = np.full(14, 10.0)  # only a bug could put it there
    res = g.hold("no plan yet")
    assert res.command is None and "nothing published" in res.reason
    assert g.filter(np.zeros(14), T + S).command is None
