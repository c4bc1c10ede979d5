"""PolicyRuntime + InferenceWorker + ScriptedBackend on a fake clock (no threads, no ROS)."""

from __future__ import annotations

import dataclasses
import logging
import time

import numpy as np
import pytest

from motus_policy.backends.base import PolicyBackend
from motus_policy.backends.fakes import HoldBackend, ScriptedBackend, ScriptedConfig
from motus_policy.runtime.config import PolicyRuntimeConfig
from motus_policy.runtime.policy_runtime import PolicyRuntime
from motus_recorder.profile import load_profile

HW = (8, 10)
CAMS = ("cam_high", "cam_left_wrist", "cam_right_wrist")


class Rig:
    """Fake robot streams + runtime driven step by step on a fake clock."""

    def __init__(self, clock, config=None, backend_cfg=None, tick_during_inference=False):
        self.clock = clock
        sleep = self._inferring if tick_during_inference else clock.advance
        self.backend = ScriptedBackend(backend_cfg or ScriptedConfig(latency_s=0.1), sleep)
        self.during: list[tuple[int, object]] = []
        cfg = config or PolicyRuntimeConfig(strategy="rtc", n_action_steps=4, ramp_in_s=0.0)
        self.rt = PolicyRuntime(load_profile("aloha_sim"), cfg, self.backend, clock, HW)
        self.q = np.full(14, 0.1, np.float32)
        self.frozen: set[str] = set()

    def feed(self):
        now = self.clock()
        for name in CAMS:
            if name not in self.frozen:
                self.rt.assembler.update_image(name, np.zeros((*HW, 3), np.uint8), now)
        self.rt.assembler.update_joints("left", self.q[:7], now)
        self.rt.assembler.update_joints("right", self.q[7:], now)

    def _inferring(self, seconds):
        """The backend's latency, with the control thread ticking at 50 Hz meanwhile."""
        for _ in range(round(seconds / 0.02)):
            self.clock.advance(0.02)
            self.feed()
            self.during.append((self.clock(), self.rt.tick(self.clock())))

    def step(self, infer=True):
        """Advance one 50 Hz control period; maybe run one worker iteration; tick."""
        self.clock.advance(0.02)
        self.feed()
        if infer:
            self.rt.worker.run_once()  # advances the fake clock by the backend latency
            self.feed()
        return self.rt.tick(self.clock())


def test_fakes_satisfy_protocol():
    assert isinstance(ScriptedBackend(), PolicyBackend)
    assert isinstance(HoldBackend(), PolicyBackend)


def test_activation_before_any_joint_state_holds_silently_then_ramps_in(fake_clock):
    rig = Rig(fake_clock, PolicyRuntimeConfig(ramp_in_s=0.5))
    rig.rt.activate(fake_clock(), start_worker=False)
    res = rig.rt.tick(fake_clock())
    assert (
        res.held
        and res.command is None
        and res.reason == "cam_high: missing: nothing received yet"
    )
    res = rig.step()
    assert res.command is not None  # armed at the current pose once the streams are there
    np.testing.assert_allclose(res.command, rig.q, atol=1e-6)


def test_runs_then_holds_on_frozen_camera_and_recovers(fake_clock):
    rig = Rig(fake_clock)
    rig.feed()
    rig.rt.activate(fake_clock(), start_worker=False)
    results = [rig.step() for _ in range(30)]
    assert not results[-1].held and results[-1].command is not None
    assert rig.backend.calls[-1]["prefix_len"] == 3  # d = ceil(100 ms / 40 ms)
    assert rig.rt.status(fake_clock())["scheduler"]["d"] == 3
    assert rig.rt.status(fake_clock())["prefix_error_max"] < 1e-6  # the fake inpaints exactly
    rig.frozen.add("cam_left_wrist")
    held = [rig.step() for _ in range(12)]
    res = held[-1]
    assert res.held and res.reason.startswith("cam_left_wrist: stale")
    first_hold = next(i for i, r in enumerate(held) if r.held)
    np.testing.assert_array_equal(res.command, held[first_hold - 1].command)  # republished
    st = rig.rt.status(fake_clock())
    assert st["state"] == "holding" and st["reason"].startswith("cam_left_wrist: stale")
    rig.frozen.clear()
    for _ in range(10):
        res = rig.step()
    assert not res.held


