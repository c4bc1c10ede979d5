"""Fake RealSense cameras at the device boundary: ``rs.software_device`` streams.

Source: docs/platform.md §5.

A :class:`SoftwareCameraRig` holds software devices by serial number and acts as the
:data:`~motus_policy.robots.realsense.driver.Opener` of :class:`RealSenseCamera`. Frames pushed
into a
device travel through librealsense (``software_sensor.on_video_frame`` -> ``frame_queue``) and come
out as real ``rs.frame`` objects. A pipeline cannot select a software device by serial (it is not
enumerated by ``query_devices``), hence this opener instead of ``rs.pipeline``.

Devices can be *unplugged* (open raises ``RuntimeError("No device connected")`` like librealsense,
and an open stream stops delivering) and plugged back. ``start_autoplay`` pushes a moving test
pattern at the stream rate from a thread, for node demos and ROS tests.

Threads: ``push``/``unplug``/``plug`` from any thread; streams are polled by one owner thread.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pyrealsense2 as rs

QUEUE_CAPACITY = 4


def pattern_frame(height: int, width: int, frame_number: int) -> np.ndarray:
    """uint8 (H, W, 3): a horizontal ramp that scrolls one pixel per frame; blue = frame % 256."""
    x = (np.arange(width) + frame_number) % 256
    img = np.empty((height, width, 3), dtype=np.uint8)
    img[:, :, 0] = x[None, :]
    img[:, :, 1] = (np.arange(height) % 256)[:, None]
    img[:, :, 2] = frame_number % 256
    return img


class SoftwareCamera:
    """One software device with a colour rgb8 stream."""

    def __init__(self, serial: str, width: int, height: int, fps: float):
        self.serial, self.width, self.height, self.fps = serial, width, height, fps
        self.device = rs.software_device()
        self.device.register_info(rs.camera_info.serial_number, serial)
        self.device.register_info(rs.camera_info.name, "Motus software RealSense")
        self.sensor = self.device.add_sensor("Color")
        intr = rs.intrinsics()
        intr.width, intr.height = width, height
        intr.fx = intr.fy = float(width)  # ~53 deg horizontal field of view
        intr.ppx, intr.ppy = width / 2.0, height / 2.0
        intr.model = rs.distortion.brown_conrady
        intr.coeffs = [0.0] * 5
        vs = rs.video_stream()
        vs.type, vs.index, vs.uid = rs.stream.color, 0, 0
        vs.width, vs.height, vs.fps, vs.bpp = width, height, int(round(fps)), 3
        vs.fmt, vs.intrinsics = rs.format.rgb8, intr
        self.profile = self.sensor.add_video_stream(vs)
        self.intr = intr
        self.plugged = True
        self.open_stream: SoftwareStream | None = None
        self.frame_number = 0

    def push(self, image: np.ndarray, timestamp_ms: float, domain=None) -> None:
        """Deliver one uint8 (H, W, 3) frame with a device timestamp (ms) if streaming."""
        stream = self.open_stream
        if stream is None or not self.plugged:
            return
        self.frame_number += 1
        f = rs.software_video_frame()
        f.pixels = np.ascontiguousarray(image, dtype=np.uint8).tobytes()
        f.bpp, f.stride = 3, self.width * 3
        f.timestamp = float(timestamp_ms)
        f.domain = domain if domain is not None else rs.timestamp_domain.hardware_clock
        f.frame_number = self.frame_number
        f.profile = self.profile.as_video_stream_profile()
        self.sensor.on_video_frame(f)


class SoftwareStream:
    """The open stream of a :class:`SoftwareCamera` (implements ``FrameStream``)."""

    def __init__(self, cam: SoftwareCamera):
        self._cam = cam
        self._queue = rs.frame_queue(QUEUE_CAPACITY, keep_frames=True)
        cam.sensor.open(cam.profile)
        cam.sensor.start(self._queue)
        cam.open_stream = self

    def poll(self):
        """Newest frame in the queue, or None."""
        if not self._cam.plugged:
            return None
        newest = None
        while (f := self._queue.poll_for_frame()) is not None and f:
            newest = f  # drain to the newest frame, like a pipeline's latest frameset
        return newest

    def intrinsics(self):
        """The software stream's ``rs.intrinsics``."""
        return self._cam.intr

    def close(self) -> None:
        """Stop and close the software sensor."""
        self._cam.open_stream = None
        self._cam.sensor.stop()
        self._cam.sensor.close()


class SoftwareCameraRig:
    """Software cameras by serial; call the rig as an ``Opener``."""

    def __init__(self) -> None:
        self.cameras: dict[str, SoftwareCamera] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, serial: str, width: int, height: int, fps: float) -> SoftwareCamera:
        """Create (plugged-in) software camera ``serial``."""
        cam = SoftwareCamera(serial, width, height, fps)
        self.cameras[serial] = cam
        return cam

    def __call__(self, serial: str, width: int, height: int, fps: float) -> SoftwareStream:
        """Open camera ``serial`` (the ``Opener`` signature); RuntimeError if absent."""
        cam = self.cameras.get(serial)
        if cam is None or not cam.plugged:
            raise RuntimeError("No device connected")
        if (cam.width, cam.height) != (width, height):
            raise RuntimeError(
                f"Couldn't resolve requests: {width}x{height} "
                f"(device has {cam.width}x{cam.height})"
            )
        return SoftwareStream(cam)

    def unplug(self, serial: str) -> None:
        """Make the camera vanish (streams stop, opening fails)."""
        self.cameras[serial].plugged = False

    def plug(self, serial: str) -> None:
        """Bring the camera back."""
        self.cameras[serial].plugged = True

    def start_autoplay(self) -> None:
        """Push :func:`pattern_frame` frames to every camera at its rate (hardware-clock ms)."""
        self._thread = threading.Thread(target=self._play, name="fake_realsense", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop autoplay."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)

    def _play(self) -> None:
        fps = max(c.fps for c in self.cameras.values())
        t0 = time.monotonic()
        k = 0
        while not self._stop.wait(max(0.0, t0 + k / fps - time.monotonic())):
            device_ms = (time.monotonic() - t0) * 1000.0  # device clock starts at 0
            for cam in self.cameras.values():
                cam.push(pattern_frame(cam.height, cam.width, cam.frame_number), device_ms)
            k += 1
