"""Lockstep evaluation: the real runtime, a real tiny Motus and real MuJoCo in one process."""

from __future__ import annotations

import json

import numpy as np
import pytest

from motus_policy.backends.motus import MotusBackend
from motus_policy.cli.eval import main as eval_main
from motus_policy.evaluation.lockstep import LockstepConfig, LockstepEvaluator, run_lockstep
from motus_policy.runtime.config import PolicyRuntimeConfig
from motus_recorder.profile import load_profile, with_image_size

pytestmark = pytest.mark.slow


def test_lockstep_episode_runs_the_runtime_against_the_sim():
    profile = with_image_size(load_profile("aloha_sim"), 48, 64)
    backend = MotusBackend(profile, "tiny-random")
    backend.load()
    cfg = LockstepConfig(
        episode_length_s=1.0,
        runtime=PolicyRuntimeConfig(strategy="sync", mode="vla", n_action_steps=4, num_steps=2),
    )
    ev = LockstepEvaluator(profile, backend, cfg)
    calls = []
    infer = backend.infer
    backend.infer = lambda obs, **kw: (calls.append(obs), infer(obs, **kw))[1]
    try:
        (out,) = run_lockstep(ev, [3])
    finally:
        ev.close()
    assert out.seed == 3 and out.sim_duration_s == pytest.approx(1.0)
    assert out.reward_curve[0][0] == 0.0
    # tiny-random acts at the 25 Hz record rate: a chunk every 4 actions (0.16 s), and every
    # observation it was given had been rendered at that very instant
    assert len(calls) >= 5
    for obs in calls:
        assert set(obs.images) == {"cam_high", "cam_left_wrist", "cam_right_wrist"}
        assert all(obs.image_stamps_ns[n] == obs.stamp_ns for n in obs.images)
        assert np.all(np.isfinite(obs.state))


def test_lockstep_cli_writes_results(tmp_path, capsys):
    rc = eval_main(
        [
            "lockstep", "--checkpoint", "tiny-random", "--seeds", "7:8", "--image-size", "48x64",
            "--n-execute", "8", "--episode-length-s", "1.0", "--out", str(tmp_path),
        ]
    )  # fmt: skip
    assert rc == 0
    summary = json.loads((tmp_path / "sim_eval.json").read_text())
    assert summary["episodes"] == 1 and summary["outcomes"][0]["seed"] == 7
    assert summary["outcomes"][0]["sim_duration_s"] == pytest.approx(1.0)
    k = summary["successes"]
    assert f"policy (lockstep) on transfer_cube: success {k}/1" in capsys.readouterr().out
