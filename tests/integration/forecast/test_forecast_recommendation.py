"""Capacity recommendations from forecasts through ``foresight run --local`` and a real Prometheus.

The lightweight deployment's way, end to end: ``foresight run -f modellibrary.yaml --local`` fetches,
verifies and activates the built-in ``postgresql-oltp`` library under the state directory; a
ForecastTask with ``spec.recommendation`` run with the same state directory forecasts a database's
load from a real Prometheus (backfilled: a steady QPS and a data size growing fast), pushes to a real
Pushgateway, and the recommendation gauges come back from Prometheus after it scraped them, with
the architecture the predicted load needs next to today's.
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
HOURS = 7 * 24
TASK = "orders-db"
NAMESPACE = "shop"
GB = 1e9


def history(now: int) -> str:
    """5,000 QPS steadily; 500 GB now, growing 200 GB an hour (about 2.9 TB in 12 h)."""
    ts = now - STEP * np.arange(HOURS)[::-1]
    before = (ts[-1] - ts) / STEP
    qps = [(int(t), 5000.0) for t in ts]
    size = [(int(t), float(500 * GB - 200 * GB * b)) for t, b in zip(ts, before, strict=True)]
    series = [({"signal": "qps", "service": "orders"}, qps), ({"signal": "bytes", "service": "orders"}, size)]
    return openmetrics({"db_load": ("gauge", series)})


def library_yaml(path: Path) -> Path:
    doc = {
        "apiVersion": "foresight.dev/v1alpha1",
        "kind": "ModelLibrary",
        "metadata": {"name": "pg", "namespace": NAMESPACE},
        "spec": {"source": {"builtin": "postgresql-oltp"}, "version": "2026.12"},
    }
    path.write_text(yaml.safe_dump(doc))
    return path


def task_yaml(path: Path, prom: str, gateway: str) -> Path:
    doc: dict[str, Any] = {
        "apiVersion": "foresight.dev/v1alpha1",
        "kind": "ForecastTask",
        "metadata": {"name": TASK, "namespace": NAMESPACE},
        "spec": {
            "source": {"url": prom, "query": "db_load", "lookback": "168h", "step": "1h",
                       "groupBy": ["signal", "service"]},
            "model": {"type": "linear", "backtestFolds": 1},
            "horizon": "12h",
            "output": {"mode": "pushgateway", "pushgatewayUrl": gateway, "horizons": ["12h"]},
            "recommendation": {
                "library": "postgresql-oltp",
                "inputs": {
                    "qps": {"series": {"signal": "qps"}},
                    "total_data_size_gb": {"series": {"signal": "bytes"}, "scale": 1e-9, "bound": "upper"},
                },
                "constants": {"need_high_availability": True},
            },
        },
    }  # fmt: skip
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture
def prom(prometheus_with_history: Any, hour_now: int, pushgateway: PushgatewayServer) -> PrometheusServer:
    server: PrometheusServer = prometheus_with_history(history(hour_now), pushgateway=pushgateway)
    return server


def test_a_forecasttask_naming_an_active_library_writes_the_recommendation_to_prometheus(
    prom: PrometheusServer, pushgateway: PushgatewayServer, tmp_path: Path
) -> None:
    state = str(tmp_path / "state")
    proc = foresight("run", "-f", str(library_yaml(tmp_path / "lib.yaml")), "--local", "--state-dir", state)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Active" in proc.stdout and "leave-one-out" in proc.stdout

    task = task_yaml(tmp_path / "task.yaml", prom.url, pushgateway.url)
    proc = foresight("run", "-f", str(task), "--local", "--state-dir", state)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Recommendation:     Recommended" in proc.stdout and "distributed" in proc.stdout

    selector = f'foresight_recommended_nodes{{task="{TASK}",namespace="{NAMESPACE}"}}'
    found = wait_for(lambda: prom.query(selector), "the pushed recommendation scraped by Prometheus")
    by_load = {r["metric"]["load"]: r["metric"] | {"value": float(r["value"][1])} for r in found}
    assert set(by_load) == {"predicted", "current"}
    assert by_load["predicted"]["architecture"] == "distributed"
    assert by_load["current"]["architecture"] == "primary_standby"
    assert by_load["predicted"]["value"] > by_load["current"]["value"] >= 2
    assert by_load["predicted"]["library"] == "postgresql-oltp" and by_load["predicted"]["horizon"] == "12h"
    changed = prom.query(f'foresight_recommendation_changed{{task="{TASK}"}}')
    assert [float(r["value"][1]) for r in changed] == [1.0]
    cost = prom.query(f'foresight_recommended_cost{{task="{TASK}",load="predicted"}}')
    assert cost and cost[0]["metric"]["currency"] == "USD" and float(cost[0]["value"][1]) > 0

    # The Job pod's way (no --local): the recommendation travels in the termination message.
    term = tmp_path / "termination-log"
    env = {"FORESIGHT_TERMINATION_MESSAGE_PATH": str(term), "FORESIGHT_PVC_ROOT": str(Path(state) / "pvc")}
    proc = foresight("run", "-f", str(task), env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rec = json.loads(term.read_text())["recommendation"]
    assert (rec["reason"], rec["changed"], rec["predicted"]["architecture"]) == (
        "Recommended",
        True,
        "distributed",
    )
    assert len(rec["predicted"]["cases"]) == 5 and rec["libraryVersion"] == "2026.12"
