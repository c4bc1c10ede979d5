"""Building the project prints no setuptools packaging warnings (issue #15 §7: ``package_data``
printed four "Package would be ignored" warnings on every build) and ships the installed data
(launch files, profiles, bring-ups, DDS profile, embedded checkpoint) in the wheel."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_wheel_builds_without_packaging_warnings(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "-w", str(tmp_path), "--no-deps",
         "--no-build-isolation", "-v"],
        capture_output=True, text=True, timeout=240, cwd=REPO,
    )  # fmt: skip
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-4000:]
    for bad in ("would be ignored", "SetuptoolsDeprecationWarning", "Installing '"):
        assert bad not in out, [line for line in out.splitlines() if bad in line][:8]
    (wheel,) = tmp_path.glob("motus_policy-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    share = [n.split(".data/data/", 1)[1] for n in names if ".data/data/" in n]
    for want in ("share/motus_policy/package.xml", "share/motus_policy/config/robots/",
                 "share/motus_policy/config/bringup/", "share/motus_policy/launch/",
                 "share/motus_policy/config/dds/", "share/motus_policy/checkpoints/"):  # fmt: skip
        assert any(n.startswith(want) for n in share), (want, share[:20])
