"""A node that cannot start says why in one line and exits non-zero (no raw traceback)."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.ros
@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("module", "args", "reason"),
    [
        ("motus_policy.ros.bag_player_node", ["-p", "bag:=/nonexistent/bag"], "bag"),
        # piper on socketcan with no such interface on this machine
        ("motus_policy.ros.piper_arm_node", ["-p", "can_channel:=motus_no_such_can"], "can"),
        # the AC-One relay without the vendor's message package (arx5_arm_msg)
        (
            "motus_policy.ros.ac_one_relay_node",
            [],
            "arx5_arm_msg/msg/robotstatus is not installed",
        ),
    ],
)
def test_a_node_that_cannot_start_prints_one_line_and_exits_1(ros_env, module, args, reason):
    run = subprocess.run(
        [sys.executable, "-m", module, "--ros-args", *args],
        capture_output=True,
        text=True,
        timeout=90,
    )
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    assert "Traceback" not in out, out
    lines = [line for line in out.splitlines() if "cannot start" in line]
    assert len(lines) == 1 and reason in lines[0].lower(), out