def test_nan_joint_state_holds_and_names_joint(fake_clock):
    rig = Rig(fake_clock)
    rig.feed()
    rig.rt.activate(fake_clock(), start_worker=False)
    last = [rig.step() for _ in range(20)][-1].command
    rig.q[3] = np.nan
    res = rig.step()
    assert res.held and res.reason == "left: non-finite position left_forearm_roll=nan"
    np.testing.assert_array_equal(res.command, last)


def test_out_of_limit_backend_output_never_published(fake_clock):
    rig = Rig(fake_clock)
    rig.feed()
    rig.rt.activate(fake_clock(), start_worker=False)
    for _ in range(10):
        rig.step()
    rig.backend.config.fault = "out_of_limit"
    lim = load_profile("aloha_sim").position_max
    cmds = [rig.step() for _ in range(30)]
    assert cmds[-1].held and "left_shoulder" in cmds[-1].reason
    assert all(np.all(r.command <= lim) for r in cmds)
    rig.backend.config.fault = "nan"
    res = [rig.step() for _ in range(30)][-1]
    assert res.held and "non-finite target left_waist" in res.reason


def test_inference_watchdog(fake_clock):
    cfg = PolicyRuntimeConfig(strategy="sync", n_action_steps=4, watchdog_inference_s=0.5)
    rig = Rig(fake_clock, cfg)
    rig.feed()
    rig.rt.activate(fake_clock(), start_worker=False)
    for _ in range(10):
        rig.step()
    due = rig.rt.scheduler.next_chunk_due_ns()  # 4 actions of 40 ms after the last arrival
    assert due - rig.rt.scheduler.last_chunk_ns() == 4 * 40_000_000
    for _ in range(60):
        res = rig.step(infer=False)
        late_s = (fake_clock() - due) / 1e9
        assert res.held == (late_s > 0.5), late_s  # lateness counts from when it was due
        if res.held:
            break
    assert res.reason.startswith(f"watchdog: next chunk {late_s:.2f} s overdue")
    assert "ran out, 0.16 s after that chunk arrived" in res.reason


def test_mode_and_instruction_switch_and_frames(fake_clock):
    rig = Rig(fake_clock)
    rig.feed()
    rig.rt.activate(fake_clock(), start_worker=False)
    rig.step()
    frames = rig.rt.pop_frames()
    assert len(frames) == 4 and frames[0][1].shape == (48, 64, 3)
    assert all(s > fake_clock() - 10**9 for s, _ in frames)
    new = dataclasses.replace(rig.rt.config, mode="vla", instruction="stack the cups")
    rig.rt.update_config(new)
    for _ in range(10):
        rig.step()
    assert rig.backend.calls[-1]["mode"] == "vla"
    assert rig.backend.calls[-1]["instruction"] == "stack the cups"
    assert rig.rt.pop_frames() == []
    with pytest.raises(ValueError, match="ramp_in_s"):
        rig.rt.update_config(dataclasses.replace(new, ramp_in_s=3.0))
    rig.rt.update_config(dataclasses.replace(new, mode="vgm"))
    res = rig.step()
    assert res.held and "video only" in res.reason


def test_estop_via_runtime(fake_clock):
    rig = Rig(fake_clock)
    rig.feed()
    rig.rt.activate(fake_clock(), start_worker=False)
    for _ in range(10):
        rig.step()
    rig.rt.estop("test")
    assert rig.step().reason == "e-stop latched: test"
    assert rig.rt.status(fake_clock())["state"] == "estop"
    rig.rt.reset_estop(fake_clock())
    res = [rig.step() for _ in range(10)][-1]
    assert not res.held


def test_strategy_switch_at_run_time(fake_clock):
    rig = Rig(fake_clock)
    rig.feed()
    rig.rt.activate(fake_clock(), start_worker=False)
    for _ in range(10):
        rig.step()
    for strategy in ("temporal_ensemble", "sync", "rtc"):
        rig.rt.update_config(dataclasses.replace(rig.rt.config, strategy=strategy))
        assert rig.rt.scheduler.strategy == strategy
        res = [rig.step() for _ in range(15)][-1]
        assert not res.held, (strategy, res.reason)
    with pytest.raises(ValueError, match="n_action_steps"):
        rig.rt.update_config(dataclasses.replace(rig.rt.config, n_action_steps=17))


def test_strategy_prefix_is_an_alias_of_rtc():
    assert PolicyRuntimeConfig(strategy="prefix").strategy == "rtc"
    assert dataclasses.replace(PolicyRuntimeConfig(), strategy="prefix").strategy == "rtc"


