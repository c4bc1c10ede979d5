"""A plain `colcon build` install space of this package, built once per test worker.

colcon comes from PyPI in its own venv (scripts/setup_colcon.sh). The package is copied out of
the repository first, so the installed code cannot fall back to the source tree. The
environment is what sourcing ``install/setup.bash`` gives (AMENT_PREFIX_PATH, PYTHONPATH) with
this interpreter's folder first on PATH, so the executables' ``#!/usr/bin/env python3`` (setup.cfg)
runs them with the project's dependencies, as an activated venv would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class InstallSpace:
    """A colcon install space of motus_policy (absolute paths)."""

    workspace: Path
    install: Path  # install/motus_policy
    share: Path  # install/motus_policy/share/motus_policy
    site: Path  # install/motus_policy/lib/python3.X/site-packages
    executables: Path  # install/motus_policy/lib/motus_policy (where `ros2 run` looks)
    build_output: str

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """``base`` (default os.environ) as after sourcing this install space's setup.bash."""
        env = dict(os.environ if base is None else base)
        env["AMENT_PREFIX_PATH"] = str(self.install)
        env["PYTHONPATH"] = str(self.site)
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        env.pop("MOTUS_SHARE_DIR", None)
        return env


def copy_package(dst: Path) -> None:
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


def build_install_space(workspace: Path) -> InstallSpace:
    """Copy the package into ``workspace/src`` and ``colcon build`` it (no symlink install).

    Raises:
        subprocess.CalledProcessError: colcon could not be installed.
        AssertionError: the build failed (the message holds colcon's output).
    """
    colcon = (
        subprocess.run(
            [str(REPO / "scripts" / "setup_colcon.sh")], check=True, capture_output=True, text=True
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    copy_package(workspace / "src" / "motus_policy")
    build = subprocess.run(
        [colcon, "build", "--event-handlers", "console_direct-"],
        cwd=workspace,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = build.stdout + build.stderr
    assert build.returncode == 0, out[-6000:]
    install = workspace / "install" / "motus_policy"
    return InstallSpace(
        workspace=workspace,
        install=install,
        share=install / "share" / "motus_policy",
        site=next(install.glob("lib/python3*/site-packages")),
        executables=install / "lib" / "motus_policy",
        build_output=out,
    )


@pytest.fixture(scope="session")
def colcon_install(tmp_path_factory) -> InstallSpace:
    """One plain colcon install space per test worker (built in a few seconds once colcon is)."""
    if shutil.which("git") is None:
        pytest.skip("git is needed to list the package's files")
    return build_install_space(tmp_path_factory.mktemp("colcon_ws"))
