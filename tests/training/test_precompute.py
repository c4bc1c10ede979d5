"""The fast path (frames preloaded in RAM, features precomputed) yields the on-the-fly data."""

from __future__ import annotations

import json

import numpy as np
import torch

from motus_policy.cli.train import build_parser
from motus_policy.training.config import TrainConfig
from motus_policy.training.data import MotusEpisodeDataset
from motus_policy.training.samples import EpisodeSamples, collate_batch, keep_raw_composite
from motus_policy.training.trainer import Trainer


def _base(root) -> MotusEpisodeDataset:
    return MotusEpisodeDataset(
        [root], None, action_chunk=16, downsample=3, video_ratio=2, video_frames=8,
        image_hw=(128, 96), text_len=8, vlm_fn=keep_raw_composite, require_embedding=False,
    )  # fmt: skip


def test_preloaded_items_equal_decoded_items(tiny_dataset):
    fresh, loaded = _base(tiny_dataset), _base(tiny_dataset)
    nbytes = loaded.preload(keep_raw=True, progress=False)
    assert loaded.preloaded and nbytes == sum(n * (128 * 96 + 72 * 64) * 3 for n in (60, 64, 56))
    assert [len(fresh.condition_indices(e)) for e in range(3)] == [12, 16, 8]  # T - A*g
    for ep, c in ((0, 0), (1, 15), (2, 7), (2, 55)):  # 55: clamped action / video indices
        a, b = fresh.sample(ep, c), loaded.sample(ep, c)
        assert a.keys() == b.keys()
        for k, v in a.items():
            if isinstance(v, torch.Tensor):
                assert torch.equal(v, b[k]), k
            elif k == "vlm_inputs":
                assert torch.equal(v["composite"], b[k]["composite"])
            else:
                assert v == b[k], k
    ds_a = EpisodeSamples(fresh, [0, 1, 2], samples_per_episode=2, seed=5)
    ds_b = EpisodeSamples(loaded, [0, 1, 2], samples_per_episode=2, seed=5)
    ba, bb = collate_batch([ds_a[i] for i in range(6)]), collate_batch([ds_b[i] for i in range(6)])
    assert ba["condition_index"] == bb["condition_index"]  # same official draws
    assert torch.equal(ba["video_frames"], bb["video_frames"])


def _losses(out) -> list[float]:
    return [json.loads(r)["loss"] for r in (out / "train_log.jsonl").read_text().splitlines()]


def test_precomputed_features_give_the_on_the_fly_losses(tiny_dataset, tmp_path):
    """vae_batch=1: bit-identical losses; vae_batch=4: equal to batched-conv rounding."""
    common = dict(
        preset="tiny", data_roots=(str(tiny_dataset),), batch_size=2, samples_per_episode=2,
        device="cpu", log_every=1, warmup_steps=2, lr=1e-3, plot=False, max_steps=3,
        val_every=0, save_every=0, feature_cache="",
    )  # fmt: skip
    Trainer(TrainConfig(**common, out_dir=str(tmp_path / "fly"))).run()
    exact = Trainer(
        TrainConfig(
            **common, out_dir=str(tmp_path / "pre1"), precompute_features=True, vae_batch=1
        )
    )
    assert exact.base.preloaded and len(exact.features._memory) == 12 + 16 + 8
    exact.run()
    assert exact.features.misses == 0 and exact.features.hits == 6
    assert _losses(tmp_path / "pre1") == _losses(tmp_path / "fly")
    batched = Trainer(
        TrainConfig(
            **common, out_dir=str(tmp_path / "pre4"), precompute_features=True, vae_batch=4
        )
    )
    batched.run()
    np.testing.assert_allclose(_losses(tmp_path / "pre4"), _losses(tmp_path / "fly"), rtol=1e-4)


def test_cli_exposes_the_fast_path():
    text = build_parser().format_help()
    for opt in ("--preload", "--precompute-features", "--vae-batch"):
        assert opt in text
    args = build_parser().parse_args(["--data", "x", "--precompute-features", "--vae-batch", "2"])
    assert args.precompute_features and args.vae_batch == 2 and not args.preload
