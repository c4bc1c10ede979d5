"""Two simulated robots on one ROS graph, told apart by namespace only (issue #15 §6).

aloha_sim_node + policy_node are started twice with ``-r __ns:=/robot1`` / ``/robot2`` and the
same profile (config/robots/aloha_sim.yaml, whose topics are relative). Each pair shares its own
clock (``-r /clock:=/robotN/clock``: ROS sim time always reads /clock). robot1's policy moves its
arms (scripted sinusoid); robot2's holds (hold backend): robot1's arms move, robot2's stay, and
every command topic is published only by the policy in its own namespace.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

pytestmark = [pytest.mark.ros, pytest.mark.timeout(240)]

HW = (48, 64)
ROBOTS = {"/robot1": "scripted", "/robot2": "hold"}


class Probe:
    """Joint states and policy status of both namespaces."""

    def __init__(self, ctx):
        from rclpy.node import Node
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import JointState
        from std_msgs.msg import String

        self.node = n = Node("ns_probe", context=ctx)
        self.q: dict[str, list[np.ndarray]] = {}
        self.status: dict[str, dict] = {}
        for ns in ROBOTS:
            for arm in ("left", "right"):
                key = f"{ns}/{arm}"
                self.q[key] = []
                n.create_subscription(
                    JointState,
                    f"{ns}/{arm}_arm/joint_states",
                    lambda m, k=key: self.q[k].append(np.array(m.position)),
                    qos_profile_sensor_data,
                )
            n.create_subscription(
                String,
                f"{ns}/motus_policy/status",
                lambda m, s=ns: self.status.__setitem__(s, json.loads(m.data)),
                10,
            )

    def wait(self, pred, what, timeout_s):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if pred():
                return
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}; status {self.status}")


def _travel(samples: list[np.ndarray]) -> float:
    """Largest joint displacement (rad) over the samples, arm joints only."""
    a = np.stack(samples)[:, :6]
    return float(np.max(a.max(axis=0) - a.min(axis=0)))


def test_two_namespaced_sims_each_move_only_from_their_own_policy(
    spawn_node, ros_context, spin_in_background
):
    procs = []
    for ns, backend in ROBOTS.items():
        remap = ["-r", f"__ns:={ns}", "-r", f"/clock:={ns}/clock"]
        procs.append(
            spawn_node(
                "motus_policy.ros.aloha_sim_node", *remap,
                "-p", "mode:=free_run", "-p", f"image_height:={HW[0]}",
                "-p", f"image_width:={HW[1]}",
                name=f"sim{ns.replace('/', '_')}",
            )
        )  # fmt: skip
        procs.append(
            spawn_node(
                "motus_policy.ros.policy_node", *remap,
                "-p", "use_sim_time:=true", "-p", "autostart:=true",
                "-p", f"backend:={backend}", "-p", "profile:=aloha_sim",
                "-p", f"image_height:={HW[0]}", "-p", f"image_width:={HW[1]}",
                "-p", "ramp_in_s:=0.2", "-p", "status_period_s:=0.2",
                name=f"policy{ns.replace('/', '_')}",
            )
        )  # fmt: skip
    probe = Probe(ros_context)
    spin_in_background(probe.node, ros_context)
    for p in procs:
        p.wait_for("READY", timeout_s=90)
    probe.wait(
        lambda: all(probe.status.get(ns, {}).get("state") == "running" for ns in ROBOTS),
        "both policies running",
        timeout_s=90,
    )
    for samples in probe.q.values():
        samples.clear()
    time.sleep(3.0)
    counts = {k: len(v) for k, v in probe.q.items()}
    assert all(n > 10 for n in counts.values()), f"joint states per namespaced topic: {counts}"
    travel = {k: _travel(v) for k, v in probe.q.items()}
    print(f"arm travel over 3 s [rad]: {travel}")
    assert travel["/robot1/left"] > 0.05 and travel["/robot1/right"] > 0.05, travel
    assert travel["/robot2/left"] < 0.02 and travel["/robot2/right"] < 0.02, travel

    # every command topic is published by its own namespace's policy, nothing at the root
    graph = probe.node
    for ns in ROBOTS:
        for arm in ("left", "right"):
            pubs = graph.get_publishers_info_by_topic(f"{ns}/{arm}_arm/joint_command")
            assert [(p.node_name, p.node_namespace) for p in pubs] == [("motus_policy", ns)]
    assert not graph.get_publishers_info_by_topic("/left_arm/joint_command")
    assert not graph.get_publishers_info_by_topic("/left_arm/joint_states")
