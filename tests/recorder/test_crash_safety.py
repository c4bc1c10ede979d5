"""Crash safety: real SIGKILL mid-episode and mid-commit, simulated full disk (ENOSPC)."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from motus_recorder.writers import motus_format, torch_io
from motus_recorder.writers.motus_format import (
    EpisodeWriteError,
    MotusFormatWriter,
    WriterConfig,
    committed_indices,
)
from tests.fakes.recordings import frame_at

REPO = Path(__file__).resolve().parents[2]

CHILD = """
import os, signal, sys, time
from motus_recorder.profile import load_profile
from motus_recorder.writers import motus_format
from motus_recorder.writers.motus_format import MotusFormatWriter, WriterConfig
from tests.fakes.recordings import frame_at

root, profile_path, mode = sys.argv[1:4]
prof = load_profile(profile_path)
w = MotusFormatWriter(WriterConfig(root=root, task="t"), prof)
if mode == "commit":  # die by SIGKILL after the second rename of the commit
    real, n = os.replace, [0]
    def replace(src, dst):
        real(src, dst)
        if str(dst).endswith((".mp4", ".txt", ".json", ".pt")) and "/.tmp-" not in str(dst):
            n[0] += 1
            if n[0] == 2:
                os.kill(os.getpid(), signal.SIGKILL)
    motus_format.os.replace = replace
if mode == "stat":  # die by SIGKILL while stat.json is being replaced (its tmp file written)
    real = os.replace
    def replace(src, dst):
        if str(dst).endswith("stat.json"):
            os.kill(os.getpid(), signal.SIGKILL)
        real(src, dst)
    motus_format.os.replace = replace
w.start_episode("crash test")
for k in range(8):
    w.add_frame(frame_at(prof, k))
if mode in ("commit", "stat"):
    w.save_episode()
print("RECORDING", flush=True)
time.sleep(60)
"""


def _run_child(tmp_path, profile_path, mode):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(CHILD), str(tmp_path), str(profile_path), mode],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return proc


def _visible_files(variant: Path) -> list[str]:
    return sorted(
        p.relative_to(variant).as_posix()
        for sub in ("videos", "qpos", "instructions", "meta")
        for p in (variant / sub).glob("*")
    )


@pytest.mark.timeout(60)
def test_sigkill_mid_episode_leaves_nothing_visible_and_is_cleaned(tmp_path, small_profile_path):
    proc = _run_child(tmp_path, small_profile_path, "episode")
    line = proc.stdout.readline()
    assert "RECORDING" in line, line + proc.stdout.read()
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    variant = tmp_path / "t" / "default"
    assert _visible_files(variant) == []
    assert len(list(variant.glob(".tmp-0-*"))) == 1  # the dead writer's work folder

    from motus_recorder.profile import load_profile

    prof = load_profile(small_profile_path)
    w = MotusFormatWriter(WriterConfig(root=str(tmp_path), task="t"), prof)
    assert any("removed incomplete episode .tmp-0-" in m for m in w.recovered)
    assert not list(variant.glob(".tmp-*")) and w.next_index == 0
    w.start_episode("after crash")
    w.add_frame(frame_at(prof, 0))
    assert w.save_episode() == 0  # the aborted episode did not consume an index
    w.close()


@pytest.mark.timeout(60)
def test_sigkill_mid_commit_is_completed_at_next_start(tmp_path, small_profile_path):
    proc = _run_child(tmp_path, small_profile_path, "commit")
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, out
    variant = tmp_path / "t" / "default"
    assert committed_indices(variant) == []  # qpos is renamed last: not complete yet
    assert len(_visible_files(variant)) == 2

    from motus_recorder.profile import load_profile

    w = MotusFormatWriter(
        WriterConfig(root=str(tmp_path), task="t"), load_profile(small_profile_path)
    )
    assert any("completed interrupted save" in m for m in w.recovered)
    assert committed_indices(variant) == [0]
    assert _visible_files(variant) == [
        "instructions/0.txt",
        "meta/0.json",
        "qpos/0.pt",
        "videos/0.mp4",
    ]
    assert torch_io.load_tensor(variant / "qpos" / "0.pt").shape == (8, 14)
    assert w.next_index == 1
    w.close()
    # the recovered episode is in stat.json (the killed save never got to update it)
    meta = json.loads((variant / "meta" / "0.json").read_text())
    stat = json.loads((tmp_path / "stat.json").read_text())[meta["normalization_key"]]
    assert stat == {"min": meta["qpos_min"], "max": meta["qpos_max"]}


@pytest.mark.timeout(60)
def test_sigkill_during_stat_update_leaves_no_tmp_after_next_start(tmp_path, small_profile_path):
    proc = _run_child(tmp_path, small_profile_path, "stat")
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, out
    leftovers = list(tmp_path.glob(".stat.json.*.tmp"))
    assert len(leftovers) == 1 and not (tmp_path / "stat.json").exists()

    from motus_recorder.profile import load_profile

    w = MotusFormatWriter(
        WriterConfig(root=str(tmp_path), task="t"), load_profile(small_profile_path)
    )
    w.close()
    assert not list(tmp_path.glob(".stat.json.*.tmp"))
    assert any(leftovers[0].name in m for m in w.recovered)
    meta = json.loads((tmp_path / "t" / "default" / "meta" / "0.json").read_text())
    stat = json.loads((tmp_path / "stat.json").read_text())[meta["normalization_key"]]
    assert stat == {"min": meta["qpos_min"], "max": meta["qpos_max"]}  # refreshed


def _enospc(*_a, **_k):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("where", ["qpos", "meta", "video"])
def test_full_disk_discards_episode_cleanly(tmp_path, small_profile, monkeypatch, where):
    w = MotusFormatWriter(WriterConfig(root=str(tmp_path), task="t"), small_profile)
    if where == "qpos":
        monkeypatch.setattr(torch_io, "save_tensor", _enospc)
    elif where == "meta":
        monkeypatch.setattr(motus_format, "write_text", _enospc)
    w.start_episode("full disk")
    if where == "video":
        monkeypatch.setattr(w._episode["worker"].encoder, "write", _enospc)
    for k in range(5):
        try:
            w.add_frame(frame_at(small_profile, k))
        except RuntimeError:
            break  # the encoder reported the failure on a later frame
    with pytest.raises(EpisodeWriteError, match="No space left"):
        w.save_episode()
    variant = tmp_path / "t" / "default"
    assert _visible_files(variant) == [] and not list(variant.glob(".tmp-*"))
    assert not w.recording and w.next_index == 0
    monkeypatch.undo()
    w.start_episode("disk freed")
    for k in range(3):
        w.add_frame(frame_at(small_profile, k))
    assert w.save_episode() == 0
    w.close()


def test_orphan_parts_are_set_aside_not_mixed_into_the_next_episode(tmp_path, small_profile):
    variant = tmp_path / "t" / "default"
    (variant / "videos").mkdir(parents=True)
    (variant / "videos" / "0.mp4").write_bytes(b"stray")
    w = MotusFormatWriter(WriterConfig(root=str(tmp_path), task="t"), small_profile)
    assert any("moved orphan videos/0.mp4" in m for m in w.recovered)
    assert not (variant / "videos" / "0.mp4").exists()
    assert [p.read_bytes() for p in (variant / ".orphans").iterdir()] == [b"stray"]
    w.close()


def test_full_disk_on_stat_update_keeps_the_saved_episode(tmp_path, small_profile, monkeypatch):
    from motus_recorder import stats

    w = MotusFormatWriter(WriterConfig(root=str(tmp_path), task="t"), small_profile)
    w.start_episode("stat fails")
    w.add_frame(frame_at(small_profile, 0))
    monkeypatch.setattr(stats.json, "dump", _enospc)
    assert w.save_episode() == 0  # the episode is complete; only the statistics lag
    w.close()
    assert committed_indices(tmp_path / "t" / "default") == [0]
    assert not (tmp_path / "stat.json").exists() and not list(tmp_path.glob(".stat.json.*"))


LOOP_CHILD = """
import sys
from motus_recorder.profile import load_profile
from motus_recorder.writers.motus_format import MotusFormatWriter, WriterConfig
from tests.fakes.recordings import frame_at

