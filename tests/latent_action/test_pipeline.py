"""End to end: recorded episodes -> latent-action VAE -> labels -> stage 2 -> stage 3 (README's
three commands, tiny step counts)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from motus_policy.cli import label_latent, train, train_latent_action
from motus_policy.model.policy import MotusPolicy

pytestmark = pytest.mark.slow


def test_three_commands_from_recorded_episodes_to_a_stage3_checkpoint(tiny_dataset, tmp_path):
    data = Path(shutil.copytree(tiny_dataset, tmp_path / "data"))
    (data / "tiny_task/default/qpos/2.pt").unlink()  # one unlabeled video episode
    vae = tmp_path / "la_vae"
    common = ["--batch-size", "2", "--samples-per-episode", "2", "--val-every", "0",
              "--save-every", "0", "--device", "cpu"]  # fmt: skip
    args = ["--data", str(data), "--out", str(vae), "--max-steps", "3", "--quiet", "--label"]
    assert train_latent_action.main(args) == 0
    summary = json.loads((vae / "summary.json").read_text())
    assert summary["labeled_pairs"] == 59 + 63 and summary["pairs"] == 59 + 63 + 55
    assert (vae / "reconstructions.png").is_file()
    assert len(list(data.glob("tiny_task/default/latent_action_dim14/*.pt"))) == 3
    assert label_latent.main([str(data), "--vae", str(vae)]) == 0  # nothing left to label
    s2 = tmp_path / "s2"
    assert train.main(["--stage", "2", "--config", "latent_action_tiny", "--data", str(data),
                       "--out", str(s2), "--max-steps", "2", *common]) == 0  # fmt: skip
    stage2 = MotusPolicy.from_pretrained(s2 / "final")
    assert stage2.model.config.training_mode == "pretrain"
    s3 = tmp_path / "s3"
    data3 = tmp_path / "labeled"  # stage 3 needs qpos: the labeled episodes
    shutil.copytree(tiny_dataset, data3)
    assert train.main(["--config", "tiny", "--init", str(s2 / "final"), "--data", str(data3),
                       "--out", str(s3), "--max-steps", "2", *common]) == 0  # fmt: skip
    stage3 = MotusPolicy.from_pretrained(s3 / "final")
    assert stage3.model.config.training_mode == "finetune" and stage3.model.config.has_state
    assert stage3.model.config.action_chunk_size == 16
