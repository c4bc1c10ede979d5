"""RealSenseCamera through librealsense software devices: bit-exact frames, time mapping, retry."""

from __future__ import annotations

import time

import numpy as np
import pyrealsense2 as rs
import pytest

from motus_policy.robots.realsense.driver import RealSenseCamera, RealSenseCameraConfig
from motus_policy.robots.realsense.fake import SoftwareCameraRig

H, W = 48, 64


def config(serial="000000000001", **kw):
    return RealSenseCameraConfig(name="cam_high", serial=serial, width=W, height=H, fps=30.0, **kw)


def poll_until(cam, timeout_s=2.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        frame = cam.poll()
        if frame is not None:
            return frame
        time.sleep(0.002)
    return None


def test_frames_are_bit_exact_rgb_and_hardware_clock_is_mapped(fake_clock):
    rig = SoftwareCameraRig()
    dev = rig.add("000000000001", W, H, 30.0)
    cam = RealSenseCamera(config(), opener=rig, clock=fake_clock)
    assert cam.poll() is None and cam.status.connected  # opened, no frame yet
    rng = np.random.default_rng(0)
    # Device clock at 5000 ms; arrivals later by 7, 3, 9 ms -> offset = min delay (3 ms).
    host0 = fake_clock.now_ns
    stamps = []
    for k, delay_ms in enumerate((7, 3, 9)):
        img = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
        device_ms = 5000.0 + 33.0 * k
        fake_clock.now_ns = host0 + int((33.0 * k + delay_ms) * 1e6)
        dev.push(img, device_ms)
        frame = poll_until(cam)
        assert frame is not None
        assert frame.image.dtype == np.uint8 and frame.image.shape == (H, W, 3)
        np.testing.assert_array_equal(frame.image, img)
        assert frame.device_ms == device_ms and frame.domain == "hardware_clock"
        stamps.append(frame.stamp_ns)
    offset_ns = host0 - 5000 * 1_000_000
    assert stamps[0] == offset_ns + 5000 * 1_000_000 + 7_000_000  # only one sample yet
    assert stamps[2] == offset_ns + 5066 * 1_000_000 + 3_000_000  # min filter: 3 ms delay
    assert cam.intrinsics.width == W
    cam.close()


def test_global_time_domain_is_used_as_host_time(fake_clock):
    rig = SoftwareCameraRig()
    dev = rig.add("000000000001", W, H, 30.0)
    cam = RealSenseCamera(config(), opener=rig, clock=fake_clock)
    cam.poll()
    dev.push(np.zeros((H, W, 3), np.uint8), 1.7e12, domain=rs.timestamp_domain.global_time)
    frame = poll_until(cam)
    assert frame.stamp_ns == int(1.7e12 * 1e6)
    cam.close()


def test_absent_camera_reports_error_and_retries_with_backoff(fake_clock):
    rig = SoftwareCameraRig()
    opened = []

    def opener(*args):
        opened.append(fake_clock.now_ns)
        return rig(*args)

    cam = RealSenseCamera(config(retry_initial_s=0.5, retry_max_s=2.0), opener, fake_clock)
    assert cam.poll() is None
    status = cam.status
    assert not status.connected and "No device connected" in status.message
    assert "retry in 0.5 s" in status.message
    for _ in range(40):  # 4 s of polling at 10 Hz
        fake_clock.advance(0.1)
        cam.poll()
    gaps = np.diff(opened) / 1e9
    np.testing.assert_allclose(gaps, [0.5, 1.0, 2.0], atol=0.11)  # 0.5, 1, 2 (capped)
    assert cam.status.failures == 4
    # Plugged in: the next retry opens it and frames flow.
    dev = rig.add("000000000001", W, H, 30.0)
    for _ in range(25):
        fake_clock.advance(0.1)
        cam.poll()
    assert cam.status.connected and cam.status.failures == 0
    dev.push(np.full((H, W, 3), 7, np.uint8), 10.0)
    assert poll_until(cam).image[0, 0, 0] == 7
    cam.close()


def test_unplugged_camera_is_detected_and_reopened(fake_clock):
    rig = SoftwareCameraRig()
    dev = rig.add("000000000001", W, H, 30.0)
    cam = RealSenseCamera(config(frame_timeout_s=1.0), opener=rig, clock=fake_clock)
    cam.poll()
    rig.unplug("000000000001")
    fake_clock.advance(1.5)
    assert cam.poll() is None
    assert not cam.status.connected and "lost" in cam.status.message
    rig.plug("000000000001")
    fake_clock.advance(0.6)
    cam.poll()
    assert cam.status.connected
    dev.push(np.ones((H, W, 3), np.uint8), 1.0)
    assert poll_until(cam) is not None
    cam.close()


def test_config_validation():
    with pytest.raises(ValueError, match="serial"):
        config(serial="")
    with pytest.raises(ValueError, match="retry_max_s"):
        config(retry_initial_s=2.0, retry_max_s=1.0)
    with pytest.raises(ValueError, match="fps"):
        RealSenseCameraConfig(name="c", serial="1", width=W, height=H, fps=0.0)
