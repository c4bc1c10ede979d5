"""The 14-D joint layout and camera names shared by every package (the data contract's core).

Joint vector (state, qpos, action), float32 (14,):

    index  0..5   left arm joints j1..j6       rad
    index  6      left gripper                 profile unit (sim: normalised 0 closed .. 1 open)
    index  7..12  right arm joints j1..j6      rad
    index  13     right gripper                profile unit

Source: docs/motus.md §4.1 ("14-dim layout (all embodiments)") and the official
``stat.json`` index order (docs/checkpoint-format.md §8). Single-arm or other layouts are robot
profiles, not code paths.

Cameras: the three ALOHA views, in T-layout order (head on top; left wrist bottom-left; right wrist
bottom-right), docs/motus.md §3.4.
"""

from __future__ import annotations

STATE_DIM = 14
"""Length of the joint vector (2 arms x (6 joints + 1 gripper))."""

ARM_JOINTS = 6
"""Revolute joints per arm (Piper j1..j6; ViperX waist..wrist_rotate)."""

LEFT_ARM = slice(0, 6)
LEFT_GRIPPER = 6
RIGHT_ARM = slice(7, 13)
RIGHT_GRIPPER = 13
GRIPPER_INDICES = (LEFT_GRIPPER, RIGHT_GRIPPER)
ARM_SLICES = {"left": slice(0, 7), "right": slice(7, 14)}
"""Per-arm slice of the 14-D vector, joints then gripper."""

ARM_NAMES = ("left", "right")

NS_PER_S = 1_000_000_000
"""Nanoseconds per second: every time in the cores is an int count of ns (ROS time)."""

CAMERA_NAMES = ("cam_high", "cam_left_wrist", "cam_right_wrist")
"""Camera names in T-layout order: head, left wrist, right wrist."""

MODEL_IMAGE_HW = (384, 320)
"""Model input (H, W) after the pad-to-fit resize of the T-layout composite.

Source: docs/motus.md §3.4."""


QPOS_SOURCES = ("command", "state")
"""What a dataset's ``qpos`` rows hold. ``command``: the commanded joint positions (the leader
arm / teleop command stream), as the official format's ``joint_action/vector``
(docs/motus.md §4.1); executing them reproduces the demonstration, grasp force included. ``state``:
the measured follower joint state; replaying measured gripper positions commands no squeeze on a
held object (a grasp closes only to the object's width), so policies trained on it drop objects."""
