"""End-to-end CLI runs: bit-exact resume on CPU, loadable result, schedule, CLI help."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from motus_policy.cli.train import build_parser, config_from_args
from motus_policy.model.policy import MotusPolicy
from motus_policy.training import stats
from motus_policy.training.config import TrainConfig
from motus_policy.training.schedule import WarmupLinearDecay, build_optimizer
from motus_policy.training.trainer import Trainer
from motus_policy.types import Observation
from motus_recorder import schema
from tests.fakes.datasets import write_tiny_dataset

REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    # Same intra-op thread count as this process: CPU reductions are only bit-reproducible
    # with the same number of threads.
    threads = str(torch.get_num_threads())
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": threads}
    proc = subprocess.run(
        [sys.executable, "-m", "motus_policy.cli.train", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def losses(out: Path) -> list[tuple[int, float]]:
    rows = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    return [(r["step"], r["loss"]) for r in rows]


def test_schedule_shape_follows_reference():
    f = WarmupLinearDecay(200, 1000, 1e-6, 0.99, 0.4)
    assert f(0) == pytest.approx(1e-6)
    assert f(100) == pytest.approx(0.495, abs=1e-5)
    assert f(200) == pytest.approx(0.4 + 0.59 * 0.8)  # decay counted from step 0 (LDM form)
    assert f(1000) == pytest.approx(0.4) and f(5000) == pytest.approx(0.4)
    cfg = TrainConfig(data_roots=("x",), warmup_steps=2, cycle_length=10)
    opt, sched = build_optimizer([torch.nn.Parameter(torch.zeros(3))], cfg)
    assert opt.defaults["betas"] == (0.9, 0.95) and opt.defaults["weight_decay"] == 0.01
    lrs = []
    for _ in range(4):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([5e-5 * 1e-6, 5e-5 * (1e-6 + (0.99 - 1e-6) / 2), 5e-5 * 0.872,
                                 5e-5 * (0.4 + 0.59 * 0.7)])  # fmt: skip


def test_help_lists_the_main_options():
    text = build_parser().format_help()
    for opt in ("--config", "--data", "--init", "--resume", "--batch-size", "torchrun"):
        assert opt in text
    args = build_parser().parse_args(
        ["--data", "d", "--f-min", "0.02", "--cycle-length", "800", "--max-episodes", "50"]
    )
    cfg = config_from_args(args)
    assert (cfg.f_min, cfg.cycle_length, cfg.max_episodes) == (0.02, 800, 50)


@pytest.mark.timeout(300)
def test_resume_reproduces_the_uninterrupted_losses_bit_exactly(tiny_dataset, tmp_path):
    """6 steps in one go == 3 steps, checkpoint, a new process resuming for 3 more.

    The uninterrupted run fills the feature cache and validates at step 2; the interrupted
    runs read the cache and never validate, so equality also shows that cached features equal
    fresh ones and that validation leaves the training streams alone.
    """
    common = dict(
        preset="tiny", data_roots=(str(tiny_dataset),), batch_size=2, samples_per_episode=2,
        device="cpu", log_every=1, feature_cache=str(tmp_path / "cache"), warmup_steps=2,
        lr=1e-3, plot=False,
    )  # fmt: skip
    full = tmp_path / "full"
    Trainer(TrainConfig(**common, out_dir=str(full), max_steps=6, val_every=2, val_samples=2,
                        save_every=0)).run()  # fmt: skip
    # Interrupted run: 3 steps (mid-epoch: 2 batches per epoch), then a new process resumes.
    part = tmp_path / "part"
    Trainer(TrainConfig(**common, out_dir=str(part), max_steps=3, val_every=0)).run()
    assert (part / "checkpoints" / "latest").read_text() == "step_00000003"
    torch.manual_seed(12345)  # the resumed process must not depend on this process's state
    proc = run_cli(
        "--config", "tiny", "--data", str(tiny_dataset), "--batch-size", "2",
        "--samples-per-episode", "2", "--device", "cpu", "--log-every", "1",
        "--feature-cache", str(tmp_path / "cache"), "--warmup-steps", "2", "--lr", "1e-3",
        "--no-plot", "--out", str(part), "--max-steps", "6", "--val-every", "0",
        "--resume", "auto",
    )  # fmt: skip
    summary = json.loads(proc.stdout.split("TRAIN_SUMMARY ", 1)[1])
    assert summary["steps"] == 6

    want, got = losses(full), losses(part)
    assert [s for s, _ in got] == [1, 2, 3, 4, 5, 6]
    assert got == want  # exact float equality, every step
    assert len({v for _, v in want}) == 6  # the losses really vary from step to step
    assert (full / "val" / "metrics.jsonl").is_file()
    assert list((part / "tensorboard").glob("events.out.tfevents.*"))

    # The result is a save_pretrained folder the policy backend loads and runs.
    policy = MotusPolicy.from_pretrained(part / "final")
    ref = MotusPolicy.from_pretrained(full / "final")
    for (k, a), (_, b) in zip(
        policy.model.state_dict().items(), ref.model.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), k
    assert policy.config.stats_key == "aloha_sim"
    assert policy.config.recommended_n_action_steps == 16  # recorded: the whole tiny chunk
    assert policy.config.action_rate_hz == pytest.approx(25.0 / 3)
    rng = np.random.default_rng(0)
    obs = Observation(
        images={c: rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for c in schema.CAMERA_NAMES},
        state=np.zeros(14, np.float32), stamp_ns=1, image_stamps_ns={}, instruction="pick",
    )  # fmt: skip
    chunk = policy.predict(obs, mode="vla", num_steps=2, seed=0)
    assert chunk.actions.shape == (16, 14) and np.isfinite(chunk.actions).all()


def test_action_loss_weight_scales_the_action_term_and_is_saved(tiny_dataset, tmp_path):
    with pytest.raises(ValueError, match="action_loss_weight: expected > 0, got 0.0"):
        TrainConfig(data_roots=("x",), action_loss_weight=0.0)
    out = tmp_path / "weighted"
    Trainer(TrainConfig(
        preset="tiny", data_roots=(str(tiny_dataset),), batch_size=2, samples_per_episode=2,
        device="cpu", log_every=1, feature_cache="", max_steps=2, val_every=0, plot=False,
        out_dir=str(out), action_loss_weight=5.0,
    )).run()  # fmt: skip
    rows = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    for r in rows:
        assert r["loss"] == pytest.approx(r["video_loss"] + 5.0 * r["action_loss"], rel=1e-5)
    saved = MotusPolicy.from_pretrained(out / "final")
    assert saved.model.config.action_loss_weight == 5.0
    assert saved.config.qpos_source == "command"  # the recorder's episode metadata


def test_episodes_that_disagree_on_their_qpos_source_are_refused(tmp_path):
    root = write_tiny_dataset(tmp_path / "data")
    meta = sorted(root.glob("**/meta/1.json"))[0]
    assert stats.qpos_source([str(root)]) == "command"
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "qpos_source": "state"}))
    with pytest.raises(ValueError, match="episodes disagree on qpos_source: command .* state"):
        stats.qpos_source([str(root)])
