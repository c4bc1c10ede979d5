"""bag_player_node: publishes a recorded bag's raw CDR messages at recorded timing.

Lets the policy node run on recorded inputs (live replay). Messages are published undecoded with
``Publisher.publish(bytes)`` (docs/platform.md §1.5); timing, rate scaling and looping come from
the ROS-free :class:`~motus_policy.evaluation.bag_player.BagPlayer`. Optionally publishes
``/clock`` from the bag's timestamps (run the other nodes with ``use_sim_time:=true``).

Parameters (:class:`BagPlayerNodeConfig`): ``bag``, ``rate``, ``loop``, ``publish_clock``,
``clock_rate_hz``, ``wait_for_subscribers`` (start only once every topic has this many
subscribers), ``topics`` (subset; empty = all), ``source_profile`` / ``profile`` (remap the bag's
camera / joint-state topics from the profile that describes the bag to the graph's profile).

With a remap, JointState messages whose joint names differ between the two profiles are renamed
arm by arm (e.g. a vendor bag's ``joint0..joint6`` on both arms to the graph profile's names);
those messages are decoded and re-encoded with the rosbags typestore, every other message goes
out as recorded. Camera messages keep their type (Image or CompressedImage): a camera whose bag
type does not match the graph profile's ``transport`` is an error at start. The graph profile's
relative topics resolve in this node's namespace.

Threads: the main thread spins the node (parameter services); a player thread publishes.
"""

from __future__ import annotations

import importlib
import threading
import time
from dataclasses import dataclass, field, fields

from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosbags.typesys import Stores, get_typestore
from rosgraph_msgs.msg import Clock

from motus_policy.evaluation.bag_player import BagPlayer, BagPlayerConfig, profile_remap
from motus_policy.evaluation.bag_reader import open_bag
from motus_recorder.ros.conversions import ns_to_time
from motus_recorder.ros.spin import run_node

JOINT_TYPE = "sensor_msgs/msg/JointState"
_TS = get_typestore(Stores.ROS2_JAZZY)


@dataclass(frozen=True)
class BagPlayerNodeConfig:
    """Node parameters (see the module docstring); validated in ``__post_init__``."""

    bag: str = ""
    rate: float = 1.0
    loop: bool = False
    publish_clock: bool = False
    clock_rate_hz: float = 100.0
    wait_for_subscribers: int = 0
    topics: list[str] = field(default_factory=lambda: [""])
    source_profile: str = ""
    profile: str = ""

    def __post_init__(self) -> None:
        if not self.bag:
            raise ValueError("bag: expected a rosbag2 folder, got ''")
        if not self.clock_rate_hz > 0:
            raise ValueError(f"clock_rate_hz: expected > 0, got {self.clock_rate_hz}")
        if self.wait_for_subscribers < 0:
            raise ValueError(
                f"wait_for_subscribers: expected >= 0, got {self.wait_for_subscribers}"
            )
        if bool(self.source_profile) != bool(self.profile):
            raise ValueError("source_profile and profile: set both (or neither) to remap")


def check_camera_types(source, target, types: dict[str, str]) -> None:
    """Each bag camera topic's type must be what the graph profile's camera expects.

    Args:
        source: profile describing the bag.
        target: profile of the graph (the policy node's).
        types: bag topic -> message type (``sensor_msgs/msg/Image`` ...).

    Raises:
        ValueError: a camera recorded as Image where the target camera is ``compressed`` (or the
            reverse); the message names the camera, both types and the fix.
    """
    for cam in source.cameras:
        got = types.get(cam.topic)
        want = target.camera(cam.name)
        expected = f"sensor_msgs/msg/{'CompressedImage' if want.compressed else 'Image'}"
        if got is not None and got != expected:
            raise ValueError(
                f"camera {cam.name}: the bag has {got} on {cam.topic}, but profile "
                f"{target.name!r} expects {expected} on {want.topic} (transport "
                f"{want.transport}); use a graph profile whose camera transport matches the bag"
            )


def joint_renames(source, target) -> dict[str, dict[str, str]]:
    """Bag state topic -> {bag joint name: graph joint name}, only for topics that differ.

    Names are paired arm by arm in the 14-D order (6 joints, then the gripper).
    """
    out: dict[str, dict[str, str]] = {}
    for arm in source.arms:
        pairs = dict(
            zip(arm.joint_state_names, target.arm(arm.name).joint_state_names, strict=True)
        )
        if any(a != b for a, b in pairs.items()):
            out.setdefault(arm.state_topic, {}).update(pairs)
    return out


