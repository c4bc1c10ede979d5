"""Sync core: nearest-stamp alignment, drops, skew, duplicates, stale cameras, clock jumps."""

from __future__ import annotations

import pytest

from motus_recorder.sync import SyncConfig, SyncCore

P = 40_000_000  # 25 Hz


def _core(fake_clock, **kw):
    return SyncCore(SyncConfig(record_rate_hz=25.0, **kw), ["cam", "joints"], fake_clock)


def _feed(core, clock, t_ns, cam=True, joints=True):
    if cam:
        core.push("cam", t_ns - 3_000_000, f"img@{t_ns}")  # 3 ms skew
    if joints:
        core.push("joints", t_ns, f"q@{t_ns}")
        core.push("joints", t_ns + P // 2, f"q@{t_ns + P // 2}")  # joints at 2x rate


def test_aligns_nearest_within_tolerance_and_reports_skew(fake_clock):
    core = _core(fake_clock)
    out = []
    for _ in range(10):
        _feed(core, fake_clock, fake_clock())
        fake_clock.advance(P / 1e9)
        out.append(core.sample())
    got = [s for s in out if s is not None]
    assert len(got) == 10  # lag = 1 period: the previous step's messages are used
    s = got[-1]
    assert s.values["joints"] == f"q@{s.t_ns}" and s.stamps_ns["cam"] == s.t_ns - 3_000_000
    st = core.stats()
    assert st["recorded"] == 10 and st["dropped"] == 0 and core.fault is None
    assert st["streams"]["cam"]["skew_median_ms"] == pytest.approx(3.0)
    assert st["streams"]["joints"]["skew_max_ms"] == pytest.approx(0.0)


def test_slow_camera_gives_duplicates_not_drops(fake_clock):
    core = _core(fake_clock, tolerance_s=0.045)
    for k in range(12):
        _feed(core, fake_clock, fake_clock(), cam=(k % 2 == 0))
        fake_clock.advance(P / 1e9)
        core.sample()
    st = core.stats()
    assert st["dropped"] == 0 and st["streams"]["cam"]["duplicates"] >= 4


def test_stopped_camera_counts_drops_then_faults(fake_clock):
    core = _core(fake_clock, max_consecutive_drops=5)
    for k in range(20):
        _feed(core, fake_clock, fake_clock(), cam=k < 5)
        fake_clock.advance(P / 1e9)
        core.sample()
    st = core.stats()
    assert st["streams"]["cam"]["drops"] >= 6 and st["streams"]["joints"]["drops"] == 0
    assert "too many drops" in core.fault and "cam" in core.fault


def test_drop_fraction_fault(fake_clock):
    core = _core(fake_clock, max_drop_fraction=0.2, min_ticks_for_fraction=10)
    for k in range(30):
        _feed(core, fake_clock, fake_clock(), cam=k % 3 != 0)
        fake_clock.advance(P / 1e9)
        core.sample()
    assert core.fault is not None and "of 30" not in core.fault  # tripped before the end
    assert "too many drops" in core.fault


def test_stamp_going_backwards_is_a_clock_jump(fake_clock):
    core = _core(fake_clock)
    core.push("cam", fake_clock(), "a")
    core.push("cam", fake_clock() - 500_000_000, "b")
    assert core.fault.startswith("clock jump: cam stamp went backwards by 500.0 ms")


def test_clock_jump_forward_and_future_stamps(fake_clock):
    core = _core(fake_clock)
    core.sample()
    fake_clock.advance(5.0)
    core.sample()
    assert "clock advanced 5000.0 ms" in core.fault
    core.reset()
    assert core.fault is None
    core.push("joints", fake_clock() + 10**9, "x")
    assert "ahead of the clock" in core.fault


def test_repeated_stamp_is_ignored_and_counted(fake_clock):
    core = _core(fake_clock)
    core.push("cam", 100, "a")
    core.push("cam", 100, "b")
    assert core.stats()["streams"]["cam"]["repeated_stamps"] == 1


def test_config_validation_names_field():
    with pytest.raises(ValueError, match="record_rate_hz"):
        SyncConfig(record_rate_hz=0.0)
    with pytest.raises(ValueError, match="max_drop_fraction"):
        SyncConfig(record_rate_hz=25.0, max_drop_fraction=2.0)


def test_old_messages_are_pruned_to_bound_memory(fake_clock):
    core = _core(fake_clock)
    for _ in range(100):
        core.push("cam", fake_clock(), object())
        fake_clock.advance(0.01)
    # keep = lag (40 ms) + tolerance (20 ms) + max_jump_periods (10 x 40 ms) = 460 ms at 100 Hz
    assert len(core._streams["cam"].stamps) <= 48


def test_late_tick_takes_every_due_grid_frame_at_regular_times(fake_clock):
    core = _core(fake_clock)
    t0 = fake_clock()
    core.reset()  # grid origin = t0
    for k in range(6):
        _feed(core, fake_clock, t0 + k * P)
    fake_clock.advance(5 * P / 1e9)  # one late timer tick 5 periods on
    got = []
    while core.due():
        got.append(core.sample())
    assert [s.t_ns for s in got] == [t0 + k * P for k in range(5)]  # lag = 1 period
    assert all(s.values["joints"] == f"q@{s.t_ns}" for s in got)
