"""SimRunner (command arbitration, lockstep flags, camera cadence) and Pacer (fake clock)."""

from __future__ import annotations

import numpy as np
import pytest

from motus_policy.robots.aloha_sim.commands import CommandRejected
from motus_policy.robots.aloha_sim.runner import AlohaSimNodeConfig, Pacer, SimRunner
from motus_policy.robots.aloha_sim.sim import CONTROL_PERIOD_NS, AlohaSim, AlohaSimConfig
from motus_recorder.profile import load_profile


@pytest.fixture(scope="module")
def profile():
    return load_profile("aloha_sim")


def _runner(profile, render=False, **cfg):
    sim = AlohaSim(AlohaSimConfig(image_height=48, image_width=64, **cfg), profile)
    r = SimRunner(sim, profile, render=render)
    return r, r.reset(0)


@pytest.mark.parametrize(
    ("field", "value"),
    [("task", "x"), ("seed", -1), ("mode", "fast"), ("real_time_factor", 0.0), ("seed", 2**32)],
)
def test_node_config_rejects_bad_fields(field, value):
    with pytest.raises(ValueError, match=field):
        AlohaSimNodeConfig(**{field: value})


def test_lockstep_flag_needs_both_arms_and_clears_on_step(profile):
    r, res = _runner(profile)
    assert not r.both_arms_commanded
    r.command("left", res.qpos[:7])
    assert not r.both_arms_commanded
    r.command("right", np.clip(res.qpos[7:], 0, None))
    assert r.both_arms_commanded
    out = r.step()
    assert out.sim_time_ns == res.sim_time_ns + CONTROL_PERIOD_NS
    assert not r.both_arms_commanded


def test_rejected_command_keeps_last_valid_target(profile):
    r, res = _runner(profile)
    good = res.qpos[:7].copy()
    good[0] = 0.3
    r.command("left", good)
    bad = good.copy()
    bad[3] = np.inf
    with pytest.raises(CommandRejected, match="left_forearm_roll is inf"):
        r.command("left", bad)
    for _ in range(40):
        out = r.step()
    assert abs(out.qpos[0] - 0.3) < 0.02


def test_stale_command_after_reset_is_rejected(profile):
    r, res = _runner(profile)
    r.step()
    old_t = r.sim.sim_time_ns
    r.reset(1)
    with pytest.raises(CommandRejected, match="before the current episode's start"):
        r.command("left", res.qpos[:7], stamp_ns=old_t)
    assert not r.both_arms_commanded
    r.command("left", res.qpos[:7], stamp_ns=r.episode_start_ns)  # current stamp: accepted


def test_trajectory_is_sampled_at_each_step_end(profile):
    r, res = _runner(profile)
    q0 = res.qpos[7:].copy()
    goal = q0.copy()
    goal[0] = q0[0] + 0.2
    r.trajectory("right", np.array([100_000_000]), goal[None, :], stamp_ns=0)  # 0.1 s from now
    r.step()  # step ends at +20 ms: target 1/5 of the way
    np.testing.assert_allclose(r.sim.last_target[7], q0[0] + 0.04, atol=1e-9)
    for _ in range(4):
        r.step()
    np.testing.assert_allclose(r.sim.last_target[7], goal[0], atol=1e-9)


def test_cameras_render_every_second_step_and_all_at_reset(profile):
    r, res = _runner(profile, render=True)
    assert sorted(res.images) == sorted(profile.camera_names)
    due = [sorted(r.step().images) for _ in range(4)]
    assert due == [[], sorted(profile.camera_names), [], sorted(profile.camera_names)]
    assert res.images["cam_high"].shape == (48, 64, 3)


class _FakeTime:
    def __init__(self):
        self.ns = 0

    def clock(self) -> int:
        return self.ns

    def sleep(self, s: float) -> None:
        self.ns += round(s * 1e9)


def test_pacer_steps_at_period_over_rtf_and_reports_rtf():
    ft = _FakeTime()
    p = Pacer(20_000_000, 2.0, clock=ft.clock, sleep=ft.sleep)
    times = []
    for _ in range(5):
        assert p.wait()
        times.append(ft.ns)
        p.stepped()
    assert np.diff(times).tolist() == [10_000_000] * 4
    assert p.achieved_rtf() == pytest.approx(2.0, rel=0.3)


def test_pacer_makes_up_a_slow_step_but_restarts_when_far_behind():
    ft = _FakeTime()
    p = Pacer(20_000_000, 1.0, clock=ft.clock, sleep=ft.sleep, max_lag_steps=4)
    assert p.wait()
    ft.ns += 30_000_000  # a slow (rendering) step
    p.stepped()
    assert p.wait() and ft.ns == 30_000_000  # already due: no sleep
    p.stepped()
    p.wait()
    assert ft.ns == 40_000_000  # back on the 20 ms grid
    ft.ns += 500_000_000  # a long stall: more than 4 periods behind
    p.stepped()
    t = ft.ns
    p.wait()
    p.stepped()
    p.wait()
    assert ft.ns - t == 20_000_000  # schedule restarted from now, no burst
