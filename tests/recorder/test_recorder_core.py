"""Recorder core with a fake clock: a good episode, and every kind of bad input (issue 4)."""

from __future__ import annotations

import errno
import json

import numpy as np
import pytest

from motus_recorder.dataset import validate
from motus_recorder.recorder import Recorder, RecorderConfig
from motus_recorder.writers import torch_io
from tests.fakes.recordings import image_at, qpos_at

P_S = 0.04  # 25 Hz


@pytest.fixture
def rec(tmp_path, small_profile, small_profile_path, fake_clock):
    cfg = RecorderConfig(
        profile=str(small_profile_path), root=str(tmp_path), task="t", instruction="do it",
        max_consecutive_drops=5,
    )  # fmt: skip
    r = Recorder(cfg, small_profile, fake_clock)
    yield r
    r.close()


def measured(q):
    """The measured state the fake robot reports for command q (a lagging follower)."""
    return 0.9 * np.asarray(q)


def _step(rec, clock, k, q=None, cams=(0, 1, 2), img=None, state=None):
    t = clock()
    for i in cams:
        name = rec.profile.camera_names[i]
        rec.on_image(name, t, img if img is not None else image_at(k, i))
    q = qpos_at(k) if q is None else q
    state = measured(q) if state is None else state
    rec.on_joints("left", t, q[:7], source="command")
    rec.on_joints("right", t, q[7:], source="command")
    rec.on_joints("left", t, state[:7])
    rec.on_joints("right", t, state[7:])
    clock.advance(P_S)
    rec.tick()


def _variant(tmp_path):
    return tmp_path / "t" / "default"


def test_good_episode_is_saved_with_sync_stats(rec, fake_clock, tmp_path):
    assert rec.start() == (True, "recording episode 0")
    for k in range(12):
        _step(rec, fake_clock, k)
    assert rec.status()["frames"] == 12
    ok, msg = rec.stop()
    assert ok and msg.startswith("saved episode 0")
    q = torch_io.load_tensor(_variant(tmp_path) / "qpos" / "0.pt")
    np.testing.assert_array_equal(q, np.stack([qpos_at(k) for k in range(12)]))
    state = torch_io.load_tensor(_variant(tmp_path) / "state" / "0.pt")
    np.testing.assert_allclose(state, np.stack([measured(qpos_at(k)) for k in range(12)]))
    meta = json.loads((_variant(tmp_path) / "meta" / "0.json").read_text())
    assert meta["sync"]["recorded"] == 12 and meta["sync"]["dropped"] == 0
    assert meta["qpos_source"] == "command" and meta["has_state"] is True
    assert validate(tmp_path) == (1, [])


def test_qpos_source_state_records_measured_states_and_ignores_commands(
    tmp_path, small_profile, small_profile_path, fake_clock
):
    cfg = RecorderConfig(
        profile=str(small_profile_path),
        root=str(tmp_path),
        task="t",
        instruction="do it",
        qpos_source="state",
    )
    rec = Recorder(cfg, small_profile, fake_clock)
    try:
        assert rec.start()[0]
        for k in range(6):
            _step(rec, fake_clock, k)
        assert rec.stop()[0]
    finally:
        rec.close()
    q = torch_io.load_tensor(_variant(tmp_path) / "qpos" / "0.pt")
    np.testing.assert_allclose(q, np.stack([measured(qpos_at(k)) for k in range(6)]))
    assert not (_variant(tmp_path) / "state").exists()
    meta = json.loads((_variant(tmp_path) / "meta" / "0.json").read_text())
    assert meta["qpos_source"] == "state" and meta["has_state"] is False


def test_commands_without_measured_states_fail_the_episode(rec, fake_clock, tmp_path):
    assert rec.start()[0]
    for k in range(8):  # the follower's joint states stopped: state streams drop
        t = fake_clock()
        for i, name in enumerate(rec.profile.camera_names):
            rec.on_image(name, t, image_at(k, i))
        rec.on_joints("left", t, qpos_at(k)[:7], source="command")
        rec.on_joints("right", t, qpos_at(k)[7:], source="command")
        fake_clock.advance(P_S)
        rec.tick()
    ok, msg = rec.stop()
    assert not ok and "left.state" in msg
    assert not (_variant(tmp_path) / "qpos" / "0.pt").exists()