def test_n_action_steps_zero_resolves_to_the_checkpoints_recommendation(fake_clock):
    zero = PolicyRuntimeConfig(strategy="sync", n_action_steps=0, ramp_in_s=0.0)
    rig = Rig(fake_clock, zero, ScriptedConfig(recommended_n_action_steps=6))
    assert rig.backend.recommended_n_action_steps == 6
    assert rig.rt.resolve_n_action_steps() == rig.rt.scheduler.n_action_steps == 6
    rig.feed()
    rig.rt.activate(fake_clock(), start_worker=False)
    assert [rig.step() for _ in range(10)][-1].held is False
    assert rig.rt.status(fake_clock())["scheduler"]["n_action_steps"] == 6
    # a value given explicitly wins; 0 again follows the checkpoint
    rig.rt.update_config(dataclasses.replace(rig.rt.config, n_action_steps=3))
    assert rig.rt.scheduler.n_action_steps == 3
    rig.rt.update_config(dataclasses.replace(rig.rt.config, n_action_steps=0))
    assert rig.rt.scheduler.n_action_steps == 6


def test_n_action_steps_zero_without_a_recommendation_is_the_whole_chunk(fake_clock):
    zero = PolicyRuntimeConfig(n_action_steps=0)
    rig = Rig(fake_clock, zero, ScriptedConfig(chunk_size=12))
    assert rig.backend.recommended_n_action_steps is None
    assert rig.rt.scheduler.n_action_steps == 12


def test_n_action_steps_zero_is_resolved_again_at_activation(fake_clock):
    """A backend may learn its recommendation when it loads (after the runtime was built)."""
    zero = PolicyRuntimeConfig(n_action_steps=0)
    rig = Rig(fake_clock, zero, ScriptedConfig())
    assert rig.rt.scheduler.n_action_steps == 16
    rig.backend.config.recommended_n_action_steps = 5
    rig.feed()
    rig.rt.activate(fake_clock(), start_worker=False)
    assert rig.rt.scheduler.n_action_steps == 5
    rig.rt.deactivate()
    rig.backend.config.recommended_n_action_steps = 17  # more than the chunk holds
    with pytest.raises(ValueError, match="n_action_steps: the checkpoint recommends 17"):
        rig.rt.activate(fake_clock(), start_worker=False)


@pytest.mark.parametrize(
    ("field", "value"),
    [("strategy", "fast"), ("mode", "x"), ("n_action_steps", -1), ("num_steps", 1.5),
     ("ramp_in_s", -1.0), ("velocity_scale", 1.5), ("watchdog_inference_s", 0.0),
     ("output_interface", "can")],
)  # fmt: skip
def test_config_rejects_bad_values_naming_the_field(field, value):
    with pytest.raises(ValueError, match=f"^{field}: expected"):
        PolicyRuntimeConfig(**{field: value})


def test_failing_backend_holds_after_repeated_errors(fake_clock):
    rig = Rig(fake_clock)
    rig.feed()
    rig.rt.activate(fake_clock(), start_worker=False)
    for _ in range(10):
        rig.step()

    def boom(obs, **kw):
        raise RuntimeError("CUDA out of memory")

    rig.backend.infer = boom
    results = [rig.step() for _ in range(40)]
    assert results[-1].held
    assert results[-1].reason.endswith("x): RuntimeError: CUDA out of memory")
    assert rig.rt.worker.errors >= 3


def test_a_chunk_at_the_wrong_action_period_is_an_error_not_a_dead_worker(fake_clock):
    """A backend whose chunks disagree with its declared action rate is reported and held."""
    rig = Rig(fake_clock)
    rig.feed()
    rig.rt.activate(fake_clock(), start_worker=False)
    rig.backend.config.action_rate_hz = 5.0  # chunks now carry a 200 ms period
    assert rig.rt.worker.run_once() == "error"
    assert "rejected chunk: chunk period" in rig.rt.worker.last_error
    rig.backend.config.action_rate_hz = 25.0
    assert rig.rt.worker.run_once() == "ok"  # the next request goes through


