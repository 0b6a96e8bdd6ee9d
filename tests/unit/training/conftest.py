"""Fixtures of the training runtime's unit tests."""

from __future__ import annotations

import io
from pathlib import Path

import pytest


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    """A single-process environment whose termination log is a temp file."""
    return {"FORESIGHT_TERMINATION_LOG": str(tmp_path / "termination-log")}


@pytest.fixture
def stdout() -> io.StringIO:
    return io.StringIO()
