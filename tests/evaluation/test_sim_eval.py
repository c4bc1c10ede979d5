"""Closed-loop bookkeeping and reporting (no simulator: outcomes are built here)."""

from __future__ import annotations

import json

import av
import numpy as np
import pytest

from motus_policy.cli.eval import main
from motus_policy.cli.eval_sim import seed_list, write_results
from motus_policy.evaluation.sim_eval import (
    EpisodeOutcome,
    comparison_table,
    format_summary,
    latency_fields,
    summarize,
    to_markdown,
)
from motus_policy.evaluation.video import Mp4Writer


def outcomes(k: int, n: int) -> list[EpisodeOutcome]:
    return [
        EpisodeOutcome(
            seed=100 + i,
            success=i < k,
            max_reward=4.0 if i < k else 2.0,
            sim_duration_s=3.0,
            wall_duration_s=5.0,
            reward_curve=((0.02, 0.0), (1.5, 2.0)),
        )
        for i in range(n)
    ]


def test_summary_keeps_demo_contract_and_adds_fields():
    s = summarize("scripted expert", "transfer_cube", outcomes(45, 50))
    assert (s["episodes"], s["successes"], s["success_rate"]) == (50, 45, 0.9)
    assert s["ci95"] == pytest.approx([0.7864, 0.9565], abs=1e-4)  # Wilson, see test_stats
    assert s["failed_seeds"] == [145, 146, 147, 148, 149]
    assert s["label"] == "scripted expert" and s["aborted"] is None
    assert s["outcomes"][0]["reward_curve"] == ((0.02, 0.0), (1.5, 2.0))
    assert json.loads(json.dumps(s))["outcomes"][0]["reward_curve"] == [[0.02, 0.0], [1.5, 2.0]]
    assert format_summary(s).startswith("scripted expert on transfer_cube: success 45/50 = 90.0 %")
    md = to_markdown(s)
    assert "| 149 | no | 2 | 3.00 | 5.0 |  |" in md and "45/50 = 90.0 %" in md


def test_latency_fields_flatten_status_json():
    statuses = [
        {"state": "running", "inference": {"latency_ms": 80.0}, "queue_latency_ms": 1},
        {"state": "running", "inference": {"latency_ms": 120.0}, "flag": True},
        {"state": "holding", "infer_ms": {"p50": 81.5}, "holds": 3},
    ]
    lat = latency_fields(statuses)
    assert set(lat) == {"inference.latency_ms", "queue_latency_ms", "infer_ms.p50"}
    assert lat["inference.latency_ms"]["mean"] == 100.0
    assert lat["inference.latency_ms"]["max"] == 120.0 and lat["queue_latency_ms"]["count"] == 1


def test_comparison_table_and_cli(tmp_path, capsys):
    a = summarize("scripted expert", "transfer_cube", outcomes(45, 50))
    b = summarize("policy", "transfer_cube", outcomes(0, 10), label="ckpt-2000")
    write_results(a, tmp_path / "a")
    write_results(b, tmp_path / "b")
    assert (tmp_path / "a" / "sim_eval.md").exists()
    assert not list((tmp_path / "a").glob(".*partial"))
    text = comparison_table([a, b])
    lines = text.splitlines()
    assert lines[0].split()[:4] == ["run", "agent", "task", "n"]
    assert "45" in lines[1] and "90.0 %" in lines[1] and "78.6-95.7 %" in lines[1]
    assert lines[2].startswith("ckpt-2000") and "0.0 %" in lines[2] and "0.0-27.8 %" in lines[2]
    md = comparison_table([a, b], markdown=True)
    assert md.splitlines()[1].startswith("|---|")

    rc = main(["table", str(tmp_path / "a/sim_eval.json"), str(tmp_path / "b/sim_eval.json")])
    assert rc == 0
    assert "ckpt-2000" in capsys.readouterr().out

    (tmp_path / "bad.json").write_text(json.dumps({"hello": 1}))
    with pytest.raises(SystemExit, match="bad.json: not a sim_eval result"):
        main(["table", str(tmp_path / "bad.json")])


def test_seed_list():
    assert seed_list(100, None, 3) == [100, 101, 102]
    assert seed_list(5, 8, None) == [5, 6, 7]
    with pytest.raises(ValueError, match="disagrees"):
        seed_list(5, 8, 10)
    with pytest.raises(ValueError, match="END must be > START"):
        seed_list(8, 5, None)


def test_mp4_writer_round_trip_and_abort(tmp_path):
    path = tmp_path / "v" / "ep.mp4"
    with Mp4Writer(path, fps=25) as w:
        for i in range(10):
            w.add(np.full((24, 33, 3), 20 * i, dtype=np.uint8))  # odd width is padded
    with av.open(str(path)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == 10 and frames[0].shape == (24, 34, 3)
    assert abs(int(frames[5][10, 10, 0]) - 100) <= 3
    with pytest.raises(RuntimeError), Mp4Writer(tmp_path / "x.mp4", fps=25) as w:
        w.add(np.zeros((8, 8, 3), np.uint8))
        raise RuntimeError("boom")
    assert list(tmp_path.glob("*x*")) == []
    w = Mp4Writer(tmp_path / "y.mp4", fps=25)
    w.add(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="differs from the first frame"):
        w.add(np.zeros((10, 8, 3), np.uint8))
    w.abort()
