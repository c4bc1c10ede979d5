"""ROS 2 node for one AgileX Piper arm (follower, or leader in teaching mode).

Follower mode: subscribes the arm's ``command_topic`` (sensor_msgs/JointState, 6 joints + optional
gripper, by name) and ``trajectory_topic`` (trajectory_msgs/JointTrajectory, linearly
interpolated); publishes feedback JointState on ``state_topic`` at ``feedback_rate_hz``.
Leader mode (``leader:=true``): configures the arm as teaching input (MasterSlaveConfig 0xFA) and
publishes the leader's joint commands on the profile's ``driver.leader_topic``; it never commands.
Services: ``~/enable`` (std_srvs/SetBool), ``~/estop`` and ``~/resume`` (std_srvs/Trigger).

For tests and demos, ``fake_arm:=true can_interface:=virtual`` starts a fake arm on python-can's
in-process virtual bus inside this process (motus_policy/robots/piper/fake.py).
Feedback is published only while the SDK's last feedback frame is younger than the profile's
``joint_state_staleness_s`` (CAN receive time, host wall clock).

Threads: one SingleThreadedExecutor thread runs every callback (docs/platform.md §1.4); the SDK's
own reader threads fill its feedback cache. ``~/enable`` waits on that thread for the drivers to
report enabled (at most ``enable_timeout_s``), so feedback pauses for that long at worst.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory

from motus_policy.robots.piper.driver import (
    CommandRejectedError,
    PiperArm,
    PiperArmConfig,
    connect_piper,
)
from motus_policy.robots.piper.fake import FakePiperArm, FakePiperConfig
from motus_policy.robots.trajectory import TrajectoryFollower
from motus_recorder.profile import load_profile
from motus_recorder.ros.conversions import joint_state_to_msg, msg_to_positions, time_to_ns
from motus_recorder.ros.spin import run_node

TUNABLES = ("gripper_effort_nm", "speed_rate_percent", "enable_timeout_s")
"""PiperArmConfig fields exposed as ROS parameters (the rest come from the profile)."""
LOG_THROTTLE_S = 1.0


class PiperArmNode(Node):
    """Thin ROS wrapper around :class:`PiperArm`."""

    def __init__(self) -> None:
        super().__init__("piper_arm")
        defaults = {f.name: f.default for f in dataclasses.fields(PiperArmConfig)}
        p = {
            "profile": "aloha_agilex_2",
            "arm": "left",
            "can_interface": "",
            "can_channel": "",
            "fake_arm": False,
            "fake_time_constant_s": 0.05,
            "leader": False,
            "feedback_rate_hz": 0.0,
            "auto_enable": False,
            **{k: defaults[k] for k in TUNABLES},
        }
        for name, value in p.items():
            self.declare_parameter(name, value)
        get = {n: self.get_parameter(n).value for n in p}
        self.profile = load_profile(get["profile"], namespace=self.get_namespace())
        arm = self.profile.arm(get["arm"])
        driver = dict(arm.driver)
        self.leader = bool(get["leader"])
        channel_key = "leader_channel" if self.leader else "can_channel"
        channel = get["can_channel"] or driver.get(channel_key, "")
        interface = get["can_interface"] or driver.get("can_interface", "socketcan")
        if not channel:
            raise ValueError(f"no can_channel parameter and no driver.{channel_key} in profile")
        self.config = PiperArmConfig.from_arm_profile(arm, **{k: get[k] for k in TUNABLES})
        self.names = self.config.names
        rate_hz = get["feedback_rate_hz"] or self.profile.joint_state_rate_hz
        self.staleness_s = self.profile.joint_state_staleness_s

        self.fake: FakePiperArm | None = None
        if get["fake_arm"]:
            fake_cfg = FakePiperConfig(
                channel=channel, time_constant_s=get["fake_time_constant_s"], leader=self.leader
            )
            self.fake = FakePiperArm(fake_cfg).start()
        self.sdk = connect_piper(channel, interface)
        self.arm = PiperArm(self.config, self.sdk)
        self.traj = TrajectoryFollower(self.names, label=arm.name)

        if self.leader:
            topic = driver.get("leader_topic") or f"/master/joint_{arm.name}"
            self.arm.configure_as_leader()
            self.pub = self.create_publisher(JointState, topic, 10)
        else:
            topic = arm.state_topic
            self.pub = self.create_publisher(JointState, topic, 10)
            self.create_subscription(JointState, arm.command_topic, self._on_command, 10)
            self.create_subscription(JointTrajectory, arm.trajectory_topic, self._on_traj, 10)
            if get["auto_enable"] and not self.arm.enable():
                raise RuntimeError(f"arm {arm.name} did not enable within the timeout")
        self.create_service(SetBool, "~/enable", self._on_enable)
        self.create_service(Trigger, "~/estop", self._on_estop)
        self.create_service(Trigger, "~/resume", self._on_resume)
        self.create_timer(1.0 / rate_hz, self._on_tick)
        self.get_logger().info(
            f"READY piper arm {arm.name} ({'leader' if self.leader else 'follower'}) on "
            f"{interface}:{channel}, publishing {topic} at {rate_hz:.0f} Hz"
        )

    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    # -- commands ----------------------------------------------------------------------------
    def _send(self, q7: np.ndarray, with_gripper: bool) -> None:
        try:
            self.arm.command(q7[:6], float(q7[6]) if with_gripper else None)
        except CommandRejectedError as e:
            self.get_logger().error(f"command rejected: {e}", throttle_duration_sec=LOG_THROTTLE_S)

    def _on_command(self, msg: JointState) -> None:
        if self.leader:
            return
        has_gripper = self.config.gripper_joint_name in msg.name
        names = self.names if has_gripper else self.names[:6]
        try:
            q = msg_to_positions(msg, names)
        except ValueError as e:
            self.get_logger().error(f"bad command: {e}", throttle_duration_sec=LOG_THROTTLE_S)
            return
        self.traj.clear()  # a streamed command overrides a running trajectory
        self._send(np.append(q, 0.0) if not has_gripper else q, has_gripper)

    def _on_traj(self, msg: JointTrajectory) -> None:
        try:
            index = [list(msg.joint_names).index(n) for n in self.names]
        except ValueError:
            self.get_logger().error(
                f"trajectory must name {list(self.names)}, got {msg.joint_names}"
            )
            return
        try:
            pos = np.array([[p.positions[i] for i in index] for p in msg.points])
            offsets = np.array([time_to_ns(p.time_from_start) for p in msg.points], np.int64)
            for q in pos:
                self.arm.check_command(q[:6], q[6])
            reading = self.arm.read_state()
            current = np.append(reading.joints_rad, reading.gripper_m)
            self.traj.set(time_to_ns(msg.header.stamp), offsets, pos, self._now_ns(), current)
        except (ValueError, IndexError) as e:
            self.get_logger().error(f"trajectory rejected: {e}")

    # -- timer -------------------------------------------------------------------------------
    def _on_tick(self) -> None:
        now_ns = self._now_ns()
        if self.leader:
            reading = self.arm.read_leader_command()
        else:
            q = self.traj.sample(now_ns)
            if q is not None:
                self._send(q, True)
                if self.traj.finished(now_ns):
                    self.traj.clear()
            reading = self.arm.read_state()
        if reading is None or time.time() - reading.sdk_time_s > self.staleness_s:
            self.get_logger().warn(
                "no fresh feedback from the arm", throttle_duration_sec=LOG_THROTTLE_S
            )
            return
        pos = np.append(reading.joints_rad, reading.gripper_m)
        self.pub.publish(joint_state_to_msg(self.names, pos, now_ns))

    # -- services ----------------------------------------------------------------------------
    def _on_enable(self, request: SetBool.Request, response: SetBool.Response):
        if request.data:
            response.success = self.arm.enable()
            response.message = "enabled" if response.success else "enable timed out"
        else:
            self.traj.clear()
            self.arm.disable()
            response.success, response.message = True, "disabled"
        return response

    def _on_estop(self, _request: Trigger.Request, response: Trigger.Response):
        self.traj.clear()
        self.arm.estop()
        response.success, response.message = True, "emergency stop sent"
        return response

    def _on_resume(self, _request: Trigger.Request, response: Trigger.Response):
        self.arm.resume()
        response.success, response.message = True, "resumed"
        return response

    def destroy_node(self) -> None:
        """Disconnect the SDK and stop the fake arm, then destroy the node."""
        self.sdk.DisconnectPort()
        if self.fake is not None:
            self.fake.stop()
        super().destroy_node()


def main(args=None) -> None:
    """Entry point ``piper_arm_node``."""
    run_node(PiperArmNode, args)


if __name__ == "__main__":
    main()