def test_bad_qpos_source_is_refused(small_profile_path, tmp_path):
    with pytest.raises(ValueError, match="qpos_source: expected one of"):
        RecorderConfig(profile=str(small_profile_path), root=str(tmp_path), qpos_source="leader")


def _assert_discarded(rec, tmp_path, match):
    assert not rec.recording
    ok, msg = rec.stop()
    assert not ok and "discarded" in msg and match in msg
    assert rec.status()["last_error"] is not None and match in rec.status()["last_error"]
    assert not list(_variant(tmp_path).rglob("*.pt")) and rec.writer.next_index == 0
    assert match in (_variant(tmp_path) / "discarded.log").read_text()


def test_nan_joint_discards_episode(rec, fake_clock, tmp_path):
    rec.start()
    _step(rec, fake_clock, 0)
    q = qpos_at(1)
    q[9] = np.nan
    _step(rec, fake_clock, 1, q=q)
    _assert_discarded(rec, tmp_path, "right_elbow (index 9) is nan")


def test_nan_measured_state_discards_episode(rec, fake_clock, tmp_path):
    rec.start()
    _step(rec, fake_clock, 0)
    state = measured(qpos_at(1))
    state[9] = np.nan
    _step(rec, fake_clock, 1, state=state)
    _assert_discarded(rec, tmp_path, "state: right_elbow (index 9) is nan")


def test_out_of_limit_joint_discards_episode(rec, fake_clock, tmp_path):
    rec.start()
    q = qpos_at(0)
    q[1] = 3.0
    _step(rec, fake_clock, 0, q=q)
    _assert_discarded(rec, tmp_path, "left_shoulder (index 1) = 3.0000 outside")


def test_wrong_image_size_discards_episode(rec, fake_clock, tmp_path):
    rec.start()
    _step(rec, fake_clock, 0, img=np.zeros((40, 64, 3), np.uint8))
    _assert_discarded(rec, tmp_path, "expected uint8 (48, 64, 3), got uint8 (40, 64, 3)")


def test_wrong_encoding_message_discards_episode(rec, fake_clock, tmp_path):
    rec.start()
    _step(rec, fake_clock, 0)
    rec.on_bad_message("cam_high", "unsupported image encoding 'mono8'")
    _assert_discarded(rec, tmp_path, "mono8")


def test_stopped_camera_counts_drops_then_discards(rec, fake_clock, tmp_path):
    rec.start()
    for k in range(4):
        _step(rec, fake_clock, k)
    for k in range(4, 6):
        _step(rec, fake_clock, k, cams=(0, 2))  # left wrist camera stops
    assert rec.recording and rec.status()["drops"] == 2  # dropped and counted, not fatal yet
    for k in range(6, 12):
        _step(rec, fake_clock, k, cams=(0, 2))
    _assert_discarded(rec, tmp_path, "too many drops")


def test_clock_jump_discards_episode(rec, fake_clock, tmp_path):
    rec.start()
    for k in range(3):
        _step(rec, fake_clock, k)
    fake_clock.advance(-2.0)  # e.g. sim time reset under a running recorder
    _step(rec, fake_clock, 3)
    _assert_discarded(rec, tmp_path, "clock jump")


def test_full_disk_on_save_reports_and_keeps_nothing(rec, fake_clock, tmp_path, monkeypatch):
    rec.start()
    for k in range(3):
        _step(rec, fake_clock, k)

    def enospc(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch_io, "save_tensor", enospc)
    ok, msg = rec.stop()
    assert not ok and "No space left on device" in msg
    assert not list(_variant(tmp_path).rglob("*.pt")) and not list(
        _variant(tmp_path).glob(".tmp*")
    )


def test_start_twice_and_stop_idle(rec):
    assert rec.stop() == (False, "not recording")
    assert rec.start()[0] and rec.start() == (False, "already recording")
    assert rec.discard() == (True, "episode discarded")
