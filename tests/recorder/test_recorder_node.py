"""recorder_node over real DDS: 3 cameras + 2 arms published at the record rate, start/stop."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest

from motus_recorder.dataset import TaskFolder, validate
from tests.recorder.recorder_fixtures import image_at, qpos_at


def _call(node, client, timeout_s=20.0):
    from std_srvs.srv import Trigger

    assert client.wait_for_service(timeout_sec=timeout_s), client.srv_name
    fut = client.call_async(Trigger.Request())
    deadline = time.monotonic() + timeout_s
    while not fut.done() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert fut.done(), f"{client.srv_name}: no response"
    return fut.result()


@pytest.mark.ros
@pytest.mark.timeout(120)
def test_record_episode_over_dds(
    tmp_path, small_profile, small_profile_path, spawn_node, ros_context, spin_in_background
):
    from rclpy.node import Node
    from sensor_msgs.msg import Image, JointState
    from std_msgs.msg import String
    from std_srvs.srv import Trigger

    from motus_policy.ros.conversions import image_to_msg, joint_state_to_msg

    root = tmp_path / "ds"
    rec = spawn_node(
        "motus_recorder.ros.recorder_node",
        "-p", f"profile:={small_profile_path}", "-p", f"root:={root}",
        "-p", "task:=pick", "-p", "instruction:=pick the cube", "-p", "write_bag:=true",
    )  # fmt: skip
    rec.wait_for("READY", timeout_s=60)

    node = Node("feeder", context=ros_context)
    cams = [node.create_publisher(Image, c.topic, 10) for c in small_profile.cameras]
    arms = [
        (
            node.create_publisher(JointState, a.state_topic, 10),
            [*a.joint_names, a.gripper.joint_name],
        )
        for a in small_profile.arms
    ]  # fmt: skip
    status = []
    node.create_subscription(String, "/recorder/status", lambda m: status.append(m.data), 10)
    start = node.create_client(Trigger, "/recorder/start")
    stop = node.create_client(Trigger, "/recorder/stop")
    published: list[np.ndarray] = []
    lock = threading.Lock()

    def publish():
        with lock:
            k = len(published)
            q = qpos_at(k)
            published.append(q)
        t = node.get_clock().now().nanoseconds
        for i, pub in enumerate(cams):
            pub.publish(image_to_msg(image_at(k, i), t))
        for (pub, names), part in zip(arms, (q[:7], q[7:]), strict=True):
            pub.publish(joint_state_to_msg(names, part, t))

    node.create_timer(1.0 / small_profile.record_rate_hz, publish)
    spin_in_background(node, ros_context)
    time.sleep(1.0)  # discovery + a few frames buffered
    r = _call(node, start)
    assert r.success, r.message
    time.sleep(2.0)
    r = _call(node, stop)
    assert r.success, r.message + "\n" + rec.output()[-3000:]
    assert "saved episode 0" in r.message

    n, problems = validate(root)
    assert (n, problems) == (1, [])
    ep = TaskFolder(root / "pick" / "default").read_episode(0)
    assert ep.instruction == "pick the cube"
    assert 35 <= ep.qpos.shape[0] <= 60, ep.qpos.shape  # ~2 s at 25 Hz
    with lock:
        table = np.stack(published)
    # every recorded row is exactly one published vector, in publishing order
    ks = [int(np.flatnonzero((table == row).all(axis=1))[0]) for row in ep.qpos]
    assert all(b > a for a, b in zip(ks, ks[1:], strict=False)), ks
    assert sum(b - a == 1 for a, b in zip(ks, ks[1:], strict=False)) >= 0.9 * (len(ks) - 1)
    assert ep.meta["sync"]["dropped"] <= 3, ep.meta["sync"]
    assert (root / "pick" / "default" / "bags" / "0" / "metadata.yaml").is_file()
    time.sleep(0.3)
    states = [json.loads(s) for s in status]
    assert any(s["recording"] and s["frames"] > 0 for s in states)
    assert states[-1]["last_saved"] == 0 and not states[-1]["recording"]
