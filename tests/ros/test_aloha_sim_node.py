"""aloha_sim_node over real DDS: cameras at rate without drops, commands, trajectories, reset."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from motus_recorder.profile import load_profile

PROFILE = load_profile("aloha_sim")
NODE = "motus_policy.ros.aloha_sim_node"
CAMERA_WINDOW_S = 10.0


def _wait(pred, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not pred():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.02)


class Probe:
    """Test-side node: records camera stamps, joint states, clock, episodes; sends commands."""

    def __init__(self, ctx, spin_in_background):
        from geometry_msgs.msg import PoseArray
        from rclpy.node import Node
        from rclpy.qos import (
            DurabilityPolicy,
            QoSProfile,
            ReliabilityPolicy,
            qos_profile_sensor_data,
        )
        from rosgraph_msgs.msg import Clock
        from sensor_msgs.msg import Image, JointState
        from std_msgs.msg import String
        from trajectory_msgs.msg import JointTrajectory

        from motus_recorder.ros.conversions import msg_to_positions, time_to_ns

        self.node = n = Node("probe", context=ctx)
        latched = QoSProfile(
            depth=1,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
        )
        self.frames: dict[str, list[tuple[int, float]]] = {c.name: [] for c in PROFILE.cameras}
        self.states: dict[str, tuple[int, np.ndarray]] = {}
        self.clock_ns = 0
        self.episodes: list[dict] = []
        self.poses = None
        for cam in PROFILE.cameras:
            n.create_subscription(
                Image,
                cam.topic,
                lambda m, c=cam.name: self.frames[c].append(
                    (time_to_ns(m.header.stamp), time.monotonic())
                ),
                qos_profile_sensor_data,
            )
        self.cmd, self.traj = {}, {}
        for arm in PROFILE.arms:
            names = [*arm.joint_names, arm.gripper.joint_name]
            n.create_subscription(
                JointState,
                arm.state_topic,
                lambda m, a=arm.name, nm=names: self.states.__setitem__(
                    a, (time_to_ns(m.header.stamp), msg_to_positions(m, nm))
                ),
                10,
            )
            self.cmd[arm.name] = n.create_publisher(JointState, arm.command_topic, 10)
            self.traj[arm.name] = n.create_publisher(JointTrajectory, arm.trajectory_topic, 10)
        n.create_subscription(
            Clock,
            PROFILE.clock_topic,
            lambda m: setattr(self, "clock_ns", time_to_ns(m.clock)),
            10,
        )
        ex = PROFILE.extras
        n.create_subscription(
            String,
            ex["episode_topic"],
            lambda m: self.episodes.append(json.loads(m.data)),
            latched,
        )
        n.create_subscription(PoseArray, ex["object_pose_topic"], self._on_poses, latched)
        spin_in_background(n, ctx)

    def _on_poses(self, msg) -> None:
        self.poses = np.array([[p.position.x, p.position.y, p.position.z] for p in msg.poses])

    def arm_names(self, arm: str) -> list[str]:
        a = PROFILE.arm(arm)
        return [*a.joint_names, a.gripper.joint_name]

    def command(self, arm: str, q7, stamp_ns: int = 0) -> None:
        from motus_recorder.ros.conversions import joint_state_to_msg

        self.cmd[arm].publish(joint_state_to_msg(self.arm_names(arm), np.asarray(q7), stamp_ns))

    def trajectory(self, arm: str, points: list[tuple[float, np.ndarray]]) -> None:
        from builtin_interfaces.msg import Duration
        from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

        msg = JointTrajectory(joint_names=self.arm_names(arm))  # stamp 0 = start now
        for t_s, q in points:
            ns = round(t_s * 1e9)
            d = Duration(sec=ns // 10**9, nanosec=ns % 10**9)
            msg.points.append(
                JointTrajectoryPoint(positions=[float(x) for x in q], time_from_start=d)
            )
        self.traj[arm].publish(msg)

    def call(self, srv_type, name: str, request, timeout_s: float = 10.0):
        client = self.node.create_client(srv_type, name)
        assert client.wait_for_service(timeout_sec=timeout_s), f"no service {name}"
        future = client.call_async(request)
        _wait(future.done, timeout_s, f"response from {name}")
        return future.result()

    def set_seed(self, seed: int):
        from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
        from rcl_interfaces.srv import SetParameters

        value = ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=seed)
        req = SetParameters.Request(parameters=[Parameter(name="seed", value=value)])
        return self.call(SetParameters, "/aloha_sim/set_parameters", req).results[0]

    def reset(self, seed: int) -> dict:
        from std_srvs.srv import Trigger

        assert self.set_seed(seed).successful
        n_ep = len(self.episodes)
        res = self.call(Trigger, PROFILE.extras["reset_service"], Trigger.Request())
        assert res.success, res.message
        _wait(lambda: len(self.episodes) > n_ep, 5, "episode announcement")
        info = json.loads(res.message)
        start = self.episodes[-1]["start_ns"]
        _wait(
            lambda: all(self.states.get(a, (0,))[0] == start for a in ("left", "right")),
            5,
            "joint states at the reset",
        )
        return info


@pytest.mark.ros
@pytest.mark.timeout(90)
def test_free_run_cameras_commands_and_trajectory(spawn_node, ros_context, spin_in_background):
    proc = spawn_node(NODE, "-p", "mode:=free_run")
    proc.wait_for("READY", timeout_s=40)
    probe = Probe(ros_context, spin_in_background)
    _wait(lambda: all(probe.frames.values()) and len(probe.states) == 2, 15, "first frames")
    start_q = {a: probe.states[a][1].copy() for a in ("left", "right")}
    for f in probe.frames.values():
        f.clear()
    t0 = time.monotonic()
    # during the camera window: a valid left command, a NaN right command, a right trajectory
    left_target = start_q["left"].copy()
    left_target[0] += 0.4  # left_waist
    time.sleep(1.0)
    probe.command("left", left_target)
    bad = start_q["right"].copy()
    bad[2] = float("nan")  # right_elbow
    time.sleep(0.5)
    probe.command("right", bad)
    right_goal = start_q["right"].copy()
    right_goal[0] -= 0.4  # right_waist
    time.sleep(0.5)
    probe.trajectory(
        "right", [(0.5, start_q["right"] * 0.5 + right_goal * 0.5), (1.0, right_goal)]
    )
    time.sleep(max(0.0, CAMERA_WINDOW_S - (time.monotonic() - t0)))
    period_ns = round(1e9 / PROFILE.cameras[0].rate_hz)
    for cam, frames in probe.frames.items():
        stamps = np.array([s for s, _ in frames], dtype=np.int64)
        gaps = np.diff(stamps)
        drops = int(np.sum(np.round(gaps / period_ns) - 1))
        wall = frames[-1][1] - frames[0][1]
        sim = (stamps[-1] - stamps[0]) / 1e9
        print(
            f"{cam}: {len(frames)} frames in {wall:.2f} s wall ({(len(frames) - 1) / wall:.1f} Hz "
            f"wall, {(len(frames) - 1) / sim:.1f} Hz sim, RTF {sim / wall:.2f}), drops {drops}"
        )
        assert (gaps > 0).all(), f"{cam}: stamps not increasing"
        assert drops == 0, f"{cam}: {drops} frames missing in sim-time stamps"
        assert len(frames) > 50, f"{cam}: only {len(frames)} frames in {CAMERA_WINDOW_S} s"
    q_left, q_right = probe.states["left"][1], probe.states["right"][1]
    assert abs(q_left[0] - left_target[0]) < 0.05, q_left
    assert abs(q_right[0] - right_goal[0]) < 0.05, q_right  # trajectory reached its goal
    assert np.isfinite(q_right).all()
    _wait(lambda: "right_elbow is nan" in proc.output(), 5, "the NaN rejection in the log")
    assert "rejected right JointState command" in proc.output()


@pytest.mark.ros
@pytest.mark.timeout(60)
def test_lockstep_reset_with_seed_and_step(spawn_node, ros_context, spin_in_background):
    from std_srvs.srv import Trigger

    proc = spawn_node(NODE, "-p", "mode:=lockstep", "-p", "publish_images:=false")
    proc.wait_for("READY", timeout_s=40)
    probe = Probe(ros_context, spin_in_background)
    first = probe.reset(7)
    q_first = {a: probe.states[a][1].copy() for a in ("left", "right")}
    assert first["seed"] == 7
    t_start = probe.episodes[-1]["start_ns"]
    # lockstep: one arm's command does not step; both arms' commands step exactly once
    probe.command("left", q_first["left"], t_start)
    time.sleep(0.5)
    assert probe.clock_ns == t_start
    moved = q_first["right"].copy()
    moved[1] += 0.3
    probe.command("right", moved, t_start)
    _wait(lambda: probe.clock_ns == t_start + 20_000_000, 5, "one lockstep step")
    time.sleep(0.3)
    assert probe.clock_ns == t_start + 20_000_000
    res = probe.call(Trigger, PROFILE.extras["step_service"], Trigger.Request())
    assert res.success and json.loads(res.message)["sim_time_ns"] == t_start + 40_000_000
    # a command answering the previous episode is rejected after a reset
    second = probe.reset(7)
    probe.command("left", q_first["left"], t_start)
    _wait(lambda: "before the current episode's start" in proc.output(), 5, "stale rejection")
    # same seed, same initial state; another seed, another object pose
    assert second["object_poses"] == first["object_poses"]
    for a in ("left", "right"):
        np.testing.assert_array_equal(probe.states[a][1], q_first[a])
    third = probe.reset(8)
    assert third["object_poses"] != first["object_poses"]
    _wait(lambda: probe.poses is not None, 5, "object poses")
    np.testing.assert_allclose(probe.poses, np.array(third["object_poses"])[:, :3], atol=1e-6)
    # startup-only parameters are refused with a reason
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters

    value = ParameterValue(type=ParameterType.PARAMETER_STRING, string_value="insertion")
    req = SetParameters.Request(parameters=[Parameter(name="task", value=value)])
    result = probe.call(SetParameters, "/aloha_sim/set_parameters", req).results[0]
    assert not result.successful and "startup" in result.reason
