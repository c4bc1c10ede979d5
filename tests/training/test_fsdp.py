"""FSDP2 (fully_shard) training on 2 gloo ranks vs one process; DCP resume; official export.

The reference is one process with the same global batch (2 samples per step, as 2 accumulated
micro-batches of 1); the sharded run has 1 sample per rank. Both draw the same samples and the
same noise per sample (``trainer.sample_noise``), so their losses agree to float rounding (1e-5
asked, fp32 on CPU).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from torch.distributed.tensor import DTensor

from motus_policy.model.checkpoint import (
    CheckpointMismatchError,
    load_official_state_dict,
    read_official_checkpoint,
)
from motus_policy.model.configuration_motus import MotusConfig
from motus_policy.model.modeling_motus import MotusConditioning, MotusModel
from motus_policy.model.policy import MotusPolicy
from motus_policy.training import fsdp
from motus_policy.training.config import TrainConfig
from motus_policy.training.distributed import shutdown
from motus_policy.training.memory_plan import model_sizes, plan_row
from motus_policy.training.trainer import RunFolderInUseError, Trainer
from tests.fakes.gloo import free_port, init_cpu_rank

pytestmark = pytest.mark.cpu_exclusive


REPO = Path(__file__).resolve().parents[2]
STEPS = 20


def _config(data: str, out: str, cache: str, **kw) -> TrainConfig:
    base = dict(
        preset="tiny", data_roots=(data,), out_dir=out, max_steps=STEPS, batch_size=1,
        samples_per_episode=4, val_every=10, val_episodes=1, val_samples=2, vla_steps=2,
        save_every=10, keep_last=5,
        device="cpu", lr=1e-3, warmup_steps=2, cycle_length=100, plot=False,
        feature_cache=cache, precompute_features=True, log_every=1, export_official=True,
    )  # fmt: skip
    base.update(kw)
    return TrainConfig(**base)


def _local_bytes(t: torch.Tensor) -> int:
    if isinstance(t, DTensor):
        t = t.to_local()
    return t.numel() * t.element_size()


def _model_state_bytes(trainer: Trainer) -> int:
    """Weights + gradients + AdamW state this rank holds (its shards under FSDP)."""
    total = 0
    for p in trainer.policy.model.parameters():
        total += _local_bytes(p)
        if p.grad is not None:
            total += _local_bytes(p.grad)
    for state in trainer.optimizer.state.values():
        for v in state.values():
            if torch.is_tensor(v) and v.ndim > 0:
                total += _local_bytes(v)
    return total


def _measure_at_second_step(trainer: Trainer, into: dict) -> None:
    """Record the model-state bytes right before the 2nd optimiser step (grads + AdamW state)."""
    calls = []

    def before_step(optimizer, args, kwargs):
        calls.append(1)
        if len(calls) == 2:
            into["measured"] = _model_state_bytes(trainer)

    trainer.optimizer.register_step_pre_hook(before_step)


def _worker(rank: int, world: int, port: int, data: str, tmp: str) -> None:
    info = init_cpu_rank(rank, world, port)
    cache = str(Path(tmp) / "cache")
    try:
        trainer = Trainer(_config(data, str(Path(tmp) / "fsdp"), cache, strategy="fsdp"), info)
        assert trainer.strategy == "fsdp" and trainer.layers is not None
        memory: dict = {}
        _measure_at_second_step(trainer, memory)
        full = trainer.run()
        # a new trainer resumes from the sharded checkpoint of step 10 into another folder
        resumed = Trainer(
            _config(
                data, str(Path(tmp) / "resumed"), cache, strategy="fsdp",
                resume=str(Path(tmp) / "fsdp" / "checkpoints" / "step_00000010"),
            ),
            info,
        )  # fmt: skip
        assert resumed.position.step == 10
        again = resumed.run()
        torch.save(
            {"full": full.losses, "resumed": again.losses, "val": full.val_metrics, **memory},
            Path(tmp) / f"rank{rank}.pt",
        )
    finally:
        shutdown(info)


@pytest.fixture(scope="module")
def runs(tiny_dataset, tmp_path_factory):
    """The single-process reference run and the 2-rank FSDP runs (full and resumed)."""
    tmp = tmp_path_factory.mktemp("fsdp")
    cache = str(tmp / "cache")
    # 2 micro-batches of 1: the VLM features of a batch are padded to its longest prompt and the
    # joint attention sees the padding (docs/motus.md §1.5), so the reference batches like a rank
    single = Trainer(_config(str(tiny_dataset), str(tmp / "single"), cache, grad_accum_steps=2))
    assert single.strategy == "ddp" and single.layers is None
    memory: dict = {}
    _measure_at_second_step(single, memory)
    reference = single.run()
    mp.spawn(_worker, args=(2, free_port(), str(tiny_dataset), str(tmp)), nprocs=2, join=True)
    ranks = [torch.load(tmp / f"rank{r}.pt", weights_only=False) for r in range(2)]
    return {
        "tmp": tmp, "reference": reference.losses, "ranks": ranks, "single": memory,
        "val": reference.val_metrics,
    }  # fmt: skip


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_sharded_losses_match_one_process_and_resume_bit_exactly(runs):
    ref = dict(runs["reference"])
    r0, r1 = runs["ranks"]
    full = dict(r0["full"])
    assert sorted(full) == list(range(1, STEPS + 1)) == sorted(ref)
    assert r0["full"] == r1["full"]  # logged: the mean over the ranks
    diffs = [abs(full[s] - ref[s]) for s in ref]
    print(f"max |loss diff| over {STEPS} steps, 2 FSDP ranks vs 1 process: {max(diffs):.3g}")
    assert max(diffs) < 1e-5, diffs
    assert len({round(v, 6) for v in full.values()}) > 10  # the losses really move
    # validation of the sharded network (gathered on every rank) agrees with the plain one
    assert r0["val"].keys() == runs["val"].keys() and "vla_action_mse" in runs["val"]
    for k, v in runs["val"].items():
        assert r0["val"][k] == pytest.approx(v, rel=1e-4, abs=1e-6), k
    # resumed at step 10 from the DCP checkpoint: steps 11-20 bit for bit
    resumed = dict(r0["resumed"])
    assert sorted(resumed) == list(range(11, STEPS + 1))
    assert all(resumed[s] == full[s] for s in resumed), [(resumed[s], full[s]) for s in resumed]
    ckpt = runs["tmp"] / "fsdp" / "checkpoints" / "step_00000010"
    assert (ckpt / fsdp.SHARDED_DIR / ".metadata").is_file()
    assert len(list((ckpt / fsdp.SHARDED_DIR).glob("*.distcp"))) == 2  # one file per rank


def _resume_on_one_rank(rank: int, world: int, port: int, data: str, tmp: str) -> None:
    """World size 1 resumes the 2-rank step-10 checkpoint (DCP reshards on load)."""
    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

    info = init_cpu_rank(rank, world, port)
    step10 = Path(tmp) / "fsdp" / "checkpoints" / "step_00000010"
    try:
        trainer = Trainer(
            _config(
                data, str(Path(tmp) / "resumed_1rank"), str(Path(tmp) / "cache"),
                strategy="fsdp", resume=str(step10),
            ),
            info,
        )  # fmt: skip
        # the library's own reading of the sharded checkpoint, as full tensors
        dcp_to_torch_save(step10 / fsdp.SHARDED_DIR, Path(tmp) / "step10_full.pt")
        saved = torch.load(Path(tmp) / "step10_full.pt", weights_only=False)
        full = {k: _full(v) for k, v in trainer.policy.model.state_dict().items()}
        weights = [k for k in saved["model"] if torch.equal(saved["model"][k], full[k])]
        live = {
            n: trainer.optimizer.state.get(p) or {}
            for n, p in trainer.policy.model.named_parameters()
        }
        saved_state = saved["optim"]["state"]  # {param fqn: {"exp_avg", "exp_avg_sq", "step"}}
        moments_equal = [
            n for n, st in saved_state.items()
            if "exp_avg" in live.get(n, {})
            and torch.equal(_full(live[n]["exp_avg"]), st["exp_avg"])
            and torch.equal(_full(live[n]["exp_avg_sq"]), st["exp_avg_sq"])
        ]  # fmt: skip
        pos = trainer.position
        position = (pos.step, pos.epoch, pos.batch_in_epoch)  # before run() moves it
        result = trainer.run()
        torch.save(
            {
                "n_weights": len(saved["model"]), "weights_equal": len(weights),
                "n_moments": len(saved_state), "moments_equal": len(moments_equal),
                "position": position,
                "losses": result.losses,
            },
            Path(tmp) / "resume_1rank.pt",
        )  # fmt: skip
    finally:
        shutdown(info)


def _full(t: torch.Tensor) -> torch.Tensor:
    return t.full_tensor() if isinstance(t, DTensor) else t


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_sharded_checkpoint_resumes_on_another_world_size(runs, tiny_dataset):
    """2 ranks wrote step 10; 1 rank resumes: weights and AdamW moments restored exactly (DCP
    reshards), the data position restarts at the next epoch (the per-rank sample order depends
    on the world size), and training goes on to step 20."""
    tmp = runs["tmp"]
    mp.spawn(
        _resume_on_one_rank, args=(1, free_port(), str(tiny_dataset), str(tmp)), nprocs=1,
        join=True,
    )  # fmt: skip
    r = torch.load(tmp / "resume_1rank.pt", weights_only=False)
    assert r["n_weights"] > 50 and r["weights_equal"] == r["n_weights"], r
    assert r["n_moments"] > 50 and r["moments_equal"] == r["n_moments"], r
    step, epoch, batch_in_epoch = r["position"]
    assert step == 10 and batch_in_epoch == 0, r["position"]
    losses = dict(r["losses"])
    assert sorted(losses) == list(range(11, STEPS + 1))
    assert all(math.isfinite(v) for v in losses.values()), losses


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_export_loads_strictly_through_the_golden_loader_and_the_policy(runs):
    out = runs["tmp"] / "fsdp"
    policy = MotusPolicy.from_pretrained(out / "final")  # what policy_node loads
    state = read_official_checkpoint(out / "final_official")  # the golden test's loader path
    assert any(k.startswith("vlm_model.") for k in state)
    model = MotusModel(policy.model.config)
    report = load_official_state_dict(model, state, strict=True)
    assert not report.missing and not report.unexpected
    for k, v in policy.model.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k
    # the single-process run ends within rounding of the sharded one
    single = MotusPolicy.from_pretrained(runs["tmp"] / "single" / "final").model.state_dict()
    worst = max(float((single[k] - v).abs().max()) for k, v in model.state_dict().items())
    assert worst < 1e-4
    # shape-checked: a model of another chunk size refuses the file before copying anything
    other = MotusModel(MotusConfig.from_preset("tiny", video_action_freq_ratio=3))
    with pytest.raises(CheckpointMismatchError):
        load_official_state_dict(other, state, strict=True)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_memory_plan_model_states_match_the_measured_bytes(runs):
    sizes = model_sizes(MotusConfig.from_preset("tiny"))
    fsdp_plan = plan_row(sizes, "fsdp", 2, False, batch=1).model_states
    ddp_plan = plan_row(sizes, "ddp", 1, False, batch=1).model_states
    for rank in runs["ranks"]:
        assert abs(rank["measured"] - fsdp_plan) / rank["measured"] < 0.2, (rank, fsdp_plan)
    single = runs["single"]["measured"]
    print(
        f"model states per rank: fsdp 2 ranks plan {fsdp_plan} B, measured "
        f"{[r['measured'] for r in runs['ranks']]} B; 1 process plan {ddp_plan} B, measured "
        f"{single} B"
    )
    assert abs(single - ddp_plan) / single < 0.2, (single, ddp_plan)


def test_layered_forward_equals_the_network_forward():
    """The forward FSDP / activation checkpointing run is the network's, bit for bit."""
    torch.manual_seed(0)
    cfg = MotusConfig.from_preset("tiny")
    model = MotusModel(cfg).train()
    g = torch.Generator().manual_seed(1)
    lat = torch.randn((2, *cfg.latent_shape), generator=g)
    act = torch.randn(2, cfg.action_chunk_size, cfg.action_dim, generator=g)
    state = torch.randn(2, cfg.action_dim, generator=g)
    cond = MotusConditioning(
        torch.randn(2, cfg.text_len, cfg.wan_dim, generator=g),
        torch.randn(2, 5, cfg.und_hidden_size, generator=g),
    )

    def run(fn):
        model.zero_grad()
        out = fn(lat, act, 300.0, torch.tensor([10.0, 900.0]), state, cond)
        (out.video_velocity.square().mean() + out.action_velocity.square().mean()).backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        return out, grads

    want, want_g = run(lambda *a: MotusModel.forward(model, *a))
    for checkpointing in (False, True):
        layers = fsdp.install_layers(model, checkpointing)
        assert len(layers) == cfg.num_layers
        got, got_g = run(model)
        assert torch.equal(got.video_velocity, want.video_velocity)
        assert torch.equal(got.action_velocity, want.action_velocity)
        assert got_g.keys() == want_g.keys()
        assert all(torch.equal(got_g[k], want_g[k]) for k in want_g)
    with pytest.raises(ValueError, match="video_latents: expected"):
        model(lat[:, :, :1], act, 1.0, 1.0, state, cond)


