"""ControlLoop (absolute deadlines, skip-not-burst) and TimingStats, with a fake clock."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from motus_policy.runtime.control_loop import ControlLoop, TimingStats, period_figures

PERIOD = 33_333_333


def _loop(fake_clock, step_cost_s=0.0, late_s=None):
    """A loop whose sleep_until jumps the fake clock to the deadline (+ an optional lateness)."""
    ticks: list[int] = []
    lateness = iter(late_s or [])

    def sleep_until(deadline_ns):
        fake_clock.now_ns = deadline_ns + int(next(lateness, 0.0) * 1e9)

    def step(now_ns):
        ticks.append(now_ns)
        fake_clock.advance(step_cost_s)

    return ControlLoop(PERIOD, fake_clock, sleep_until, step), ticks


def test_ticks_at_absolute_deadlines_without_drift(fake_clock):
    loop, ticks = _loop(fake_clock, step_cost_s=0.004)  # the tick's own cost must not add up
    t0 = fake_clock.now_ns
    for _ in range(100):
        assert loop.run_once()
    assert ticks == [t0 + k * PERIOD for k in range(100)]
    assert loop.skipped == 0 and max(loop.late_ns) == 0


def test_a_late_wakeup_shifts_one_tick_and_a_long_stall_skips(fake_clock):
    loop, ticks = _loop(fake_clock, late_s=[0.010, 0.0, 0.100, 0.0])  # tick 1: no sleep
    t0 = fake_clock.now_ns
    for _ in range(5):
        loop.run_once()
    # tick 2 is 10 ms late, tick 3 is on time again (no drift)
    assert ticks[1] - t0 == PERIOD + 10_000_000
    assert ticks[2] - t0 == 2 * PERIOD
    # tick 4 woke 100 ms late (3 periods): the deadlines it overran are skipped, not burst
    assert ticks[3] - t0 == 3 * PERIOD + 100_000_000
    assert loop.skipped == 3  # 4P, 5P, 6P had passed when tick 4 ended
    assert ticks[4] - t0 == 7 * PERIOD
    assert np.all(np.diff(ticks) > PERIOD // 2)


def test_thread_start_stop_and_bad_period(fake_clock):
    ran = threading.Event()

    def sleep_until(deadline_ns):
        fake_clock.now_ns = deadline_ns
        ran.set()

    loop = ControlLoop(PERIOD, fake_clock, sleep_until, lambda now: None)
    loop.start()
    assert ran.wait(5)
    assert loop.stop(timeout_s=5)
    assert loop.stopping
    with pytest.raises(ValueError, match="period_ns"):
        ControlLoop(0, fake_clock, sleep_until, lambda now: None)


def test_timing_stats_figures():
    st = TimingStats(PERIOD)
    t = 0
    for k in range(100):
        t += PERIOD + (2_000_000 if k == 50 else 0)
        st.command(t)
    t += 3 * PERIOD  # a missed period
    st.command(t)
    st.first_action(1_000, 1_000 + 80_000_000)
    st.first_action(2_000, 2_000 + 120_000_000)
    s = st.summary()
    assert s["intervals"] == 100
    assert s["missed_periods"] == 1
    assert s["period_err_median_ms"] == pytest.approx(0.0, abs=1e-6)
    assert s["obs_to_action_ms_median"] == pytest.approx(100.0)
    assert s["obs_to_action_ms_max"] == pytest.approx(120.0)
    st.restart()
    st.command(t + 10 * PERIOD)  # no interval across a restart
    assert st.summary()["intervals"] == 100
    assert period_figures(np.array([]), PERIOD)["period_err_p99_ms"] is None
