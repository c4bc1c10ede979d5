"""ROS 2 relay between the AC-One vendor driver's arm messages and sensor_msgs/JointState.

The AC-One vendor stack (github.com/Vertax42/AC_One, ``ROS2/X5_ws``) publishes each follower's
state and follows commands as ``arx5_arm_msg/msg/RobotStatus`` (``float64[7] joint_pos``, gripper
normalised), while every Motus node speaks JointState (names, rad). Per arm of the profile
(``config/robots/ac_one.yaml``), this node

- subscribes the vendor state (``driver.vendor_state_topic``, e.g. ``/arm_slave_l_status``) and
  republishes it as JointState on the profile's ``state_topic`` (``/motus/arm_slave_l_status``),
  names from the profile, gripper in rad;
- subscribes JointState commands on the profile's ``command_topic``
  (``/motus/arm_master_l_status``) and republishes them as the vendor type on
  ``driver.vendor_command_topic`` (``/arm_master_l_status``, where the ``remote_slave`` follower
  listens), gripper normalised. A command with a NaN, a value outside the profile's limits, a
  missing or repeated name is refused (logged, counted, nothing published).

With ``leader:=true`` it instead relays the vendor leader arms' RobotStatus (published on
``driver.vendor_command_topic`` while teaching) to JointState on ``driver.leader_topic``, and
commands nothing (never both: they share the vendor topic).

Conversions: :mod:`motus_policy.robots.ac_one.relay` (vendor sources cited there).

Parameters: ``profile`` (ac_one), ``arms`` (names; empty: all), ``vendor_message_type``
(``pkg/msg/Type``; empty: the profile's ``driver.vendor_message_type``), ``vendor_position_field``
(empty: ``driver.vendor_position_field`` or ``joint_pos``), ``leader``. The type is loaded by name
at start-up (``rosidl_runtime_py.utilities.get_message`` where installed, else ``importlib``), so
any installed message with a float64 array field works (tests use
``std_msgs/msg/Float64MultiArray`` / ``data``). A type that is not installed (``arx5_arm_msg``
comes from the vendor workspace: source ``ROS2/X5_ws/install/setup.bash`` first) stops the node
with one line and status 1.

Threads: one SingleThreadedExecutor thread runs every callback (docs/platform.md §1.4).
"""

from __future__ import annotations

import importlib

from rclpy.node import Node
from sensor_msgs.msg import JointState

from motus_policy.robots.ac_one.relay import (
    VENDOR_MESSAGE_TYPE,
    AcOneArmRelayConfig,
    RelayError,
    joint_state_to_vendor,
    vendor_to_joint_state,
)
from motus_recorder.profile import load_profile
from motus_recorder.ros.conversions import joint_state_to_msg, ns_to_time, time_to_ns
from motus_recorder.ros.spin import run_node

LOG_THROTTLE_S = 1.0
QOS_DEPTH = 10  # the vendor driver's publisher / subscription depth (X5Controller.cpp)


class VendorTypeError(RuntimeError):
    """The vendor message type cannot be loaded or lacks the position field."""


def load_message_type(name: str, field: str) -> type:
    """The message class named ``pkg/msg/Type``, checked to have array field ``field``.

    Raises:
        VendorTypeError: a malformed name, a package / type that is not installed (the message
            says to source the vendor workspace), or no such field on the type.
    """
    parts = name.split("/")
    if len(parts) != 3 or parts[1] != "msg" or not all(parts):
        raise VendorTypeError(f"vendor_message_type: expected 'pkg/msg/Type', got {name!r}")
    try:
        from rosidl_runtime_py.utilities import get_message
    except ImportError:  # not in the pip world's wheels: the same lookup by hand
        get_message = None
    try:
        if get_message is not None:
            cls = get_message(name)
        else:
            cls = getattr(importlib.import_module(f"{parts[0]}.msg"), parts[2])
    except (ImportError, AttributeError, ValueError) as exc:
        raise VendorTypeError(
            f"vendor message type {name} is not installed ({type(exc).__name__}: {exc}); source "
            "the vendor workspace (AC_One ROS2/X5_ws/install/setup.bash) or set "
            "vendor_message_type"
        ) from None
    fields = cls.get_fields_and_field_types()
    if field not in fields:
        raise VendorTypeError(f"{name} has no field {field!r}; its fields: {sorted(fields)}")
    return cls


