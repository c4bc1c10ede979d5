"""benchmarks.node_timing's setup parsing and report (the timed run itself is a benchmark, not a
test)."""

from __future__ import annotations

import pytest

from benchmarks.node_timing import node_args, report


def test_setup_to_node_parameters():
    args = node_args("busy:child:thread", 30.0, 0.15, "prefix", "/ckpt", "cpu", priority=10)
    assert "backend:=scripted" in args and "scripted.busy:=true" in args
    assert "backend_process:=true" in args and "control_loop:=thread" in args
    assert "control_priority:=10" in args
    motus = node_args("motus:inproc:timer", 30.0, 0.15, "prefix", "/ckpt", "cpu")
    assert "backend:=motus" in motus and "motus.checkpoint:=/ckpt" in motus
    assert "backend_process:=false" in motus
    with pytest.raises(ValueError, match="BACKEND:PLACE:LOOP"):
        node_args("motus", 30.0, 0.15, "prefix", "/ckpt", "cpu")
    with pytest.raises(ValueError, match="expected scripted"):
        node_args("gpu:far:timer", 30.0, 0.15, "prefix", "/ckpt", "cpu")


def test_report_pairs_child_with_the_latest_in_process_run():
    fig = {"node_stamp_period_err_p99_ms": 2.0, "obs_to_action_ms_median": 100.0}
    text = report(
        {
            "busy:inproc:timer": fig,
            "busy:child:timer": {**fig, "node_stamp_period_err_p99_ms": 0.5},
            "busy:inproc:timer#2": {**fig, "node_stamp_period_err_p99_ms": 4.0},
            "busy:child:timer#3": {**fig, "node_stamp_period_err_p99_ms": 1.0},
        }
    )
    assert "busy:child:timer / busy:inproc:timer node_stamp_period_err_p99_ms: 0.25" in text
    assert "busy:child:timer#3 / busy:inproc:timer#2 node_stamp_period_err_p99_ms: 0.25" in text
