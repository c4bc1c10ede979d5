"""One command records sim episodes through the ROS graph: expert (leader) -> teleop -> sim,
recorder subscribed; the dataset validates and its qpos starts at the robot's initial pose."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch


@pytest.mark.ros
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_record_two_episodes_through_expert_teleop_sim(ros_env, tmp_path):
    from gym_aloha.constants import START_ARM_POSE

    root = tmp_path / "data"
    cmd = [
        sys.executable, "-m", "motus_teleop.record_demos", "--task", "transfer_cube",
        "--episodes", "2", "--root", str(root), "--image-size", "96x128",
        "--log-dir", str(tmp_path / "logs"),
    ]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=280)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "following" in (tmp_path / "logs" / "teleop.log").read_text()  # teleop in the chain
    val = subprocess.run(
        [sys.executable, "-m", "motus_recorder.cli", "validate", str(root)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert val.returncode == 0 and "OK: 2 episode(s)" in val.stdout, val.stdout + val.stderr
    variant = root / "transfer_cube" / "expert"
    for i in range(2):
        q = torch.load(variant / "qpos" / f"{i}.pt").numpy()
        meta = json.loads((variant / "meta" / f"{i}.json").read_text())
        assert q.shape[1] == 14 and len(meta["t_ns"]) == q.shape[0] > 100
        # first frame = the episode's initial pose (gym-aloha START_ARM_POSE, arm joints)
        np.testing.assert_allclose(q[0, :6], START_ARM_POSE[:6], atol=2e-3)
        assert np.all(np.diff(meta["t_ns"]) > 0)
