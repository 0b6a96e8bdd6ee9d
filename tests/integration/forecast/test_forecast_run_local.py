"""``foresight run -f task.yaml`` through a real Prometheus and Pushgateway.

History is backfilled with promtool; the CLI runs as a child process (the same entry point a Job
pod runs); the forecasts are checked where an SRE would look: in Prometheus, after it scraped the
Pushgateway.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from tests.integration.forecast.cli import foresight
from tests.polling import wait_for
from tests.servers.prometheus import PrometheusServer, PushgatewayServer, openmetrics

pytestmark = pytest.mark.integration

STEP = 3600
HOURS = 8 * 24
TASK = "quota-it"
NAMESPACE = "sre-it"


def history(now: int) -> str:
    """Three users cycling around 80% of a 100-byte quota and one (dave) ramping to 95 about 5 h
    after the last sample; the quota is its own metric; an extra label is aggregated away."""
    hours = np.arange(HOURS)
    ts = now - STEP * (HOURS - 1 - hours)
    used: list[tuple[dict[str, str], list[tuple[int, float]]]] = []
    quota: list[tuple[dict[str, str], list[tuple[int, float]]]] = []
    for i, user in enumerate(["alice", "bob", "carol"]):
        vals = 80 + 2 * np.sin(2 * np.pi * hours / 24) + i
        used.append(
            (
                {"user": user, "cluster": "east", "pod": "p0"},
                list(zip(ts.tolist(), vals.tolist(), strict=True)),
            )
        )
        quota.append(({"user": user, "cluster": "east"}, [(int(t), 100.0) for t in ts]))
    ramp = 94.0 - 0.2 * (HOURS - 1 - hours)  # 94 at now, +0.2 per hour: 95 at now + 5 h
    used.append(
        ({"user": "dave", "cluster": "east", "pod": "p0"}, list(zip(ts.tolist(), ramp.tolist(), strict=True)))
    )
    quota.append(({"user": "dave", "cluster": "east"}, [(int(t), 100.0) for t in ts]))
    return openmetrics({"it_used_bytes": ("gauge", used), "it_quota_bytes": ("gauge", quota)})


def task_yaml(path: Path, prom: str, gateway: str, store: Path, query: str = "it_used_bytes") -> Path:
    doc: dict[str, Any] = {
        "apiVersion": "foresight.dev/v1alpha1",
        "kind": "ForecastTask",
        "metadata": {"name": TASK, "namespace": NAMESPACE},
        "spec": {
            "source": {
                "url": prom,
                "query": query,
                "lookback": "168h",
                "step": "1h",
                "groupBy": ["user", "cluster"],
            },
            "model": {"type": "auto", "candidates": ["seasonal_naive", "linear"], "backtestFolds": 2},
            "horizon": "12h",
            "threshold": {"capacity": {"query": "it_quota_bytes"}, "ratio": 0.95},
            "output": {"mode": "pushgateway", "pushgatewayUrl": gateway, "horizons": ["1h", "6h", "12h"]},
            "artifacts": {"uri": store.as_uri()},
        },
    }
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture
def prom(prometheus_with_history: Any, hour_now: int, pushgateway: PushgatewayServer) -> PrometheusServer:
    server: PrometheusServer = prometheus_with_history(history(hour_now), pushgateway=pushgateway)
    return server


def test_local_run_pushes_forecasts_that_prometheus_scrapes_with_the_series_labels(
    prom: PrometheusServer, pushgateway: PushgatewayServer, tmp_path: Path
) -> None:
    task = task_yaml(tmp_path / "task.yaml", prom.url, pushgateway.url, tmp_path / "store")
    proc = foresight("run", "-f", str(task), "--local", "--state-dir", str(tmp_path / "state"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ForecastsWritten" in proc.stdout and "backtest 1/2: seasonal_naive" in proc.stdout
    assert "linear" in proc.stdout and "TIME-TO-95%" in proc.stdout

    selector = f'foresight_time_to_threshold_seconds{{task="{TASK}",bound="point"}}'
    found = wait_for(lambda: prom.query(selector), "the pushed time-to-threshold scraped by Prometheus")
    by_user = {r["metric"]["user"]: r for r in found}
    assert set(by_user) == {"alice", "bob", "carol", "dave"}
    labels = by_user["dave"]["metric"]
    assert labels["namespace"] == NAMESPACE and labels["cluster"] == "east" and labels["job"] == "foresight"
    assert "pod" not in labels  # grouped by user, cluster
    assert 3 * 3600 < float(by_user["dave"]["value"][1]) < 7 * 3600  # the ramp crosses 95 ~5 h out
    assert by_user["alice"]["value"][1] == "+Inf"
    forecast = prom.query(f'foresight_forecast{{task="{TASK}",horizon="6h",user="dave"}}')
    assert len(forecast) == 1 and 94.0 < float(forecast[0]["value"][1]) < 97.0
    assert prom.query(f'foresight_backtest_error{{task="{TASK}",model="linear",metric="mase",horizon="12h"}}')

    # The Job pod's way (no --local): the model saved above is fresh, so mode auto only predicts;
    # the result goes to the termination message.
    term = tmp_path / "termination-log"
    proc = foresight("run", "-f", str(task), env={"FORESIGHT_TERMINATION_MESSAGE_PATH": str(term)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    msg = json.loads(term.read_text())
    assert (msg["phase"], msg["reason"], msg["mode"], msg["seriesCount"]) == (
        "Ready",
        "ForecastsWritten",
        "predict",
        4,
    )
    assert msg["artifactUri"].startswith((tmp_path / "store").as_uri())
    assert {r["model"] for r in msg["backtest"]} >= {"auto", "linear", "seasonal_naive"}
    assert len(term.read_bytes()) <= 4096


def test_promql_syntax_error_is_reported_with_prometheus_own_message(
    prom: PrometheusServer, pushgateway: PushgatewayServer, tmp_path: Path
) -> None:
    task = task_yaml(
        tmp_path / "task.yaml", prom.url, pushgateway.url, tmp_path / "store", query="sum(it_used_bytes"
    )
    term = tmp_path / "termination-log"
    proc = foresight("run", "-f", str(task), env={"FORESIGHT_TERMINATION_MESSAGE_PATH": str(term)})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    msg = json.loads(term.read_text())
    assert (msg["phase"], msg["reason"]) == ("Failed", "PromQLError")
    assert "sum(it_used_bytes" in msg["message"] and "parse error" in msg["message"]
