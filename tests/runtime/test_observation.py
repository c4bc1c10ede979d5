"""ObservationAssembler: staleness, missing, wrong size / encoding, NaN joints."""

from __future__ import annotations

import numpy as np
import pytest

from motus_policy.runtime.observation import (
    ObservationAssembler,
    ObservationConfig,
    ObservationUnavailable,
)
from motus_recorder.profile import load_profile

HW = (12, 16)
S = 1_000_000_000


@pytest.fixture
def asm():
    return ObservationAssembler(ObservationConfig.from_profile(load_profile("aloha_sim"), HW))


def _img(value=7, hw=HW):
    return np.full((*hw, 3), value, np.uint8)


def _feed(asm, t_ns, skip=()):
    for i, name in enumerate(("cam_high", "cam_left_wrist", "cam_right_wrist")):
        if name not in skip:
            asm.update_image(name, _img(i), t_ns)
    for arm, off in (("left", 0.0), ("right", 1.0)):
        if arm not in skip:
            asm.update_joints(arm, np.arange(7, dtype=np.float32) * 0.01 + off, t_ns)


def test_assembles_state_in_14d_layout(asm):
    _feed(asm, 10 * S)
    obs = asm.assemble(10 * S + 5_000_000, instruction="pick")
    assert obs.state.shape == (14,) and obs.state.dtype == np.float32
    np.testing.assert_allclose(obs.state[7:], np.arange(7) * 0.01 + 1.0, rtol=1e-6)
    assert set(obs.images) == {"cam_high", "cam_left_wrist", "cam_right_wrist"}
    assert obs.images["cam_left_wrist"][0, 0, 0] == 1
    assert obs.stamp_ns == 10 * S and obs.instruction == "pick"
    assert asm.check(10 * S) is None


def test_missing_stream_is_named(asm):
    _feed(asm, 10 * S, skip=("cam_right_wrist",))
    with pytest.raises(ObservationUnavailable) as e:
        asm.assemble(10 * S)
    assert e.value.stream == "cam_right_wrist" and "missing" in e.value.reason


def test_stale_camera_names_age_and_bound(asm):
    _feed(asm, 10 * S)
    asm.update_joints("left", np.zeros(7), 10 * S + 840_000_000)
    asm.update_joints("right", np.zeros(7), 10 * S + 840_000_000)
    with pytest.raises(ObservationUnavailable) as e:
        asm.assemble(10 * S + 840_000_000)
    assert e.value.stream == "cam_high"
    assert e.value.reason == "stale: 0.84 s > 0.20 s"


def test_stale_joint_state(asm):
    _feed(asm, 10 * S)
    for name in ("cam_high", "cam_left_wrist", "cam_right_wrist"):
        asm.update_image(name, _img(), 10 * S + 150_000_000)
    err = asm.check(10 * S + 150_000_000)
    assert err.stream == "left" and err.reason.startswith("stale: 0.15 s > 0.10 s")


def test_wrong_size_and_encoding_then_recovery(asm):
    _feed(asm, 10 * S)
    asm.update_image("cam_left_wrist", _img(hw=(24, 32)), 10 * S)
    err = asm.check(10 * S)
    assert (
        err.stream == "cam_left_wrist"
        and "wrong size" in err.reason
        and "(12, 16, 3)" in err.reason
    )
    asm.update_image("cam_left_wrist", _img(), 10 * S, encoding="mono8")
    assert "encoding 'mono8'" in asm.check(10 * S).reason
    bgr = _img()
    bgr[..., 0] = 200
    asm.update_image("cam_left_wrist", bgr, 10 * S, encoding="bgr8")
    obs = asm.assemble(10 * S)
    assert obs.images["cam_left_wrist"][0, 0, 2] == 200  # converted to RGB


def test_nan_joint_names_the_joint(asm):
    _feed(asm, 10 * S)
    q = np.zeros(7)
    q[1] = np.nan
    asm.update_joints("right", q, 10 * S)
    err = asm.check(10 * S)
    assert err.stream == "right" and "right_shoulder=nan" in err.reason
    assert asm.latest_state() is None


def test_future_stamp_and_mark_invalid(asm):
    _feed(asm, 10 * S)
    assert "future" in asm.check(9 * S).reason
    asm.mark_invalid("cam_high", "unsupported image encoding '16UC1'", 10 * S)
    assert asm.check(10 * S).stream == "cam_high"
    with pytest.raises(KeyError):
        asm.mark_invalid("cam_nope", "x", 0)


def test_joint_outside_its_limits_marks_the_arm_invalid_naming_joint_and_limit(asm):
    """Issue #14 defect 4: only length and finiteness were checked (10 rad went through)."""
    _feed(asm, 10 * S)
    q = np.zeros(7)
    q[1] = 10.0  # left_shoulder, limits [-1.85005, 1.25664]
    asm.update_joints("left", q, 10 * S)
    err = asm.check(10 * S)
    assert err.stream == "left"
    assert err.reason == (
        "measured left_shoulder = 10.0000 outside its limits [-1.8500, 1.2566] by more than "
        "the tolerance (2 % of the range)"
    )
    assert asm.latest_state() is None  # never used to seed a command
    q[1] = 1.2566 + 0.05  # 1.6 % of the range past the limit: a reading within the tolerance
    q[6] = 1.2  # gripper 20 % past fully open: within the gripper band (25 %)
    asm.update_joints("left", q, 10 * S)
    assert asm.check(10 * S) is None
    q[6] = -0.3
    asm.update_joints("left", q, 10 * S)
    assert "left_gripper = -0.3000 outside its limits [0.0000, 1.0000]" in asm.check(10 * S).reason


def test_tolerances_follow_the_config_and_replay_configs_without_limits_accept_anything():
    prof = load_profile("aloha_sim")
    strict = ObservationAssembler(ObservationConfig.from_profile(prof, HW, 0.0, 0.0))
    q = np.zeros(7)
    q[6] = 1.001
    strict.update_joints("left", np.zeros(7), S)
    strict.update_joints("right", q, S)
    assert "right_gripper = 1.0010" in strict.state_problem()
    c = ObservationConfig.from_profile(prof, HW)
    free = ObservationAssembler(ObservationConfig(c.cameras, c.arm_joint_names, 0.1))
    free.update_joints("right", np.full(7, 10.0), S)
    assert free.state_problem() == "left: missing: nothing received yet"  # right accepted
