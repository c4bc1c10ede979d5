"""A plain `colcon build` (no --symlink-install) of ros2_ws runs: nodes from install/, data from
the install space's share/motus_policy, the trained embedded checkpoint moving the simulated arm.

colcon comes from PyPI in its own venv (scripts/setup_colcon.sh). The package is copied out of
the repository first, so the installed code cannot fall back to the source tree. The nodes run
their installed executables (install/motus_policy/lib/motus_policy/<name>, as `ros2 run` does)
under the project's interpreter, with the environment sourcing install/setup.bash would give
(PYTHONPATH, AMENT_PREFIX_PATH).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _copy_package(dst: Path) -> None:
    """The files git would ship (tracked + untracked not ignored), without the ros2_ws link."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    for raw in filter(None, listed):
        rel = Path(raw.decode())
        src = REPO / rel
        if rel.parts[0] == "ros2_ws" or not src.is_file() or src.is_symlink():
            continue
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst / rel)


@pytest.mark.ros
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_plain_colcon_install_runs_the_sim_bringup(ros_env, tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git is needed to list the package's files")
    colcon = (
        subprocess.run(
            [str(REPO / "scripts" / "setup_colcon.sh")], check=True, capture_output=True, text=True
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    ws = tmp_path / "ws"
    _copy_package(ws / "src" / "motus_policy")
    build = subprocess.run(
        [colcon, "build", "--event-handlers", "console_direct-"],
        cwd=ws,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    assert "would be ignored" not in build.stdout + build.stderr  # setup.py packaging warnings
    install = ws / "install" / "motus_policy"
    share = install / "share" / "motus_policy"
    site = next(install.glob("lib/python3*/site-packages"))
    assert not (share / "config").is_symlink()  # a copy, not a symlink install
    assert (share / "checkpoints" / "aloha_sim_tiny" / "model.safetensors").is_file()
    for launch_file in ("sim.launch.py", "aloha.launch.py", "record_sim.launch.py"):
        assert (share / "launch" / launch_file).is_file()

    from benchmarks.closed_loop import run_check
    from motus_policy.bringup.runner import bringup_env

    env = bringup_env()
    env["PYTHONPATH"] = str(site)
    env["AMENT_PREFIX_PATH"] = str(install)
    env.pop("MOTUS_SHARE_DIR", None)
    reports = run_check(
        4.0,
        ("sync",),
        {"image_height": "120", "image_width": "160"},  # checkpoint: the bring-up's default
        log_dir=str(tmp_path / "logs"),
        share_dir=str(share),
        runner_kwargs={
            "env": env,
            "executable_dir": install / "lib" / "motus_policy",
        },
    )
    (rep,) = reports
    policy_log = (tmp_path / "logs" / "motus_policy.log").read_text()
    # the policy node ran the installed code on the checkpoint installed in the share
    assert f"loading Motus checkpoint {share / 'checkpoints' / 'aloha_sim_tiny'}" in policy_log
    assert rep.unsafe_commands == 0, rep.row()
    assert rep.commands >= 0.5 * 4.0 * 50, rep.row()
    assert rep.arm_travel_rad > 0.05, rep.row()  # the trained checkpoint moved the arms
    assert rep.status.get("chunks", 0) >= 2, rep.row()
