"""The training loader refuses bad data, naming the file, row and dimension (issue #14).

Real files written by the recorder's writer, then damaged the way a crashed or hand-edited
dataset is: NaN / inf in qpos, qpos shorter than the video, NaN in ``stat.json``, corrupt meta.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from motus_policy.training.data import MotusEpisodeDataset
from motus_policy.training.stats import qpos_source, read_stats
from motus_recorder.dataset import EpisodeFileError
from motus_recorder.writers import torch_io
from motus_recorder.writers.motus_format import MotusFormatWriter, WriterConfig
from tests.fakes.recordings import frame_at


@pytest.fixture
def root(tmp_path, small_profile):
    w = MotusFormatWriter(WriterConfig(root=str(tmp_path), task="pick"), small_profile)
    for _ in range(2):
        w.start_episode("pick it")
        for k in range(9):
            w.add_frame(frame_at(small_profile, k))
        w.save_episode()
    w.close()
    return tmp_path


def _dataset(root):
    return MotusEpisodeDataset(
        [root], None, action_chunk=4, downsample=1, video_ratio=2, video_frames=2,
        image_hw=(32, 32), require_embedding=False,
    )  # fmt: skip


def test_good_data_samples(root):
    item = _dataset(root).sample(1, c=2)
    assert item["action_sequence"].shape == (4, 14)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_qpos_is_refused_naming_file_row_and_dim(root, bad):
    qpath = root / "pick" / "default" / "qpos" / "1.pt"
    q = torch_io.load_tensor(qpath)
    q[3, 5] = bad
    torch_io.save_tensor(qpath, q)
    ds = _dataset(root)
    with pytest.raises(EpisodeFileError, match=rf"{qpath}: non-finite value at row 3, dim 5"):
        ds.sample(1, c=0)
    with pytest.raises(EpisodeFileError, match="row 3, dim 5"):
        ds.preload(progress=False)


def test_qpos_shorter_than_the_video_is_refused(root):
    variant = root / "pick" / "default"
    q = torch_io.load_tensor(variant / "qpos" / "0.pt")
    torch_io.save_tensor(variant / "qpos" / "0.pt", q[:7])
    ds = _dataset(root)
    want = f"{variant}/videos/0.mp4: 9 video frames but {variant}/qpos/0.pt has 7 rows"
    with pytest.raises(EpisodeFileError, match=want):
        ds.sample(0, c=0)
    with pytest.raises(EpisodeFileError, match="9 decoded frames but .*0.pt has 7 rows"):
        ds.preload(progress=False)
    ds.sample(1, c=0)  # the good episode still samples


def test_stat_json_with_nan_is_refused_naming_entry_and_dim(root):
    stat = root / "stat.json"
    data = json.loads(stat.read_text())
    key = next(iter(data))
    data[key]["min"][2] = float("nan")
    stat.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=rf"{stat}: entry '{key}': min\[2\] is nan"):
        read_stats([str(root)])
    data[key]["min"] = data[key]["max"][:12]
    stat.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="min: expected 14 values, got 12"):
        read_stats([str(root)])


def test_corrupt_meta_is_blamed_on_the_meta_file(root):
    meta = root / "pick" / "default" / "meta" / "0.json"
    meta.write_text("{ not json")
    with pytest.raises(ValueError, match=rf"{meta}: not valid JSON"):
        qpos_source([str(root)])
    with pytest.raises(EpisodeFileError, match=rf"{meta}: not valid JSON"):
        _dataset(root).sample(0, c=0)
