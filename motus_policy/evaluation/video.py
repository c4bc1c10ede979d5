"""MP4 writing with PyAV (H.264, yuv420p) that never leaves a partial file under the final name."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


class Mp4Writer:
    """Append uint8 (H, W, 3) RGB frames to an MP4; use as a context manager.

    The file is written as ``.<name>.partial.mp4`` and renamed to ``path`` on :meth:`close`
    (clean exit); :meth:`abort` (or an exception in the ``with`` block) deletes it. Odd sizes
    are padded by one black row / column (yuv420p needs even sizes). Frames must keep the size
    of the first one.

    Threads: one thread at a time (the caller's).
    """

    def __init__(self, path: str | Path, fps: float):
        if not fps > 0:
            raise ValueError(f"fps: expected > 0, got {fps}")
        self.path = Path(path)
        self.fps = fps
        self._tmp = self.path.with_name(f".{self.path.stem}.partial.mp4")
        self._container = None
        self._stream = None
        self.frames = 0

    def add(self, rgb: np.ndarray) -> None:
        """Encode one frame.

        Raises:
            ValueError: not uint8 (H, W, 3), or a size different from the first frame.
        """
        import av

        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"expected uint8 (H, W, 3), got {rgb.dtype} {rgb.shape}")
        h, w = rgb.shape[:2]
        img = np.pad(rgb, ((0, h % 2), (0, w % 2), (0, 0)))
        if self._container is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._container = av.open(str(self._tmp), mode="w", format="mp4")
            self._stream = self._container.add_stream("libx264", rate=max(1, round(self.fps)))
            self._stream.width, self._stream.height = img.shape[1], img.shape[0]
            self._stream.pix_fmt = "yuv420p"
        elif (img.shape[0], img.shape[1]) != (self._stream.height, self._stream.width):
            raise ValueError(
                f"{self.path}: frame {img.shape[:2]} differs from the first frame "
                f"({self._stream.height}, {self._stream.width})"
            )
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames += 1

    def close(self) -> Path | None:
        """Flush and rename into place; returns the path, or None when no frame was added."""
        if self._container is None:
            return None
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()
        self._container = None
        os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Close and delete the partial file."""
        if self._container is not None:
            self._container.close()
            self._container = None
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