def test_a_second_run_into_a_used_out_dir_is_refused(tiny_dataset, tmp_path):
    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    (out / "train_log.jsonl").write_text(json.dumps({"step": 1, "loss": 1.0}) + "\n")
    cfg = TrainConfig(preset="tiny", data_roots=(str(tiny_dataset),), out_dir=str(out))
    with pytest.raises(RunFolderInUseError, match="--resume auto .* or choose another --out"):
        Trainer(cfg)
    proc = subprocess.run(
        [sys.executable, "-m", "motus_policy.cli.train", "--config", "tiny", "--data",
         str(tiny_dataset), "--out", str(out), "--device", "cpu"],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "already holds a run (checkpoints, train_log.jsonl)" in proc.stderr
    assert "pass --resume auto" in proc.stderr


def test_strategy_options_are_validated_and_in_the_cli():
    from motus_policy.cli.train import build_parser, config_from_args

    with pytest.raises(ValueError, match="strategy: expected one of"):
        TrainConfig(data_roots=("x",), strategy="zero3")
    with pytest.raises(ValueError, match="cpu_offload: needs strategy fsdp"):
        TrainConfig(data_roots=("x",), strategy="ddp", cpu_offload=True)
    with pytest.raises(ValueError, match="grad_accum_steps: expected a positive int"):
        TrainConfig(data_roots=("x",), grad_accum_steps=0)
    args = build_parser().parse_args(
        ["--data", "d", "--strategy", "fsdp", "--cpu-offload", "--activation-checkpointing",
         "--grad-accum-steps", "4"]
    )  # fmt: skip
    cfg = config_from_args(args)
    assert (cfg.strategy, cfg.cpu_offload, cfg.activation_checkpointing) == ("fsdp", True, True)
    assert cfg.grad_accum_steps == 4
