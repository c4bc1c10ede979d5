"""Intel RealSense colour cameras (pyrealsense2), ROS-free core.

One :class:`RealSenseCamera` per camera, selected by serial number (the profile's
``camera.source``). The device boundary is a small *stream* object (:class:`FrameStream`): on the
robot :class:`PipelineStream` (an ``rs.pipeline`` restricted to one serial); in tests a
``rs.software_device`` stream (motus_policy/robots/realsense/fake.py, docs/platform.md §5). Both
return real ``rs.frame`` objects, so decoding and time mapping are the same code.

Time mapping (device clock -> host clock, int ns), by the frame's timestamp domain:

* ``global_time``: librealsense already maps the device clock onto the host system clock (its
  global-timestamp option, on by default for D4xx); used as is.
* ``system_time``: host arrival time stamped by librealsense; used as is.
* ``hardware_clock``: the raw device clock. We estimate ``offset = host - device`` as the
  *minimum* of ``arrival_host_ns - device_ns`` over the last ``offset_window`` frames. Transport
  delay is always >= 0, so the minimum is the offset plus the smallest observed delay, and the
  sliding window follows clock drift (the minimum-delay filter used for one-way clock offset
  estimation, e.g. NTP's clock filter). Stamps therefore never lie in the future of the arrival.

Absent or unplugged cameras: opening raises (librealsense: ``RuntimeError: No device connected``,
docs/platform.md §5) or frames stop for ``frame_timeout_s``; the camera then reports the error in
:attr:`RealSenseCamera.status` and retries with exponential backoff
(``retry_initial_s`` doubling up to ``retry_max_s``).

Threads: not thread-safe; one owner thread calls ``poll``.
"""

from __future__ import annotations

import collections
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pyrealsense2 as rs

RETRY_INITIAL_S = 0.5
"""First retry delay after a failed open or a lost camera (s)."""
RETRY_MAX_S = 8.0
"""Backoff ceiling (s): a replugged camera is back within this long."""
FRAME_TIMEOUT_S = 1.0
"""No frame for this long on an open stream = camera lost (s); ~30 frame periods at 30 Hz."""
OFFSET_WINDOW = 300
"""Frames in the clock-offset minimum filter (10 s at 30 Hz)."""
NS_PER_MS = 1_000_000


class FrameStream(Protocol):
    """An open colour stream of one device."""

    def poll(self) -> Any | None:
        """Newest ``rs.frame`` if one arrived, else None; never blocks."""

    def intrinsics(self) -> Any:
        """``rs.intrinsics`` of the colour stream."""

    def close(self) -> None:
        """Stop streaming and release the device."""


Opener = Callable[[str, int, int, float], FrameStream]
"""``(serial, width, height, fps) -> FrameStream``; raises RuntimeError if the device is absent."""


class PipelineStream:
    """A real device: ``rs.pipeline`` with ``enable_device(serial)``, colour rgb8, w x h @ fps.

    The serial is looked up with ``rs.context().query_devices()`` first (instant): a pipeline
    asked for an absent serial blocks about 15 s in ``start`` before failing (measured here with
    pyrealsense2 2.59.1), which would stall the node's executor.

    Raises:
        RuntimeError: no device with this serial, or librealsense cannot start the stream.
    """

    def __init__(self, serial: str, width: int, height: int, fps: float):
        found = [d.get_info(rs.camera_info.serial_number) for d in rs.context().query_devices()]
        if serial not in found:
            raise RuntimeError(f"No device connected with serial {serial} (connected: {found})")
        self._pipe = rs.pipeline()
        cfg = rs.config()
        cfg.enable_device(serial)
        cfg.enable_stream(rs.stream.color, width, height, rs.format.rgb8, int(round(fps)))
        profile = self._pipe.start(cfg)
        stream = profile.get_stream(rs.stream.color).as_video_stream_profile()
        self._intrinsics = stream.get_intrinsics()

    def poll(self) -> Any | None:
        """Newest colour frame or None (non-blocking)."""
        frames = self._pipe.poll_for_frames()
        if not frames:
            return None
        color = frames.get_color_frame()
        return color if color else None

    def intrinsics(self) -> Any:
        """Colour stream ``rs.intrinsics``."""
        return self._intrinsics

    def close(self) -> None:
        """Stop the pipeline."""
        self._pipe.stop()


@dataclass
class RealSenseCameraConfig:
    """One camera.

    Attributes:
        name: camera name (profile ``cameras[].name``).
        serial: RealSense serial number (profile ``cameras[].source``).
        width / height / fps: colour stream size (px) and rate (Hz), > 0.
        frame_timeout_s / retry_initial_s / retry_max_s / offset_window: see module constants.
    """

    name: str
    serial: str
    width: int
    height: int
    fps: float
    frame_timeout_s: float = FRAME_TIMEOUT_S
    retry_initial_s: float = RETRY_INITIAL_S
    retry_max_s: float = RETRY_MAX_S
    offset_window: int = OFFSET_WINDOW

    def __post_init__(self):
        if not self.serial:
            raise ValueError(f"camera {self.name!r}: serial must be a non-empty string")
        for field in ("width", "height", "offset_window"):
            if not (isinstance(getattr(self, field), int) and getattr(self, field) > 0):
                raise ValueError(f"{field} must be an int > 0, got {getattr(self, field)!r}")
        for field in ("fps", "frame_timeout_s", "retry_initial_s", "retry_max_s"):
            value = getattr(self, field)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{field} must be a finite number > 0, got {value!r}")
        if self.retry_max_s < self.retry_initial_s:
            raise ValueError(
                f"retry_max_s ({self.retry_max_s}) must be >= retry_initial_s "
                f"({self.retry_initial_s})"
            )


