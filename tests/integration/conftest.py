"""Fixtures shared by the integration tests: real servers on 127.0.0.1, stopped by the fixture
that started them.

- ``pushgateway``: one Pushgateway for the session (tests use their own grouping keys).
- ``prometheus``: one Prometheus for the session, scraping ``pushgateway`` every second with
  ``honor_labels: true``.
- ``prometheus_factory``: start extra Prometheus servers with their own config (for example an
  ``out_of_order_time_window``), stopped at the end of the test.
- ``prometheus_with_history``: start a Prometheus whose TSDB holds the given OpenMetrics history.
- ``hour_now``: the current hour (Unix seconds), taken when the test starts: the last hour of a
  backfilled history. Not a module constant: taken at collection, it fell an hour behind the run's
  clock whenever the suite crossed an hour between collecting and running a test.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# `tests.servers` is imported as a package from the repository root; pytest's default import mode
# puts only test directories on sys.path. (`pythonpath = ["."]` in pytest's config would do the same.)
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from tests.servers.prometheus import (  # noqa: E402
    PrometheusServer,
    PushgatewayServer,
    backfill,
    ensure_installed,
)


@pytest.fixture(scope="session")
def prometheus_installed() -> None:
    ensure_installed()


@pytest.fixture(scope="session")
def pushgateway(
    prometheus_installed: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PushgatewayServer]:
    with PushgatewayServer(tmp_path_factory.mktemp("pushgateway"), None) as pg:
        yield pg


@pytest.fixture(scope="session")
def prometheus(
    pushgateway: PushgatewayServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrometheusServer]:
    with PrometheusServer(tmp_path_factory.mktemp("prometheus") / "data", pushgateway=pushgateway) as prom:
        yield prom


PrometheusFactory = Callable[..., PrometheusServer]


@pytest.fixture
def prometheus_factory(prometheus_installed: None, tmp_path: Path) -> Iterator[PrometheusFactory]:
    """``start(history=None, **PrometheusServer kwargs) -> PrometheusServer``, each with a fresh
    data dir; ``history`` is OpenMetrics text backfilled before the start."""
    started: list[PrometheusServer] = []

    def start(history: str | None = None, **kwargs: Any) -> PrometheusServer:
        data = tmp_path / f"prom{len(started)}" / "data"
        if history is not None:
            backfill(history, data)
        server = PrometheusServer(data, **kwargs)
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def prometheus_with_history(prometheus_factory: PrometheusFactory) -> PrometheusFactory:
    """``start(openmetrics_text, **kwargs) -> PrometheusServer`` with that history backfilled."""

    def start(openmetrics_text: str, **kwargs: Any) -> PrometheusServer:
        return prometheus_factory(history=openmetrics_text, **kwargs)

    return start


@pytest.fixture
def hour_now() -> int:
    return int(time.time()) // 3600 * 3600
