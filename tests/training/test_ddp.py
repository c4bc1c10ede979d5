"""Two DDP ranks (gloo, CPU) stay bit-identical and see different data."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from motus_policy.training.config import TrainConfig
from motus_policy.training.distributed import shutdown
from motus_policy.training.trainer import Trainer
from tests.fakes.gloo import free_port, init_cpu_rank

pytestmark = pytest.mark.cpu_exclusive


def _worker(rank: int, world: int, port: int, data: str, out: str) -> None:
    cfg = TrainConfig(
        preset="tiny", data_roots=(data,), out_dir=out, max_steps=3, batch_size=1,
        samples_per_episode=2, val_every=0, save_every=0, device="cpu", lr=1e-3,
        warmup_steps=1, cycle_length=100,
    )  # fmt: skip
    info = init_cpu_rank(rank, world, port)
    try:
        trainer = Trainer(cfg, info)
        init = {k: v.clone() for k, v in trainer.policy.model.state_dict().items()}
        seen = []
        original = trainer._step

        def spy(batches):  # the micro-batches of one optimiser step (one here)
            seen.append((batches[0]["episode"][0], batches[0]["condition_index"][0]))
            return original(batches)

        trainer._step = spy
        result = trainer.run()
        torch.save(
            {
                "init": init,
                "final": trainer.policy.model.state_dict(),
                "seen": seen,
                "losses": result.losses,
            },
            Path(out) / f"rank{rank}.pt",
        )
    finally:
        shutdown(info)


@pytest.mark.timeout(240)
def test_two_gloo_ranks_hold_identical_weights(tiny_dataset, tmp_path):
    mp.spawn(_worker, args=(2, free_port(), str(tiny_dataset), str(tmp_path)), nprocs=2, join=True)
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=False)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=False)
    changed = 0
    for k, v in r0["final"].items():
        assert torch.equal(v, r1["final"][k]), k  # bit-identical replicas
        assert torch.equal(r0["init"][k], r1["init"][k]), k
        changed += not torch.equal(v, r0["init"][k])
    assert changed > 10  # training really moved the weights
    assert len(r0["seen"]) == len(r1["seen"]) == 3
    assert r0["seen"] != r1["seen"]  # DistributedSampler shards: different samples per rank
    assert r0["losses"] == r1["losses"]  # logged losses are the mean over ranks
    assert (tmp_path / "final" / "model.safetensors").is_file()
    assert (tmp_path / "checkpoints" / "step_00000003" / "rng_rank1.pt").is_file()
