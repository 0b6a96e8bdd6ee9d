"""Real servers for integration and end-to-end tests, started on 127.0.0.1 and stopped by their owner.

- :mod:`tests.servers.prometheus`: Prometheus and Pushgateway (Debian packages), history backfill
  with ``promtool``, and the apt-based installer that skips or fails cleanly.
- :func:`unavailable`: what every test does when a server or binary is missing here: skip, or fail
  under ``CI=true``.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

__all__ = ["unavailable"]


def unavailable(what: str, why: str) -> NoReturn:
    """Skip the calling test because ``what`` is missing here, or fail it under ``CI=true``.

    CI must never pass by testing nothing: there a missing server or binary is a failure.
    """
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{what} is required under CI=true and is unavailable: {why}")
    pytest.skip(f"{what} unavailable: {why}")
