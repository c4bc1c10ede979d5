"""Ctrl-C of a launch (SIGINT to the process group) while the policy node's backend child is
busy: the node and its child exit quietly, no traceback (issue #15 §7: the child printed a
BrokenPipeError traceback when its parent had gone while it answered). Real policy_node with
``backend_process:=true`` against the fake robot of tests/ros/test_policy_node.py over DDS."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.ros.test_policy_node import HW, FakeRobot


@pytest.mark.ros
@pytest.mark.timeout(240)
def test_sigint_of_the_group_while_inferring_leaves_no_traceback(
    spawn_node, ros_context, spin_in_background
):
    from lifecycle_msgs.msg import Transition

    from motus_recorder.profile import load_profile

    profile = load_profile("aloha_sim")
    robot = FakeRobot(ros_context, profile)
    spin_in_background(robot.node, ros_context)
    for attempt in range(3):  # SIGINT at a different point of the child's request cycle
        node = spawn_node(
            "motus_policy.ros.policy_node",
            "-p", f"image_height:={HW[0]}", "-p", f"image_width:={HW[1]}",
            "-p", "backend_process:=true", "-p", "mode:=joint", "-p", "strategy:=rtc",
            "-p", "scripted.latency_s:=0.01", "-p", "status_period_s:=0.2",
        )  # fmt: skip
        node.wait_for("READY")
        assert robot.transition(Transition.TRANSITION_CONFIGURE), node.output()
        assert robot.transition(Transition.TRANSITION_ACTIVATE), node.output()
        robot.wait_status(lambda s: s["state"] == "running" and s["chunks"] >= 3, "running")
        child = int(node.output().split("backend process pid ")[1].split()[0])
        time.sleep(0.013 * attempt)
        os.killpg(node.proc.pid, signal.SIGINT)
        rc = node.proc.wait(20)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(child, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            raise AssertionError(f"backend process {child} still running")
        log = node.output()
        assert rc == 0, log[-4000:]
        assert "Traceback" not in log and "BrokenPipe" not in log, log[-4000:]
        robot.status = None
