"""Official precision (issue #16 §2): bf16 matrices with fp32 time embeddings, AdaLN tables and
RoPE, on the golden inputs of the official code, and the sampling grid following the dtype.

The golden fixture and its loader come from ``test_golden.py`` (the fixture's README is
``tests/model/data/README.md``). Tolerance of the bf16 runtime against the official fp32 outputs
(docs/motus.md §2.2, "run precision"): max |bf16 − ref| ≤ 1.5e-2 · max |ref| per single network
evaluation (measured ≤ 7.3e-3 on a 2-core x86 CPU) and ≤ 6e-3 · max |ref| per 10-step sample on
the fp32 grid (measured ≤ 2.7e-3).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_golden import VARIANTS, build, inp, ref, single_evaluations

from motus_policy.model.modeling_motus import resolve_dtype
from motus_policy.model.policy import MotusPolicy, build_tiny_policy
from motus_policy.model.sampler import MotusSampler

EVAL_REL_TOL = 1.5e-2  # module docstring
SAMPLE_REL_TOL = 6e-3


def _fp32_tables(model) -> dict[str, torch.Tensor]:
    """Every tensor the official precision keeps in fp32 (or float64): RoPE, time MLPs, AdaLN."""
    wan = model.video_model.wan_model
    ce = wan.condition_embedder
    out = {f"rope.{k}": v for k, v in wan.rope.named_buffers()}
    for name, module in (
        ("video.time_embedder", ce.time_embedder),
        ("video.time_proj", ce.time_proj),
        ("action.time_embedding", model.action_expert.time_embedding),
        ("action.time_projection", model.action_expert.time_projection),
    ):
        out.update({f"{name}.{k}": v for k, v in module.named_parameters()})
    out.update(
        {
            k: p
            for k, p in model.named_parameters()
            if k.endswith(("scale_shift_table", "modulation"))
        }
    )
    return out


def _assert_official_precision(model, fp32_reference) -> None:
    assert model.compute_dtype == torch.bfloat16
    assert model.video_model.wan_model.blocks[0].attn1.to_q.weight.dtype == torch.bfloat16
    assert model.action_expert.blocks[0].wan_action_qkv.dtype == torch.bfloat16
    tables, ref_tables = _fp32_tables(model), _fp32_tables(fp32_reference)
    assert tables.keys() == ref_tables.keys() and len(tables) > 10
    for k, v in tables.items():
        assert v.dtype != torch.bfloat16, k
        assert torch.equal(v.cpu().double(), ref_tables[k].double()), f"{k} was rounded"


def test_bf16_runtime_keeps_fp32_tables_and_stays_within_tolerance_of_the_official_fp32():
    variant = VARIANTS["robotwin"]
    fp32 = build(variant)
    model = build(variant).to_runtime("cpu", resolve_dtype("bfloat16", "cpu"))
    _assert_official_precision(model, fp32)

    for name, got in single_evaluations(model, variant).items():
        r = ref(variant, name)
        worst = (got.double() - r.double()).abs().max().item()
        assert worst <= EVAL_REL_TOL * r.abs().max().item(), (name, worst)

    # 10-step joint sample on the fixture's fp32 grid: both modalities through the bf16 network.
    cond = model.prepare_conditioning(inp(variant, "t5_embeddings"), inp(variant, "vlm_hidden"))
    with torch.no_grad():
        out = MotusSampler(model, num_steps=10, bf16_schedule=False).sample(
            "joint",
            inp(variant, "condition_latent"),
            cond,
            inp(variant, "state"),
            initial_noise=(
                inp(variant, "sample/video_noise"),
                inp(variant, "sample/action_noise"),
            ),
        )
    for name, got in (
        ("joint/sampled_actions", out.actions),
        ("joint/sampled_video_latents", out.video_latents),
    ):
        r = ref(variant, name)
        worst = (got.double() - r.double()).abs().max().item()
        assert worst <= SAMPLE_REL_TOL * r.abs().max().item(), (name, worst)


def test_sampling_grid_follows_the_run_dtype():
    policy = build_tiny_policy(seed=0)
    assert not MotusSampler(policy.model).schedule.bf16  # fp32 network: exact grid
    policy.to_runtime("cpu", "bfloat16")
    sched = MotusSampler(policy.model).schedule
    assert sched.bf16  # bf16 network: the upstream bf16 linspace (docs/motus.md §2.2)
    assert float(sched.dts[0]) == pytest.approx(-0.1016, abs=1e-4)


def test_dtype_names_resolve_and_bad_names_are_refused():
    assert resolve_dtype("auto", "cpu") == torch.float32
    assert resolve_dtype("auto", "cuda") == torch.bfloat16
    assert resolve_dtype("float32", "cuda") == torch.float32
    assert resolve_dtype("bfloat16", "cpu") == torch.bfloat16
    with pytest.raises(ValueError, match=r"motus.dtype: expected one of .*'fp16'"):
        resolve_dtype("fp16", "cpu")


def test_from_pretrained_in_bf16_keeps_rope_and_time_tables(tmp_path):
    policy = build_tiny_policy(seed=3)
    folder = policy.save_pretrained(tmp_path / "ckpt")
    loaded = MotusPolicy.from_pretrained(folder, dtype=torch.bfloat16)
    _assert_official_precision(loaded.model, policy.model)
    blank = {"cam_high", "cam_left_wrist", "cam_right_wrist"}
    from motus_policy.types import Observation

    obs = Observation(
        images={c: np.zeros((48, 64, 3), np.uint8) for c in blank},
        state=np.zeros(14, np.float32),
        stamp_ns=0,
        instruction="pick",
    )
    chunk = loaded.predict(obs, mode="vla", num_steps=2, seed=0)
    assert np.all(np.isfinite(chunk.actions))
