"""The recorder and the bag player on the AgileX vendor layout over real DDS (issue #15 §3).

JPEG CompressedImage cameras and per-arm JointState topics whose joints are named joint0..joint6
on both arms (config/robots/aloha_agilex_2_vendor.yaml, here with test-sized cameras).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.fakes.recordings import CAM_H, CAM_W, image_at, qpos_at

pytestmark = [pytest.mark.ros, pytest.mark.timeout(150)]

REPO = Path(__file__).resolve().parents[2]


def vendor_profile(tmp_path: Path, **camera_fields) -> Path:
    """The shipped vendor profile with test-sized cameras (and other camera fields)."""
    data = yaml.safe_load((REPO / "config/robots/aloha_agilex_2_vendor.yaml").read_text())
    for cam in data["cameras"]:
        cam.update(height=CAM_H, width=CAM_W, **camera_fields)
    path = tmp_path / "vendor_small.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _call(proc, client, timeout_s=20.0):
    from std_srvs.srv import Trigger

    assert client.wait_for_service(timeout_sec=timeout_s), client.srv_name
    fut = client.call_async(Trigger.Request())
    deadline = time.monotonic() + timeout_s
    while not fut.done() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert fut.done(), f"{client.srv_name}: no response\n" + proc.output()[-3000:]
    return fut.result()


def test_recorder_records_compressed_cameras_and_per_arm_names(
    tmp_path, spawn_node, ros_context, spin_in_background
):
    from rclpy.node import Node
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import CompressedImage, JointState
    from std_srvs.srv import Trigger

    from motus_policy.evaluation.bag_reader import StreamMap, index_bag, open_bag
    from motus_recorder.dataset import TaskFolder
    from motus_recorder.profile import load_profile
    from motus_recorder.ros.conversions import image_to_compressed_msg, joint_state_to_msg

    path = vendor_profile(tmp_path)
    prof = load_profile(path)
    root = tmp_path / "ds"
    rec = spawn_node(
        "motus_recorder.ros.recorder_node",
        "-p", f"profile:={path}", "-p", f"root:={root}", "-p", "task:=pick",
        "-p", "instruction:=pick", "-p", "write_bag:=true",
        "-p", "tolerance_s:=0.035", "-p", "max_drop_fraction:=0.5",
    )  # fmt: skip
    rec.wait_for("READY", timeout_s=60)
    node = Node("vendor_feeder", context=ros_context)
    cams = [
        node.create_publisher(CompressedImage, c.topic, qos_profile_sensor_data)
        for c in prof.cameras
    ]
    arms = [
        (node.create_publisher(JointState, a.state_topic, 10),
         node.create_publisher(JointState, a.command_topic, 10))
        for a in prof.arms
    ]  # fmt: skip
    names = [f"joint{i}" for i in range(7)]  # the same on both arms
    mid = (prof.position_min + prof.position_max) / 2
    published: list[np.ndarray] = []
    lock = threading.Lock()

    def publish():
        with lock:
            k = len(published)
            raw = qpos_at(k).astype(np.float64)
            q = mid + 0.1 * raw  # inside the Piper limits
            q[[6, 13]] = 0.1 * raw[[6, 13]]  # gripper in metres (0 .. 0.1)
            published.append(q)
        t = node.get_clock().now().nanoseconds
        for i, pub in enumerate(cams):
            pub.publish(image_to_compressed_msg(image_at(k, i), t, "jpeg"))
        for (pub_state, pub_cmd), part in zip(arms, (q[:7], q[7:]), strict=True):
            pub_cmd.publish(joint_state_to_msg(names, part, t))
            pub_state.publish(joint_state_to_msg(names, part, t))

    node.create_timer(1.0 / prof.record_rate_hz, publish)
    spin_in_background(node, ros_context)
    start = node.create_client(Trigger, "/recorder/start")
    stop = node.create_client(Trigger, "/recorder/stop")
    deadline = time.monotonic() + 30
    while not (r := _call(rec, start)).success:
        assert time.monotonic() < deadline, r.message
        time.sleep(0.3)
    time.sleep(2.0)
    r = _call(rec, stop)
    assert r.success and "saved episode 0" in r.message, r.message + rec.output()[-3000:]

    ep = TaskFolder(root / "pick" / "default").read_episode(0)
    assert ep.qpos.shape[1] == 14 and ep.qpos.shape[0] >= 30, ep.meta["sync"]
    with lock:
        table = np.stack(published)
    for row in ep.qpos:  # each row: the left arm's and the right arm's own message
        assert (np.abs(table[:, :7] - row[:7]).max(axis=1) < 1e-5).any()
        assert (np.abs(table[:, 7:] - row[7:]).max(axis=1) < 1e-5).any()
    assert ep.meta["joint_names"][0] == "left/joint0"
    # the raw bag keeps the CompressedImage messages and replays through the same profile
    bag = root / "pick" / "default" / "bags" / "0"
    with open_bag(bag) as reader:
        index = index_bag(reader, StreamMap.from_profile(prof))
    assert index.cameras["cam_high"].msgtype == "sensor_msgs/msg/CompressedImage"
    assert index.joints["right"].positions.shape[1] == 7


def test_bag_player_renames_vendor_joints_and_checks_camera_transport(
    tmp_path, spawn_node, ros_context, spin_in_background
):
    from rclpy.node import Node
    from sensor_msgs.msg import CompressedImage, JointState

    from motus_recorder.profile import load_profile
    from tests.fakes.bags import write_bag

    bag = write_bag(tmp_path / "agilex", storage="mcap", profile="aloha_agilex_2_vendor", n=20)
    # the graph's profile: Piper names (left_joint1 ...), compressed cameras on its own topics
    data = yaml.safe_load((REPO / "config/robots/aloha_agilex_2.yaml").read_text())
    for cam in data["cameras"]:
        cam["topic"] = f"/graph/{cam['name']}/compressed"
    graph_path = tmp_path / "graph.yaml"
    graph_path.write_text(yaml.safe_dump(data))
    graph = load_profile(graph_path)

    got: dict[str, list] = {"left": [], "right": [], "cam": []}
    node = Node("listener", context=ros_context)
    for arm in graph.arms:
        node.create_subscription(
            JointState, arm.state_topic, lambda m, a=arm.name: got[a].append(m), 50
        )
    for cam in graph.cameras:  # the player waits for a subscriber on every topic
        node.create_subscription(
            CompressedImage,
            cam.topic,
            lambda m, c=cam.name: got["cam"].append(m) if c == "cam_high" else None,
            50,
        )
    spin_in_background(node, ros_context)
    player = spawn_node(
        "motus_policy.ros.bag_player_node",
        "-p", f"bag:={bag}", "-p", "wait_for_subscribers:=1",
        "-p", "source_profile:=aloha_agilex_2_vendor", "-p", f"profile:={graph_path}",
    )  # fmt: skip
    player.wait_for("finished", timeout_s=60)
    time.sleep(0.3)
    assert len(got["left"]) == len(got["right"]) == len(got["cam"]) == 20, player.output()
    assert list(got["left"][0].name) == list(graph.arm("left").joint_state_names)
    assert list(got["right"][0].name) == list(graph.arm("right").joint_state_names)

    # a graph profile with raw cameras cannot take the bag's CompressedImage: refused at start
    bad = spawn_node(
        "motus_policy.ros.bag_player_node",
        "-p", f"bag:={bag}", "-p", "source_profile:=aloha_agilex_2_vendor",
        "-p", "profile:=aloha_agilex_2",
    )  # fmt: skip
    assert bad.proc.wait(timeout=60) != 0
    out = bad.output()
    assert "camera cam_high" in out and "expects sensor_msgs/msg/Image" in out, out
