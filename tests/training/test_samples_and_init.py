"""Deterministic sampling (workers, resumption) and building the policy from each start."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from motus_policy.model.checkpoint import save_official_checkpoint
from motus_policy.model.normalization import NormalizationStats
from motus_policy.model.policy import PolicyConfig, build_tiny_policy
from motus_policy.training.data import MotusEpisodeDataset
from motus_policy.training.samples import (
    EpisodeSamples,
    ResumableDistributedSampler,
    collate_batch,
    keep_raw_composite,
)
from motus_policy.training.starting_point import build_policy


def _samples(root, seed=0) -> EpisodeSamples:
    base = MotusEpisodeDataset(
        [root], None, action_chunk=16, downsample=3, video_ratio=2, video_frames=8,
        image_hw=(128, 96), text_len=8, vlm_fn=keep_raw_composite, require_embedding=False,
    )  # fmt: skip
    return EpisodeSamples(base, [0, 1, 2], samples_per_episode=2, seed=seed)


def _keys(loader) -> list[tuple[str, int]]:
    return [
        (e, c) for b in loader for e, c in zip(b["episode"], b["condition_index"], strict=True)
    ]


def test_items_do_not_depend_on_workers_and_differ_per_epoch(tiny_dataset):
    ds = _samples(tiny_dataset)
    ds.set_epoch(3)
    serial = _keys(DataLoader(ds, batch_size=2, collate_fn=collate_batch))
    parallel = _keys(DataLoader(ds, batch_size=2, collate_fn=collate_batch, num_workers=2))
    assert serial == parallel
    ds.set_epoch(4)
    assert _keys(DataLoader(ds, batch_size=2, collate_fn=collate_batch)) != serial
    batch = collate_batch([ds[0], ds[1]])
    assert batch["first_frame"].shape == (2, 3, 128, 96)
    assert batch["video_frames"].shape == (2, 8, 3, 128, 96)
    assert batch["action_sequence"].shape == (2, 16, 14)
    assert batch["composite"][0].dtype == np.uint8 and batch["composite"][0].shape == (72, 64, 3)


def test_sampler_resumes_mid_epoch_with_the_same_order(tiny_dataset):
    ds = _samples(tiny_dataset)
    full = ResumableDistributedSampler(ds, num_replicas=1, rank=0, seed=5)
    full.set_epoch(2)
    order = list(full)
    resumed = ResumableDistributedSampler(ds, num_replicas=1, rank=0, seed=5)
    resumed.set_epoch(2)
    resumed.start_index = 4
    assert list(resumed) == order[4:]
    assert list(resumed) == order  # start_index applies to one iteration only


def test_build_policy_from_official_file_and_from_our_folder(tmp_path):
    src = build_tiny_policy(seed=3)
    path = save_official_checkpoint(src.model, tmp_path / "official")
    stats = NormalizationStats(np.full(14, -1.0), np.full(14, 2.0))
    pol, desc = build_policy(
        "tiny", str(path), None, "auto", 0, stats, "aloha_sim", PolicyConfig(stats_key="x")
    )
    assert desc.startswith("official") and pol.model.training
    assert pol.model.config.action_normalization == "min_max"
    assert pol.config.stats_key == "x"  # the caller's policy config is used as given
    for k, v in src.model.state_dict().items():
        assert torch.equal(v, pol.model.state_dict()[k]), k

    folder = tmp_path / "ours"
    build_tiny_policy(seed=4, stats=stats, stats_key="aloha_sim").save_pretrained(folder)
    pol2, desc2 = build_policy(
        "tiny", str(folder), None, "auto", 0, None, "default", PolicyConfig()
    )
    assert desc2.startswith("our folder")
    np.testing.assert_array_equal(pol2.stats.max, stats.max)  # the folder's stats are kept
    assert pol2.config.stats_key == "aloha_sim"


def test_mixed_text_source_uses_the_dataset_embedding_where_present():
    from motus_policy.model.configuration_motus import MotusConfig
    from motus_policy.model.encoders.tiny import build_tiny_encoders
    from motus_policy.model.modeling_motus import MotusModel
    from motus_policy.model.policy import MotusPolicy
    from motus_policy.training.features import FeatureEncoder

    cfg = MotusConfig.from_preset("tiny", text_dim=4096)  # UMT5-XXL width, as the .pt files
    vae, t5, vlm = build_tiny_encoders(text_dim=4096, vlm_dim=64, context_len=cfg.text_len)
    policy = MotusPolicy(MotusModel(cfg), vae, t5, vlm)
    given = torch.zeros(2, cfg.text_len, 4096)
    given[0, :3] = torch.randn(3, 4096)  # episode 0 has an embedding, episode 1 none (zeros)
    batch = {"instruction": ["pick", "place"], "language_embedding": given.to(torch.bfloat16)}
    ctx = FeatureEncoder(policy, torch.device("cpu"), "mixed", "model", None, {}).text_context(
        batch
    )
    assert torch.equal(ctx[0], given[0].to(torch.bfloat16).float())
    assert torch.equal(ctx[1], t5.encode(["place"])[0].float())
    dataset_only = FeatureEncoder(policy, torch.device("cpu"), "dataset", "model", None, {})
    with pytest.raises(ValueError, match="text_dim"):
        dataset_only.text_context({**batch, "language_embedding": torch.zeros(2, 8, 100)})


def test_stat_json_is_found_at_the_dataset_root_above_a_task_folder(tmp_path):
    import json

    from motus_policy.training.stats import read_stats

    (tmp_path / "sim" / "transfer_cube" / "expert").mkdir(parents=True)
    entry = {"min": [0.0] * 14, "max": [2.0] * 14}
    (tmp_path / "sim" / "stat.json").write_text(json.dumps({"aloha_sim": entry}))
    got = read_stats([str(tmp_path / "sim" / "transfer_cube")])
    assert list(got) == ["aloha_sim"] and got["aloha_sim"].max.tolist() == [2.0] * 14


def test_max_episodes_keeps_the_first_episodes_and_refuses_more_than_exist(tiny_dataset):
    def dataset(n: int) -> MotusEpisodeDataset:
        return MotusEpisodeDataset(
            [tiny_dataset], None, action_chunk=16, downsample=3, video_ratio=2, video_frames=8,
            image_hw=(128, 96), text_len=8, require_embedding=False, max_episodes=n,
        )  # fmt: skip

    every = dataset(0)
    first_two = dataset(2)
    assert [i for _, i in first_two.episodes] == [i for _, i in every.episodes[:2]]
    assert first_two.n_frames(1) == every.n_frames(1)
    with pytest.raises(ValueError, match="asked for 4, but only 3 complete episodes"):
        dataset(4)


def test_latent_action_indices_follow_the_official_stage2_loader():
    """Official data/latent_action/latent_action_dataset.py ``_select_indices``: actions at
    c + 6 i, i = 0..7, clamped to T-2; video at c + 6 (i+1), clamped to T-1 (issue #16 §3)."""
    from motus_policy.model import MotusConfig
    from motus_policy.training.data import INDEX_RULES, latent_action_indices

    cfg = MotusConfig.from_preset("latent_action")
    a, g, r, f = (
        cfg.action_chunk_size,
        cfg.global_downsample_rate,
        cfg.video_action_freq_ratio,
        cfg.num_video_frames,
    )
    assert (a, g, r, f) == (8, 6, 1, 8)
    acts, vid = latent_action_indices(100, 10, a, g, r, f)
    assert acts == [10 + 6 * i for i in range(8)]
    assert vid == [10 + 6 * (i + 1) for i in range(8)]
    acts, vid = latent_action_indices(40, 5, a, g, r, f)  # near the end: clamped
    assert acts == [min(5 + 6 * i, 38) for i in range(8)]
    assert vid == [min(5 + 6 * (i + 1), 39) for i in range(8)]
    assert INDEX_RULES["latent_action"] is latent_action_indices


def test_dataset_uses_the_stage2_rule_for_latent_action(tiny_dataset):
    base = MotusEpisodeDataset(
        [tiny_dataset], None, action_chunk=8, downsample=6, video_ratio=1, video_frames=8,
        image_hw=(128, 96), text_len=8, require_embedding=False, index_rule="latent_action",
    )  # fmt: skip
    item = base.sample(0, c=2)
    assert item["action_indices"][:3] == [2, 8, 14]  # from the condition frame on
    n = base.n_frames(0)
    assert max(item["action_indices"]) <= n - 2
    with pytest.raises(ValueError, match="index_rule"):
        MotusEpisodeDataset(
            [tiny_dataset], None, action_chunk=8, downsample=6, video_ratio=1, video_frames=8,
            image_hw=(128, 96), index_rule="stage2",
        )  # fmt: skip
