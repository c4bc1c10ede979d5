"""piper_arm_node as a subprocess (fake arm in-process on the virtual bus), checked over DDS."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from motus_recorder.profile import load_profile

PROFILE = load_profile("aloha_agilex_2")
ARM = PROFILE.arm("left")
NAMES = [*ARM.joint_names, ARM.gripper.joint_name]


class Collector:
    """Keeps received JointStates with their receive times."""

    def __init__(self):
        self.lock = threading.Lock()
        self.msgs: list[tuple[float, np.ndarray]] = []

    def __call__(self, msg):
        with self.lock:
            self.msgs.append((time.monotonic(), np.array(msg.position)))

    def since(self, t0: float) -> list[tuple[float, np.ndarray]]:
        with self.lock:
            return [m for m in self.msgs if m[0] >= t0]


def call(node, srv_type, name, request, timeout_s=10.0):
    client = node.create_client(srv_type, name)
    assert client.wait_for_service(timeout_sec=timeout_s), f"no service {name}"
    future = client.call_async(request)
    deadline = time.monotonic() + timeout_s
    while not future.done() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert future.done(), f"{name} did not answer"
    return future.result()


@pytest.mark.ros
@pytest.mark.timeout(90)
def test_piper_arm_node_feedback_rate_command_and_services(
    spawn_node, ros_context, spin_in_background
):
    from rclpy.node import Node
    from sensor_msgs.msg import JointState
    from std_srvs.srv import SetBool, Trigger

    from motus_recorder.ros.conversions import joint_state_to_msg

    proc = spawn_node(
        "motus_policy.ros.piper_arm_node",
        "-p", "arm:=left", "-p", "fake_arm:=true", "-p", "can_interface:=virtual",
        "-p", "can_channel:=vpiper_node_test", "-r", "__node:=piper_left",
    )  # fmt: skip
    proc.wait_for("READY", 60)
    node = Node("piper_test", context=ros_context)
    feedback = Collector()
    node.create_subscription(JointState, ARM.state_topic, feedback, 50)
    pub = node.create_publisher(JointState, ARM.command_topic, 10)
    spin_in_background(node, ros_context)

    # Feedback rate over 2 s (nominal 200 Hz from the profile).
    deadline = time.monotonic() + 20
    while not feedback.since(0) and time.monotonic() < deadline:
        time.sleep(0.05)
    t0 = time.monotonic()
    time.sleep(2.0)
    rate = len(feedback.since(t0)) / (time.monotonic() - t0)
    print(f"piper_arm_node feedback rate: {rate:.1f} Hz")
    assert rate >= 100.0

    res = call(node, SetBool, "/piper_left/enable", SetBool.Request(data=True))
    assert res.success, res.message

    target = np.array([0.4, 0.6, -0.5, 0.1, 0.2, -0.3, 0.03])
    start = feedback.since(0)[-1][1]
    err0 = np.max(np.abs(start - target))
    for _ in range(5):  # a few sends in case discovery of the subscriber is late
        pub.publish(joint_state_to_msg(NAMES, target, node.get_clock().now().nanoseconds))
        time.sleep(0.1)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        err = np.max(np.abs(feedback.since(0)[-1][1] - target))
        if err < 2e-3:
            break
        time.sleep(0.05)
    assert err < 2e-3 < err0, (err0, err)

    # JointTrajectory: interpolated from the current position; ends at the last point.
    from builtin_interfaces.msg import Duration
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

    traj_pub = node.create_publisher(JointTrajectory, ARM.trajectory_topic, 10)
    goal = np.array([-0.2, 0.3, -0.2, 0.0, 0.1, 0.2, 0.06])
    traj = JointTrajectory(joint_names=NAMES)
    for t_s, q in ((0.2, (target + goal) / 2), (0.4, goal)):
        point = JointTrajectoryPoint(positions=[float(v) for v in q])
        point.time_from_start = Duration(sec=0, nanosec=int(t_s * 1e9))
        traj.points.append(point)
    time.sleep(0.3)  # let the trajectory publisher be discovered
    traj_pub.publish(traj)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        err = np.max(np.abs(feedback.since(0)[-1][1] - goal))
        if err < 2e-3:
            break
        time.sleep(0.05)
    assert err < 2e-3, err

    res = call(node, Trigger, "/piper_left/estop", Trigger.Request())
    assert res.success
    res = call(node, Trigger, "/piper_left/resume", Trigger.Request())
    assert res.success
    node.destroy_node()
    assert "Traceback" not in proc.output()


@pytest.mark.ros
@pytest.mark.timeout(90)
def test_leader_mode_publishes_leader_commands(spawn_node, ros_context, spin_in_background):
    from rclpy.node import Node
    from sensor_msgs.msg import JointState

    proc = spawn_node(
        "motus_policy.ros.piper_arm_node",
        "-p", "leader:=true", "-p", "fake_arm:=true", "-p", "can_interface:=virtual",
        "-p", "can_channel:=vpiper_leader_node",
    )  # fmt: skip
    proc.wait_for("READY", 60)
    node = Node("piper_leader_test", context=ros_context)
    leader = Collector()
    node.create_subscription(JointState, ARM.driver["leader_topic"], leader, 50)
    spin_in_background(node, ros_context)
    deadline = time.monotonic() + 20
    while len(leader.since(0)) < 50 and time.monotonic() < deadline:
        time.sleep(0.05)
    q = np.stack([m[1] for m in leader.since(0)])
    # The fake leader's script (fake_piper.default_leader_script): joint 2 at 30 deg,
    # joint 3 at -30 deg, joint 1 a +-20 deg sinusoid, gripper 0..0.05 m.
    np.testing.assert_allclose(q[:, 1], np.radians(30.0), atol=1e-6)
    np.testing.assert_allclose(q[:, 2], np.radians(-30.0), atol=1e-6)
    assert np.all(np.abs(q[:, 0]) <= np.radians(20.0) + 1e-6) and np.ptp(q[:, 0]) > 0
    assert np.all((q[:, 6] >= 0) & (q[:, 6] <= 0.05 + 1e-9))
    node.destroy_node()
