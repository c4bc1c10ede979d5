"""MotusConfig: presets, derived quantities (docs/motus.md §3.1, §3.3, §7.1), validation, JSON."""

import dataclasses
import json

import pytest
import torch

from motus_policy.model import PRESETS, MotusConfig, MotusModel

# ---------------------------------------------------------------- derived quantities per preset


@pytest.mark.parametrize(
    "name, A, grid, video_tokens, action_tokens, pos_rows, mode",
    [
        ("robotwin", 16, (3, 12, 10), 360, 21, 22, "finetune"),
        ("aloha_agilex_2", 48, (3, 12, 10), 360, 53, 54, "finetune"),
        ("ac_one", 48, (3, 12, 10), 360, 53, 54, "finetune"),
        ("latent_action", 8, (3, 12, 10), 360, 8, 8, "pretrain"),
        ("tiny", 16, (3, 4, 3), 36, 21, 22, "finetune"),
    ],
)
def test_preset_derived_quantities(name, A, grid, video_tokens, action_tokens, pos_rows, mode):
    cfg = MotusConfig.from_preset(name)
    assert cfg.preset == name
    assert cfg.training_mode == mode
    assert cfg.action_chunk_size == A
    assert cfg.token_grid == grid
    assert cfg.num_video_tokens == video_tokens
    assert cfg.num_action_tokens == action_tokens
    assert cfg.action_pos_embedding_rows == pos_rows
    assert cfg.num_latent_frames == 3


def test_full_size_latent_shape_and_wan_width():
    cfg = MotusConfig.from_preset("robotwin")
    assert cfg.latent_shape == (48, 3, 24, 20)  # docs/motus.md §3.3
    assert cfg.wan_dim == 3072
    assert cfg.num_condition_tokens == 120


def test_real_robot_presets_use_min_max_stats():
    assert MotusConfig.from_preset("ac_one").normalization_key == "ac_one"
    assert MotusConfig.from_preset("aloha_agilex_2").action_normalization == "min_max"
    # raw qpos, docs/motus.md §4.1
    assert MotusConfig.from_preset("robotwin").action_normalization == "none"


def test_full_size_parameter_counts_match_reference():
    """Built on the meta device: no memory. Counts from docs/motus.md §1.1 /
    docs/checkpoint-format.md §2-4."""
    with torch.device("meta"):
        model = MotusModel(MotusConfig.from_preset("robotwin"))
    counts = model.parameter_counts()
    assert counts["video_model"] == 4_999_787_712
    assert counts["action_expert"] == 641_527_822
    assert counts["und_expert"] == 253_493_760


def test_pretrain_mode_has_no_state_encoder_or_registers():
    with torch.device("meta"):
        model = MotusModel(MotusConfig.from_preset("latent_action"))
    keys = model.state_dict().keys()
    assert "action_expert.registers" not in keys
    assert not any("state_encoder" in k for k in keys)
    assert model.state_dict()["action_expert.input_encoder.pos_embedding"].shape == (1, 8, 1024)


# ---------------------------------------------------------------- serialisation


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_json_round_trip(name):
    cfg = MotusConfig.from_preset(name)
    again = MotusConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg


def test_overrides_and_replace():
    cfg = MotusConfig.from_preset("tiny", video_action_freq_ratio=6)
    assert cfg.action_chunk_size == 48
    assert dataclasses.replace(cfg, num_layers=3).num_layers == 3


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "overrides, field",
    [
        (dict(training_mode="stage3"), "training_mode"),
        (dict(image_height=100), "image_height"),
        (dict(num_video_frames=6), "num_video_frames"),
        (dict(num_layers=0), "num_layers"),
        (dict(training_mode="pretrain", num_registers=4), "num_registers"),
        (dict(action_normalization="min_max", normalization_key=""), "normalization_key"),
        (dict(action_eps=0.0), "action_eps"),
        (dict(patch_size=(2, 2, 2)), "patch_size"),
    ],
)
def test_invalid_values_name_the_field(overrides, field):
    with pytest.raises(ValueError, match=field):
        MotusConfig.from_preset("tiny", **overrides)


def test_unknown_preset_and_keys_raise():
    with pytest.raises(ValueError, match="preset"):
        MotusConfig.from_preset("gr00t")
    with pytest.raises(ValueError, match="unknown keys"):
        MotusConfig.from_dict({**MotusConfig().to_dict(), "dim": 3})
