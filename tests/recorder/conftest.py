"""Fixtures for recorder tests: a small-camera profile."""

from __future__ import annotations

from pathlib import Path

import pytest

from motus_recorder.profile import RobotProfile, load_profile
from tests.recorder.recorder_fixtures import write_small_profile


@pytest.fixture
def small_profile_path(tmp_path) -> Path:
    return write_small_profile(tmp_path / "aloha_sim_small.yaml")


@pytest.fixture
def small_profile(small_profile_path) -> RobotProfile:
    return load_profile(small_profile_path)
