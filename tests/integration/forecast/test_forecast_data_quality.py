"""Data a ForecastTask refuses to misread, through ``foresight run`` against a real Prometheus.

One history, backfilled with promtool, holds one user per class next to a normal one: bob's data
stopped 6 h ago (stale), carol has negative samples of a quantity declared non-negative, dave one
absurd sample, erin a quota of 0 and frank none at all, gina declines towards 0 (her band would go
below it). The run (the CLI as a child process, as a Job pod runs it) must name each of them in
human terms with RFC 3339 times, and change the numbers safely: no forecast "from now" for bob (his
``foresight_data_stale`` is 1), nothing below 0, no time-to-threshold for erin and frank (never a
pushed 0), dave's forecast from his real level. A counter whose data starts with the lookback (the
normal case) raises nothing; two series that are one after grouping are bad input (exit code 2, no
traceback).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from foresight.timeseries import rfc3339

from tests.integration.forecast.cli import foresight
from tests.polling import wait_for
from tests.servers.prometheus import PrometheusServer, PushgatewayServer, openmetrics

pytestmark = pytest.mark.integration

STEP = 3600
HOURS = 8 * 24
NAMESPACE = "dq-it"
EPOCH = re.compile(r"\b1[6-9]\d{8}\b")  # a Unix time of these years
Samples = list[tuple[dict[str, str], list[tuple[int, float]]]]


def history(now: int) -> str:
    """The OpenMetrics history, its last hour ``now``."""
    hours = np.arange(HOURS)
    ts = now - STEP * (HOURS - 1 - hours)
    daily = 60 + 5 * np.sin(2 * np.pi * hours / 24)
    rows = {  # bob's shorter history ends 6 h early (zip stops with it)
        "alice": daily,
        "bob": daily[:-6],  # stopped 6 h ago
        "carol": np.where((hours >= 100) & (hours < 103), -5.0, daily),
        "dave": np.where(hours == 120, 1e18, daily),
        "erin": daily,
        "frank": daily,
        "gina": np.linspace(30, 1, HOURS),
    }
    used: Samples = [
        ({"user": u, "cluster": "c1"}, list(zip(ts.tolist(), v.tolist(), strict=False)))
        for u, v in rows.items()
    ]
    quota: Samples = [
        ({"user": u}, [(int(t), 0.0 if u == "erin" else 100.0) for t in ts]) for u in rows if u != "frank"
    ]
    # A raw counter whose data starts exactly one lookback (168 h) before now: the normal case.
    start = now - 167 * STEP
    writes: Samples = [({"user": "alice"}, [(start + k * STEP, 1000.0 * k) for k in range(168)])]
    return openmetrics({"dq_used_bytes": ("gauge", used), "dq_quota_bytes": ("gauge", quota),
                        "dq_writes_bytes": ("counter", writes)})  # fmt: skip


def task_yaml(path: Path, name: str, prom: str, gateway: str, store: Path, **source: Any) -> Path:
    doc: dict[str, Any] = {
        "apiVersion": "foresight.dev/v1alpha1",
        "kind": "ForecastTask",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "source": {"url": prom, "query": "dq_used_bytes", "lookback": "168h", "step": "1h",
                       "groupBy": ["user"], "unit": "bytes", "valueRange": {"min": 0}, **source},
            "model": {"type": "auto", "candidates": ["naive", "seasonal_naive", "linear"],
                      "backtestFolds": 2},
            "horizon": "12h",
            "threshold": {"capacity": {"query": "dq_quota_bytes"}, "ratio": 0.95},
            "output": {"mode": "pushgateway", "pushgatewayUrl": gateway, "horizons": ["1h", "6h", "12h"]},
            "artifacts": {"uri": store.as_uri()},
        },
    }  # fmt: skip
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture
def prom(prometheus_with_history: Any, hour_now: int, pushgateway: PushgatewayServer) -> PrometheusServer:
    server: PrometheusServer = prometheus_with_history(history(hour_now), pushgateway=pushgateway)
    return server


def by_user(prom: PrometheusServer, expr: str) -> dict[str, float]:
    return {r["metric"]["user"]: float(r["value"][1]) for r in prom.query(expr)}


def test_each_class_is_named_with_its_time_and_changes_the_numbers_safely(
    prom: PrometheusServer, pushgateway: PushgatewayServer, tmp_path: Path, hour_now: int
) -> None:
    task = task_yaml(tmp_path / "task.yaml", "quality", prom.url, pushgateway.url, tmp_path / "store")
    proc = foresight("run", "-f", str(task), "--local", "--state-dir", str(tmp_path / "state"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    status = proc.stdout.split("Status:", 1)[1]
    assert not EPOCH.search(status), status  # times in RFC 3339 only
    assert "stale 1, out of range 1, clipped " in status and "outliers 1, unusable capacity 2" in status
    assert "Type: StaleData   Status: True   Reason: SourceDataStale" in status
    assert f"user=bob (newest sample {rfc3339(hour_now - 6 * STEP)})" in status
    assert f"user=carol (3 samples since {rfc3339(hour_now - (HOURS - 1 - 100) * STEP)}, e.g. -5)" in status
    assert f"user=dave (1e+18 at {rfc3339(hour_now - (HOURS - 1 - 120) * STEP)})" in status
    assert "user=erin (0), user=frank (missing)" in status
    assert "1 series with stale data got no forecast" in status
    assert "TIME-TO-95%" in status and "GiB" not in status  # 60 bytes is 60B, not a fraction of a GiB

    # What reached Prometheus (through the Pushgateway).
    sel = f'{{task="quality",namespace="{NAMESPACE}"}}'
    stale = wait_for(lambda: by_user(prom, f"foresight_data_stale{sel}"), "foresight_data_stale scraped")
    assert stale == {"alice": 0, "bob": 1, "carol": 0, "dave": 0, "erin": 0, "frank": 0, "gina": 0}
    forecast = by_user(prom, 'foresight_forecast{task="quality",horizon="12h"}')
    assert set(forecast) == set(stale) - {"bob"}  # no forecast "from now" out of 6 h old data
    assert 40 < forecast["dave"] < 80  # from his real level, not from the absurd sample
    lower = prom.query(f"foresight_forecast_lower{sel}")
    assert lower and min(float(r["value"][1]) for r in lower) >= 0.0  # gina's band stops at 0
    ttt = by_user(prom, 'foresight_time_to_threshold_seconds{task="quality",bound="point"}')
    assert set(ttt) == {"alice", "carol", "dave", "gina"}  # never a pushed 0 for erin or frank

    # The Job pod's way: the counts and the condition's message travel in the termination message.
    term = tmp_path / "termination-log"
    proc = foresight("run", "-f", str(task), env={"FORESIGHT_TERMINATION_MESSAGE_PATH": str(term)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    quality = json.loads(term.read_text())["dataQuality"]
    assert (quality["series"], quality["staleSeries"], quality["outOfRangeSeries"]) == (7, 1, 1)
    assert (quality["outlierSeries"], quality["invalidCapacitySeries"], quality["lateSeries"]) == (1, 2, 0)
    assert quality["clippedSeries"] >= 1 and "user=bob" in quality["staleMessage"]


def test_a_counter_that_starts_with_the_lookback_is_normal_and_raises_nothing(
    prom: PrometheusServer, pushgateway: PushgatewayServer, tmp_path: Path
) -> None:
    task = task_yaml(
        tmp_path / "task.yaml", "counter", prom.url, pushgateway.url, tmp_path / "store",
        query="dq_writes_bytes_total", counter=True,
    )  # fmt: skip
    doc = yaml.safe_load(task.read_text())
    del doc["spec"]["threshold"]
    task.write_text(yaml.safe_dump(doc))
    proc = foresight("run", "-f", str(task), "--local", "--state-dir", str(tmp_path / "state"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Data Quality:       1 series; missing points 0, late 0, stale 0" in proc.stdout
    assert "Warnings:" not in proc.stdout and "StaleData" not in proc.stdout


def test_two_series_that_are_one_after_grouping_are_bad_input_with_exit_code_2(
    prom: PrometheusServer, pushgateway: PushgatewayServer, tmp_path: Path
) -> None:
    task = task_yaml(
        tmp_path / "task.yaml", "dupes", prom.url, pushgateway.url, tmp_path / "store",
        groupBy=["cluster"], aggregation="none",
    )  # fmt: skip
    term = tmp_path / "termination-log"
    proc = foresight("run", "-f", str(task), env={"FORESIGHT_TERMINATION_MESSAGE_PATH": str(term)})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    msg = json.loads(term.read_text())
    assert (msg["phase"], msg["reason"]) == ("Failed", "DuplicateSeries")
    assert (
        "7 series" in msg["message"] and "cluster=c1" in msg["message"] and "source.groupBy" in msg["message"]
    )
    local = foresight("run", "-f", str(task), "--local", "--state-dir", str(tmp_path / "state"))
    assert local.returncode == 2 and "Traceback" not in local.stdout + local.stderr
    assert "DuplicateSeries" in local.stdout
