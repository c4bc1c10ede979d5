"""A plain (non-editable, non-symlink) install finds its data the installed way.

`pip install --prefix P .` lays files out as a plain `colcon build` of an ament_python package
does: code in P/lib/python3.X/site-packages, data files (profiles, bring-ups, DDS profile, the
embedded checkpoint) in P/share/motus_policy. The installed code, run from outside the source
tree, must find every one of them there, and load the embedded checkpoint by its short name.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes.colcon import copy_package

REPO = Path(__file__).resolve().parents[2]

PROBE = r"""
import json, sys
from pathlib import Path
import motus_policy, motus_recorder
from motus_recorder.share import share_dir, embedded_checkpoint_dir
from motus_recorder.profile import load_profile
from motus_policy.bringup import load_bringup
from motus_policy.bringup.runner import bringup_env
from motus_policy.backends.motus import MotusBackend

profile = load_profile("aloha_sim")
sim = load_bringup("sim")
files = [str(f) for n in sim.resolve() for f in n.parameter_files]
backend = MotusBackend(profile, "aloha_sim_tiny")
print(json.dumps({
    "code": motus_policy.__file__,
    "share": str(share_dir()),
    "checkpoint": str(embedded_checkpoint_dir()),
    "backend_checkpoint": backend.checkpoint,
    "action_rate_hz": backend.action_rate_hz if hasattr(backend, "action_rate_hz") else None,
    "parameter_files": files,
    "dds": bringup_env({})["FASTRTPS_DEFAULT_PROFILES_FILE"],
    "sim_checkpoint_default": {a.name: a.default for a in sim.arguments}["checkpoint"],
}))
"""


@pytest.mark.slow
def test_plain_install_finds_profiles_bringups_dds_and_checkpoint(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git is needed to list the tracked files")
    src = tmp_path / "src"
    copy_package(src)
    prefix = tmp_path / "prefix"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--ignore-installed",  # never uninstall the dev venv's editable install
         "--prefix", str(prefix), str(src)],
        check=True,
        capture_output=True,
        text=True,
    )  # fmt: skip
    site = next(prefix.glob("lib/python3*/site-packages"))
    share = prefix / "share" / "motus_policy"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MOTUS_SHARE_DIR")}
    env["PYTHONPATH"] = str(site)
    env.pop("AMENT_PREFIX_PATH", None)  # found from the code's own prefix, not the ament index
    run = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=tmp_path,  # outside any source tree
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert Path(got["code"]).is_relative_to(site), got["code"]
    assert Path(got["share"]) == share
    assert Path(got["checkpoint"]) == share / "checkpoints" / "aloha_sim_tiny"
    assert Path(got["backend_checkpoint"]) == share / "checkpoints" / "aloha_sim_tiny"
    assert (share / "checkpoints" / "aloha_sim_tiny" / "model.safetensors").is_file()
    assert got["parameter_files"] and all(
        Path(f).is_relative_to(share) and Path(f).is_file() for f in got["parameter_files"]
    )
    assert Path(got["dds"]) == share / "config" / "dds" / "fastdds_shm.xml"
    assert got["sim_checkpoint_default"] == "aloha_sim_tiny"  # the trained one, so the arm moves
    # the checkpoint is installed once, as data, not also inside the Python package
    assert not (site / "motus_policy" / "checkpoints").exists()


def test_share_dir_override_must_hold_the_data(tmp_path, monkeypatch):
    from motus_recorder.share import share_dir

    monkeypatch.setenv("MOTUS_SHARE_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="expected a folder holding config/robots"):
        share_dir()
    (tmp_path / "config" / "robots").mkdir(parents=True)
    assert share_dir() == tmp_path.resolve()


def test_unknown_short_checkpoint_name_lists_the_shipped_ones():
    from motus_recorder.share import embedded_checkpoint_dir

    with pytest.raises(
        FileNotFoundError, match=r"no shipped checkpoint 'nope'; shipped: \['aloha_sim_tiny'\]"
    ):
        embedded_checkpoint_dir("nope")
