"""Side-by-side video of what the robot saw and what Motus imagined, for one episode.

Left: the T-layout composite of the three cameras as they arrive; right: the policy's latest
``~/imagined_frames`` image (the policy node publishes each predicted frame when its due time
comes, so both halves show the same moment), scaled to the same height. Written with PyAV through
:class:`~motus_policy.evaluation.video.Mp4Writer` (no partial file on failure).

Threads: callbacks run on the executor that spins ``node``; ``start`` / ``stop`` on that same
thread (between spins).
"""

from __future__ import annotations

import functools
from pathlib import Path

import cv2
import numpy as np
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from motus_policy.evaluation.video import Mp4Writer
from motus_recorder.composite import compose_t_layout
from motus_recorder.profile import RobotProfile
from motus_recorder.ros.conversions import msg_to_image


def _label(img: np.ndarray, text: str) -> np.ndarray:
    out = img.copy()
    cv2.putText(out, text, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 0), 2)
    return out


class ImaginationVideo:
    """Records real-vs-imagined MP4s from a running graph.

    Args:
        node: the node to create subscriptions on.
        profile: camera topics and rates.
        imagined_topic: the policy's predicted-frame topic.
    """

    def __init__(self, node: Node, profile: RobotProfile, imagined_topic: str):
        self.profile = profile
        self._latest: dict[str, np.ndarray] = {}
        self._imagined: np.ndarray | None = None
        self._writer: Mp4Writer | None = None
        self._right_w: int | None = None
        self.imagined_count = 0
        for cam in profile.cameras:
            node.create_subscription(
                Image,
                cam.topic,
                functools.partial(self._on_camera, cam.name),
                qos_profile_sensor_data,
            )
        node.create_subscription(Image, imagined_topic, self._on_imagined, 10)

    def start(self, path: str | Path) -> None:
        """Begin a new video at ``path`` (frames at the head camera's rate)."""
        self._imagined = None
        self._right_w: int | None = None
        self.imagined_count = 0
        self._writer = Mp4Writer(path, self.profile.cameras[0].rate_hz)

    def stop(self) -> Path | None:
        """Finish the video; returns its path (None if no frame was written)."""
        writer, self._writer = self._writer, None
        return writer.close() if writer is not None else None

    def _on_imagined(self, msg: Image) -> None:
        self._imagined = msg_to_image(msg)
        self.imagined_count += 1

    def _on_camera(self, name: str, msg: Image) -> None:
        self._latest[name] = msg_to_image(msg)
        if self._writer is None or name != self.profile.cameras[0].name:
            return
        if len(self._latest) < len(self.profile.cameras):
            return
        real = compose_t_layout(*(self._latest[c.name] for c in self.profile.cameras))
        h = real.shape[0]
        if self._right_w is None:  # fixed for the whole video (the writer needs one size)
            im = self._imagined
            self._right_w = (
                round(h * 3 / 4) if im is None else round(im.shape[1] * h / im.shape[0])
            )
        if self._imagined is None:
            right = np.zeros((h, self._right_w, 3), np.uint8)
        else:
            right = cv2.resize(self._imagined, (self._right_w, h))
        self._writer.add(
            np.concatenate([_label(real, "real"), _label(right, "imagined (Motus)")], axis=1)
        )
