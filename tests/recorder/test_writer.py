"""Motus-format writer: real files round trip, frame validation, stat.json, back-pressure."""

from __future__ import annotations

import json

import av
import numpy as np
import pytest

from motus_recorder.composite import compose_t_layout
from motus_recorder.episode import Frame, FrameError
from motus_recorder.writers import torch_io
from motus_recorder.writers.motus_format import MotusFormatWriter, WriterConfig
from motus_recorder.writers.video import BackPressureError, EncoderWorker, VideoEncoder
from tests.fakes.recordings import frame_at, qpos_at


def _decode(path):
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def test_round_trip_real_files(tmp_path, small_profile):
    cfg = WriterConfig(root=str(tmp_path / "ds"), task="pick", variant="v1")
    w = MotusFormatWriter(cfg, small_profile, embed_fn=lambda t: np.ones((7, 4096), np.float32))
    T = 20
    w.start_episode("pick up the cube", operator_notes="test run")
    for k in range(T):
        w.add_frame(frame_at(small_profile, k))
    assert w.save_episode({"sync": {"dropped": 0}}) == 0
    w.close()

    d = tmp_path / "ds" / "pick" / "v1"
    q = torch_io.load_tensor(d / "qpos" / "0.pt")
    assert q.dtype == np.float32 and q.shape == (T, 14)
    np.testing.assert_array_equal(q, np.stack([qpos_at(k) for k in range(T)]))
    frames = _decode(d / "videos" / "0.mp4")
    assert len(frames) == T and frames[0].shape == (72, 64, 3)
    f0 = frame_at(small_profile, 5)
    want = compose_t_layout(*(f0.images[n] for n in small_profile.camera_names))
    assert np.abs(frames[5].astype(int) - want).mean() < 6.0  # lossy H.264, smooth image
    assert (d / "instructions" / "0.txt").read_text() == "pick up the cube"
    emb = torch_io.load_tensor(d / "instructions" / "0.pt")
    assert emb.shape == (7, 4096) and np.allclose(emb, 1.0)
    meta = json.loads((d / "meta" / "0.json").read_text())
    assert meta["frames"] == T and len(meta["t_ns"]) == T and meta["sync"] == {"dropped": 0}
    assert meta["joint_names"] == list(small_profile.joint_names)
    assert meta["operator_notes"] == "test run"
    stat = json.loads((tmp_path / "ds" / "stat.json").read_text())
    key = small_profile.normalization_key
    np.testing.assert_allclose(stat[key]["min"], q.min(0), rtol=1e-6)
    np.testing.assert_allclose(stat[key]["max"], q.max(0), rtol=1e-6)
    assert not list(d.glob(".tmp-*"))


def test_second_episode_gets_next_index_and_stats_merge(tmp_path, small_profile):
    w = MotusFormatWriter(WriterConfig(root=str(tmp_path), task="t"), small_profile)
    for ep in range(2):
        w.start_episode(f"episode {ep}")
        for k in range(3):
            w.add_frame(frame_at(small_profile, k + 30 * ep))
        assert w.save_episode() == ep
    w.close()
    stat = json.loads((tmp_path / "stat.json").read_text())[small_profile.normalization_key]
    allq = np.stack([qpos_at(k) for k in [0, 1, 2, 30, 31, 32]])
    np.testing.assert_allclose(stat["min"], allq.min(0), rtol=1e-6)


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda f: f.qpos.__setitem__(3, np.nan), "index 3"),
        (lambda f: f.qpos.__setitem__(1, 5.0), "outside the profile limits"),
        (lambda f: f.images.__setitem__("cam_high", np.zeros((480, 640, 3), np.uint8)), "48"),
        (lambda f: f.images.__setitem__("cam_high", np.zeros((48, 64, 3), np.float32)), "uint8"),
        (lambda f: f.images.pop("cam_left_wrist"), "cam_left_wrist"),
    ],
)
def test_bad_frames_raise_and_nothing_is_buffered(tmp_path, small_profile, mutate, match):
    w = MotusFormatWriter(WriterConfig(root=str(tmp_path), task="t"), small_profile)
    w.start_episode("x")
    w.add_frame(frame_at(small_profile, 0))
    bad = frame_at(small_profile, 1)
    bad = Frame(bad.t_ns, dict(bad.images), bad.qpos.copy())
    mutate(bad)
    with pytest.raises(FrameError, match=match):
        w.add_frame(bad)
    w.discard_episode("bad frame")
    assert w.next_index == 0 and not list((tmp_path / "t").rglob("*.mp4"))
    w.close()


def test_time_going_backwards_is_rejected(tmp_path, small_profile):
    w = MotusFormatWriter(WriterConfig(root=str(tmp_path), task="t"), small_profile)
    w.start_episode("x")
    w.add_frame(frame_at(small_profile, 5))
    with pytest.raises(FrameError, match="clock jump"):
        w.add_frame(frame_at(small_profile, 4))
    w.close()


def test_second_writer_on_same_folder_is_refused(tmp_path, small_profile):
    cfg = WriterConfig(root=str(tmp_path), task="t")
    w = MotusFormatWriter(cfg, small_profile)
    with pytest.raises(RuntimeError, match="another writer"):
        MotusFormatWriter(cfg, small_profile)
    w.close()


def test_encoder_backpressure_fails_instead_of_dropping(tmp_path, monkeypatch):
    enc = VideoEncoder(tmp_path / "v.mp4", 64, 48, 25.0)
    import threading

    gate = threading.Event()
    real_write = enc.write
    monkeypatch.setattr(enc, "write", lambda rgb: (gate.wait(), real_write(rgb)))
    worker = EncoderWorker(enc, queue_size=2, put_timeout_s=0.2)
    img = np.zeros((48, 64, 3), np.uint8)
    with pytest.raises(BackPressureError, match="frames would be lost"):
        for _ in range(10):
            worker.submit(img)
    assert worker.backpressure_events >= 1
    gate.set()
    worker.abort()
