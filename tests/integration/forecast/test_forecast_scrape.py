"""``output.mode: scrape`` end to end: ``foresight serve forecasts`` and ``foresight run`` as child
processes, a real Prometheus that holds the history and scrapes the server.

The server starts before any run (Prometheus scrapes an empty exposition: the target is up, no
forecast series), then a run writes the exposition into the task's local store and the forecasts
appear in Prometheus with the same families and labels as in pushgateway mode, plus the scrape's
``job`` and ``instance``; a second run's forecasts replace the first's.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
import yaml

from tests.integration.forecast.cli import foresight
from tests.polling import wait_for
from tests.servers.prometheus import PrometheusServer, free_port, openmetrics

pytestmark = pytest.mark.integration

STEP = 3600
HOURS = 8 * 24
TASK = "quota-scrape"
NAMESPACE = "sre-scrape"
JOB = "foresight-forecasts"


def history(now: int) -> str:
    """alice cycles around 80 % of a 100-byte quota; dave ramps to 95 about 5 h after the last sample."""
    hours = np.arange(HOURS)
    ts = (now - STEP * (HOURS - 1 - hours)).tolist()
    alice = (80 + 2 * np.sin(2 * np.pi * hours / 24)).tolist()
    dave = (94.0 - 0.2 * (HOURS - 1 - hours)).tolist()
    used = [
        ({"user": "alice", "cluster": "east"}, list(zip(ts, alice, strict=True))),
        ({"user": "dave", "cluster": "east"}, list(zip(ts, dave, strict=True))),
    ]
    quota = [({"user": u, "cluster": "east"}, [(int(t), 100.0) for t in ts]) for u in ("alice", "dave")]
    return openmetrics({"sc_used_bytes": ("gauge", used), "sc_quota_bytes": ("gauge", quota)})


def task_yaml(path: Path, prom: str, store: Path) -> Path:
    doc: dict[str, Any] = {
        "apiVersion": "foresight.dev/v1alpha1",
        "kind": "ForecastTask",
        "metadata": {"name": TASK, "namespace": NAMESPACE},
        "spec": {
            "source": {"url": prom, "query": "sc_used_bytes", "lookback": "168h", "step": "1h",
                       "groupBy": ["user", "cluster"]},
            "model": {"type": "auto", "candidates": ["seasonal_naive", "linear"], "backtestFolds": 2},
            "horizon": "12h",
            "threshold": {"capacity": {"query": "sc_quota_bytes"}, "ratio": 0.95},
            "output": {"mode": "scrape", "horizons": ["1h", "6h", "12h"]},
            "artifacts": {"uri": store.as_uri()},
        },
    }  # fmt: skip
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture
def server_port() -> int:
    return free_port()


@pytest.fixture
def prom(prometheus_with_history: Any, hour_now: int, server_port: int) -> PrometheusServer:
    scrape = {
        "job_name": JOB,
        "scrape_interval": "1s",
        "metrics_path": "/metrics",
        "static_configs": [{"targets": [f"127.0.0.1:{server_port}"]}],
    }
    server: PrometheusServer = prometheus_with_history(history(hour_now), config={"scrape_configs": [scrape]})
    return server


@pytest.fixture
def serve(tmp_path: Path, prom: PrometheusServer, server_port: int) -> Iterator[tuple[Path, Path]]:
    """The server as its own process (what the operator's Deployment runs), and its log."""
    task = task_yaml(tmp_path / "task.yaml", prom.url, tmp_path / "store")
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "foresight.cli", "serve", "forecasts", "-f", str(task),
             "--port", str(server_port), "--refresh", "0.5"],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        yield task, log
    finally:
        proc.terminate()
        try:
            assert proc.wait(timeout=15) == 0, log.read_text()  # SIGTERM is a clean stop
        finally:
            if proc.poll() is None:
                proc.kill()


def test_prometheus_scrapes_the_forecasts_a_scrape_mode_run_wrote(
    prom: PrometheusServer, serve: tuple[Path, Path], server_port: int
) -> None:
    task, log = serve
    up = wait_for(lambda: prom.query(f'up{{job="{JOB}"}} == 1'), "Prometheus scraping the empty server")
    assert up[0]["metric"]["instance"] == f"127.0.0.1:{server_port}"
    assert prom.query(f'foresight_forecast{{task="{TASK}"}}') == []
    assert "serving an empty one until the first run" in log.read_text()
    health = requests.get(f"http://127.0.0.1:{server_port}/healthz", timeout=5).json()
    assert (health["status"], health["written"]) == ("ok", False)

    proc = foresight("run", "-f", str(task), "--mode", "train", env={"FORESIGHT_TERMINATION_MESSAGE_PATH":
                     str(task.parent / "termination-log")})  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert '"event": "exposed"' in proc.stdout

    selector = f'foresight_time_to_threshold_seconds{{task="{TASK}",bound="point"}}'
    found = wait_for(lambda: prom.query(selector), "the served time-to-threshold scraped by Prometheus")
    by_user = {r["metric"]["user"]: r for r in found}
    assert set(by_user) == {"alice", "dave"}
    labels = by_user["dave"]["metric"]
    assert (labels["namespace"], labels["cluster"], labels["job"]) == (NAMESPACE, "east", JOB)
    assert labels["instance"] == f"127.0.0.1:{server_port}"
    assert 3 * 3600 < float(by_user["dave"]["value"][1]) < 7 * 3600
    assert by_user["alice"]["value"][1] == "+Inf"
    for name in ("foresight_forecast", "foresight_forecast_lower", "foresight_forecast_upper"):
        series = prom.query(f'{name}{{task="{TASK}",horizon="6h"}}')
        assert {r["metric"]["user"] for r in series} == {"alice", "dave"}, name
    assert prom.query(f'foresight_backtest_error{{task="{TASK}",model="linear",metric="mase",horizon="12h"}}')
    trained = prom.query(f'foresight_last_run_timestamp_seconds{{task="{TASK}",kind="train"}}')
    first_run = float(trained[0]["value"][1])
    assert abs(first_run - time.time()) < 300

    # A second run (predict with the saved model) replaces what is served.
    time.sleep(1.1)  # the run's timestamp is its clock's second
    proc = foresight("run", "-f", str(task), "--mode", "predict", env={"FORESIGHT_TERMINATION_MESSAGE_PATH":
                     str(task.parent / "termination-log")})  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    predicted = f'foresight_last_run_timestamp_seconds{{task="{TASK}",kind="predict"}} > {first_run}'
    wait_for(lambda: prom.query(predicted), "the second run's exposition scraped")
    assert wait_for(lambda: "serving the exposition" in log.read_text(), "the server's log of the new read")
