"""recorder_node: records demonstrations into the Motus format (thin wrapper of ``Recorder``).

Subscribes to the profile's three camera topics (sensor_msgs/Image rgb8/bgr8, or
CompressedImage JPEG/PNG for a camera with ``transport: compressed``), the per-arm
JointState topics and, with ``qpos_source: command`` (the default), the per-arm commanded
positions (JointState), which become ``qpos`` while the measured states go to ``state/<i>.pt``.
Which topic carries the commanded positions depends on the setup, so the bring-up says it with
``command_source``:

- ``command_topic`` (default): each arm's profile ``command_topic``, published by ``teleop_node``
  (leader arms mapped through Motus) or by ``policy_node``;
- ``leader_topic``: each arm's profile ``driver.leader_topic``, the leader arms' own joint
  positions, e.g. AgileX master-slave teaching, where the vendor's leader arms publish
  ``/master/joint_left|right`` and nothing publishes ``/puppet/joint_*_cmd``.

It samples them on a timer at the profile's ``record_rate_hz`` (node clock: sim time under
``use_sim_time``). ``record_commands`` also puts the command messages into the raw bag.

Services (std_srvs/Trigger): ``~/start`` opens an episode with the current ``instruction`` and
``operator_notes`` parameters, once every stream the episode needs has a matched publisher
(otherwise it refuses and names each silent topic, instead of failing half a second later on
drops); ``~/ready`` answers that check alone; ``~/stop`` saves the episode, ``~/discard`` drops
it. ``~/status``
(std_msgs/String, JSON: recording, episode, frames, drops, queue_depth, last_saved,
last_error) is published at 2 Hz and after each service call. Shutdown (Ctrl-C) discards an
open episode. Parameters: the fields of :class:`motus_recorder.recorder.RecorderConfig`.

Threads: one SingleThreadedExecutor runs subscriptions, the record timer and the services
(docs/platform.md §1.4); video encoding runs on the writer's worker thread. ``~/stop`` blocks the
executor while the video is flushed and files are written (not recording then).
"""

from __future__ import annotations

import dataclasses
import json
import logging

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.serialization import serialize_message
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import String
from std_srvs.srv import Trigger

from motus_recorder.profile import load_profile, with_image_size
from motus_recorder.recorder import Recorder, RecorderConfig
from motus_recorder.ros.conversions import (
    any_image_to_rgb,
    image_type,
    msg_to_positions,
    time_to_ns,
)
from motus_recorder.ros.matching import silent_subscriptions
from motus_recorder.ros.spin import run_node

IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_TYPE = "sensor_msgs/msg/CompressedImage"
JOINT_TYPE = "sensor_msgs/msg/JointState"
COMMAND_SOURCES = ("command_topic", "leader_topic")
"""Values of the ``command_source`` parameter (see the module docstring)."""


def command_topics(profile, source: str) -> dict[str, str]:
    """Arm name -> the topic carrying that arm's commanded positions for ``source``.

    Args:
        profile: :class:`motus_recorder.profile.RobotProfile`.
        source: one of :data:`COMMAND_SOURCES`.

    Raises:
        ValueError: unknown ``source``, or ``leader_topic`` for an arm whose profile has no
            ``driver.leader_topic``.
    """
    if source not in COMMAND_SOURCES:
        raise ValueError(
            f"command_source: expected one of {list(COMMAND_SOURCES)}, got {source!r}"
        )
    if source == "command_topic":
        return {a.name: a.command_topic for a in profile.arms}
    missing = [a.name for a in profile.arms if not a.driver.get("leader_topic")]
    if missing:
        raise ValueError(
            f"command_source leader_topic: profile {profile.name!r} has no driver.leader_topic "
            f"for arm(s) {missing}"
        )
    return {a.name: a.driver["leader_topic"] for a in profile.arms}