@pytest.mark.parametrize("source", ["command", "measured"])
def test_model_state_is_the_last_command_or_the_measured_joints(fake_clock, source):
    cfg = PolicyRuntimeConfig(strategy="sync", ramp_in_s=0.0, state_source=source)
    rig = Rig(fake_clock, cfg)
    rig.feed()
    rig.rt.activate(fake_clock(), start_worker=False)
    checked = 0
    prev = rig.step().command
    for _ in range(60):
        n_calls = len(rig.backend.calls)
        res = rig.step()  # inference (if due) observes before this step's tick
        if len(rig.backend.calls) > n_calls and prev is not None:
            assert not np.allclose(prev, rig.q)  # the two sources differ here
            want = prev if source == "command" else rig.q
            np.testing.assert_allclose(rig.backend.calls[-1]["state"], want, atol=1e-6)
            checked += 1
        prev = res.command
    assert checked >= 2


@pytest.mark.parametrize(
    ("trained", "expected"), [("state", "measured"), ("command", "command"), ("", "command")]
)
def test_auto_state_source_follows_the_checkpoint_and_a_contradiction_is_logged(
    fake_clock, caplog, trained, expected
):
    rig = Rig(fake_clock, PolicyRuntimeConfig(strategy="sync", ramp_in_s=0.0),
              ScriptedConfig(latency_s=0.1, qpos_source=trained))  # fmt: skip
    rig.rt.load()
    assert rig.rt.state_source == expected
    rig.feed()
    rig.rt.activate(fake_clock(), start_worker=False)
    rig.step()  # first chunk: no command yet, the measured pose either way
    rig.q = rig.q + 0.05  # the measured joints now differ from the last command
    for _ in range(40):
        n_calls = len(rig.backend.calls)
        res = rig.step()
        if len(rig.backend.calls) > n_calls:
            break
    state = rig.backend.calls[-1]["state"]
    assert np.allclose(state, rig.q, atol=1e-6) == (expected == "measured")
    assert res.command is not None

    explicit = "command" if expected == "measured" else "measured"
    rig = Rig(fake_clock, PolicyRuntimeConfig(state_source=explicit),
              ScriptedConfig(qpos_source=trained))  # fmt: skip
    caplog.clear()  # only the second load's records (the INFO lines depend on logging config)
    with caplog.at_level(logging.WARNING, logger="motus_policy.runtime.policy_runtime"):
        rig.rt.load()
    assert rig.rt.state_source == explicit
    warned = [r.getMessage() for r in caplog.records
              if r.levelno >= logging.WARNING and "state_source" in r.getMessage()]  # fmt: skip
    assert len(warned) == (1 if trained else 0)


def test_model_state_before_any_command_is_the_measured_pose(fake_clock):
    rig = Rig(fake_clock, PolicyRuntimeConfig(strategy="sync", ramp_in_s=0.0))
    rig.feed()
    rig.rt.activate(fake_clock(), start_worker=False)
    rig.rt.worker.run_once()
    np.testing.assert_allclose(rig.backend.calls[0]["state"], rig.q, atol=1e-6)


# -- issue #14: faults a real arm would feel ------------------------------------------------------
PROFILE = load_profile("aloha_sim")
STEP_MAX = PROFILE.velocity_max / 50.0  # per 50 Hz control tick


def _assert_safe_stream(results):
    """Every published command finite, within the limits, one velocity step from the last."""
    prev = None
    for k, r in enumerate(results):
        q = r.command
        if q is None:
            continue
        assert np.all(np.isfinite(q)), k
        assert np.all(q >= PROFILE.position_min) and np.all(q <= PROFILE.position_max), (k, q)
        if prev is not None:
            assert np.all(np.abs(q - prev) <= STEP_MAX * (1 + 1e-9)), (k, np.abs(q - prev).max())
        prev = q


def test_out_of_limit_measured_pose_at_activation_publishes_nothing_then_arms(fake_clock):
    """Defect 1: left_shoulder measured at 10 rad was published, held and ramped from."""
    rig = Rig(fake_clock, PolicyRuntimeConfig(strategy="sync", ramp_in_s=0.5))
    rig.q[1] = 10.0
    rig.feed()
    rig.rt.activate(fake_clock(), start_worker=False)
    results = [rig.step() for _ in range(50)]
    assert all(r.held and r.command is None for r in results)
    assert results[-1].reason == (
        "left: measured left_shoulder = 10.0000 outside its limits [-1.8500, 1.2566] by more "
        "than the tolerance (2 % of the range)"
    )
    assert rig.backend.calls == []  # nothing inferred from it either
    rig.q[1] = 0.1  # the reading is plausible again: arm there and run
    results += [rig.step() for _ in range(50)]
    published = [r.command for r in results if r.command is not None]
    np.testing.assert_allclose(published[0], rig.q, atol=1e-6)
    assert not results[-1].held
    _assert_safe_stream(results)


