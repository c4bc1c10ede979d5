"""Open-loop replay on tiny bags whose metrics are computed by hand (see tests/fakes/bags.py).

Recorded joint j: Q0[j] + V[j] * t; camera frame i: constant value 2 i. The hold backend predicts
the observed state for every step, so the error of step k (0-based) on joint j is
-V[j] * (k + 1) * T with T = 1/30 s: MSE_j = V[j]^2 T^2 * mean_k (k + 1)^2.
Tolerances are relative 1e-4: the observed state passes through float32 (observation contract).
"""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
import yaml

from motus_policy.cli.eval import main
from motus_policy.evaluation.bag_reader import StreamMap, index_bag, open_bag
from motus_policy.evaluation.baselines import ConstantVelocityBaseline
from motus_policy.evaluation.replay import ReplayConfig, run_replay
from motus_recorder import schema
from motus_recorder.profile import load_profile
from tests.fakes.bags import HW, V, stamp_ns

REPO = Path(__file__).resolve().parents[2]
A = 4
T = 1 / 30
N = 60
ARM = [j for j in range(14) if j not in (schema.LEFT_GRIPPER, schema.RIGHT_GRIPPER)]
C1, C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2


def expected_hold_mse_per_joint() -> np.ndarray:
    k = np.arange(1, A + 1)
    return V**2 * T**2 * np.mean(k**2)