class RecorderNode(Node):
    """Converts messages and forwards them to :class:`Recorder` (see module docstring)."""

    def __init__(self) -> None:
        super().__init__("recorder")
        for f in dataclasses.fields(RecorderConfig):
            self.declare_parameter(f.name, f.default)
        cfg = RecorderConfig(
            **{
                f.name: self.get_parameter(f.name).value
                for f in dataclasses.fields(RecorderConfig)
            }
        )
        self.profile = with_image_size(  # relative topics: in this node's namespace
            load_profile(cfg.profile, namespace=self.get_namespace()),
            cfg.image_height,
            cfg.image_width,
        )
        self.recorder = Recorder(cfg, self.profile, lambda: self.get_clock().now().nanoseconds)
        for msg in self.recorder.writer.recovered:
            self.get_logger().warning(f"dataset recovery: {msg}")
        source = self.declare_parameter(
            "command_source",
            "command_topic",
            ParameterDescriptor(
                description="topic of each arm's commanded positions (qpos_source command): "
                "command_topic = the profile's command_topic (teleop_node, policy_node), "
                "leader_topic = the profile's driver.leader_topic (vendor leader arms, e.g. "
                "AgileX master-slave teaching)",
                additional_constraints=f"one of {list(COMMAND_SOURCES)}",
                read_only=True,
            ),
        ).value
        self.command_source = str(source)
        self.command_topics = command_topics(self.profile, self.command_source)
        rel = getattr(ReliabilityPolicy, cfg.sensor_reliability.upper())
        qos = QoSProfile(depth=10, reliability=rel)
        # streams an episode cannot do without (checked at ~/start), by topic
        self._required = []
        for cam in self.profile.cameras:
            self._required.append(
                self.create_subscription(
                    image_type(cam.compressed),
                    cam.topic,
                    lambda m, c=cam: self._on_image(c.name, c.topic, m),
                    qos,
                )
            )
        for arm in self.profile.arms:
            names = list(arm.joint_state_names)
            self._required.append(
                self.create_subscription(
                    JointState,
                    arm.state_topic,
                    lambda m, a=arm, n=names: self._on_joints(a.name, a.state_topic, n, m),
                    qos,
                )
            )
            if cfg.qpos_source == "command" or (cfg.record_commands and cfg.write_bag):
                topic = self.command_topics[arm.name]
                sub = self.create_subscription(
                    JointState,
                    topic,
                    lambda m, a=arm, t=topic, n=names: self._on_command(a, t, n, m),
                    qos,
                )
                if cfg.qpos_source == "command":
                    self._required.append(sub)
        self.status_pub = self.create_publisher(String, "~/status", 10)
        self.create_service(Trigger, "~/start", self._srv(self._start))
        self.create_service(Trigger, "~/ready", self._on_ready)
        self.create_service(Trigger, "~/stop", self._srv(self.recorder.stop))
        self.create_service(Trigger, "~/discard", self._srv(self.recorder.discard))
        self.create_timer(1.0 / self.profile.record_rate_hz, self.recorder.tick)
        self.create_timer(0.5, self._publish_status)
        self.get_logger().info(
            f"recorder for {self.profile.name} into {self.recorder.writer.dir} at "
            f"{self.profile.record_rate_hz} Hz READY"
        )

    def _raw(self, topic: str, msgtype: str, msg) -> None:
        if self.recorder.recording and self.recorder.config.write_bag:
            stamp = self.get_clock().now().nanoseconds
            self.recorder.on_raw(topic, msgtype, stamp, serialize_message(msg))

    def _on_image(self, camera: str, topic: str, msg: Image | CompressedImage) -> None:
        try:
            rgb = any_image_to_rgb(msg)
        except ValueError as exc:
            self.recorder.on_bad_message(camera, exc)
            return
        self.recorder.on_image(camera, time_to_ns(msg.header.stamp), rgb)
        self._raw(topic, COMPRESSED_TYPE if isinstance(msg, CompressedImage) else IMAGE_TYPE, msg)

    def _on_command(self, arm, topic: str, names: list[str], msg: JointState) -> None:
        if self.recorder.config.qpos_source == "command":
            try:
                q = msg_to_positions(msg, names)
            except ValueError as exc:
                self.recorder.on_bad_message(f"{arm.name} joint commands", exc)
                return
            self.recorder.on_joints(arm.name, time_to_ns(msg.header.stamp), q, source="command")
        if self.recorder.config.record_commands:
            self._raw(topic, JOINT_TYPE, msg)

    def _on_joints(self, arm: str, topic: str, names: list[str], msg: JointState) -> None:
        try:
            q = msg_to_positions(msg, names)
        except ValueError as exc:
            self.recorder.on_bad_message(f"{arm} joint states", exc)
            return
        self.recorder.on_joints(arm, time_to_ns(msg.header.stamp), q)
        self._raw(topic, JOINT_TYPE, msg)

    def _ready(self) -> tuple[bool, str]:
        """Every required stream has a matched publisher? Else name each silent topic."""
        silent = silent_subscriptions(self._required)
        if not silent:
            return True, "every required stream has a publisher"
        msg = f"no publisher on {silent}"
        commands = [t for t in silent if t in self.command_topics.values()]
        if commands:
            other = "leader_topic" if self.command_source == "command_topic" else "command_topic"
            try:
                hint = f"if they are on {list(command_topics(self.profile, other).values())}, "
                hint += f"set command_source:={other}; "
            except ValueError:  # no leader topics in this profile
                hint = ""
            msg += (
                f"; {commands} should carry the commanded positions (qpos_source command, "
                f"command_source {self.command_source}): {hint}or record the measured states "
                "as qpos with qpos_source:=state"
            )
        return False, msg

    def _on_ready(self, _request: Trigger.Request, response: Trigger.Response):
        response.success, response.message = self._ready()  # polled: not logged
        return response

    def _start(self) -> tuple[bool, str]:
        if self.recorder.recording:
            return False, "already recording"
        ready, msg = self._ready()
        if not ready:
            return False, f"not started: {msg}"
        return self.recorder.start(
            str(self.get_parameter("instruction").value),
            str(self.get_parameter("operator_notes").value),
        )

    def _srv(self, action):
        def handle(request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
            response.success, response.message = action()
            if response.success:  # rclpy: one severity per call site
                self.get_logger().info(response.message)
            else:
                self.get_logger().warning(response.message)
            self._publish_status()
            return response

        return handle

    def _publish_status(self) -> None:
        self.status_pub.publish(String(data=json.dumps(self.recorder.status())))


def main(args: list[str] | None = None) -> None:
    """Run the recorder node until shutdown."""
    logging.basicConfig(level=logging.INFO, format="[%(levelname)s] [%(name)s]: %(message)s")
    run_node(RecorderNode, args, on_exit=lambda node: node.recorder.close())


if __name__ == "__main__":
    main()