def rename_joints(data: bytes, renames: dict[str, str]) -> bytes:
    """CDR sensor_msgs/JointState bytes with ``name`` entries renamed (others kept).

    Raises:
        ValueError: bytes that are not a JointState (from the rosbags deserializer).
    """
    try:
        msg = _TS.deserialize_cdr(data, JOINT_TYPE)
    except Exception as exc:  # noqa: BLE001 - rosbags raises several types on bad bytes
        raise ValueError(f"not a CDR {JOINT_TYPE}: {type(exc).__name__}: {exc}") from None
    msg.name = [renames.get(n, n) for n in msg.name]
    return bytes(_TS.serialize_cdr(msg, JOINT_TYPE))


def _msg_class(msgtype: str):
    pkg, kind, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{pkg}.{kind}"), name)


class BagPlayerNode(Node):
    """Publishes the bag; see the module docstring."""

    def __init__(self):
        super().__init__("bag_player")
        defaults = BagPlayerNodeConfig.__dataclass_fields__
        values = {}
        for f in fields(BagPlayerNodeConfig):
            d = defaults[f.name]
            default = d.default_factory() if callable(d.default_factory) else d.default
            values[f.name] = self.declare_parameter(f.name, default).value
        values["topics"] = [t for t in values["topics"] if t]
        self.config = BagPlayerNodeConfig(**values)
        remap = ()
        self._renames: dict[str, dict[str, str]] = {}
        self._bag_cm = open_bag(self.config.bag)
        self.reader = self._bag_cm.__enter__()
        if self.config.profile:
            from motus_recorder.profile import load_profile

            source = load_profile(self.config.source_profile)
            target = load_profile(self.config.profile, namespace=self.get_namespace())
            remap = profile_remap(source, target)
            types = {c.topic: c.msgtype for c in self.reader.connections}
            check_camera_types(source, target, types)
            self._renames = joint_renames(source, target)
        conns = [
            c
            for c in self.reader.connections
            if not self.config.topics or c.topic in self.config.topics
        ]
        if not conns:
            raise ValueError(f"topics: none of {self.config.topics} in {self.config.bag}")
        self.player = BagPlayer(
            lambda: self._messages(conns),
            BagPlayerConfig(rate=self.config.rate, loop=self.config.loop, remap=remap),
            time.monotonic_ns,
        )
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        rmap = dict(remap)
        self.pubs = {}
        for c in conns:
            topic = rmap.get(c.topic, c.topic)
            if topic not in self.pubs:
                self.pubs[topic] = self.create_publisher(_msg_class(c.msgtype), topic, qos)
        self.clock_pub = (
            self.create_publisher(Clock, "/clock", 10) if self.config.publish_clock else None
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bag_player", daemon=True)
        self._thread.start()
        self.get_logger().info(
            f"READY: {len(conns)} topics from {self.config.bag} at rate {self.config.rate}"
        )

    def _messages(self, conns):
        """(topic, log ns, CDR bytes) in bag order; JointState renamed where the remap says."""
        for c, t, raw in self.reader.messages(conns):
            ren = self._renames.get(c.topic)
            data = bytes(raw) if ren is None else rename_joints(bytes(raw), ren)
            yield c.topic, t, data

    def _run(self) -> None:
        need = self.config.wait_for_subscribers
        while need and not self._stop.is_set():
            if all(p.get_subscription_count() >= need for p in self.pubs.values()):
                break
            time.sleep(0.05)
        self.player.start()
        self.get_logger().info("playing")
        clock_period_ns = round(1e9 / self.config.clock_rate_hz)
        next_clock = 0
        while not self._stop.is_set():
            now = time.monotonic_ns()
            if self.clock_pub is not None and now >= next_clock:
                self.clock_pub.publish(Clock(clock=ns_to_time(self.player.bag_time_ns())))
                next_clock = now + clock_period_ns
            for topic, raw, _ in self.player.due():
                self.pubs[topic].publish(raw)
            wait = self.player.wait_ns()
            if wait is None:
                break
            if self.clock_pub is not None:
                wait = min(wait, max(0, next_clock - time.monotonic_ns()))
            self._stop.wait(min(wait, 100_000_000) / 1e9)
        if self.player.finished:
            self.get_logger().info(
                f"finished: {self.player.published} messages, "
                f"{self.player.out_of_order} out of order"
            )

    def destroy_node(self) -> None:
        """Stop the player thread and close the bag."""
        self._stop.set()
        self._thread.join(2.0)
        self._bag_cm.__exit__(None, None, None)
        super().destroy_node()


def main(args=None) -> None:
    """Run the node until shutdown."""
    run_node(BagPlayerNode, args)


if __name__ == "__main__":
    main()
