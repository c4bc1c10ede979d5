"""H.264 MP4 encoding with PyAV, on a worker thread behind a bounded queue.

Settings follow docs/platform.md §8: libx264, yuv420p, crf 23, GOP ``g`` = fps (so a reader can
seek to any second), frame rate = the record rate; one video frame per recorded step.

Back-pressure: :meth:`EncoderWorker.submit` never drops a frame. When the queue is full it
counts a back-pressure event, logs it and waits up to ``put_timeout_s``; if the encoder is still
behind, it raises :class:`BackPressureError` and the episode must be failed (frames would
otherwise be lost).
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
from fractions import Fraction

import av
import numpy as np

log = logging.getLogger(__name__)


class BackPressureError(RuntimeError):
    """The encoder could not keep up; accepting more frames would lose some."""


class VideoEncoder:
    """Synchronous PyAV H.264 writer of uint8 (H, W, 3) RGB frames.

    Args:
        path: output ``.mp4``.
        width, height: frame size in pixels; both must be even (yuv420p).
        fps: frames per second (the record rate).
        crf: x264 constant rate factor (lower = better, 23 = default quality).
        preset: x264 speed preset.

    Raises:
        ValueError: odd or non-positive size, or non-positive fps.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        width: int,
        height: int,
        fps: float,
        crf: int = 23,
        preset: str = "veryfast",
    ):
        if width <= 0 or height <= 0 or width % 2 or height % 2:
            raise ValueError(f"video size: expected even positive WxH, got {width}x{height}")
        if fps <= 0:
            raise ValueError(f"fps: expected > 0, got {fps}")
        self.path = os.fspath(path)
        self.width, self.height = int(width), int(height)
        self.frames = 0
        rate = Fraction(fps).limit_denominator(1001)
        self._container = av.open(self.path, mode="w")
        self._stream = self._container.add_stream("libx264", rate=rate)
        self._stream.width, self._stream.height = self.width, self.height
        self._stream.pix_fmt = "yuv420p"
        self._stream.options = {"crf": str(crf), "preset": preset, "g": str(max(1, round(fps)))}

    def write(self, rgb: np.ndarray) -> None:
        """Encode one frame. Raises ValueError for a frame of the wrong size or dtype."""
        if rgb.dtype != np.uint8 or rgb.shape != (self.height, self.width, 3):
            raise ValueError(
                f"video frame: expected uint8 {(self.height, self.width, 3)}, "
                f"got {rgb.dtype} {rgb.shape}"
            )
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts = self.frames
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames += 1

    def close(self, fsync: bool = True) -> int:
        """Flush the encoder, close the file (fsynced) and return the number of frames."""
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()
        if fsync:
            fd = os.open(self.path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        return self.frames

    def abort(self) -> None:
        """Close without flushing (the file is left for the caller to delete)."""
        with contextlib.suppress(Exception):  # best effort on an already failed file
            self._container.close()


_STOP = object()


class EncoderWorker:
    """Runs a :class:`VideoEncoder` on its own thread, fed through a bounded queue.

    Threads: ``submit``/``finish``/``abort`` from one producer thread; encoding on the worker.

    Args:
        encoder: the encoder the worker owns.
        queue_size: frames that may wait (memory bound: queue_size x frame bytes).
        put_timeout_s: how long ``submit`` waits on a full queue before failing.
    """

    def __init__(self, encoder: VideoEncoder, queue_size: int = 64, put_timeout_s: float = 2.0):
        if queue_size < 1:
            raise ValueError(f"queue_size: expected >= 1, got {queue_size}")
        self.encoder = encoder
        self.put_timeout_s = float(put_timeout_s)
        self._q: queue.Queue = queue.Queue(maxsize=queue_size)
        self._error: BaseException | None = None
        self.submitted = 0
        self.backpressure_events = 0
        self.max_depth = 0
        self._thread = threading.Thread(target=self._run, name="video-encoder", daemon=True)
        self._thread.start()

    @property
    def depth(self) -> int:
        """Frames waiting in the queue now."""
        return self._q.qsize()

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is _STOP:
                return
            if self._error is not None:
                continue  # drain after a failure; the episode is failed anyway
            try:
                self.encoder.write(item)
            except BaseException as exc:  # noqa: BLE001 - reported to the producer
                self._error = exc

    def submit(self, rgb: np.ndarray) -> None:
        """Queue one frame.

        Raises:
            BackPressureError: the queue stayed full for ``put_timeout_s``.
            RuntimeError: the encoder failed earlier (the cause is chained).
        """
        if self._error is not None:
            raise RuntimeError(f"video encoder failed: {self._error}") from self._error
        try:
            self._q.put_nowait(rgb)
        except queue.Full:
            self.backpressure_events += 1
            log.warning(
                "video encoder behind: queue full (%d frames), waiting up to %.1f s",
                self._q.maxsize,
                self.put_timeout_s,
            )
            try:
                self._q.put(rgb, timeout=self.put_timeout_s)
            except queue.Full:
                raise BackPressureError(
                    f"video encoder fell behind: queue of {self._q.maxsize} frames full for "
                    f"{self.put_timeout_s} s after {self.submitted} frames; frames would be lost"
                ) from None
        self.submitted += 1
        self.max_depth = max(self.max_depth, self._q.qsize())

    def finish(self) -> int:
        """Encode everything queued, close the file and return the frame count.

        Raises:
            RuntimeError: the encoder failed (e.g. ENOSPC), or frames went missing.
        """
        self._q.put(_STOP)
        self._thread.join()
        if self._error is not None:
            self.encoder.abort()
            raise RuntimeError(f"video encoder failed: {self._error}") from self._error
        n = self.encoder.close()
        if n != self.submitted:
            raise RuntimeError(f"video has {n} frames but {self.submitted} were submitted")
        return n

    def abort(self) -> None:
        """Stop the worker and close the file without flushing."""
        self._error = self._error or RuntimeError("aborted")
        self._q.put(_STOP)
        self._thread.join()
        self.encoder.abort()
