"""PolicyRuntime + InferenceWorker + ScriptedBackend on a fake clock (no threads, no ROS)."""

from __future__ import annotations

import dataclasses
import logging

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

    def __init__(self, clock, config=None, backend_cfg=None):
        self.clock = clock
        self.backend = ScriptedBackend(backend_cfg or ScriptedConfig(latency_s=0.1), clock.advance)
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
    for _ in range(30):
        res = rig.step(infer=False)
    assert res.held and res.reason.startswith("watchdog: no fresh chunk for")


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
    with caplog.at_level(logging.WARNING, logger="motus_policy.runtime.policy_runtime"):
        rig.rt.load()
    assert rig.rt.state_source == explicit
    warned = [r.getMessage() for r in caplog.records if "state_source" in r.getMessage()]
    assert len(warned) == (1 if trained else 0)


def test_model_state_before_any_command_is_the_measured_pose(fake_clock):
    rig = Rig(fake_clock, PolicyRuntimeConfig(strategy="sync", ramp_in_s=0.0))
    rig.feed()
    rig.rt.activate(fake_clock(), start_worker=False)
    rig.rt.worker.run_once()
    np.testing.assert_allclose(rig.backend.calls[0]["state"], rig.q, atol=1e-6)
