"""Dataset reader and ``motus-dataset`` CLI on real files written by the writer."""

from __future__ import annotations

import json

import numpy as np
import pytest

from motus_recorder.cli import main
from motus_recorder.dataset import TaskFolder, find_tasks
from motus_recorder.writers import torch_io
from motus_recorder.writers.motus_format import MotusFormatWriter, WriterConfig
from tests.fakes.recordings import frame_at, qpos_at


@pytest.fixture
def dataset(tmp_path, small_profile):
    root = tmp_path / "ds"
    w = MotusFormatWriter(WriterConfig(root=str(root), task="pick", variant="v1"), small_profile)
    for ep, n in enumerate((6, 9)):
        w.start_episode(f"pick {ep}")
        for k in range(n):
            w.add_frame(frame_at(small_profile, k))
        w.save_episode()
    w.close()
    return root


def test_reader_finds_tasks_and_reads_episodes(dataset):
    assert find_tasks(dataset) == [dataset / "pick" / "v1"]
    task = TaskFolder(dataset / "pick" / "v1")
    assert task.episode_indices() == [0, 1]
    ep = task.read_episode(1)
    np.testing.assert_array_equal(ep.qpos, np.stack([qpos_at(k) for k in range(9)]))
    assert ep.instruction == "pick 1" and ep.meta["frames"] == 9 and ep.embedding is None
    assert ep.frames([0, 8]).shape == (2, 72, 64, 3)


def test_validate_accepts_good_dataset(dataset, capsys):
    assert main(["validate", str(dataset)]) == 0
    assert "OK: 2 episode(s) in 1 task folder(s)" in capsys.readouterr().out


def _corrupt_rows(d):
    torch_io.save_tensor(d / "qpos" / "1.pt", np.zeros((8, 14), np.float32))
    return "videos/1.mp4: 9 video frames but qpos has 8 rows"


def _corrupt_nan(d):
    q = np.zeros((9, 14), np.float32)
    q[4, 2] = np.nan
    torch_io.save_tensor(d / "qpos" / "1.pt", q)
    return "qpos/1.pt: non-finite value at row 4, dim 2"


def _corrupt_video(d):
    (d / "videos" / "0.mp4").write_bytes(b"not a video")
    return "videos/0.mp4: cannot decode"


def _corrupt_shape(d):
    torch_io.save_tensor(d / "qpos" / "0.pt", np.zeros((6, 7), np.float32))
    return "qpos/0.pt: expected a [T, 14] tensor, got (6, 7)"


def _orphan_video(d):
    (d / "qpos" / "1.pt").unlink()
    return "videos/1.mp4: no matching qpos/1.pt"


def _corrupt_inf(d):
    q = np.zeros((9, 14), np.float32)
    q[7, 13] = -np.inf
    torch_io.save_tensor(d / "qpos" / "1.pt", q)
    return "qpos/1.pt: non-finite value at row 7, dim 13 (-inf)"


def _corrupt_meta(d):
    (d / "meta" / "0.json").write_text('{"frames": 6, "profile": ')
    return "meta/0.json: not valid JSON"


def _out_of_limits(d):
    # the episode's metadata names a shipped profile: its limits apply (100 rad is far out)
    meta = json.loads((d / "meta" / "1.json").read_text())
    meta["profile"] = "aloha_sim"
    (d / "meta" / "1.json").write_text(json.dumps(meta))
    q = torch_io.load_tensor(d / "qpos" / "1.pt")
    q[5, 1] = 100.0
    torch_io.save_tensor(d / "qpos" / "1.pt", q)
    return "qpos/1.pt: row 5, dim 1 (left_shoulder) = 100.0000 outside the limits"


def _stat_nan(d):
    root = d.parent.parent
    stat = json.loads((root / "stat.json").read_text())
    key = next(iter(stat))
    stat[key]["max"][4] = float("nan")
    (root / "stat.json").write_text(json.dumps(stat))  # json writes NaN as a bare NaN
    return f"stat.json: entry {key!r}: max[4] is nan (not finite)"


def _stat_wrong_dim(d):
    root = d.parent.parent
    stat = json.loads((root / "stat.json").read_text())
    key = next(iter(stat))
    stat[key]["min"] = stat[key]["min"][:12]
    (root / "stat.json").write_text(json.dumps(stat))
    return f"stat.json: entry {key!r}: min: expected 14 values, got 12"


@pytest.mark.parametrize(
    "corrupt",
    [
        _corrupt_rows,
        _corrupt_nan,
        _corrupt_video,
        _corrupt_shape,
        _orphan_video,
        _corrupt_inf,
        _corrupt_meta,
        _out_of_limits,
        _stat_nan,
        _stat_wrong_dim,
    ],
)
def test_validate_rejects_corrupted_dataset_naming_the_file(dataset, capsys, corrupt):
    want = corrupt(dataset / "pick" / "v1")
    assert main(["validate", str(dataset)]) == 1
    out = capsys.readouterr().out
    assert want in out and "INVALID" in out
    if corrupt is _corrupt_meta:  # the meta file is blamed, not the qpos
        assert "qpos/0.pt" not in out


def test_validate_rejects_empty_root(tmp_path, capsys):
    assert main(["validate", str(tmp_path)]) == 1
    assert "no task folder" in capsys.readouterr().out


def test_stats_and_show(dataset, tmp_path, capsys, small_profile):
    assert main(["stats", str(dataset), "--write"]) == 0
    stat = json.loads((dataset / "stat.json").read_text())[small_profile.normalization_key]
    allq = np.stack([qpos_at(k) for k in range(9)])
    np.testing.assert_allclose(stat["max"], allq.max(0), rtol=1e-6)
    png = tmp_path / "ep.png"
    assert main(["show", str(dataset), "--episode", "pick/v1:1", "--png", str(png)]) == 0
    out = capsys.readouterr().out
    assert "pick/v1: 2 episode(s), frames per episode [6, 9]" in out
    assert png.stat().st_size > 1000 and png.read_bytes()[:4] == b"\x89PNG"


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "validate" in out and "stats" in out and "show" in out


def test_shared_instruction_layout_of_upstream(dataset):
    d = dataset / "pick" / "v1"
    for i in (0, 1):
        (d / "instructions" / f"{i}.txt").unlink()
    (d / "instructions" / "task.txt").write_text("shared text\n")
    torch_io.save_tensor(d / "instructions" / "task.pt", np.zeros((3, 4096), np.float32))
    ep = TaskFolder(d).read_episode(1)
    assert ep.instruction == "shared text" and ep.embedding.shape == (3, 4096)
    assert main(["validate", str(dataset), "--no-decode"]) == 0


def test_seeking_decode_matches_full_decode(tmp_path, small_profile):
    from motus_recorder.dataset import decode_video

    w = MotusFormatWriter(WriterConfig(root=str(tmp_path), task="long"), small_profile)
    w.start_episode("long")
    for k in range(80):  # keyframes at 0, 25, 50, 75
        w.add_frame(frame_at(small_profile, k))
    w.save_episode()
    w.close()
    video = tmp_path / "long" / "default" / "videos" / "0.mp4"
    full = decode_video(video)
    assert full.shape[0] == 80
    picks = [55, 3, 79, 30, 55]
    np.testing.assert_array_equal(decode_video(video, picks), full[picks])
    with pytest.raises(ValueError, match="no frame 80"):
        decode_video(video, [10, 80])
