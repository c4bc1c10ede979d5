"""The bring-up description is the single source for launch files and the process runner."""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from motus_policy.bringup import BringupError, load_bringup
from motus_policy.bringup.runner import BringupRunner

REPO = Path(__file__).resolve().parents[2]


def _launch_calls():
    """(launch file, description name) for every launch file."""
    for path in sorted((REPO / "launch").glob("*.launch.py")):
        tree = ast.parse(path.read_text())
        names = [
            n.args[0].value
            for n in ast.walk(tree)
            if isinstance(n, ast.Call)
            and getattr(n.func, "id", "") == "generate_description_launch"
            and n.args
            and isinstance(n.args[0], ast.Constant)
        ]
        yield path.name, names


def test_every_launch_file_reads_a_description():
    files = list(_launch_calls())
    assert files, "no launch files found"
    for fname, names in files:
        assert len(names) == 1, f"{fname} must build its nodes from exactly one description"
        desc = load_bringup(names[0])
        assert desc.nodes, f"{fname}: description {names[0]} has no nodes"


def test_sim_description_resolves_arguments_into_node_parameters():
    desc = load_bringup("sim_expert")
    nodes = {n.name: n for n in desc.resolve({"task": "insertion"})}
    assert nodes["aloha_sim"].parameters["task"] == "insertion"
    assert nodes["expert"].parameters["task"] == "insertion"
    assert nodes["aloha_sim"].parameters["mode"] == "lockstep"  # the default
    args = nodes["aloha_sim"].ros_args()
    assert args[:3] == ["--ros-args", "-r", "__node:=aloha_sim"]
    assert "task:=insertion" in args
    assert any(a.endswith("config/nodes/aloha_sim.yaml") for a in args)


def test_runner_command_is_python_dash_m_module():
    desc = load_bringup("sim_expert")
    runner = BringupRunner(desc.resolve())
    cmd = runner.command(desc.resolve()[0])
    assert cmd[1:3] == ["-m", "motus_policy.ros.aloha_sim_node"]


def test_unknown_argument_is_rejected():
    with pytest.raises(BringupError, match=r"unknown argument\(s\) \['tsak'\]"):
        load_bringup("sim_expert").resolve({"tsak": "insertion"})


def test_malformed_description_names_the_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("nodes:\n  - name: a\n    module: m\n")
    with pytest.raises(BringupError, match=r"bad.nodes\[0\].executable: missing"):
        load_bringup(bad, base_dir=REPO)


def test_whole_argument_values_keep_their_yaml_type():
    nodes = {n.name: n for n in load_bringup("sim").resolve({"real_time_factor": "0.5"})}
    sim, policy = nodes["aloha_sim"].parameters, nodes["motus_policy"].parameters
    assert sim["real_time_factor"] == 0.5 and isinstance(sim["real_time_factor"], float)
    assert sim["image_height"] == 0 and isinstance(sim["image_height"], int)
    assert policy["autostart"] is True and policy["instruction"] == ""
    assert "instruction:=''" in nodes["motus_policy"].ros_args()


def test_sim_bringup_passes_n_action_steps_and_its_alias():
    policy = {n.name: n for n in load_bringup("sim").resolve()}["motus_policy"].parameters
    assert (policy["n_action_steps"], policy["n_execute"]) == (0, "")  # the checkpoint's; unset
    policy = {n.name: n for n in load_bringup("sim").resolve({"n_execute": "8"})}
    assert policy["motus_policy"].parameters["n_execute"] == 8  # the node maps it


def test_sigterm_to_the_parent_stops_the_nodes_it_started(tmp_path):
    """``timeout``/CI send SIGTERM: the runner's nodes (own sessions) must not outlive it."""
    pid_file = tmp_path / "node.pid"
    parent = subprocess.Popen(
        [sys.executable, "-c", SIGTERM_PARENT],
        cwd=REPO, env={**os.environ, "SLEEPER_PID_FILE": str(pid_file), "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        lines = iter(parent.stdout.readline, "")
        assert "UP" in [next(lines).strip() for _ in range(2)]  # and the node's echoed READY
        node_pid = int(pid_file.read_text())
        os.kill(node_pid, 0)  # running
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(30) == 143
        with pytest.raises(ProcessLookupError):
            os.kill(node_pid, 0)
    finally:
        if parent.poll() is None:
            parent.kill()


SIGTERM_PARENT = """
import time
from motus_policy.bringup.description import NodeSpec
from motus_policy.bringup.runner import BringupRunner
with BringupRunner([NodeSpec("sleeper", "sleeper", "tests.fakes.sleeper")]) as runner:
    runner.wait_ready(30)
    print("UP", flush=True)
    time.sleep(60)
"""
