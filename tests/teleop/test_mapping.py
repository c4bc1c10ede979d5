"""TeleopMapper: offset/scale, clamps, gripper range, rate limit, deadman and staleness holds."""

from __future__ import annotations

import numpy as np
import pytest

from motus_teleop.mapping import TeleopMapper, TeleopMappingConfig


def make_config(**kw):
    base = dict(
        scale=(1.0, -1.0, 1.0),
        offset=(0.1, 0.0, 0.0),
        position_min=(-1.0, -1.0, 0.0),
        position_max=(1.0, 1.0, 0.1),
        velocity_max_per_s=(2.0, 2.0, 0.2),
        gripper_index=2,
        leader_gripper_min=0.0,
        leader_gripper_max=0.07,
        stale_timeout_s=0.1,
    )
    base.update(kw)
    return TeleopMappingConfig(**base)


def test_map_offset_scale_clamp_and_gripper(fake_clock):
    m = TeleopMapper(make_config(), fake_clock)
    np.testing.assert_allclose(m.map(np.array([0.2, 0.3, 0.035])), [0.3, -0.3, 0.05])
    # Clamped to follower limits; gripper range mapped and clamped.
    np.testing.assert_allclose(m.map(np.array([5.0, 5.0, 0.5])), [1.0, -1.0, 0.1])
    np.testing.assert_allclose(m.map(np.array([-5.0, -5.0, -0.5])), [-1.0, 1.0, 0.0])


def test_no_output_before_seed_then_rate_limited_from_follower(fake_clock):
    m = TeleopMapper(make_config(), fake_clock)
    m.update_leader(np.array([0.9, 0.0, 0.07]))
    out = m.step()
    assert out.command is None and "seed" in out.reason
    m.seed(np.array([0.0, 0.0, 0.0]))
    fake_clock.advance(0.01)
    m.update_leader(np.array([0.9, 0.0, 0.07]))
    out = m.step()
    assert not out.holding
    np.testing.assert_allclose(out.command, [0.02, 0.0, 0.002])  # vmax * 10 ms
    for _ in range(100):
        fake_clock.advance(0.01)
        m.update_leader(np.array([0.9, 0.0, 0.07]))
        out = m.step()
    np.testing.assert_allclose(out.command, [1.0, 0.0, 0.1])  # converged, clamped


def test_stale_leader_and_deadman_hold_last_output(fake_clock):
    m = TeleopMapper(make_config(), fake_clock)
    m.seed(np.zeros(3))
    fake_clock.advance(0.01)
    m.update_leader(np.array([0.0, -0.5, 0.0]))
    first = m.step().command
    fake_clock.advance(0.2)  # leader silent for 0.2 s > 0.1 s
    out = m.step()
    assert out.holding and "stale" in out.reason
    np.testing.assert_array_equal(out.command, first)
    m.update_leader(np.array([0.0, -0.5, 0.0]))
    m.set_hold(True)
    fake_clock.advance(0.01)
    out = m.step()
    assert out.holding and "deadman" in out.reason
    np.testing.assert_array_equal(out.command, first)
    m.set_hold(False)
    fake_clock.advance(0.01)
    out = m.step()
    assert not out.holding
    assert out.command[1] - first[1] == pytest.approx(0.02)  # resumes at the speed limit


def test_bad_leader_samples_and_configs_raise(fake_clock):
    m = TeleopMapper(make_config(), fake_clock)
    with pytest.raises(ValueError, match="NaN"):
        m.update_leader(np.array([0.0, np.nan, 0.0]))
    with pytest.raises(ValueError, match="shape"):
        m.update_leader(np.zeros(4))
    with pytest.raises(ValueError, match="velocity_max_per_s"):
        make_config(velocity_max_per_s=(1.0, 0.0, 1.0))
    with pytest.raises(ValueError, match="offset"):
        make_config(offset=(0.0,))
    with pytest.raises(ValueError, match="position_min"):
        make_config(position_min=(2.0, -1.0, 0.0))
    with pytest.raises(ValueError, match="leader_gripper"):
        make_config(leader_gripper_max=0.0)


def test_reseed_resumes_from_the_moved_follower_not_the_last_command(fake_clock):
    m = TeleopMapper(make_config(), fake_clock)
    m.seed(np.array([0.5, 0.5, 0.05]))
    m.set_hold(True)
    m.step()
    m.reseed(np.array([-0.5, 0.0, 0.0]))  # e.g. the simulator reset the arm while held
    m.set_hold(False)
    fake_clock.advance(0.01)
    m.update_leader(np.array([-0.8, 0.0, 0.0]))  # maps to -0.7 (offset +0.1)
    out = m.step()
    np.testing.assert_allclose(out.command, [-0.52, 0.0, 0.0])  # 10 ms at 2 rad/s from -0.5
