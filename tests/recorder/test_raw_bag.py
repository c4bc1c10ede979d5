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


def test_rclpy_serialized_messages_make_a_bag_rosbags_and_the_mcap_decoder_read(tmp_path):
    """Issue #15 §5: recorder_node hands ``rclpy.serialization.serialize_message`` bytes to the
    raw-bag writer. The rclpy wheels return 8 bytes more than a JointState occupies, which
    rosbags rejected on reading ("CDR message size mismatch for 'sensor_msgs/msg/JointState'"),
    so ``motus-eval replay`` could not read a bag the recorder wrote. Every message must now read
    back through rosbags' AnyReader and through the mcap library's ROS 2 decoder."""
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory
    from rclpy.serialization import serialize_message
    from rosbags.highlevel import AnyReader

    from motus_recorder.profile import load_profile
    from motus_recorder.ros.conversions import joint_state_to_msg
    from tests.fakes.bags import q_at, write_recorder_bag

    a = load_profile("aloha_agilex_2").arms[0]
    raw = serialize_message(joint_state_to_msg(a.joint_state_names, q_at(0.0)[:7], 1))
    exact = _joint_state_like(a.joint_state_names, q_at(0.0)[:7])
    assert len(raw) > len(exact)  # the rclpy wheels' extra bytes this writer must cut

    n = 6
    bag = write_recorder_bag(tmp_path / "bag", n=n)
    counts: dict[str, int] = {}
    with AnyReader([bag], default_typestore=TS) as r:
        for conn, _, data in r.messages():
            msg = r.deserialize(data, conn.msgtype)  # raised SerdeError before the fix
            counts[conn.topic] = counts.get(conn.topic, 0) + 1
            if conn.msgtype.endswith("JointState"):
                assert len(msg.position) == 7
    assert len(counts) == 5 and set(counts.values()) == {n}, counts

    mcap_files = list(bag.glob("*.mcap"))
    decoded: dict[str, list] = {}
    with mcap_files[0].open("rb") as f:
        reader = make_reader(f, decoder_factories=[DecoderFactory()])
        for _, channel, _, msg in reader.iter_decoded_messages():
            decoded.setdefault(channel.topic, []).append(msg)
    assert {t: len(v) for t, v in decoded.items()} == counts
    left = decoded[a.state_topic]
    assert [list(m.name) for m in left] == [list(a.joint_state_names)] * n
    np.testing.assert_allclose(
        [list(m.position) for m in left], [q_at(i / 30)[:7] for i in range(n)]
    )
    img = decoded["/camera_f/color/image_raw"][3]
    assert img.encoding == "rgb8" and bytes(img.data) == bytes([6]) * (img.height * img.step)


def _joint_state_like(names, positions) -> bytes:
    JointState = TS.types["sensor_msgs/msg/JointState"]
    Header = TS.types["std_msgs/msg/Header"]
    Time = TS.types["builtin_interfaces/msg/Time"]
    msg = JointState(
        header=Header(stamp=Time(sec=0, nanosec=1), frame_id=""),
        name=list(names),
        position=np.asarray(positions, dtype=np.float64),
        velocity=np.array([], dtype=np.float64),
        effort=np.array([], dtype=np.float64),
    )
    return bytes(TS.serialize_cdr(msg, "sensor_msgs/msg/JointState"))


def test_bytes_that_are_not_the_named_type_are_refused(tmp_path):
    bag = RawBagWriter(tmp_path / "b")
    with pytest.raises(ValueError, match=r"/x: expected CDR data"):
        bag.write("/x", "sensor_msgs/msg/JointState", 0, b"\x07\x07\x00\x00")
    with pytest.raises(ValueError, match=r"/x: 12 bytes are not a CDR sensor_msgs/msg/JointState"):
        bag.write("/x", "sensor_msgs/msg/JointState", 0, _joint_state_cdr(1)[:12])
    bag.close()
