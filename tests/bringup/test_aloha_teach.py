"""Recording through the ``aloha_teach`` bring-up with the leader arms as the command source
(issue #15 §10 / "Done when"): fake Piper leader and follower arms over python-can's virtual
bus, RealSense software-device cameras, teleop_node, the recorder with
``command_source:=leader_topic``; the fake leaders move by themselves (joint 1 +-20 deg at
0.5 Hz, motus_policy/robots/piper/fake.py). One short episode is recorded over DDS: it must be
saved complete, and its qpos must be the leader arms' published positions, row for row.
The profile is aloha_agilex_2 with 160 x 120 cameras: seven node processes with three 640 x 480
software cameras at 30 Hz do not keep up on a shared 2-core test machine (measured: the fake
cameras delivered 16 of 30 frames per second at load average 6)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

pytestmark = pytest.mark.cpu_exclusive


REPO = Path(__file__).resolve().parents[2]
TRIES = 5
"""Episodes tried: on a shared 2-core machine a loaded moment can make the software cameras
late and the recorder discard an episode for drops, a reason that is not the command source
(as tests/benchmarks/test_recorder_benchmark.py); one of five must be saved. The record grid is
10 Hz here (see the profile edit below)."""
NODES = ("piper_left_leader", "piper_right_leader", "piper_left", "piper_right", "teleop",
         "realsense", "recorder")  # fmt: skip


def _call(node, client, timeout_s=30.0):
    from std_srvs.srv import Trigger

    assert client.wait_for_service(timeout_sec=timeout_s), client.srv_name
    fut = client.call_async(Trigger.Request())
    deadline = time.monotonic() + timeout_s
    while not fut.done() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert fut.done(), f"{client.srv_name}: no answer"
    return fut.result()


@pytest.mark.ros
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_teaching_with_the_leader_arms_records_their_positions(
    ros_env, ros_context, spin_in_background, tmp_path
):
    from rclpy.node import Node
    from sensor_msgs.msg import JointState
    from std_srvs.srv import Trigger

    from motus_recorder.dataset import TaskFolder
    from motus_recorder.profile import load_profile, profile_dir
    from motus_recorder.ros.conversions import msg_to_positions
    from motus_recorder.writers import torch_io

    data = yaml.safe_load((profile_dir() / "aloha_agilex_2.yaml").read_text())
    data["name"] = "aloha_agilex_2_small"
    # small frames, and a 10 Hz record grid (match tolerance: half a period, 50 ms): what is
    # tested is the command source, not camera timing on a loaded machine
    data["record_rate_hz"] = 10.0
    for cam in data["cameras"]:
        cam["height"], cam["width"] = 120, 160
    profile_path = tmp_path / "aloha_agilex_2_small.yaml"
    profile_path.write_text(yaml.safe_dump(data))
    prof = load_profile(profile_path)
    root, logs = tmp_path / "data", tmp_path / "logs"
    cmd = [sys.executable, "-m", "motus_policy.bringup", "aloha_teach", "--log-dir", str(logs)]
    args = ("fake_hardware=true", "can_interface=virtual", f"root={root}", "task=teach",
            f"profile={profile_path}",
            "instruction=hand over the cube")  # fmt: skip
    for arg in args:
        cmd += ["--arg", arg]
    with open(tmp_path / "bringup.log", "w") as out:
        bringup = subprocess.Popen(
            cmd, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 120
        for name in NODES:
            log = logs / f"{name}.log"
            while not (log.exists() and "READY" in log.read_text(errors="replace")):
                assert bringup.poll() is None, (tmp_path / "bringup.log").read_text()[-4000:]
                assert time.monotonic() < deadline, f"{name} not READY:\n" + (
                    log.read_text(errors="replace")[-3000:] if log.exists() else "no log"
                )
                time.sleep(0.1)

        probe = Node("teach_probe", context=ros_context)
        lock = threading.Lock()
        leader: dict[str, list[np.ndarray]] = {a.name: [] for a in prof.arms}
        for arm in prof.arms:

            def keep(msg, name=arm.name, names=tuple(arm.joint_state_names)):
                q = msg_to_positions(msg, names)
                with lock:
                    leader[name].append(q)

            probe.create_subscription(JointState, arm.driver["leader_topic"], keep, 200)
        start = probe.create_client(Trigger, "/recorder/start")
        stop = probe.create_client(Trigger, "/recorder/stop")
        spin_in_background(probe, ros_context)
        deadline = time.monotonic() + 30  # DDS matching may lag the nodes' READY lines
        tries = []
        for _ in range(TRIES):
            with lock:  # the leader messages of this try only
                for v in leader.values():
                    v.clear()
            while not (r := _call(probe, start)).success and "no publisher" in r.message:
                assert time.monotonic() < deadline, r.message
                time.sleep(0.5)
            assert r.success, r.message
            time.sleep(3.0)
            r = _call(probe, stop)
            tries.append(r.message)
            if r.success:
                break
        assert r.success and "saved episode 0" in r.message, tries
    finally:
        if bringup.poll() is None:
            os.killpg(bringup.pid, signal.SIGINT)
            try:
                bringup.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(bringup.pid, signal.SIGKILL)
                bringup.wait(10)

    folder = TaskFolder(root / "teach" / "default")
    assert folder.episode_indices() == [0]
    ep = folder.read_episode(0)
    assert ep.meta["qpos_source"] == "command"
    n = ep.qpos.shape[0]
    # ~3 s at 10 Hz; the software cameras drop ticks on a loaded CI box (13 of 32 ticks kept
    # in one full-suite run) and this test is about the command source, not camera timing
    assert 8 <= n <= 34, ep.meta["sync"]
    assert ep.meta["sync"]["recorded"] == n
    with lock:
        table = {k: np.stack(v) for k, v in leader.items()}
    for k, arm in enumerate(prof.arms):
        half = np.asarray(ep.qpos[:, 7 * k : 7 * k + 7], dtype=np.float64)
        # every row is one of the leader arm's published messages (float32 storage)
        dist = np.abs(half[:, None, :] - table[arm.name][None, :, :]).max(axis=2).min(axis=1)
        assert dist.max() < 1e-5, (arm.name, dist.max())
        assert np.ptp(half[:, 0]) > np.radians(10.0), arm.name  # joint 1 swings +-20 deg
    # the followers' measured states beside the commands, row for row; teleop moves them
    state = np.asarray(torch_io.load_tensor(folder.path / "state" / "0.pt"), dtype=np.float64)
    assert state.shape == ep.qpos.shape
    assert np.ptp(state[:, 0]) > np.radians(5.0)
    assert ep.check_video_length() == n
