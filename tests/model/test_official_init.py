"""Fresh-training initialisation as the official code (issue #16 §3): xavier-uniform for the
action expert's Linears with zero biases, zero output head, std 0.02 for the action time MLP,
std 1/sqrt(D·Dh) for the action / und q/k/v into the Wan heads (official
models/action_expert.py ``initialize_weights``, models/und_expert.py)."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch import nn

from motus_policy.model import MotusConfig, MotusModel

# Wider than tiny so the sample statistics are tight (std estimates within a few %).
CFG = dataclasses.replace(
    MotusConfig.from_preset("tiny"), action_hidden_size=128, action_ffn_dim=256, num_layers=1
)


@pytest.fixture(scope="module")
def model() -> MotusModel:
    torch.manual_seed(0)
    return MotusModel(CFG)


def test_action_expert_linears_are_xavier_uniform_with_zero_bias(model):
    ae = model.action_expert
    time_mlp = {id(m) for m in ae.time_embedding.modules()}
    head = ae.decoder.action_head[-1]
    checked = 0
    for name, m in ae.named_modules():
        if not isinstance(m, nn.Linear) or id(m) in time_mlp or m is head:
            continue
        bound = math.sqrt(6.0 / (m.in_features + m.out_features))
        w = m.weight.detach()
        assert w.abs().max() <= bound, name
        # uniform on [-b, b]: std b/sqrt(3)
        assert w.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.1), name
        if m.bias is not None:
            assert not m.bias.any(), name
        checked += 1
    assert checked >= 8
    assert not head.weight.any() and not head.bias.any()


def test_time_mlp_std_and_qkv_scales_are_official(model):
    for m in model.action_expert.time_embedding.modules():
        if isinstance(m, nn.Linear):
            assert m.weight.std().item() == pytest.approx(0.02, rel=0.1)
            assert not m.bias.any()
    Dh = CFG.head_dim
    for w, D in (
        (model.action_expert.blocks[0].wan_action_qkv, CFG.action_hidden_size),
        (model.und_expert.blocks[0].wan_und_qkv, CFG.und_hidden_size),
    ):
        assert w.std().item() == pytest.approx(1 / math.sqrt(D * Dh), rel=0.1)
