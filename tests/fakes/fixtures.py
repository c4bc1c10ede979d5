"""Shared pytest fixtures (registered by tests/conftest.py): bags, profiles, tiny datasets."""

from __future__ import annotations

from pathlib import Path

import pytest

from motus_recorder.profile import RobotProfile, load_profile
from tests.fakes.bags import write_bag
from tests.fakes.datasets import write_tiny_dataset
from tests.fakes.recordings import write_small_profile


@pytest.fixture
def make_bag(tmp_path):
    """``make_bag(name, **kwargs)`` -> bag folder under tmp_path (see ``bags.write_bag``)."""

    def _make(name: str = "bag", **kwargs) -> Path:
        return write_bag(tmp_path / name, **kwargs)

    return _make


@pytest.fixture
def small_profile_path(tmp_path) -> Path:
    """A copy of the sim profile with small cameras, written under tmp_path."""
    return write_small_profile(tmp_path / "aloha_sim_small.yaml")


@pytest.fixture
def small_profile(small_profile_path) -> RobotProfile:
    """The small-camera profile, loaded."""
    return load_profile(small_profile_path)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """Session-wide read-only tiny dataset root."""
    return write_tiny_dataset(tmp_path_factory.mktemp("motus_data") / "root")