@dataclass(frozen=True)
class CameraFrame:
    """``image`` uint8 (H, W, 3) RGB; ``stamp_ns`` host clock; device time in ms as reported."""

    name: str
    image: np.ndarray
    stamp_ns: int
    device_ms: float
    domain: str
    frame_number: int


@dataclass(frozen=True)
class CameraStatus:
    """Connection state for diagnostics."""

    connected: bool
    message: str
    failures: int


class RealSenseCamera:
    """Opens one camera, decodes its frames, maps time, and reconnects with backoff."""

    def __init__(
        self,
        config: RealSenseCameraConfig,
        opener: Opener = PipelineStream,
        clock: Callable[[], int] = time.time_ns,
    ):
        self.config = config
        self._opener = opener
        self._clock = clock
        self._stream: FrameStream | None = None
        self._next_try_ns = 0
        self._backoff_s = config.retry_initial_s
        self._failures = 0
        self._message = "not opened yet"
        self._last_frame_ns = 0
        self._offsets: collections.deque[int] = collections.deque(maxlen=config.offset_window)
        self.intrinsics: Any = None

    @property
    def status(self) -> CameraStatus:
        """Whether the stream is open, the last error or state, consecutive failures."""
        return CameraStatus(self._stream is not None, self._message, self._failures)

    def poll(self) -> CameraFrame | None:
        """Return a new frame if one arrived; (re)open the device when due.

        Never raises for a missing/unplugged device (see :attr:`status`).

        Raises:
            ValueError: a frame of the wrong size or format (misconfiguration, not transient).
        """
        now = self._clock()
        if self._stream is None:
            if now < self._next_try_ns:
                return None
            self._open(now)
            if self._stream is None:
                return None
        try:
            frame = self._stream.poll()
        except RuntimeError as e:
            self._lost(now, f"stream error: {e}")
            return None
        if frame is None:
            if now - self._last_frame_ns > self.config.frame_timeout_s * 1e9:
                self._lost(now, f"no frame for {self.config.frame_timeout_s} s (unplugged?)")
            return None
        self._last_frame_ns = now
        return self._decode(frame, now)

    def close(self) -> None:
        """Release the device (idempotent)."""
        if self._stream is not None:
            try:
                self._stream.close()
            finally:
                self._stream = None

    # -- internals ---------------------------------------------------------------------------
    def _open(self, now: int) -> None:
        c = self.config
        try:
            self._stream = self._opener(c.serial, c.width, c.height, c.fps)
        except RuntimeError as e:
            self._fail(now, f"camera {c.name} (serial {c.serial}) could not be opened: {e}")
            return
        self.intrinsics = self._stream.intrinsics()
        self._last_frame_ns = now
        self._offsets.clear()
        self._backoff_s = c.retry_initial_s
        self._failures = 0
        self._message = f"streaming {c.width}x{c.height} @ {c.fps:g} Hz"

    def _lost(self, now: int, why: str) -> None:
        try:
            self.close()
        except RuntimeError:
            self._stream = None
        self._fail(now, f"camera {self.config.name} (serial {self.config.serial}) lost: {why}")

    def _fail(self, now: int, message: str) -> None:
        self._failures += 1
        self._message = f"{message}; retry in {self._backoff_s:g} s"
        self._next_try_ns = now + int(self._backoff_s * 1e9)
        self._backoff_s = min(self._backoff_s * 2.0, self.config.retry_max_s)

    def _decode(self, frame: Any, arrival_ns: int) -> CameraFrame:
        c = self.config
        fmt = frame.get_profile().format()
        if fmt not in (rs.format.rgb8, rs.format.bgr8):
            raise ValueError(f"camera {c.name}: expected rgb8/bgr8 frames, got {fmt}")
        data = np.asanyarray(frame.get_data())
        if data.size != c.height * c.width * 3:
            raise ValueError(
                f"camera {c.name}: frame has {data.size} bytes, expected {c.height}x{c.width}x3"
            )
        img = np.array(data, dtype=np.uint8, copy=True).reshape(c.height, c.width, 3)
        if fmt == rs.format.bgr8:
            img = np.ascontiguousarray(img[:, :, ::-1])
        device_ms = float(frame.get_timestamp())
        domain = frame.get_frame_timestamp_domain()
        return CameraFrame(
            name=c.name,
            image=img,
            stamp_ns=self._to_host_ns(device_ms, domain, arrival_ns),
            device_ms=device_ms,
            domain=str(domain).rsplit(".", 1)[-1],
            frame_number=int(frame.get_frame_number()),
        )

    def _to_host_ns(self, device_ms: float, domain: Any, arrival_ns: int) -> int:
        device_ns = int(round(device_ms * NS_PER_MS))
        if domain in (rs.timestamp_domain.global_time, rs.timestamp_domain.system_time):
            return device_ns
        self._offsets.append(arrival_ns - device_ns)
        return device_ns + min(self._offsets)
