"""Stage 2 (latent-action pretraining) data and the stage-2 -> stage-3 initialisation."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from motus_policy.latent_action.layout import LATENT_DIR
from motus_policy.model import MotusConfig, MotusModel
from motus_policy.model.encoders.tiny import build_tiny_encoders
from motus_policy.model.policy import MotusPolicy, PolicyConfig
from motus_policy.training.config import TrainConfig
from motus_policy.training.data import (
    MotusEpisodeDataset,
    action_source_for_stage,
    collate,
    latent_action_indices,
)
from motus_policy.training.starting_point import RESET_MARKERS, build_policy, load_stage2_folder
from tests.fakes.datasets import EPISODE_FRAMES
from tests.model.test_golden import (
    VARIANTS,
    build,
    fixture,
    inp,
    mismatches,
)

TASK = "tiny_task/default"


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_stage2_loader_feeds_the_golden_pretrain_block_to_the_official_outputs(
    tiny_dataset, tmp_path
):
    """The golden fixture's ``pretrain`` model (official code, A = 16 at the fixture's robotwin
    chunking g = 3, r = 2) evaluated in wm mode on actions the stage-2 loader read from latent
    files at the official indices c + g i: the outputs match the official ones at 1e-5."""
    variant = VARIANTS["pretrain"]
    tensors, meta = fixture()
    chunk = meta["config"]["chunkings"][variant.chunking]
    a, g, r = (
        chunk["action_chunk"],
        chunk["global_downsample_rate"],
        chunk["video_action_freq_ratio"],
    )
    f = meta["config"]["num_video_frames"]
    assert (a, g, r, f) == (16, 3, 2, 8) and meta["description"]["pretrain"]["action_chunk"] == a
    actions = inp(variant, "actions")  # [2, 16, 14]: the official pretrain block's clean actions
    torch.testing.assert_close(inp(variant, "wm/action_latents"), actions, rtol=0, atol=0)
    root = Path(shutil.copytree(tiny_dataset, tmp_path / "root"))
    (root / TASK / LATENT_DIR).mkdir()
    conds = {0: 5, 1: 7}  # condition index per episode
    for ep, c in conds.items():
        lat = np.random.default_rng(ep).standard_normal((EPISODE_FRAMES[ep] - 1, 14))
        rows, _ = latent_action_indices(EPISODE_FRAMES[ep], c, a, g, r, f)
        assert rows == [c + g * i for i in range(a)]  # from the condition frame on, unclamped
        lat[rows] = actions[ep].numpy()
        torch.save(torch.from_numpy(lat.astype(np.float32)), root / TASK / LATENT_DIR / f"{ep}.pt")
    ds = MotusEpisodeDataset(
        [root], None, action_chunk=a, downsample=g, video_ratio=r, video_frames=f,
        image_hw=(128, 96), text_len=8, require_embedding=False,
        index_rule="latent_action", action_source="latent_action",
    )  # fmt: skip
    batch = collate([ds.sample(ep, c=c) for ep, c in conds.items()])
    torch.testing.assert_close(batch["action_sequence"], actions, rtol=0, atol=0)
    model = build(variant)
    assert not model.config.has_state
    assert tuple(model.state_dict()["action_expert.input_encoder.pos_embedding"].shape) == tuple(
        tensors["pretrain/state/action_expert.input_encoder.pos_embedding"].shape
    )
    cond = model.prepare_conditioning(inp(variant, "t5_embeddings"), inp(variant, "vlm_hidden"))
    with torch.no_grad():
        out = model(
            inp(variant, "wm/video_latents"), batch["action_sequence"],
            inp(variant, "wm/t_video"), inp(variant, "wm/t_action"), None, cond,
        )  # fmt: skip
    got = {"wm/video_velocity": out.video_velocity, "wm/action_velocity": out.action_velocity}
    assert mismatches(got, variant) == {}


def test_stage_and_model_mode_must_agree():
    assert action_source_for_stage(2, "pretrain") == "latent_action"
    assert action_source_for_stage(3, "finetune") == "qpos"
    with pytest.raises(ValueError, match="stage 2 trains a pretrain-mode model"):
        action_source_for_stage(2, "finetune")
    with pytest.raises(ValueError, match="stage 3 trains a finetune-mode model"):
        action_source_for_stage(3, "pretrain")
    with pytest.raises(ValueError, match="stage: expected one of"):
        TrainConfig(data_roots=("x",), stage=1)
    cfg = MotusConfig.from_preset("latent_action_tiny")
    assert (cfg.training_mode, cfg.action_chunk_size, cfg.global_downsample_rate) == (
        "pretrain",
        8,
        6,
    )
    assert cfg.num_registers == 0 and cfg.action_hidden_size == 64  # tiny widths


def test_the_cli_names_a_stage_that_does_not_fit_the_preset_in_one_line(tiny_dataset, tmp_path):
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, "-m", "motus_policy.cli.train", "--stage", "2", "--config", "tiny",
         "--data", str(tiny_dataset), "--out", str(tmp_path / "run"), "--device", "cpu"],
        cwd=repo, env={**os.environ, "PYTHONPATH": str(repo)}, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "stage 2 trains a pretrain-mode model" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.fixture(scope="module")
def stage2_folder(tmp_path_factory) -> Path:
    cfg = MotusConfig.from_preset("latent_action_tiny")
    torch.manual_seed(11)
    model = MotusModel(cfg)
    vae, text, vlm = build_tiny_encoders(
        seed=11, text_dim=cfg.text_dim, vlm_dim=cfg.vlm_hidden_size, context_len=cfg.text_len
    )
    policy = MotusPolicy(model, vae, text, vlm, None, PolicyConfig())
    return policy.save_pretrained(tmp_path_factory.mktemp("s2") / "final")


def test_stage3_from_a_stage2_folder_carries_the_shared_layers_and_starts_action_io_fresh(
    stage2_folder,
):
    src = MotusPolicy.from_pretrained(stage2_folder)
    s2 = src.model.state_dict()
    torch.manual_seed(5)
    target = MotusModel(MotusConfig.from_preset("tiny"))
    fresh_init = {k: v.clone() for k, v in target.state_dict().items()}
    _, dropped, fresh = load_stage2_folder(target, stage2_folder)
    got = target.state_dict()
    new_keys = set(got) - set(s2)
    assert any("state_encoder" in k for k in new_keys) and "action_expert.registers" in new_keys
    assert set(dropped) == {k for k in s2 if any(m in k for m in RESET_MARKERS)}
    assert "action_expert.input_encoder.pos_embedding" in dropped  # 8 rows -> A + 6 = 22
    assert set(fresh) == {k for k in got if any(m in k for m in RESET_MARKERS)} | {
        "action_expert.registers"
    }
    for k, v in got.items():
        if k in fresh:
            assert torch.equal(v, fresh_init[k]), f"{k} should keep its fresh init"
        else:
            assert torch.equal(v, s2[k]), f"{k} should be carried from stage 2"
    carried = [k for k in got if k not in fresh]
    for prefix in ("video_model.", "und_expert.", "action_expert.blocks."):
        assert any(k.startswith(prefix) for k in carried), prefix


def test_build_policy_takes_the_stage2_encoders_and_trains_in_finetune_mode(stage2_folder):
    policy, desc = build_policy(
        "tiny", str(stage2_folder), None, "auto", 0, None, "default", PolicyConfig()
    )
    assert desc.startswith("stage-2 folder") and "action I/O keys reset" in desc
    assert policy.model.config.training_mode == "finetune" and policy.model.config.has_state
    src = MotusPolicy.from_pretrained(stage2_folder)
    for a, b in ((policy.vae, src.vae), (policy.text_encoder.model, src.text_encoder.model)):
        sa, sb = a.state_dict(), b.state_dict()
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    # a pretrain-mode target keeps the folder as it is (continuing stage 2)
    same, desc2 = build_policy(
        "latent_action_tiny", str(stage2_folder), None, "auto", 0, None, "default",
        PolicyConfig(),
    )  # fmt: skip
    assert desc2.startswith("our folder") and same.model.config.training_mode == "pretrain"
