"""Starting points: official checkpoints under the stage-transition rules (docs/motus.md §5.1)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from motus_policy.model.checkpoint import CheckpointMismatchError, save_official_checkpoint
from motus_policy.model.configuration_motus import MotusConfig
from motus_policy.model.modeling_motus import MotusModel
from motus_policy.training.starting_point import RESET_MARKERS, load_official_with_transition


def _model(seed: int, **overrides) -> MotusModel:
    torch.manual_seed(seed)
    return MotusModel(MotusConfig.from_preset("tiny", **overrides))


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and torch.equal(a, b)


def test_stage2_to_stage3_resets_action_io_and_keeps_the_rest(tmp_path):
    # A pretrain-mode (stage-2 style) checkpoint: no state encoder, no registers, A = 8.
    stage2 = _model(1, training_mode="pretrain", num_registers=0, video_action_freq_ratio=1)
    path = save_official_checkpoint(stage2, tmp_path / "stage2")
    target = _model(2)
    fresh = {k: v.clone() for k, v in target.state_dict().items()}
    reset, fresh_keys = load_official_with_transition(target, path, "auto")
    assert reset and all(any(m in k for m in RESET_MARKERS) for k in reset)
    src, got = stage2.state_dict(), target.state_dict()
    for k, v in got.items():
        if any(m in k for m in RESET_MARKERS) or k == "action_expert.registers":
            assert _same(v, fresh[k]), f"{k} should start fresh"
        elif k in src:
            assert _same(v, src[k]), f"{k} should be inherited"
    assert "action_expert.registers" in fresh_keys
    assert any(k.startswith("video_model.wan_model.") and _same(got[k], src[k]) for k in got)


def test_same_shape_stage3_checkpoint_loads_everything(tmp_path):
    src = _model(3)
    path = save_official_checkpoint(src, tmp_path / "stage3")
    target = _model(4)
    reset, fresh_keys = load_official_with_transition(target, path, "auto")
    assert reset == [] and fresh_keys == []
    for k, v in target.state_dict().items():
        assert _same(v, src.state_dict()[k]), k


def test_keep_all_refuses_another_chunk_size(tmp_path):
    path = save_official_checkpoint(_model(5, video_action_freq_ratio=1), tmp_path / "a8")
    with pytest.raises(CheckpointMismatchError, match="pos_embedding"):
        load_official_with_transition(_model(6), path, "keep_all")
    cfg = dataclasses.replace(MotusConfig.from_preset("tiny"))
    reset, _ = load_official_with_transition(MotusModel(cfg), path, "reset_action_io")
    assert reset
