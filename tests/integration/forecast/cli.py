"""The ``foresight`` CLI as a subprocess, and polling, for the forecasting integration tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

__all__ = ["foresight", "wait_for"]


def foresight(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``foresight ARGS`` with this interpreter (the installed package), capturing its output."""
    return subprocess.run(
        [sys.executable, "-m", "foresight.cli", *args],
        capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})},
    )  # fmt: skip


def wait_for(fn: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    """Poll ``fn`` until it returns something truthy and return that; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.3)
