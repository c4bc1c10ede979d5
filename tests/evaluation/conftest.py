"""Fixtures for the evaluation tests (bag writers live in bagfiles.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from bagfiles import write_bag


@pytest.fixture
def make_bag(tmp_path):
    """``make_bag(name, **kwargs)`` -> bag folder under tmp_path (see ``bagfiles.write_bag``)."""

    def _make(name: str = "bag", **kwargs) -> Path:
        return write_bag(tmp_path / name, **kwargs)

    return _make
