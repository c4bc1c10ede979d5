"""`make gpu-check` (benchmarks/gpu_check.py) runs on CPU on the tiny preset, so the script the
GPU machine runs cannot rot; a planted defect turns its golden verdict to FAIL; on a CUDA
machine the full-size check runs within its 8-minute budget (issue #16)."""

from __future__ import annotations

import re
import time

import pytest
import torch

from benchmarks import gpu_check
from motus_policy.model.scheduler import EulerSchedule
from motus_policy.types import MODES


@pytest.mark.slow
def test_gpu_check_runs_every_section_on_cpu(capsys):
    assert (
        gpu_check.main(["--device", "cpu", "--runs", "1", "--steps", "2", "--threads", "1"]) == 0
    )
    out = capsys.readouterr().out
    assert "(a) golden inputs" in out and "(b) per-chunk benchmark" in out
    assert "(c) one prediction per mode" in out and "gpu-check: OK" in out
    # (a): 7 fp32 groups, all within 1e-5 of the official code; 7 bf16 groups via to_runtime
    fp32 = re.findall(r"^    fp32 .*$", out, flags=re.M)
    bf16 = re.findall(r"^    bf16 .*$", out, flags=re.M)
    assert len(fp32) == len(bf16) == 7
    assert all(line.endswith(" ok") for line in fp32), fp32
    assert all("to_runtime(bf16)" in line for line in bf16), bf16
    assert "attention PyTorch SDPA" in out
    # (b): both paths with peak memory, (c): every mode once with finite outputs
    assert "lean" in out and "official" in out and "peak memory [MiB]" in out
    for mode in MODES:
        assert re.search(rf"^    {mode} +[\d.]+ ms  peak", out, flags=re.M), mode
    assert "NON-FINITE" not in out


def test_a_planted_timestep_defect_fails_the_golden_section(monkeypatch, capsys):
    init = EulerSchedule.__init__

    def off_by_one(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.timesteps = self.timesteps.clone()
        self.timesteps[5] += 1.0

    monkeypatch.setattr(EulerSchedule, "__init__", off_by_one)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert gpu_check.golden_section(torch.device("cpu"), precisions=("fp32",)) is False
    finally:
        torch.set_num_threads(before)
    lines = capsys.readouterr().out.splitlines()
    sample = [line for line in lines if " sample " in line]
    assert len(sample) == 2 and all("FAIL" in line for line in sample), sample
    evals = [line for line in lines if " eval " in line]
    assert len(evals) == 3 and all(line.endswith(" ok") for line in evals), evals


def test_bad_device_is_refused():
    with pytest.raises(SystemExit):
        gpu_check.main(["--device", "tpu"])


@pytest.mark.gpu
def test_gpu_check_full_size_on_cuda_within_budget(capsys):
    start = time.perf_counter()
    assert gpu_check.main(["--device", "cuda"]) == 0
    assert time.perf_counter() - start < gpu_check.BUDGET_S
    assert "gpu-check: OK" in capsys.readouterr().out
