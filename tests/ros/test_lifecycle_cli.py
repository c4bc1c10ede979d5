"""motus-lifecycle drives the policy node's lifecycle from another process."""

import os
import subprocess
import sys

import pytest


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "motus_policy.cli.ros.lifecycle", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ),
    )


@pytest.mark.ros
@pytest.mark.timeout(120)
def test_configure_activate_get(spawn_node):
    node = spawn_node(
        "motus_policy.ros.policy_node", "-p", "backend:=scripted", "-p", "profile:=aloha_sim"
    )
    node.wait_for("READY", 60)
    assert _cli("get").stdout.strip() == "unconfigured"
    res = _cli("configure")
    assert res.returncode == 0, res.stdout + res.stderr
    res = _cli("activate")
    assert res.returncode == 0 and "activate: ok" in res.stdout
    assert _cli("get").stdout.strip() == "active"
    assert _cli("deactivate").returncode == 0
    assert _cli("get").stdout.strip() == "inactive"
