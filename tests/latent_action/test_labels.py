"""``label-latent``: latent actions beside each episode, crash-safe, read by the stage-2 loader."""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from motus_policy.latent_action.flow import FlowConfig
from motus_policy.latent_action.labels import LatentActionLabeler, label_dataset
from motus_policy.latent_action.layout import (
    LATENT_DIR,
    latent_episodes,
    latent_path,
    read_latent_actions,
)
from motus_policy.latent_action.vae import LatentActionVAE, LatentActionVAEConfig
from motus_policy.training.data import MotusEpisodeDataset
from motus_recorder.dataset import EpisodeFileError
from tests.fakes.datasets import EPISODE_FRAMES

REPO = Path(__file__).resolve().parents[2]
TASK = "tiny_task/default"


@pytest.fixture(scope="module")
def vae_dir(tmp_path_factory) -> Path:
    """An untrained tiny VAE folder with its flow settings (labels need no trained weights)."""
    torch.manual_seed(0)
    flow = dataclasses.asdict(FlowConfig(image_hw=(64, 64), output_hw=(32, 32)))
    return LatentActionVAE(LatentActionVAEConfig.tiny()).save(
        tmp_path_factory.mktemp("la_vae"), extra={"flow": flow}
    )


@pytest.fixture
def data(tiny_dataset, tmp_path) -> Path:
    """A private copy of the tiny dataset (3 episodes of 60, 64, 56 frames)."""
    return Path(shutil.copytree(tiny_dataset, tmp_path / "root"))


def _stage2_dataset(root: Path) -> MotusEpisodeDataset:
    return MotusEpisodeDataset(
        [root], None, action_chunk=8, downsample=6, video_ratio=1, video_frames=8,
        image_hw=(128, 96), text_len=8, require_embedding=False,
        index_rule="latent_action", action_source="latent_action",
    )  # fmt: skip


def test_labels_are_written_beside_each_episode_and_read_by_the_stage2_loader(data, vae_dir):
    labeler = LatentActionLabeler(vae_dir)
    s = label_dataset([data], labeler)
    assert len(s.written) == 3 and s.skipped == 0
    for i, n in enumerate(EPISODE_FRAMES):
        lat = read_latent_actions(latent_path(data / TASK, i))
        assert lat.shape == (n - 1, 14) and lat.dtype == np.float32
    # deterministic (posterior mean) and skipped on a rerun unless forced
    again = label_dataset([data], labeler)
    assert again.written == [] and again.skipped == 3
    first = read_latent_actions(latent_path(data / TASK, 0))
    label_dataset([data], labeler, force=True)
    np.testing.assert_array_equal(read_latent_actions(latent_path(data / TASK, 0)), first)
    # the stage-2 loader: targets are the latent rows at c + 6 i
    ds = _stage2_dataset(data)
    item = ds.sample(0, c=3)
    assert item["action_indices"] == [3 + 6 * i for i in range(8)]
    np.testing.assert_array_equal(item["action_sequence"].numpy(), first[item["action_indices"]])
    assert torch.count_nonzero(item["initial_state"]) == 0
    assert item["video_frames"].shape == (8, 3, 128, 96)


def test_episodes_without_qpos_are_labeled_and_trained_on(data, vae_dir):
    (data / TASK / "qpos" / "1.pt").unlink()  # an unlabeled video episode
    label_dataset([data], LatentActionLabeler(vae_dir))
    assert latent_path(data / TASK, 1).is_file()
    ds = _stage2_dataset(data)
    assert [i for _, i in ds.episodes] == [0, 1, 2]
    assert ds.n_frames(1) == EPISODE_FRAMES[1]
    assert ds.sample(1, c=0)["action_sequence"].shape == (8, 14)


def test_loader_refuses_latent_files_that_do_not_fit_the_video(data, vae_dir):
    label_dataset([data], LatentActionLabeler(vae_dir))
    bad = latent_path(data / TASK, 2)
    torch.save(torch.zeros(10, 14), bad)  # 10 rows for a 56-frame video
    ds = _stage2_dataset(data)
    with pytest.raises(EpisodeFileError, match="expected frames - 1"):
        ds.sample(2, c=0)
    torch.save(torch.full((55, 14), float("nan")), bad)
    with pytest.raises(EpisodeFileError, match="non-finite value at row 0, dim 0"):
        _stage2_dataset(data).sample(2, c=0)
    torch.save({"latent_action": torch.ones(55, 14)}, bad)  # the official dict form
    assert _stage2_dataset(data).sample(2, c=0)["action_sequence"].eq(1).all()


def test_no_labels_is_a_clear_error(data):
    with pytest.raises(ValueError, match="label-latent"):
        _stage2_dataset(data)


_CHILD = textwrap.dedent(
    """
    import sys, time
    import motus_policy.latent_action.labels as labels

    real, calls = labels.write_tensor, []

    def slow_write(f, array, torch_dtype=None):
        calls.append(1)
        if len(calls) == 2:  # the second episode: half a file, then hang until killed
            f.write(b"PARTIAL" * 100)
            f.flush()
            print("MID_WRITE", flush=True)
            time.sleep(120)
        real(f, array, torch_dtype)

    labels.write_tensor = slow_write
    labels.label_dataset([sys.argv[1]], labels.LatentActionLabeler(sys.argv[2]))
    """
)


def test_a_run_killed_mid_write_leaves_no_partial_file_and_a_rerun_completes(data, vae_dir):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(data), str(vae_dir)],
        stdout=subprocess.PIPE, text=True, env=env, start_new_session=True,
    )  # fmt: skip
    try:
        line = child.stdout.readline()
        assert line.strip() == "MID_WRITE", line
        os.killpg(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=30)
    folder = data / TASK / LATENT_DIR
    names = sorted(p.name for p in folder.iterdir())
    assert "0.pt" in names and "1.pt" not in names and "2.pt" not in names
    leftovers = [n for n in names if n.endswith(".tmp")]
    assert len(leftovers) == 1 and leftovers[0].startswith(".1.pt.")  # hidden, not <i>.pt
    assert [i for _, i in latent_episodes([data])] == [0]
    assert [i for _, i in _stage2_dataset(data).episodes] == [0]
    # rerun: the stale temporary file goes, the rest is written, episode 0 is kept
    s = label_dataset([data], LatentActionLabeler(vae_dir))
    assert [p.name for p in s.written] == ["1.pt", "2.pt"] and s.skipped == 1
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]
    assert [i for _, i in _stage2_dataset(data).episodes] == [0, 1, 2]


def test_motus_dataset_label_latent_runs_the_labeler(data, vae_dir):
    cmd = [sys.executable, "-m", "motus_recorder.cli", "label-latent", str(data)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([*cmd, "--vae", str(vae_dir)], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert "3 latent-action file(s) written" in out.stdout
    bad = subprocess.run([*cmd, "--vae", str(data)], capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and "latent_action_vae.json" in bad.stderr
