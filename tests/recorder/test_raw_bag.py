"""Raw bag writer: CDR bytes in, a rosbag2 MCAP that rosbags reads back, committed per episode."""

from __future__ import annotations

import numpy as np
import pytest
from rosbags.rosbag2 import Reader
from rosbags.typesys import Stores, get_typestore

from motus_recorder.writers.motus_format import MotusFormatWriter, WriterConfig
from motus_recorder.writers.raw_bag import RawBagWriter
from tests.fakes.recordings import frame_at

TS = get_typestore(Stores.ROS2_JAZZY)


def _joint_state_cdr(k: int) -> bytes:
    JointState = TS.types["sensor_msgs/msg/JointState"]
    Header = TS.types["std_msgs/msg/Header"]
    Time = TS.types["builtin_interfaces/msg/Time"]
    msg = JointState(
        header=Header(stamp=Time(sec=k, nanosec=0), frame_id=""),
        name=["a", "b"],
        position=np.array([k, -k], dtype=np.float64),
        velocity=np.array([], dtype=np.float64),
        effort=np.array([], dtype=np.float64),
    )
    return bytes(TS.serialize_cdr(msg, "sensor_msgs/msg/JointState"))


def test_bag_round_trip_inside_an_episode(tmp_path, small_profile):
    w = MotusFormatWriter(WriterConfig(root=str(tmp_path), task="t"), small_profile)
    w.start_episode("bagged")
    bag = RawBagWriter(w.bag_dir)
    for k in range(5):
        w.add_frame(frame_at(small_profile, k))
        bag.write(
            "/left_arm/joint_states", "sensor_msgs/msg/JointState", k * 10**9, _joint_state_cdr(k)
        )
    with pytest.raises(ValueError, match="recorded as"):
        bag.write("/left_arm/joint_states", "std_msgs/msg/String", 0, b"")
    bag.close()
    assert w.save_episode() == 0
    w.close()
    path = tmp_path / "t" / "default" / "bags" / "0"
    assert list(path.glob("*.mcap")) and (path / "metadata.yaml").is_file()
    with Reader(path) as r:
        got = [
            (t, TS.deserialize_cdr(raw, c.msgtype).position.tolist()) for c, t, raw in r.messages()
        ]
    assert got == [(k * 10**9, [k, -k]) for k in range(5)]


def test_unknown_type_is_rejected(tmp_path):
    bag = RawBagWriter(tmp_path / "b")
    with pytest.raises(ValueError, match="not in the ROS 2 Jazzy typestore"):
        bag.write("/x", "my_msgs/msg/Nope", 0, b"")
    bag.close()
