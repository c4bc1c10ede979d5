"""policy_node over real DDS against a fake robot in the test process (docs/platform.md §10)."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest

pytestmark = [pytest.mark.ros, pytest.mark.timeout(120)]

HW = (8, 10)
NODE = "motus_policy"


class FakeRobot:
    """Publishes 3 small camera streams + per-arm joint states; records what the node sends."""

    def __init__(self, ctx, profile):
        from lifecycle_msgs.srv import ChangeState
        from rcl_interfaces.srv import SetParameters
        from rclpy.node import Node
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import Image, JointState
        from std_msgs.msg import String
        from std_srvs.srv import Trigger

        self.profile = profile
        self.node = Node("fake_robot", context=ctx)
        n = self.node
        self.cam_pubs = {
            c.name: n.create_publisher(Image, c.topic, qos_profile_sensor_data)
            for c in profile.cameras
        }
        self.arm_pubs = [n.create_publisher(JointState, a.state_topic, 10) for a in profile.arms]
        self.instr_pub = n.create_publisher(String, f"/{NODE}/instruction", 10)
        self.q = np.full(14, 0.1)
        self.frozen: set[str] = set()
        self.wrong_size: set[str] = set()
        self.commands: list[tuple[float, np.ndarray]] = []
        self.status: dict | None = None
        self.frames: list = []
        n.create_subscription(JointState, profile.arms[0].command_topic, self._on_cmd, 50)
        n.create_subscription(String, f"/{NODE}/status", self._on_status, 10)
        n.create_subscription(Image, f"/{NODE}/imagined_frames", self.frames.append, 50)
        self.change_state = n.create_client(ChangeState, f"/{NODE}/change_state")
        self.set_params = n.create_client(SetParameters, f"/{NODE}/set_parameters")
        self.estop = n.create_client(Trigger, f"/{NODE}/estop")
        n.create_timer(0.02, self._publish)

    def _publish(self):
        from motus_recorder.ros.conversions import image_to_msg, joint_state_to_msg

        now = self.node.get_clock().now().nanoseconds
        for name, pub in self.cam_pubs.items():
            if name not in self.frozen:
                hw = (HW[0] + 2, HW[1]) if name in self.wrong_size else HW
                pub.publish(image_to_msg(np.zeros((*hw, 3), np.uint8), now))
        for pub, arm, sl in zip(
            self.arm_pubs, self.profile.arms, (slice(0, 7), slice(7, 14)), strict=True
        ):
            names = [*arm.joint_names, arm.gripper.joint_name]
            pub.publish(joint_state_to_msg(names, self.q[sl], now))

    def _on_cmd(self, msg):
        self.commands.append((time.monotonic(), np.array(msg.position)))

    def _on_status(self, msg):
        self.status = json.loads(msg.data)

    def call(self, client, request, timeout_s=20.0):
        assert client.wait_for_service(timeout_sec=timeout_s), client.srv_name
        fut = client.call_async(request)
        deadline = time.monotonic() + timeout_s
        while not fut.done() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert fut.done(), f"{client.srv_name} timed out"
        return fut.result()

    def transition(self, transition_id):
        from lifecycle_msgs.srv import ChangeState

        req = ChangeState.Request()
        req.transition.id = transition_id
        return self.call(self.change_state, req).success

    def set_param(self, name, value):
        from rcl_interfaces.srv import SetParameters
        from rclpy.parameter import Parameter

        req = SetParameters.Request(parameters=[Parameter(name, value=value).to_parameter_msg()])
        return self.call(self.set_params, req).results[0]

    def wait_status(self, pred, what, timeout_s=15.0):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.status is not None and pred(self.status):
                return self.status
            time.sleep(0.02)
        raise AssertionError(f"no status with {what}; last: {self.status}")


def test_alias_parameters_map_onto_their_field():
    from rclpy.parameter import Parameter

    from motus_policy.ros.params import map_aliases

    alias_of = {"n_execute": "n_action_steps"}
    out = map_aliases([Parameter("n_execute", value=4)], alias_of)
    assert [(p.name, p.value) for p in out] == [("n_execute", 4), ("n_action_steps", 4)]
    both = [Parameter("n_execute", value=4), Parameter("n_action_steps", value=5)]
    assert map_aliases(both, alias_of) == both  # the field given too keeps its own value
    unset = [Parameter("n_execute", value="")]
    assert map_aliases(unset, alias_of) == unset


def test_policy_node_end_to_end(spawn_node, ros_context, spin_in_background):
    from lifecycle_msgs.msg import Transition
    from std_msgs.msg import String
    from std_srvs.srv import Trigger

    from motus_recorder.profile import load_profile

    profile = load_profile("aloha_sim")
    node = spawn_node(
        "motus_policy.ros.policy_node",
        "-p", f"image_height:={HW[0]}", "-p", f"image_width:={HW[1]}",
        "-p", "strategy:=rtc", "-p", "n_action_steps:=4", "-p", "ramp_in_s:=0.2",
        "-p", "scripted.latency_s:=0.05", "-p", "status_period_s:=0.2",
    )  # fmt: skip
    node.wait_for("READY")
    robot = FakeRobot(ros_context, profile)
    spin_in_background(robot.node, ros_context)
    time.sleep(0.5)  # a few joint states before activation

    assert robot.transition(Transition.TRANSITION_CONFIGURE), node.output()
    assert robot.transition(Transition.TRANSITION_ACTIVATE), node.output()
    robot.wait_status(lambda s: s["state"] == "running", "state running")
    n0 = len(robot.commands)
    time.sleep(1.0)
    rate = len(robot.commands) - n0
    assert rate > 25, f"{rate} commands in 1 s at 50 Hz"
    st = robot.wait_status(lambda s: (s["scheduler"]["d"] or 0) >= 1, "d >= 1")
    assert st["last_inference"]["mode"] == "joint"
    assert (st["scheduler"]["strategy"], st["scheduler"]["n_action_steps"]) == ("rtc", 4)
    assert robot.frames, "no imagined frames in joint mode"
    assert robot.frames[-1].height == 48 and robot.frames[-1].header.frame_id == "imagined"

    # run-time switches: mode by parameter, instruction by topic
    assert robot.set_param("mode", "vla").successful
    assert not robot.set_param("mode", "dance").successful
    # the alias n_execute sets n_action_steps at run time (one atomic change); prefix = rtc
    assert robot.set_param("n_execute", 6).successful
    assert robot.set_param("strategy", "prefix").successful
    robot.wait_status(lambda s: s["scheduler"]["n_action_steps"] == 6, "n_action_steps 6")
    assert robot.status["scheduler"]["strategy"] == "rtc"
    assert not robot.set_param("n_execute", 99).successful  # > chunk size 16, as the field
    robot.instr_pub.publish(String(data="transfer the cube"))
    robot.wait_status(
        lambda s: s["last_inference"]
        == {"mode": "vla", "num_steps": 10, "instruction": "transfer the cube"},
        "vla + instruction in the last inference",
    )

    # NaN joint state -> hold, status names the stream and joint
    robot.q[8] = np.nan
    robot.wait_status(
        lambda s: "right: non-finite position right_shoulder" in str(s["reason"]), "NaN reason"
    )
    time.sleep(0.2)
    held = [c for _, c in robot.commands[-5:]]
    assert all(np.array_equal(held[0], c) for c in held)
    robot.q[8] = 0.1
    robot.wait_status(lambda s: s["state"] == "running", "recovery after NaN")

    robot.frozen.add("cam_high")
    robot.wait_status(lambda s: str(s["reason"]).startswith("cam_high: stale"), "stale camera")
    robot.frozen.clear()
    robot.wait_status(lambda s: s["state"] == "running", "recovery after freeze")

    robot.wrong_size.add("cam_right_wrist")
    robot.wait_status(lambda s: "cam_right_wrist: wrong size" in str(s["reason"]), "wrong size")
    robot.wrong_size.clear()
    robot.wait_status(lambda s: s["state"] == "running", "recovery after wrong size")

    assert robot.set_param("scripted.fault", "out_of_limit").successful
    robot.wait_status(lambda s: "out of limits: left_shoulder" in str(s["reason"]), "limit reason")
    time.sleep(0.3)
    lim_lo, lim_hi = profile.position_min[:7], profile.position_max[:7]
    for _, c in robot.commands:  # nothing unsafe ever reached the command topic
        assert np.all(np.isfinite(c)) and np.all(c >= lim_lo) and np.all(c <= lim_hi)

    assert robot.call(robot.estop, Trigger.Request()).success
    robot.wait_status(lambda s: s["state"] == "estop", "e-stop")
    assert robot.transition(Transition.TRANSITION_DEACTIVATE)


def test_trajectory_output_and_lifecycle_cleanup(spawn_node, ros_context, spin_in_background):
    from lifecycle_msgs.msg import Transition
    from trajectory_msgs.msg import JointTrajectory

    from motus_recorder.profile import load_profile
    from motus_recorder.ros.conversions import time_to_ns

    profile = load_profile("aloha_sim")
    node = spawn_node(
        "motus_policy.ros.policy_node",
        "-p", f"image_height:={HW[0]}", "-p", f"image_width:={HW[1]}",
        "-p", "output_interface:=joint_trajectory", "-p", "strategy:=sync",
        "-p", "n_action_steps:=0", "-p", "scripted.recommended_n_action_steps:=8",
        "-p", "mode:=vla",
    )  # fmt: skip
    node.wait_for("READY")
    robot = FakeRobot(ros_context, profile)
    trajs: list[JointTrajectory] = []
    robot.node.create_subscription(
        JointTrajectory, profile.arms[1].trajectory_topic, trajs.append, 10
    )
    spin_in_background(robot.node, ros_context)
    time.sleep(0.5)
    assert robot.transition(Transition.TRANSITION_CONFIGURE), node.output()
    assert robot.transition(Transition.TRANSITION_ACTIVATE), node.output()
    st = robot.wait_status(lambda s: s["chunks"] >= 3, "three chunks")
    assert st["scheduler"]["n_action_steps"] == 8  # 0 = the backend's recommendation
    plans = [t for t in trajs if len(t.points) > 1]
    assert plans, f"no multi-point trajectory among {len(trajs)}"
    t = plans[-1]
    assert list(t.joint_names) == [*profile.arms[1].joint_names, "right_gripper"]
    first = t.points[0].time_from_start
    assert first.sec == 0 and first.nanosec == 0  # header.stamp is the first point's time
    assert time_to_ns(t.header.stamp) > 0
    pts = np.array([p.positions for p in t.points])
    assert np.all(pts >= profile.position_min[7:]) and np.all(pts <= profile.position_max[7:])
    assert robot.transition(Transition.TRANSITION_DEACTIVATE)
    robot.wait_status(lambda s: s["state"] == "inactive", "inactive")
    assert robot.transition(Transition.TRANSITION_CLEANUP)
    assert robot.transition(Transition.TRANSITION_CONFIGURE), node.output()  # re-configurable


def test_policy_node_with_backend_process(spawn_node, ros_context, spin_in_background):
    """backend_process:=true: the scripted backend runs in a child process of the node; with the
    control tick on its own thread (control_loop:=thread), the command stream, the live
    scripted.* knobs, the timing figures and cleanup all work."""
    from lifecycle_msgs.msg import Transition

    from motus_recorder.profile import load_profile

    profile = load_profile("aloha_sim")
    node = spawn_node(
        "motus_policy.ros.policy_node",
        "-p", f"image_height:={HW[0]}", "-p", f"image_width:={HW[1]}",
        "-p", "backend_process:=true", "-p", "strategy:=prefix", "-p", "n_execute:=4",  # aliases
        "-p", "mode:=vla", "-p", "ramp_in_s:=0.2", "-p", "scripted.latency_s:=0.05",
        "-p", "status_period_s:=0.2", "-p", "control_loop:=thread",
    )  # fmt: skip
    node.wait_for("READY")
    robot = FakeRobot(ros_context, profile)
    spin_in_background(robot.node, ros_context)
    time.sleep(0.5)
    assert robot.transition(Transition.TRANSITION_CONFIGURE), node.output()
    log = node.output()
    assert "backend process pid" in log
    assert "load: scripted backend: ready" in log  # the child's progress lines, forwarded
    child = int(log.split("backend process pid ")[1].split()[0])
    assert robot.transition(Transition.TRANSITION_ACTIVATE), node.output()
    st = robot.wait_status(lambda s: s["state"] == "running" and s["chunks"] >= 3, "running")
    assert (st["scheduler"]["strategy"], st["scheduler"]["n_action_steps"]) == ("rtc", 4)
    assert st["timing"]["backend_process"] is True
    assert st["timing"]["control_loop"] == "thread"
    n0 = len(robot.commands)
    time.sleep(0.5)
    assert len(robot.commands) > n0 + 10, "no command stream"
    robot.wait_status(lambda s: s["timing"]["obs_to_action_ms_median"] is not None, "latency")

    assert robot.set_param("scripted.fault", "out_of_limit").successful  # reaches the child
    robot.wait_status(lambda s: "out of limits: left_shoulder" in str(s["reason"]), "limit reason")
    assert robot.transition(Transition.TRANSITION_DEACTIVATE)
    assert robot.transition(Transition.TRANSITION_CLEANUP)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        raise AssertionError(f"backend process {child} still running after cleanup")
