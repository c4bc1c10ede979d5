"""The memory plan's per-rank total against the measured peak of a tiny training step (issue #18).

Each case runs ``benchmarks.train_step.run_steps`` (the trainer's step: loss module, backward,
clipping, AdamW; random encoder features of the real shapes, no frozen encoders, as the plan
assumes for tiny) in fresh processes started like the FSDP harness of ``test_fsdp.py`` (gloo on
CPU, one thread each), profiles the last of three steps with
``motus_policy.training.memory_peak.measure_peak`` and compares each rank's peak with
``memory_plan.plan_row(...)`` for the same layout, world size, batch and precision (fp32 on CPU).
A fresh process per case keeps the start-of-step scan free of other tests' tensors.

Asserted per rank: the measurement closes (the storages alive before the step, plus the
profiler's allocations, minus its frees and the frees it missed, give the storages alive after
it); where the profiler's categorised timeline is available and saw every free, its peak equals
the event replay's (two readings of one profile); and |plan total - measured peak| / measured
peak <= 20 % (the issue's criterion) for both bounds of the peak (``MeasuredPeak``: gloo's
worker threads free some collective buffers where the profiler does not see it). The one-process
case must see every free (bounds equal).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from benchmarks import train_step
from motus_policy.training.distributed import shutdown
from motus_policy.training.memory_peak import CATEGORY_NAMES, peak_of_timeline
from tests.fakes.gloo import free_port, init_cpu_rank

pytestmark = pytest.mark.cpu_exclusive


TOLERANCE = 0.20
"""Issue #18: the plan's per-rank figure matches the measured peak within 20 %."""


def _worker(rank: int, world: int, port: int, argv: list[str], out: str) -> None:
    info = init_cpu_rank(rank, world, port)
    try:
        report = train_step.run_steps(train_step.build_parser().parse_args(argv), info)
        torch.save(
            {
                "plan": dataclasses.asdict(report.plan),
                "measured": dataclasses.asdict(report.measured),
                "table": train_step.memory_table(report),
                "losses": report.losses,
            },
            Path(out) / f"rank{rank}.pt",
        )
    finally:
        shutdown(info)


def _measure(tmp_path: Path, world: int, strategy: str, checkpointing: bool) -> list[dict]:
    argv = ["--config", "tiny", "--strategy", strategy, "--steps", "2", "--profile-memory"]
    if checkpointing:
        argv.append("--activation-checkpointing")
    mp.spawn(_worker, args=(world, free_port(), argv, str(tmp_path)), nprocs=world, join=True)
    return [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(world)]


def _check(ranks: list[dict]) -> None:
    print("\n" + ranks[0]["table"])
    for rank, got in enumerate(ranks):
        m, plan = got["measured"], got["plan"]
        assert all(torch.isfinite(torch.tensor(got["losses"]))), got["losses"]
        # every storage is accounted for: alive before + allocated - freed = alive after
        assert abs(m["closure_bytes"]) <= 0.01 * m["peak_bytes"], (rank, m)
        assert m["start_bytes"] < m["peak_lower_bytes"] <= m["peak_bytes"]
        # the profiler's own analysis reads the same peak where it saw every free (it keeps a
        # storage freed on another thread to the end; the replay ends it when its address is
        # reused, so it then reads lower)
        if m["at_peak"] is not None and m["unseen_free_bytes"] == 0:
            assert abs(m["categorized_peak_bytes"] - m["peak_bytes"]) <= 0.01 * m["peak_bytes"]
        planned = plan["total"] - plan["frozen"]
        errors = [(planned - m[k]) / m[k] for k in ("peak_lower_bytes", "peak_bytes")]
        print(
            f"rank {rank}: plan {planned / 1e6:.3f} MB (states {plan['model_states'] / 1e6:.3f}, "
            f"buffers {plan['buffers'] / 1e6:.3f}, activations {plan['activations'] / 1e6:.3f}),"
            f" measured peak {m['peak_lower_bytes'] / 1e6:.3f}-{m['peak_bytes'] / 1e6:.3f} MB "
            f"(frees unseen by the profiler {m['unseen_free_bytes'] / 1e6:.3f} MB): "
            f"{errors[0]:+.1%} / {errors[1]:+.1%}"
        )
        assert max(abs(e) for e in errors) <= TOLERANCE, (rank, planned, m)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("checkpointing", [False, True], ids=["no_ckpt", "act_ckpt"])
def test_one_process_peak_matches_the_plan(tmp_path, checkpointing):
    ranks = _measure(tmp_path, 1, "ddp", checkpointing)
    assert ranks[0]["plan"]["layout"] == "ddp" and ranks[0]["plan"]["buffers"] == 0
    m = ranks[0]["measured"]
    assert m["at_peak"]["optimizer_state"] > 0 and m["at_peak"]["activation"] > 0  # categorised
    assert m["unseen_free_bytes"] == 0 and m["peak_lower_bytes"] == m["peak_bytes"]
    _check(ranks)


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("checkpointing", [False, True], ids=["no_ckpt", "act_ckpt"])
def test_two_fsdp_ranks_peak_matches_the_plan(tmp_path, checkpointing):
    ranks = _measure(tmp_path, 2, "fsdp", checkpointing)
    assert ranks[0]["plan"]["layout"] == "fsdp" and ranks[0]["plan"]["gpus"] == 2
    _check(ranks)


def test_peak_of_timeline_picks_the_largest_total_and_checks_widths():
    width = len(CATEGORY_NAMES) + 1
    rows = [[0] * width for _ in range(3)]
    rows[0][1], rows[1][1], rows[1][5], rows[2][1] = 10, 10, 7, 3
    peak, at_peak = peak_of_timeline([0, 1, 2], rows)
    assert peak == 17 and at_peak[CATEGORY_NAMES[0]] == 10 and at_peak[CATEGORY_NAMES[4]] == 7
    with pytest.raises(ValueError, match="rows of"):
        peak_of_timeline([0], [[1, 2]])