def replay_cli(bag, out, *extra) -> dict:
    rc = main(
        [
            "replay",
            "--bag",
            str(bag),
            "--backend",
            "hold",
            "--chunk-size",
            str(A),
            "--out",
            str(out),
            *extra,
        ]
    )
    assert rc == 0
    return json.loads((out / "replay.json").read_text())


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_hold_backend_metrics_exact(make_bag, tmp_path, storage):
    bag = make_bag(storage, storage=storage, n=N)
    out = tmp_path / "out"
    s = replay_cli(
        bag, out, "--profile", "aloha_agilex_2", "--mode", "joint", "--video", "--copy-frames"
    )

    # ticks 0..59 at 30 Hz; a chunk needs 4 more samples: ticks 56..59 are reported skips
    assert s["ticks"] == N
    assert s["chunks_compared"] == N - A
    assert s["skipped"] == {"horizon beyond the end of the recording": A}
    a = s["actions"]
    mse = expected_hold_mse_per_joint()
    assert a["mse_per_joint"] == pytest.approx(mse, rel=1e-4)
    assert a["mae_per_joint"] == pytest.approx(np.abs(V) * T * 2.5, rel=1e-4)  # mean k+1 = 2.5
    steps = np.arange(1, A + 1)
    assert a["mse_per_step"] == pytest.approx((steps * T) ** 2 * np.mean(V[ARM] ** 2), rel=1e-4)
    assert a["mse_gripper"] == pytest.approx(np.mean(mse[[6, 13]]), rel=1e-4)

    # grippers: left crosses 0.05 at sample 30, right at 40; hold never crosses:
    # chunks from ticks 26..29 (left) and 36..39 (right) miss the event
    g = s["gripper_timing"]
    assert (g["matched"], g["missed"], g["spurious"]) == (0, 8, 0)
    assert g["thresholds"] == [0.05, 0.05]

    lat = s["latency"]
    assert lat["count"] == N - A and 0 <= lat["p50_ms"] <= lat["max_ms"]

    # frames: chunk i predicts frame value 2i for ticks i+1..i+4, recorded 2(i+j+1)
    f = s["frames"]
    assert f["compared"] == (N - A) * A and f["unmatched"] == 0
    d = 2.0 * steps
    assert f["psnr_db_mean"] == pytest.approx(np.mean(10 * np.log10(255**2 / d**2)), rel=1e-9)
    ss = [
        (2 * a_ * b_ + C1) / (a_**2 + b_**2 + C1)
        for i in range(N - A)
        for j in range(A)
        for a_, b_ in [(2 * i, 2 * (i + j + 1))]
    ]
    assert f["ssim_mean"] == pytest.approx(np.mean(ss), rel=1e-6)  # SSIM in float32 (metrics.py)

    for name in ("replay.json", "replay.md", "joints.png", "error_vs_horizon.png", "frames.mp4"):
        assert (out / name).stat().st_size > 0, name
    assert "| left_joint1 |" in (out / "replay.md").read_text()
    with av.open(str(out / "frames.mp4")) as c:
        frames = list(c.decode(video=0))
    composite_hw = (HW[0] + HW[0] // 2, HW[1])
    assert len(frames) == (N - A) * A
    assert (frames[0].height, frames[0].width) == (composite_hw[0], 2 * composite_hw[1])


def test_baseline_scores_no_frames_without_copy_frames(make_bag, tmp_path, capsys):
    """Issue #15 §9: a replay without a model scores actions only unless --copy-frames asks for
    the copy-last-frame reference, and says so on stderr and in replay.md."""
    bag = make_bag(n=N)
    out = tmp_path / "out"
    s = replay_cli(bag, out, "--profile", "aloha_agilex_2", "--mode", "joint")
    assert "frames" not in s and s["copy_frames"] is False
    assert s["chunks_compared"] == N - A
    assert "hold predicts no frames" in capsys.readouterr().err
    assert (
        "| frames compared | 0 (the backend predicted none) |" in (out / "replay.md").read_text()
    )


def test_scripted_backend_matches_linear_motion(make_bag):
    bag = make_bag(n=N)
    prof = load_profile("aloha_agilex_2")
    sm = StreamMap.from_profile(prof)
    backend = ConstantVelocityBaseline(velocity_per_s=V, chunk_size=A, action_rate_hz=30.0)
    with open_bag(bag) as r:
        res = run_replay(r, index_bag(r, sm), sm, backend, ReplayConfig(30.0, mode="vla"))
    err = np.abs(np.asarray(res.predicted) - np.asarray(res.recorded))
    assert err.max() < 1e-6  # float32 rounding only
    from motus_policy.evaluation.metrics import gripper_timing

    g = gripper_timing(
        np.asarray(res.start_states),
        np.asarray(res.predicted),
        np.asarray(res.recorded),
        T,
        [0.05, 0.05],
    )
    assert (g["matched"], g["missed"], g["spurious"]) == (8, 0, 0)
    assert g["errors_s"] == [0.0] * 8
    assert res.frame_scores == []  # vla mode: no frames


def test_foreign_bag_jpeg_mapped_by_profile_yaml(tmp_path):
    """A bag from another tool: other topics, one /joint_states for both arms (names in another
    order), JPEG CompressedImage; read through a profile YAML written here."""
    from tests.fakes.bags import write_bag

    data = yaml.safe_load((REPO / "config/robots/aloha_agilex_2.yaml").read_text())
    data["name"] = "foreign_tool"
    for arm in data["arms"]:
        arm["state_topic"] = "/joint_states"
    for cam in data["cameras"]:
        cam["topic"] = f"/foreign/{cam['name']}/image/compressed"
        cam["height"], cam["width"] = HW
    path = tmp_path / "foreign.yaml"
    path.write_text(yaml.safe_dump(data))
    prof = load_profile(path)
    bag = write_bag(
        tmp_path / "foreign",
        storage="mcap",
        profile=prof,
        n=N,
        encoding="jpeg",
        joint_topic="/joint_states",
    )
    s = replay_cli(
        bag, tmp_path / "out", "--profile", str(path), "--mode", "joint", "--copy-frames"
    )
    assert s["chunks_compared"] == N - A
    assert s["actions"]["mse_per_joint"] == pytest.approx(expected_hold_mse_per_joint(), rel=1e-4)
    assert s["image_hw"]["cam_high"] == list(HW)
    assert s["frames"]["compared"] == (N - A) * A  # JPEG: lossy, so only counted here


# -- bad input ---------------------------------------------------------------------------
def replay_error(bag, capsys, *extra) -> str:
    rc = main(
        [
            "replay",
            "--bag",
            str(bag),
            "--backend",
            "hold",
            "--chunk-size",
            str(A),
            "--out",
            str(bag.parent / "out"),
            *extra,
        ]
    )
    assert rc == 2
    return capsys.readouterr().err


def test_missing_topic_is_named(make_bag, capsys):
    bag = make_bag(skip_topics=("/camera_l/color/image_raw",))
    err = replay_error(bag, capsys)
    assert "/camera_l/color/image_raw not in the bag" in err


def test_unknown_encoding_is_named(make_bag, capsys):
    bag = make_bag(encoding="mono8")  # 3-byte pixels, but an encoding the reader refuses
    err = replay_error(bag, capsys)
    assert "/camera_f/color/image_raw at " in err and "'mono8' not supported" in err


@pytest.mark.parametrize("kind", ["duplicate", "out-of-order"])
def test_bad_stamps_are_named(make_bag, capsys, kind):
    def stamps(topic, i):
        if topic == "/puppet/joint_right" and i == 5:
            return stamp_ns(4 if kind == "duplicate" else 2, 30.0)
        return stamp_ns(i, 30.0)

    err = replay_error(make_bag(stamp_fn=stamps), capsys)
    assert f"/puppet/joint_right: {kind} stamp at message 5" in err


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_truncated_bag_is_an_error(make_bag, capsys, storage):
    bag = make_bag(storage, storage=storage, n=N)
    data_file = next(p for p in bag.iterdir() if p.suffix in (".db3", ".mcap"))
    raw = data_file.read_bytes()
    data_file.write_bytes(raw[: len(raw) // 2])
    err = replay_error(bag, capsys)
    assert str(bag) in err and ("cannot open" in err or "cannot read" in err)


def test_episode_shorter_than_a_chunk(make_bag, capsys):
    err = replay_error(make_bag(n=A), capsys)  # 4 samples: 0.1 s, a chunk needs 4 x 33.3 ms
    assert "episode shorter than one chunk" in err and "0.133 s" in err


def test_stale_stream_is_a_reported_skip(make_bag, tmp_path):
    # the head camera's stamps jump 0.2 s ahead from frame 20 on: ticks 20..25 still see frame
    # 19; at ticks 23..25 it is 0.133..0.2 s old, over the profile's 0.1 s bound
    def stamps(topic, i):
        if topic == "/camera_f/color/image_raw" and i >= 20:
            return stamp_ns(i + 6, 30.0)
        return stamp_ns(i, 30.0)

    s = replay_cli(make_bag(n=N, stamp_fn=stamps), tmp_path / "out", "--mode", "vla")
    stale = {r: n for r, n in s["skipped"].items() if "cam_high: stale" in r}
    assert sum(stale.values()) == 3, s["skipped"]
    assert s["chunks_compared"] == N - A - 3


def test_replay_reads_a_bag_written_by_our_recorder(make_bag, tmp_path):
    """A bag written the way recorder_node writes it (rclpy messages, ``serialize_message``,
    ``RawBagWriter``; issue #15 §5: the rclpy wheels' extra bytes made rosbags refuse it) replays
    exactly like the same recording written by rosbags."""
    from tests.fakes.bags import write_recorder_bag

    src = make_bag("src", storage="mcap", n=N)
    dst = write_recorder_bag(tmp_path / "recorder_bag", n=N)
    a = replay_cli(src, tmp_path / "a", "--profile", "aloha_agilex_2", "--mode", "vla")
    b = replay_cli(dst, tmp_path / "b", "--profile", "aloha_agilex_2", "--mode", "vla")
    assert b["ticks"] == a["ticks"] == N and b["chunks_compared"] == a["chunks_compared"]
    assert b["actions"]["mse_per_joint"] == pytest.approx(a["actions"]["mse_per_joint"])
    assert b["actions"]["mse_per_joint"] == pytest.approx(expected_hold_mse_per_joint(), rel=1e-4)


def test_idm_replay_gives_the_backend_the_recorded_future_frames(make_bag):
    """IDM: actions from observed frames; the backend receives the recorded T-layout composites
    at its video-frame times (frame i of every camera has value 2 i)."""
    from tests.fakes.bags import stamp_ns

    bag = make_bag(n=N)
    prof = load_profile("aloha_agilex_2")
    sm = StreamMap.from_profile(prof)
    backend = ConstantVelocityBaseline(velocity_per_s=V, chunk_size=A, action_rate_hz=30.0)
    seen = []
    infer = backend.infer

    def spy(obs, **kw):
        seen.append((obs.stamp_ns, kw["future_frames"]))
        return infer(obs, **kw)

    backend.infer = spy
    with open_bag(bag) as r:
        res = run_replay(r, index_bag(r, sm), sm, backend, ReplayConfig(30.0, mode="idm"))
    assert len(seen) == len(res.t0_ns) > 0
    stamps = np.array([stamp_ns(i, 30.0) for i in range(N)])
    for t, frames in seen:
        assert frames.dtype == np.uint8 and frames.shape == (4, 36, 32, 3)  # F, 1.5 H, W, 3
        for off, frame in zip(backend.video_frame_offsets_ns, frames, strict=True):
            i = int(np.searchsorted(stamps, t + off, side="right")) - 1  # latest at or before
            assert (frame == (2 * i) % 256).all()
    err = np.abs(np.asarray(res.predicted) - np.asarray(res.recorded))
    assert err.max() < 1e-6


def test_vgm_replay_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="vgm.*predicts no actions"):
        ReplayConfig(30.0, mode="vgm")
