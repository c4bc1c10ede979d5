"""Message conversions for the simulated robot node (object poses, trajectories, clock)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from geometry_msgs.msg import Pose, PoseArray
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image
from trajectory_msgs.msg import JointTrajectory

from motus_recorder.ros.conversions import image_to_msg, ns_to_time, time_to_ns


def clock_msg(stamp_ns: int) -> Clock:
    """rosgraph_msgs/Clock at ``stamp_ns``."""
    return Clock(clock=ns_to_time(stamp_ns))


def pose_array_msg(poses: np.ndarray, stamp_ns: int, frame_id: str = "world") -> PoseArray:
    """(N, 7) ``[x, y, z, qw, qx, qy, qz]`` (m, unit quaternion) -> geometry_msgs/PoseArray."""
    msg = PoseArray()
    msg.header.stamp = ns_to_time(stamp_ns)
    msg.header.frame_id = frame_id
    for x, y, z, qw, qx, qy, qz in np.asarray(poses, dtype=np.float64):
        p = Pose()
        p.position.x, p.position.y, p.position.z = float(x), float(y), float(z)
        p.orientation.w, p.orientation.x = float(qw), float(qx)
        p.orientation.y, p.orientation.z = float(qy), float(qz)
        msg.poses.append(p)
    return msg


def camera_msg(rgb: np.ndarray, stamp_ns: int, frame_id: str, encoding: str) -> Image:
    """uint8 (H, W, 3) RGB -> sensor_msgs/Image in the profile's ``encoding`` (rgb8 / bgr8)."""
    if encoding == "bgr8":
        msg = image_to_msg(np.ascontiguousarray(rgb[:, :, ::-1]), stamp_ns, frame_id)
        msg.encoding = "bgr8"
        return msg
    return image_to_msg(rgb, stamp_ns, frame_id)


def trajectory_arrays(
    msg: JointTrajectory, names: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, int]:
    """trajectory_msgs/JointTrajectory -> (times_from_start_ns, positions, stamp_ns).

    Returns:
        int64 (K,) point times relative to the stamp (ns), float64 (K, len(names)) positions
        reordered to ``names``, and the header stamp (ns; 0 means "now").

    Raises:
        ValueError: a name is missing or duplicated, or a point's position count differs from
            the message's joint names.
    """
    index = {n: i for i, n in enumerate(msg.joint_names)}
    if len(index) != len(msg.joint_names):
        raise ValueError(f"JointTrajectory has duplicate joint names {list(msg.joint_names)}")
    missing = [n for n in names if n not in index]
    if missing:
        raise ValueError(f"JointTrajectory lacks joints {missing}; has {list(msg.joint_names)}")
    cols = [index[n] for n in names]
    times = np.zeros(len(msg.points), dtype=np.int64)
    pos = np.zeros((len(msg.points), len(names)), dtype=np.float64)
    for k, pt in enumerate(msg.points):
        if len(pt.positions) != len(msg.joint_names):
            raise ValueError(
                f"JointTrajectory point {k} has {len(pt.positions)} positions for "
                f"{len(msg.joint_names)} joints"
            )
        times[k] = int(pt.time_from_start.sec) * 1_000_000_000 + int(pt.time_from_start.nanosec)
        pos[k] = np.asarray(pt.positions, dtype=np.float64)[cols]
    return times, pos, time_to_ns(msg.header.stamp)