def test_reactivation_with_an_out_of_limit_pose_does_not_resend_the_old_command(fake_clock):
    rig = Rig(fake_clock)
    rig.feed()
    rig.rt.activate(fake_clock(), start_worker=False)
    assert [rig.step() for _ in range(20)][-1].command is not None
    rig.rt.deactivate()
    rig.q[9] = -5.0  # right_elbow, limit -1.7628
    rig.feed()
    rig.rt.activate(fake_clock(), start_worker=False)
    results = [rig.step() for _ in range(20)]
    assert all(r.command is None for r in results)
    assert "right_elbow = -5.0000 outside its limits [-1.7628, 1.6057]" in results[-1].reason


def test_measured_joint_far_outside_its_limits_while_running_holds_naming_it(fake_clock):
    """Defect 4: the assembler checked only length and finiteness."""
    rig = Rig(fake_clock)
    rig.feed()
    rig.rt.activate(fake_clock(), start_worker=False)
    results = [rig.step() for _ in range(20)]
    last = results[-1].command
    assert not results[-1].held
    rig.q[9] = -5.0
    held = [rig.step() for _ in range(10)]
    assert all(r.held for r in held)
    assert held[-1].reason.startswith("right: measured right_elbow = -5.0000 outside its limits")
    np.testing.assert_array_equal(held[-1].command, last)  # the last safe command, republished
    assert rig.rt.status(fake_clock())["reason"] == held[-1].reason
    rig.q[9] = 0.1
    results += held + [rig.step() for _ in range(30)]
    assert not results[-1].held  # recovers with a chunk from fresh data
    _assert_safe_stream(results)


@pytest.mark.parametrize("state_source", ["command", "measured"])
def test_reset_estop_with_the_arm_moved_ramps_from_the_last_published_command(
    fake_clock, state_source
):
    """Defect 3: reset re-seeded from the measured pose: a 0.4 rad jump in one tick."""
    cfg = PolicyRuntimeConfig(
        strategy="rtc", n_action_steps=4, ramp_in_s=0.5, state_source=state_source
    )
    rig = Rig(fake_clock, cfg)
    rig.feed()
    rig.rt.activate(fake_clock(), start_worker=False)
    results = [rig.step() for _ in range(40)]
    rig.rt.estop("operator")
    results += [rig.step() for _ in range(10)]
    last = results[-1].command
    rig.q[0] += 0.4  # the arm was pushed during the e-stop
    rig.q[7] -= 0.4
    rig.rt.reset_estop(fake_clock())
    after = [rig.step() for _ in range(80)]
    first = next(r.command for r in after if r.command is not None)
    assert np.abs(first - last).max() <= STEP_MAX.max()
    assert not after[-1].held
    _assert_safe_stream(results + after)


def test_watchdog_does_not_trip_on_the_sim_bringup_chunk_timing(fake_clock):
    """Defect 7: 16 actions at 8.33 Hz last 1.92 s; with a 2.0 s watchdog measured from the
    last arrival, any inference over 80 ms held the arm. Ticks run during the inference."""
    cfg = PolicyRuntimeConfig(strategy="sync", n_action_steps=0, ramp_in_s=0.0)
    backend = ScriptedConfig(action_rate_hz=8.33, chunk_size=16, latency_s=0.5)
    rig = Rig(fake_clock, cfg, backend, tick_during_inference=True)
    assert cfg.watchdog_inference_s == 2.0 and rig.rt.scheduler.n_action_steps == 16
    rig.feed()
    rig.rt.activate(fake_clock(), start_worker=False)
    results = [rig.step() for _ in range(50 * 12)]
    ticks = [r for _, r in rig.during] + results
    assert rig.rt.worker.chunks >= 5
    watchdog = [r.reason for r in ticks if r.held and "watchdog" in (r.reason or "")]
    assert watchdog == []
    held = [r for r in ticks if r.held]  # only while the first chunk is computed (0.5 s)
    assert {r.reason for r in held} == {"no plan yet"} and len(held) <= 26


