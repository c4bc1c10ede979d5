"""realsense_camera_node as a subprocess: fake (software-device) cameras, and absent hardware."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from motus_recorder.profile import load_profile

PROFILE = load_profile("aloha_agilex_2")


def wait_for(pred, timeout_s):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not pred():
        time.sleep(0.05)
    return pred()


@pytest.mark.ros
@pytest.mark.timeout(90)
def test_fake_cameras_publish_images_info_and_ok_diagnostics(
    spawn_node, ros_context, spin_in_background
):
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
    from rclpy.node import Node
    from sensor_msgs.msg import CameraInfo, Image

    from motus_recorder.ros.conversions import msg_to_image, time_to_ns

    proc = spawn_node("motus_policy.ros.realsense_camera_node", "-p", "fake_cameras:=true")
    proc.wait_for("READY", 60)
    node = Node("rs_test", context=ros_context)
    lock = threading.Lock()
    images: dict[str, list] = {c.topic: [] for c in PROFILE.cameras}
    infos: list = []
    diags: list = []

    def on_image(topic):
        def cb(msg):
            with lock:
                images[topic].append((time.time_ns(), time_to_ns(msg.header.stamp), msg))

        return cb

    for cam in PROFILE.cameras:
        node.create_subscription(Image, cam.topic, on_image(cam.topic), 10)
    node.create_subscription(CameraInfo, "/camera_f/color/camera_info", infos.append, 10)
    node.create_subscription(DiagnosticArray, "/diagnostics", diags.append, 10)
    spin_in_background(node, ros_context)
    assert wait_for(lambda: all(len(v) >= 10 for v in images.values()) and diags and infos, 30)
    with lock:
        got = {k: list(v) for k, v in images.items()}
    for cam in PROFILE.cameras:
        recv_ns, stamp_ns, msg = got[cam.topic][-1]
        img = msg_to_image(msg)
        assert img.shape == (cam.height, cam.width, 3) and msg.encoding == "rgb8"
        assert 0 <= recv_ns - stamp_ns < 500_000_000  # mapped device time: just before arrival
        stamps = [s for _, s, _ in got[cam.topic]]
        assert all(np.diff(stamps) > 0)
    assert infos[-1].k[0] > 0 and infos[-1].width == 640
    levels = {s.name: s.level for s in diags[-1].status}
    assert levels == {f"realsense/{c.name}": DiagnosticStatus.OK for c in PROFILE.cameras}
    # every parameter has a value GetParameters returns (`ros2 param dump`), arrays included
    from rcl_interfaces.srv import GetParameters, ListParameters

    lister = node.create_client(ListParameters, "/realsense_camera/list_parameters")
    getter = node.create_client(GetParameters, "/realsense_camera/get_parameters")
    assert lister.wait_for_service(timeout_sec=10) and getter.wait_for_service(timeout_sec=10)
    names = lister.call(ListParameters.Request(), timeout_sec=10).result.names
    assert "cameras" in names
    values = getter.call(GetParameters.Request(names=names), timeout_sec=10).values
    unset = [n for n, v in zip(names, values, strict=True) if v.type == 0]  # PARAMETER_NOT_SET
    assert not unset, f"parameters without a value: {unset}"
    assert list(values[names.index("cameras")].string_array_value) == [
        c.name for c in PROFILE.cameras
    ]
    node.destroy_node()


@pytest.mark.ros
@pytest.mark.timeout(90)
def test_absent_cameras_report_error_diagnostics_and_keep_running(
    spawn_node, ros_context, spin_in_background
):
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
    from rclpy.node import Node

    proc = spawn_node("motus_policy.ros.realsense_camera_node", "-p", "diagnostics_period_s:=0.2")
    proc.wait_for("started realsense cameras", 60)
    node = Node("rs_test_absent", context=ros_context)
    diags: list = []
    node.create_subscription(DiagnosticArray, "/diagnostics", diags.append, 10)
    spin_in_background(node, ros_context)
    assert wait_for(lambda: len(diags) >= 3, 30)
    status = diags[-1].status
    assert len(status) == 3
    assert all(s.level == DiagnosticStatus.ERROR for s in status)
    assert all("could not be opened" in s.message and "retry in" in s.message for s in status)
    assert proc.proc.poll() is None  # still running, retrying
    assert "READY" not in proc.output()  # READY means streaming: never without a device
    node.destroy_node()
