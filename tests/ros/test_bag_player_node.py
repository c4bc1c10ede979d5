"""Live replay over DDS: the player node subprocess publishes a bag's raw CDR messages; this
process receives every message, in order, at the recorded relative timing."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from motus_recorder.profile import load_profile
from tests.fakes.bags import T0_NS, stamp_ns

N = 20
RATE_HZ = 20.0


@pytest.mark.ros
@pytest.mark.timeout(90)
@pytest.mark.parametrize("storage", ["mcap"])
def test_player_node_publishes_bag_at_recorded_timing(
    make_bag, spawn_node, ros_context, spin_in_background, storage
):
    from rclpy.node import Node
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from rclpy.serialization import deserialize_message
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import Image, JointState

    bag = make_bag(storage=storage, n=N, rate_hz=RATE_HZ)
    prof = load_profile("aloha_agilex_2")
    topics = {c.topic: Image for c in prof.cameras} | {
        a.state_topic: JointState for a in prof.arms
    }
    got: dict[str, list[tuple[int, bytes]]] = {t: [] for t in topics}
    clock: list[int] = []
    lock = threading.Lock()
    node = Node("listener", context=ros_context)
    qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
    for topic, typ in topics.items():

        def cb(raw, topic=topic):
            with lock:
                got[topic].append((time.monotonic_ns(), raw))

        node.create_subscription(typ, topic, cb, qos, raw=True)

    def on_clock(msg):
        clock.append(msg.clock.sec * 1_000_000_000 + msg.clock.nanosec)

    node.create_subscription(Clock, "/clock", on_clock, 10)
    spin_in_background(node, ros_context)
    player = spawn_node(
        "motus_policy.ros.bag_player_node",
        "-p", f"bag:={bag}", "-p", "wait_for_subscribers:=1", "-p", "publish_clock:=true",
    )  # fmt: skip
    player.wait_for("READY", timeout_s=30)
    player.wait_for("finished", timeout_s=30)
    time.sleep(0.3)
    node.destroy_node()

    first = min(v[0][0] for v in got.values() if v)
    for topic, typ in topics.items():
        msgs = got[topic]
        assert len(msgs) == N, f"{topic}: {len(msgs)} of {N}"
        stamps = []
        for _, raw in msgs:
            h = deserialize_message(raw, typ).header.stamp
            stamps.append(h.sec * 1_000_000_000 + h.nanosec)
        assert stamps == [stamp_ns(i, RATE_HZ) for i in range(N)], topic
        # arrival i is expected i / 20 Hz after the first; the common delivery delay (the first
        # message over a fresh connection can be slower) is removed by the median
        offsets = np.array([(t - first) / 1e9 for t, _ in msgs]) - np.arange(N) / RATE_HZ
        residual = offsets - np.median(offsets)
        assert np.median(np.abs(residual)) < 0.02, (topic, offsets)
        assert np.max(np.abs(residual)) < 0.15, (topic, offsets)
    assert clock and clock[0] >= T0_NS and clock[-1] >= stamp_ns(N - 3, RATE_HZ)
    assert clock == sorted(clock)