def test_watchdog_holds_when_the_next_chunk_is_overdue_and_says_what_it_measured(fake_clock):
    cfg = PolicyRuntimeConfig(strategy="sync", n_action_steps=0, ramp_in_s=0.0)
    backend = ScriptedConfig(action_rate_hz=8.33, chunk_size=16, latency_s=0.1)
    rig = Rig(fake_clock, cfg, backend, tick_during_inference=True)
    rig.feed()
    rig.rt.activate(fake_clock(), start_worker=False)
    for _ in range(150):
        rig.step()
    assert not rig.rt.last_tick.held
    rig.backend.config.latency_s = 3.0  # the next inference stalls
    due = rig.rt.scheduler.next_chunk_due_ns()
    rig.during.clear()
    while not rig.during:
        rig.step()
    held = [(t, r) for t, r in rig.during if r.held]
    t0, first = held[0]
    assert 2.0 < (t0 - due) / 1e9 <= 2.0 + 0.02 + 1e-9  # one tick after 2 s late, not before
    assert first.reason.startswith(f"watchdog: next chunk {(t0 - due) / 1e9:.2f} s overdue")
    assert "(watchdog_inference_s 2.00 s)" in first.reason
    assert "ran out, 1.92 s after that chunk arrived" in first.reason
    assert all(r.held for t, r in rig.during if t > t0)
    assert not [rig.step() for _ in range(60)][-1].held  # the late chunk arrived: running


def test_first_chunk_clock_runs_from_the_last_stream_fault_or_e_stop_reset(fake_clock):
    """Defect 7: "no first chunk after 104 s" was counted from the activation."""
    cfg = PolicyRuntimeConfig(strategy="sync", n_action_steps=4, first_chunk_timeout_s=5.0)
    rig = Rig(fake_clock, cfg)
    rig.feed()
    rig.rt.activate(fake_clock(), start_worker=False)
    assert not [rig.step() for _ in range(60)][-1].held
    rig.frozen.add("cam_high")
    assert [rig.step() for _ in range(400)][-1].reason.startswith("cam_high: stale")  # 8 s
    rig.frozen.clear()
    assert rig.step(infer=False).reason == "no plan yet"  # not a watchdog on the first tick
    for _ in range(250):  # 5 s more without a chunk: now the watchdog speaks
        res = rig.step(infer=False)
    assert res.reason.startswith("watchdog: no chunk 5.0")
    assert res.reason.endswith(
        "s after the last cam_high stream fault (first_chunk_timeout_s 5.00 s)"
    )
    assert not [rig.step() for _ in range(30)][-1].held
    rig.rt.estop("operator")
    for _ in range(400):
        rig.step(infer=False)
    rig.rt.reset_estop(fake_clock())
    assert rig.step(infer=False).reason == "no plan yet"
    res = [rig.step(infer=False) for _ in range(260)][-1]
    assert "s after the e-stop reset" in res.reason
    assert not [rig.step() for _ in range(30)][-1].held


def test_watchdog_with_the_worker_thread_on_the_real_clock():
    """The same timing for real: worker thread, sleeping backend, 50 Hz ticks on this thread.

    2 s chunks (16 actions at 8 Hz), 0.3 s inference, a 1.0 s watchdog: measured from the last
    arrival it trips after every chunk; measured from when the next chunk is due, only a stall
    of 0.7 s would (generous for a loaded machine).
    """
    profile = load_profile("aloha_sim")
    backend = ScriptedBackend(ScriptedConfig(action_rate_hz=8.0, chunk_size=16, latency_s=0.3))
    cfg = PolicyRuntimeConfig(strategy="sync", n_action_steps=16, watchdog_inference_s=1.0)
    rt = PolicyRuntime(profile, cfg, backend, time.monotonic_ns, HW)
    q = np.full(14, 0.1, np.float32)

    def feed():
        now = time.monotonic_ns()
        for name in CAMS:
            rt.assembler.update_image(name, np.zeros((*HW, 3), np.uint8), now)
        rt.assembler.update_joints("left", q[:7], now)
        rt.assembler.update_joints("right", q[7:], now)

    feed()
    rt.activate(time.monotonic_ns())
    reasons = []
    try:
        end = time.monotonic() + 8.0
        while time.monotonic() < end and rt.worker.chunks < 2:
            feed()
            res = rt.tick(time.monotonic_ns())
            reasons.append(res.reason)
            time.sleep(0.02)
    finally:
        rt.close()
    assert rt.worker.chunks >= 2, reasons[-1]
    assert not [r for r in reasons if r and r.startswith("watchdog")]
