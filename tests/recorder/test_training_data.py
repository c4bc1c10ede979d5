"""The torch Dataset reproduces the official index rule and the docs/motus.md §4.5 batch format."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from motus_policy.training.data import (
    MotusEpisodeDataset,
    collate,
    condition_range,
    sample_indices,
)
from motus_recorder.episode import Frame
from motus_recorder.writers.motus_format import MotusFormatWriter, WriterConfig

T = 40
A, G, R, F = 8, 2, 2, 4


@pytest.fixture
def ramp_dataset(tmp_path, small_profile):
    """One episode: qpos[k] = k/100 in every dim; the head camera's grey level is 4k + 20."""
    w = MotusFormatWriter(
        WriterConfig(root=str(tmp_path), task="ramp"),
        small_profile,
        embed_fn=lambda text: np.full((5, 4096), 0.5, np.float32),
    )
    w.start_episode("follow the ramp")
    for k in range(T):
        head = np.full((48, 64, 3), 4 * k + 20, np.uint8)
        wrist = np.zeros((48, 64, 3), np.uint8)
        images = dict(zip(small_profile.camera_names, (head, wrist, wrist), strict=True))
        w.add_frame(Frame(t_ns=1 + k * 40_000_000, images=images, qpos=np.full(14, k / 100)))
    w.save_episode()
    w.close()
    return tmp_path


def _ds(root, **kw):
    args = dict(
        roots=[root], stats=None, action_chunk=A, downsample=G, video_ratio=R, video_frames=F,
        image_hw=(36, 32), text_len=16,
    )  # fmt: skip
    args.update(kw)
    return MotusEpisodeDataset(**args)


def test_index_rule_matches_reference():
    assert condition_range(T, A, G) == 23 and condition_range(10, A, G) == 0
    acts, vids = sample_indices(T, 5, A, G, R, F)
    assert acts == [7, 9, 11, 13, 15, 17, 19, 21] and vids == [9, 13, 17, 21]
    acts, vids = sample_indices(T, 30, A, G, R, F)
    assert acts == [32, 34, 36, 38, 39, 39, 39, 39] and vids == [34, 38, 39, 39]


def test_item_values_at_exact_indices(ramp_dataset):
    item = _ds(ramp_dataset).sample(0, c=5)
    assert item["action_indices"] == [7, 9, 11, 13, 15, 17, 19, 21]
    assert item["video_indices"] == [9, 13, 17, 21]
    np.testing.assert_allclose(item["initial_state"], np.full(14, 0.05), atol=1e-6)
    want = np.repeat(np.array([7, 9, 11, 13, 15, 17, 19, 21])[:, None] / 100, 14, axis=1)
    np.testing.assert_allclose(item["action_sequence"], want, atol=1e-6)
    assert item["first_frame"].shape == (3, 36, 32) and item["video_frames"].shape == (
        F,
        3,
        36,
        32,
    )
    head_levels = item["video_frames"][:, :, 2:20, 4:28].mean(dim=(1, 2, 3)) * 255
    np.testing.assert_allclose(head_levels, [4 * k + 20 for k in (9, 13, 17, 21)], atol=3)
    assert float(item["first_frame"][:, 2:20, 4:28].mean() * 255) == pytest.approx(40, abs=3)


def test_normalisation_and_random_condition_in_range(ramp_dataset):
    stats = {"min": [0.0] * 13 + [0.1], "max": [0.39] * 13 + [0.1]}  # last dim: zero range
    ds = _ds(ramp_dataset, stats=stats, samples_per_episode=20, seed=3)
    cs = []
    for k in range(len(ds)):
        it = ds[k]
        c = it["condition_index"]
        cs.append(c)
        assert it["initial_state"][0] == pytest.approx(c / 39, abs=1e-5)
        assert it["initial_state"][13] == pytest.approx(c / 100 - 0.1, abs=1e-5)  # range 0 -> 1
    assert min(cs) >= 0 and max(cs) <= 23 and len(set(cs)) > 5


def test_collate_gives_reference_batch_shapes(ramp_dataset):
    def vlm_fn(text, image):
        n = len(text.split())
        return {
            "input_ids": torch.arange(1, n + 1)[None],
            "attention_mask": torch.ones(1, n, dtype=torch.long),
            "pixel_values": torch.ones(4, 8),
            "image_grid_thw": torch.tensor([[1, 2, 2]]),
        }

    ds = _ds(ramp_dataset, samples_per_episode=2, vlm_fn=vlm_fn)
    batch = next(iter(DataLoader(ds, batch_size=2, collate_fn=collate)))
    assert batch["first_frame"].shape == (2, 3, 36, 32)
    assert batch["video_frames"].shape == (2, F, 3, 36, 32)
    assert batch["action_sequence"].shape == (2, A, 14)
    assert batch["initial_state"].shape == (2, 14)
    emb = batch["language_embedding"]
    assert emb.shape == (2, 16, 4096) and emb.dtype == torch.bfloat16
    assert float(emb[0, 4, 0]) == 0.5 and float(emb[0, 5:].abs().sum()) == 0.0  # zero-padded
    assert float(batch["video_frames"].min()) >= 0.0 and float(batch["video_frames"].max()) <= 1
    v = batch["vlm_inputs"]
    assert v["input_ids"].shape == (2, 3) and v["pixel_values"].shape == (8, 8)
    assert v["image_grid_thw"].shape == (2, 3)


def test_bad_parameters_are_rejected(ramp_dataset, tmp_path):
    with pytest.raises(ValueError, match="action_chunk"):
        _ds(ramp_dataset, action_chunk=9)
    with pytest.raises(ValueError, match="no complete episodes"):
        _ds(tmp_path / "nothing")
