"""Smoke test of the benchmark CLI on the tiny config (3 runs; prints figures, asserts none)."""

import pytest

from benchmarks import model as benchmark


def test_benchmark_tiny_smoke(capsys):
    assert (
        benchmark.main(
            ["--config", "tiny", "--device", "cpu", "--runs", "3", "--warmup", "1", "--steps", "2"]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "lean" in out and "official" in out and "speed-up" in out
    for stage in benchmark.STAGES:
        assert stage in out


def test_benchmark_refuses_full_size_on_cpu():
    with pytest.raises(SystemExit):
        benchmark.main(["--config", "aloha_agilex_2", "--device", "cpu"])
