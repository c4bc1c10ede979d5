"""Smoke test of the training-step benchmark on the tiny config (CPU, one process)."""

from benchmarks import train_step


def test_train_step_tiny_fsdp_with_activation_checkpointing(capsys):
    argv = ["--config", "tiny", "--steps", "2", "--activation-checkpointing"]
    assert train_step.main(argv) == 0
    out = capsys.readouterr().out
    assert "fsdp, 1 process(es)" in out and "activation checkpointing on" in out
    assert "model states on this rank" in out and "losses:" in out


def test_train_step_refuses_full_size_on_cpu(capsys):
    assert train_step.main(["--config", "aloha_agilex_2"]) == 2
    assert "full size" in capsys.readouterr().err