class AcOneRelayNode(Node):
    """Thin ROS wrapper around the relay conversions, one pair of topics per arm."""

    def __init__(self) -> None:
        super().__init__("ac_one_relay")
        self.declare_parameter("profile", "ac_one")
        self.declare_parameter("arms", [""])
        self.declare_parameter("vendor_message_type", "")
        self.declare_parameter("vendor_position_field", "")
        self.declare_parameter("leader", False)
        get = {n: self.get_parameter(n).value for n in ("profile", "arms", "vendor_message_type")}
        self.profile = load_profile(get["profile"], namespace=self.get_namespace())
        wanted = [a for a in get["arms"] if a] or [a.name for a in self.profile.arms]
        field = self.get_parameter("vendor_position_field").value
        overrides = {"vendor_position_field": field} if field else {}
        self.arms = [
            AcOneArmRelayConfig.from_arm_profile(self.profile.arm(a), **overrides) for a in wanted
        ]
        type_name = get["vendor_message_type"] or str(
            self.profile.arm(wanted[0]).driver.get("vendor_message_type", VENDOR_MESSAGE_TYPE)
        )
        self.vendor_type = load_message_type(type_name, self.arms[0].vendor_position_field)
        self._has_header = "header" in self.vendor_type.get_fields_and_field_types()
        self.leader = bool(self.get_parameter("leader").value)
        self.relayed = {"state": 0, "command": 0}
        self.refused = {"state": 0, "command": 0}
        routes = []
        for cfg in self.arms:
            if self.leader:
                if not cfg.leader_topic:
                    raise ValueError(f"leader:=true but arm {cfg.arm} has no driver.leader_topic")
                self._state_route(cfg, cfg.vendor_command_topic, cfg.leader_topic)
                routes.append(f"{cfg.vendor_command_topic} -> {cfg.leader_topic}")
            else:
                self._state_route(cfg, cfg.vendor_state_topic, cfg.state_topic)
                pub = self.create_publisher(self.vendor_type, cfg.vendor_command_topic, QOS_DEPTH)
                self.create_subscription(
                    JointState,
                    cfg.command_topic,
                    lambda msg, cfg=cfg, pub=pub: self._on_command(cfg, pub, msg),
                    QOS_DEPTH,
                )
                routes.append(
                    f"{cfg.vendor_state_topic} -> {cfg.state_topic}, "
                    f"{cfg.command_topic} -> {cfg.vendor_command_topic}"
                )
        self.get_logger().info(
            f"READY ac_one relay ({'leader' if self.leader else 'follower'}, {type_name}."
            f"{self.arms[0].vendor_position_field}): " + "; ".join(routes)
        )

    def _state_route(self, cfg: AcOneArmRelayConfig, src: str, dst: str) -> None:
        pub = self.create_publisher(JointState, dst, QOS_DEPTH)
        self.create_subscription(
            self.vendor_type,
            src,
            lambda msg, cfg=cfg, pub=pub: self._on_state(cfg, pub, msg),
            QOS_DEPTH,
        )

    def _stamp_ns(self, msg) -> int:
        if self._has_header:
            ns = time_to_ns(msg.header.stamp)
            if ns > 0:
                return ns
        return self.get_clock().now().nanoseconds

    def _on_state(self, cfg: AcOneArmRelayConfig, pub, msg) -> None:
        try:
            names, q = vendor_to_joint_state(cfg, getattr(msg, cfg.vendor_position_field))
        except RelayError as e:
            self.refused["state"] += 1
            self.get_logger().error(
                f"vendor state refused: {e}", throttle_duration_sec=LOG_THROTTLE_S
            )
            return
        pub.publish(joint_state_to_msg(names, q, self._stamp_ns(msg)))
        self.relayed["state"] += 1

    def _on_command(self, cfg: AcOneArmRelayConfig, pub, msg: JointState) -> None:
        try:
            q = joint_state_to_vendor(cfg, msg.name, msg.position)
        except RelayError as e:
            self.refused["command"] += 1
            self.get_logger().error(
                f"command refused, not forwarded: {e}", throttle_duration_sec=LOG_THROTTLE_S
            )
            return
        out = self.vendor_type()
        if self._has_header:
            stamp_ns = time_to_ns(msg.header.stamp) or self.get_clock().now().nanoseconds
            out.header.stamp = ns_to_time(stamp_ns)
        setattr(out, cfg.vendor_position_field, [float(x) for x in q])
        pub.publish(out)
        self.relayed["command"] += 1


def main(args=None) -> None:
    """Entry point ``ac_one_relay_node``."""
    run_node(AcOneRelayNode, args)


if __name__ == "__main__":
    main()
