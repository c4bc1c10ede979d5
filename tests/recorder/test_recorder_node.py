"""recorder_node over real DDS: 3 cameras + 2 arms published at the record rate, start/stop."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from motus_recorder.dataset import TaskFolder, validate
from motus_recorder.writers import torch_io
from tests.fakes.recordings import image_at, qpos_at

REPO = Path(__file__).resolve().parents[2]


def _call(rec, client, timeout_s=20.0):
    from std_srvs.srv import Trigger

    assert client.wait_for_service(timeout_sec=timeout_s), client.srv_name
    fut = client.call_async(Trigger.Request())
    deadline = time.monotonic() + timeout_s
    while not fut.done() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert fut.done(), f"{client.srv_name}: no response\n" + rec.output()[-3000:]
    return fut.result()


def _wait_ready(rec, node, timeout_s: float = 60.0, until=None) -> str:
    """Poll /recorder/ready until it succeeds (or ``until(message)``); its last message."""
    from std_srvs.srv import Trigger

    client = node.create_client(Trigger, "/recorder/ready")
    deadline = time.monotonic() + timeout_s
    while True:
        r = _call(rec, client)
        if r.success or (until is not None and until(r.message)):
            return r.message
        assert time.monotonic() < deadline, r.message + "\n" + rec.output()[-3000:]
        time.sleep(0.2)


@pytest.mark.ros
@pytest.mark.timeout(120)
def test_record_episode_over_dds(
    tmp_path, small_profile, small_profile_path, spawn_node, ros_context, spin_in_background
):
    from rclpy.node import Node
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image, JointState
    from std_msgs.msg import String
    from std_srvs.srv import Trigger

    from motus_recorder.ros.conversions import image_to_msg, joint_state_to_msg

    root = tmp_path / "ds"
    rec = spawn_node(
        "motus_recorder.ros.recorder_node",
        "-p", f"profile:={small_profile_path}", "-p", f"root:={root}",
        "-p", "task:=pick", "-p", "instruction:=pick the cube", "-p", "write_bag:=true",
        # the feeder stamps at publish time, jittery on a loaded 2-core box: wider tolerance
        # and drop budget than for cameras that stamp at exposure (sync is unit-tested)
        "-p", "tolerance_s:=0.035", "-p", "max_drop_fraction:=0.5",
    )  # fmt: skip
    rec.wait_for("READY", timeout_s=60)

    node = Node("feeder", context=ros_context)
    # cameras best effort (sensor-data QoS, as the sim publishes them), joints reliable
    cams = [
        node.create_publisher(Image, c.topic, qos_profile_sensor_data)
        for c in small_profile.cameras
    ]
    # each arm: measured states and the leader's commands (qpos_source: command, the default)
    arms = [
        (
            node.create_publisher(JointState, a.state_topic, 10),
            node.create_publisher(JointState, a.command_topic, 10),
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
        for (pub_state, pub_cmd, names), part in zip(arms, (q[:7], q[7:]), strict=True):
            pub_cmd.publish(joint_state_to_msg(names, part, t))
            pub_state.publish(joint_state_to_msg(names, 0.9 * part, t))

    node.create_timer(1.0 / small_profile.record_rate_hz, publish)
    spin_in_background(node, ros_context)
    _wait_ready(rec, node)  # every stream matched (~/start refuses otherwise)
    time.sleep(0.5)  # a few frames buffered
    r = _call(rec, start)
    assert r.success, r.message
    time.sleep(2.0)
    r = _call(rec, stop)
    assert r.success, r.message + "\n" + rec.output()[-3000:]
    assert "saved episode 0" in r.message

    n, problems = validate(root)
    assert (n, problems) == (1, [])
    ep = TaskFolder(root / "pick" / "default").read_episode(0)
    assert ep.instruction == "pick the cube"
    st = ep.meta["sync"]
    assert st["recorded"] == ep.qpos.shape[0] and st["recorded"] + st["dropped"] == st["ticks"]
    assert 25 <= ep.qpos.shape[0] <= 60, st  # ~2 s at 25 Hz
    with lock:
        table = np.stack(published)
    # each arm's half of every row is exactly one published message, in publishing order; a
    # repeat is a message reused by two ticks (publisher jitter) and is counted as a duplicate
    sync = ep.meta["sync"]["streams"]
    for arm, half in (("left", slice(0, 7)), ("right", slice(7, 14))):
        ks = [
            int(np.flatnonzero((table[:, half] == row).all(axis=1))[0]) for row in ep.qpos[:, half]
        ]
        steps = np.diff(ks)
        assert (steps >= 0).all(), ks
        assert (steps == 1).mean() >= 0.7, ks
        assert int((steps == 0).sum()) == sync[arm]["duplicates"], (ks, sync[arm])
    # measured states land in state/<i>.pt, row for row beside the commands
    state = torch_io.load_tensor(root / "pick" / "default" / "state" / "0.pt")
    assert state.shape == ep.qpos.shape and ep.meta["qpos_source"] == "command"
    for arm, half in (("left", slice(0, 7)), ("right", slice(7, 14))):
        for row in state[:, half]:
            assert (np.abs(0.9 * table[:, half] - row).max(axis=1) < 1e-6).any(), arm
    assert (root / "pick" / "default" / "bags" / "0" / "metadata.yaml").is_file()
    # bad input over DDS: a mono8 frame on the head camera fails and discards the episode
    r = _call(rec, start)
    assert r.success, r.message
    time.sleep(0.5)
    bad = image_to_msg(image_at(0, 0), node.get_clock().now().nanoseconds)
    bad.encoding = "mono8"
    cams[0].publish(bad)
    time.sleep(0.5)
    r = _call(rec, stop)
    assert not r.success and "discarded" in r.message and "mono8" in r.message, r.message
    assert TaskFolder(root / "pick" / "default").episode_indices() == [0]

    # the keyboard front end: s starts, e saves (keys piped one per line)
    keys = subprocess.Popen(
        [sys.executable, "-m", "motus_recorder.ros.record_keys"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)),
    )  # fmt: skip
    try:
        keys.stdin.write("s\n")
        keys.stdin.flush()
        deadline = time.monotonic() + 30
        while not any(json.loads(x)["recording"] for x in status[-2:]):
            assert time.monotonic() < deadline, "record_keys did not start an episode"
            time.sleep(0.05)
        time.sleep(1.0)
        out, _ = keys.communicate("e\n", timeout=30)
    finally:
        keys.kill()
    assert "start: ok" in out and "stop: ok: saved episode 1" in out, out
    assert TaskFolder(root / "pick" / "default").episode_indices() == [0, 1]

    time.sleep(0.3)
    states = [json.loads(s) for s in status]
    assert any(s["recording"] and s["frames"] > 0 for s in states)
    assert states[-1]["last_saved"] == 1 and not states[-1]["recording"]
    assert "mono8" in states[-1]["last_error"]


@pytest.mark.ros
@pytest.mark.timeout(180)
def test_recorder_names_a_command_topic_without_publisher_and_records_the_leader_arms(
    tmp_path, small_profile_path, spawn_node, ros_context, spin_in_background
):
    """AgileX master-slave teaching: the leader arms publish their positions and nothing
    publishes the followers' command topics. The recorder used to start and discard every
    episode ~0.6 s later with "16 consecutive ticks without ['left', 'right'] ... (stream
    stopped?)"; now ``~/start`` refuses and names the silent topics, and with
    ``command_source:=leader_topic`` the leader arms' positions become qpos."""
    import yaml
    from rclpy.node import Node
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image, JointState
    from std_srvs.srv import Trigger

    from motus_recorder.profile import load_profile
    from motus_recorder.ros.conversions import image_to_msg, joint_state_to_msg

    data = yaml.safe_load(small_profile_path.read_text())
    for arm in data["arms"]:
        arm["driver"]["leader_topic"] = f"/master/joint_{arm['name']}"
    path = tmp_path / "teach.yaml"
    path.write_text(yaml.safe_dump(data))
    prof = load_profile(path)
    root = tmp_path / "ds"
    args = ["-p", f"profile:={path}", "-p", f"root:={root}", "-p", "task:=teach",
            "-p", "instruction:=teach", "-p", "tolerance_s:=0.035",
            "-p", "max_drop_fraction:=0.5"]  # fmt: skip

    node = Node("teach_feeder", context=ros_context)
    cams = [node.create_publisher(Image, c.topic, qos_profile_sensor_data) for c in prof.cameras]
    arms = [
        (node.create_publisher(JointState, a.state_topic, 10),
         node.create_publisher(JointState, a.driver["leader_topic"], 10),
         list(a.joint_state_names))
        for a in prof.arms
    ]  # fmt: skip
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
        for (pub_state, pub_leader, names), part in zip(arms, (q[:7], q[7:]), strict=True):
            pub_leader.publish(joint_state_to_msg(names, part, t))
            pub_state.publish(joint_state_to_msg(names, 0.9 * part, t))

    node.create_timer(1.0 / prof.record_rate_hz, publish)
    spin_in_background(node, ros_context)
    start = node.create_client(Trigger, "/recorder/start")
    stop = node.create_client(Trigger, "/recorder/stop")
    commands = [a.command_topic for a in prof.arms]

    rec = spawn_node("motus_recorder.ros.recorder_node", *args, name="recorder_command")
    rec.wait_for("READY", timeout_s=60)
    # wait until only the command topics are silent (cameras and states matched)
    msg = _wait_ready(rec, node, until=lambda m: "image_raw" not in m and "joint_states" not in m)
    r = _call(rec, start)
    assert not r.success, r.message
    assert f"no publisher on {commands}" in r.message, r.message
    assert "command_source:=leader_topic" in r.message and "/master/joint_left" in r.message
    assert msg in r.message
    rec.stop()

    rec = spawn_node(
        "motus_recorder.ros.recorder_node", *args, "-p", "command_source:=leader_topic",
        name="recorder_leader",
    )  # fmt: skip
    rec.wait_for("READY", timeout_s=60)
    _wait_ready(rec, node)
    time.sleep(0.5)
    r = _call(rec, start)
    assert r.success, r.message
    time.sleep(1.5)
    r = _call(rec, stop)
    assert r.success and "saved episode 0" in r.message, r.message + rec.output()[-3000:]
    ep = TaskFolder(root / "teach" / "default").read_episode(0)
    assert ep.meta["qpos_source"] == "command" and ep.qpos.shape[0] >= 10
    with lock:
        table = np.stack(published)
    for row in ep.qpos:  # every qpos row is one leader message, both arms of the same step
        assert (np.abs(table - row).max(axis=1) < 1e-6).any()
    node.destroy_node()


def test_sync_fault_tells_a_stream_that_never_published_from_one_that_stopped():
    from motus_recorder.sync import SyncConfig, SyncCore

    now = [0]
    core = SyncCore(SyncConfig(record_rate_hz=10.0, max_consecutive_drops=2), ["a", "b"],
                    lambda: now[0])  # fmt: skip
    core.push("b", 0, 1.0)
    core.reset()
    for k in range(1, 5):
        now[0] = k * 100_000_000
        core.push("b", now[0], 1.0)
        assert core.sample() is None
    assert "no message at all since the episode started on ['a']" in core.fault, core.fault
    now[0] = 0
    core2 = SyncCore(SyncConfig(record_rate_hz=10.0, max_consecutive_drops=2), ["a"],
                     lambda: now[0])  # fmt: skip
    core2.reset()
    core2.push("a", 0, 1.0)
    for k in range(1, 5):
        now[0] = k * 400_000_000
        core2.sample()
    assert "['a'] stopped or late" in core2.fault, core2.fault