root, profile_path = sys.argv[1:3]
prof = load_profile(profile_path)
w = MotusFormatWriter(WriterConfig(root=root, task="t"), prof)
print("READY", flush=True)
while True:  # record and save episodes until killed
    w.start_episode("loop")
    for k in range(6):
        w.add_frame(frame_at(prof, k))
    w.save_episode()
    print("SAVED", flush=True)
"""


@pytest.mark.timeout(120)
def test_sigkill_at_random_moments_never_exposes_a_partial_episode(tmp_path, small_profile_path):
    """Kill a writer that records and saves in a loop at seeded random moments, 6 times."""
    import random

    from motus_recorder.dataset import validate
    from motus_recorder.profile import load_profile

    rng = random.Random(7)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    prof = load_profile(small_profile_path)
    variant = tmp_path / "t" / "default"
    for trial in range(6):
        proc = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(LOOP_CHILD), str(tmp_path), str(small_profile_path)],  # noqa: E501
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        assert "READY" in proc.stdout.readline()
        if trial % 2:  # odd trials: after at least one committed episode, mid-loop
            assert "SAVED" in proc.stdout.readline()
        try:
            proc.wait(rng.uniform(0.0, 0.4))
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert proc.returncode == -signal.SIGKILL, proc.stdout.read()
        # A new writer reports / cleans leftovers; what readers see is complete and contiguous.
        w = MotusFormatWriter(WriterConfig(root=str(tmp_path), task="t"), prof)
        w.close()
        assert not list(variant.glob(".tmp-*")), f"trial {trial}: leftovers not cleaned"
        idx = committed_indices(variant)
        assert idx == list(range(len(idx))), f"trial {trial}: indices {idx}"
        assert not list(tmp_path.glob(".stat.json.*.tmp")), f"trial {trial}: stat tmp left"
        n, errors = validate(tmp_path)
        if not idx:  # killed before the first save: an empty dataset is not valid
            assert n == 0 and len(errors) == 1 and "no complete episode" in errors[0]
        else:
            assert errors == [] and n == len(idx), (trial, errors)
    assert len(idx) > 0  # kills landed between and inside saves, not only before the first
