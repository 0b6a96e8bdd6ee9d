"""Real Prometheus and Pushgateway servers for tests (Debian packages, no Docker).

A thin pytest layer over :mod:`foresight.run.localprom`, which launches, backfills, waits for and
stops the servers (the same code ``foresight demo`` runs). What this adds:

- :func:`ensure_installed` installs ``prometheus`` and ``prometheus-pushgateway`` with apt when
  missing. Without apt (or without root) it skips the test, except under ``CI=true`` where a
  missing server fails it: CI must not pass by testing nothing.
- :func:`backfill` and :meth:`start` call :func:`ensure_installed` first, so a test without the
  binaries skips (or fails in CI) instead of erroring.
- :class:`PrometheusServer` defaults for tests: scrapes and rule evaluation every second, the
  remote-write receiver and lifecycle API on.

:func:`openmetrics` and :func:`free_port` are re-exported from the runtime module unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from foresight.run import localprom
from foresight.run.localprom import BINARIES, free_port, openmetrics

from tests.servers import unavailable

__all__ = [
    "BINARIES",
    "PrometheusServer",
    "PushgatewayServer",
    "backfill",
    "ensure_installed",
    "free_port",
    "openmetrics",
]


def ensure_installed() -> None:
    """Make sure the Prometheus binaries exist, installing the Debian packages if needed.

    Skips the calling test when they cannot be installed here, or fails it under ``CI=true``.
    """
    reason = localprom.install()
    if reason is None:
        return
    unavailable("Prometheus (prometheus, promtool, prometheus-pushgateway)", reason)


def backfill(openmetrics_text: str, data_dir: Path) -> list[Path]:
    """Write ``openmetrics_text`` as TSDB blocks into ``data_dir`` (before Prometheus starts).

    Returns the block directories created.
    """
    ensure_installed()
    return localprom.backfill(openmetrics_text, data_dir, timeout=120)


class PushgatewayServer(localprom.LocalPushgateway):
    """``prometheus-pushgateway`` with its persistence file inside ``workdir``."""

    def start(self, timeout: float = 30.0) -> None:
        ensure_installed()
        super().start(timeout)


class PrometheusServer(localprom.LocalPrometheus):
    """Prometheus with its TSDB in ``data_dir`` (backfill blocks there before :meth:`start`).

    Args:
        data_dir: the TSDB directory; the config and log go next to it.
        config: extra top-level ``prometheus.yml`` content (merged over the defaults).
        port: fixed port, or a free one.
        out_of_order_time_window: e.g. ``"30d"``; needed to accept future-timestamped remote writes
            without breaking later scrapes (see FACTS.md).
        pushgateway: a Pushgateway to scrape every second with ``honor_labels: true``.
        scrape_interval: for the Pushgateway job.
    """

    def __init__(
        self,
        data_dir: Path,
        config: Mapping[str, Any] | None = None,
        port: int | None = None,
        *,
        out_of_order_time_window: str | None = None,
        pushgateway: localprom.LocalPushgateway | None = None,
        scrape_interval: str = "1s",
    ) -> None:
        super().__init__(
            data_dir,
            port=port,
            pushgateway=pushgateway,
            scrape_interval=scrape_interval,
            evaluation_interval="1s",
            out_of_order_time_window=out_of_order_time_window,
            config=config,
            remote_write_receiver=True,
            lifecycle=True,
        )

    def start(self, timeout: float = 30.0) -> None:
        ensure_installed()
        super().start(timeout)
