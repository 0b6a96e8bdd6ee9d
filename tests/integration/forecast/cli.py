"""The ``foresight`` CLI as a subprocess, for the forecasting integration tests."""

from __future__ import annotations

import os
import subprocess
import sys

__all__ = ["foresight"]


def foresight(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``foresight ARGS`` with this interpreter (the installed package), capturing its output."""
    return subprocess.run(
        [sys.executable, "-m", "foresight.cli", *args],
        capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})},
    )  # fmt: skip
