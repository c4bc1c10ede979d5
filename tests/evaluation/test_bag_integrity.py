"""Damaged bags (issue #14, offline tools): an error naming the damage, or with --allow-damaged a
loud warning and the count lost in replay.json; a folder without metadata.yaml is a clear error.

The bags are real rosbag2 bags written with rosbags (tests/fakes/bags.py) and then damaged on
disk the way a failing disk or an interrupted copy does.
"""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest

from motus_policy.cli.eval import main

N = 60
TOPICS = 5  # three cameras, two arms
ARGS = ("--backend", "hold", "--chunk-size", "4", "--mode", "vla", "--profile", "aloha_agilex_2")


def _replay(bag, out, *extra) -> int:
    return main(["replay", "--bag", str(bag), "--out", str(out), *ARGS, *extra])


def _garbage_in_the_middle(bag, insert: bool = False) -> None:
    """4 KiB of garbage written over (or into) the middle of the bag's .mcap file."""
    (f,) = bag.glob("*.mcap")
    data = bytearray(f.read_bytes())
    junk = np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    mid = int(len(data) * 0.2)
    data[mid : mid + (0 if insert else len(junk))] = junk
    f.write_bytes(bytes(data))


def test_garbage_in_an_mcap_is_an_error_naming_the_lost_messages(make_bag, tmp_path, capsys):
    """Before: exit 0 with 9 of 56 chunks and other metrics (rosbags stops reading a chunk at
    the garbage and says nothing)."""
    bag = make_bag("bag", storage="mcap", n=N)
    _garbage_in_the_middle(bag)
    assert _replay(bag, tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert f"{bag}: damaged bag" in err and "mapped messages lost" in err, err
    assert "/camera_f/color/image_raw: 13 of 60 messages read (metadata.yaml)" in err, err
    assert "--allow-damaged" in err
    assert not (tmp_path / "out" / "replay.json").exists()


def test_allow_damaged_replays_what_reads_with_a_warning_and_the_count_lost(
    make_bag, tmp_path, capsys
):
    bag = make_bag("bag", storage="mcap", n=N)
    _garbage_in_the_middle(bag)
    assert _replay(bag, tmp_path / "out", "--allow-damaged") == 0
    err = capsys.readouterr().err
    assert "WARNING: DAMAGED BAG" in err and "mapped messages lost" in err, err
    s = json.loads((tmp_path / "out" / "replay.json").read_text())
    integ = s["bag_integrity"]
    assert not integ["ok"] and integ["declared"] == dict.fromkeys(integ["declared"], N)
    assert len(integ["declared"]) == TOPICS
    assert integ["lost"] == sum(N - n for n in integ["read"].values()) > 0
    assert s["ticks"] < N


def test_garbage_inserted_into_an_mcap_is_a_clear_error(make_bag, tmp_path, capsys):
    bag = make_bag("bag", storage="mcap", n=N)
    _garbage_in_the_middle(bag, insert=True)
    assert _replay(bag, tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert f"motus-eval replay: {bag}:" in err and "Traceback" not in err, err


def test_a_sound_bag_reports_its_integrity(make_bag, tmp_path):
    for storage in ("mcap", "sqlite3"):
        bag = make_bag(storage, storage=storage, n=N)
        assert _replay(bag, tmp_path / storage) == 0
        integ = json.loads((tmp_path / storage / "replay.json").read_text())["bag_integrity"]
        assert integ["ok"] and integ["lost"] == 0 and integ["problems"] == []
        assert integ["read"] == integ["declared"] and set(integ["read"].values()) == {N}


def test_rows_missing_from_a_sqlite3_bag_are_counted(make_bag, tmp_path, capsys):
    bag = make_bag("bag", storage="sqlite3", n=N)
    (db,) = bag.glob("*.db3")
    with sqlite3.connect(db) as con:
        (tid,) = con.execute("SELECT id FROM topics WHERE name = '/puppet/joint_left'").fetchone()
        con.execute("DELETE FROM messages WHERE topic_id = ? AND id % 7 = 0", (tid,))
        lost = (
            N
            - con.execute("SELECT COUNT(*) FROM messages WHERE topic_id = ?", (tid,)).fetchone()[0]
        )
    assert lost > 0
    assert _replay(bag, tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert f"damaged bag, {lost} mapped messages lost" in err, err
    assert f"/puppet/joint_left: {N - lost} of {N} messages read (metadata.yaml)" in err, err


def test_a_folder_without_metadata_yaml_is_a_clear_error(make_bag, tmp_path, capsys):
    """Before: a traceback from rosbags' reader."""
    bag = make_bag("bag", storage="mcap", n=N)
    (bag / "metadata.yaml").unlink()
    assert _replay(bag, tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert f"{bag}: no metadata.yaml" in err and "ros2 bag reindex" in err, err
    assert "bag.mcap" in err  # what the folder holds


def test_changed_bytes_inside_a_crc_protected_chunk_are_found(make_bag, tmp_path, capsys):
    """``ros2 bag record`` stores chunk CRCs (the mcap library's writer does by default): a
    changed pixel keeps every count right, only the CRC tells. The bag is rewritten here with
    the mcap library's writer (chunk CRCs on), metadata.yaml kept."""
    from mcap.reader import make_reader
    from mcap.writer import CompressionType, Writer

    bag = make_bag("bag", storage="mcap", n=N)
    (f,) = bag.glob("*.mcap")
    with f.open("rb") as src:
        reader = make_reader(src)
        summary = reader.get_summary()
        records = list(reader.iter_messages())
    out = f.with_suffix(".tmp")
    with out.open("wb") as dst:
        w = Writer(dst, compression=CompressionType.NONE)  # chunk CRCs: the default
        w.start(profile="ros2", library="test")
        for sid, sch in summary.schemas.items():
            w.register_schema(sch.name, sch.encoding, sch.data)  # ids restart at 1, in order
            assert sid == len([s for s in summary.schemas if s <= sid])
        for ch in summary.channels.values():
            w.register_channel(ch.topic, ch.message_encoding, ch.schema_id, ch.metadata)
        for _, ch, msg in records:
            w.add_message(ch.id, msg.log_time, msg.data, msg.publish_time, msg.sequence)
        w.finish()
    out.replace(f)
    assert _replay(bag, tmp_path / "sound") == 0  # the rewritten bag is sound
    data = bytearray(f.read_bytes())
    pixel = bytes([2 * 30]) * 64  # frame 30's constant pixels, inside its Image data
    at = data.index(pixel)
    data[at : at + 16] = bytes(16)
    f.write_bytes(bytes(data))
    assert _replay(bag, tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert "damaged bag" in err and "CRC" in err.upper(), err


@pytest.mark.parametrize("garbage", [b"", b"\x00" * 8])
def test_truncated_mcap_is_an_error(make_bag, tmp_path, capsys, garbage):
    bag = make_bag("bag", storage="mcap", n=N)
    (f,) = bag.glob("*.mcap")
    data = f.read_bytes()
    f.write_bytes(data[: len(data) * 2 // 3] + garbage)
    assert _replay(bag, tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert f"motus-eval replay: {bag}:" in err and "Traceback" not in err, err
