"""Tiny VAE autoencoder training on real recorded episodes (H.264 files from the writer)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from motus_policy.model.encoders.vae import WAN22_LATENTS_MEAN
from motus_policy.model.policy import MotusPolicy
from motus_policy.training.vae_trainer import (
    ClipSampler,
    VAETrainConfig,
    evaluate,
    foreground_weights,
    load_frames,
    median_frame,
    train_vae,
)

REPO = Path(__file__).resolve().parents[2]


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="clip_frames: expected 1 \\+ 4k, got 4"):
        VAETrainConfig(data_roots=("x",), clip_frames=4)
    with pytest.raises(ValueError, match="image_width: expected a multiple of 16, got 40"):
        VAETrainConfig(data_roots=("x",), image_width=40)
    with pytest.raises(ValueError, match="at least one root"):
        VAETrainConfig(data_roots=())
    with pytest.raises(ValueError, match="kl_weight: expected >= 0"):
        VAETrainConfig(data_roots=("x",), kl_weight=-1.0)


def test_load_frames_reports_missing_data(tmp_path):
    with pytest.raises(ValueError, match="no complete episodes"):
        load_frames((str(tmp_path),), (32, 32), progress=False)


def test_foreground_weights_mark_pixels_off_the_median(tiny_dataset):
    episodes = load_frames((str(tiny_dataset),), (32, 32), progress=False)
    assert [e.shape for e in episodes] == [(n, 32, 32, 3) for n in (60, 64, 56)]
    background = median_frame(episodes, n=64)
    cfg = VAETrainConfig(data_roots=("x",), image_height=32, image_width=32, foreground_weight=9)
    x = background[None, :, None].repeat(1, 1, 5, 1, 1).clone()  # (1, 3, 5, H, W)
    x[0, 0, 2, 10, 20] = 1.0 if background[0, 10, 20] < 0 else -1.0  # one red-channel pixel
    w = foreground_weights(x, background, cfg)
    assert w.shape == (1, 1, 5, 32, 32)
    assert w[0, 0, 2, 10, 20] == 10.0 and float(w.sum()) == 5 * 32 * 32 + 9.0


def test_training_reduces_held_out_error_and_normalises_latents(tiny_dataset, tmp_path):
    cfg = VAETrainConfig(
        data_roots=(str(tiny_dataset),), out_dir=str(tmp_path / "run"), image_height=32,
        image_width=32, batch_size=4, max_steps=40, lr=2e-3, warmup_steps=5, val_episodes=1,
        stats_clips=16,
    )  # fmt: skip
    episodes = load_frames(cfg.data_roots, (32, 32), progress=False)
    held_out = ClipSampler(episodes[-1:], cfg.clip_frames, cfg.frame_stride, 1)
    background = median_frame(episodes[:-1], seed=cfg.seed)
    torch.manual_seed(cfg.seed)  # train_vae forks the RNG, so the same initial weights
    from motus_policy.model.encoders.vae import MotusVAE, VAEConfig

    before = evaluate(MotusVAE(VAEConfig.tiny()).vae.eval(), held_out, background, cfg)
    vae, summary = train_vae(cfg, progress=False)
    assert summary["held_out"]["l1"] < 0.6 * before["l1"], (before, summary["held_out"])
    assert summary["episodes"] == {"train": 2, "held_out": 1}
    assert (tmp_path / "run" / "reconstructions.png").stat().st_size > 10_000
    saved = json.loads((tmp_path / "run" / "vae_summary.json").read_text())
    assert saved["held_out"] == pytest.approx(summary["held_out"])
    # The measured per-channel statistics make the training latents about N(0, 1).
    assert vae.config.latents_mean != WAN22_LATENTS_MEAN
    sampler = ClipSampler(episodes[:-1], cfg.clip_frames, cfg.frame_stride, 7)
    z = vae.encode((sampler.batch(16) + 1) / 2)  # (16, 48, 2, 2, 2), pixels in [0, 1]
    per_channel = z.transpose(0, 1).reshape(48, -1)
    assert per_channel.mean(1).abs().max() < 0.6
    assert 0.5 < float(per_channel.std(1).median()) < 1.5


@pytest.mark.slow
def test_cli_writes_encoders_that_the_trainer_uses(tiny_dataset, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "2"}
    out = tmp_path / "vae"
    proc = subprocess.run(
        [sys.executable, "-m", "motus_policy.cli.train_vae", "--data", str(tiny_dataset),
         "--out", str(out), "--max-steps", "2", "--batch-size", "2", "--stats-clips", "4",
         "--val-episodes", "1", "--quiet"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "VAE_SUMMARY" in proc.stdout
    encoders = MotusPolicy.from_pretrained(out / "encoders")
    assert encoders.vae.config.latents_mean != WAN22_LATENTS_MEAN
    run = tmp_path / "policy"
    proc = subprocess.run(
        [sys.executable, "-m", "motus_policy.cli.train", "--config", "tiny", "--data",
         str(tiny_dataset), "--encoders", str(out / "encoders"), "--out", str(run),
         "--max-steps", "2", "--batch-size", "2", "--val-every", "0", "--save-every", "2",
         "--no-plot", "--val-episodes", "1"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    policy = MotusPolicy.from_pretrained(run / "final")
    for name, tensor in encoders.vae.state_dict().items():
        assert torch.equal(policy.vae.state_dict()[name], tensor), name
    assert np.allclose(policy.vae.config.latents_std, encoders.vae.config.latents_std)
