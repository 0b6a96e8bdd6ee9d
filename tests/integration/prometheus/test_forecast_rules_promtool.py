"""A ForecastTask's alerting rules and dashboard queries through the real ``promtool`` (Debian's
prometheus package): every rules file the builder makes passes ``promtool check rules``; rule unit
tests (``promtool test rules``: real evaluation, ``for:`` and annotation templates included) feed
synthetic series of the gauges and assert which alerts fire and what they say; every dashboard
query, with its template variables filled in as Grafana would, parses as PromQL.

Missing promtool skips these tests on a laptop and fails them under ``CI=true``.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from foresight.api.forecasttask import ForecastTaskSpec
from foresight_operator.builders.forecast_dashboard import dashboard_model
from foresight_operator.builders.forecast_rules import (
    ALERT_ANOMALY,
    ALERT_DATA_STALE,
    ALERT_EXHAUSTION,
    ALERT_FAILING,
    ALERT_MISSING,
    ALERT_STALE,
    rule_group,
    rules_document,
)

pytestmark = pytest.mark.integration

STORAGE = yaml.safe_load(
    (Path(__file__).resolve().parents[3] / "examples/forecasttask-storage.yaml").read_text()
)
LONG = "q" * 60 + ".example." + "x" * 120

SPECS: dict[str, tuple[str, dict[str, Any]]] = {
    "storage example (pushgateway, threshold query)": ("storage-quota", STORAGE["spec"]),
    "no threshold": ("cpu", {"source": {"query": "node_cpu", "groupBy": ["instance_name"]}}),
    "scrape mode, constant capacity, cron": (
        "gpu",
        {
            "source": {"query": "gpu_alloc", "groupBy": ["namespace", "job"]},
            "threshold": {"capacity": {"value": 64}, "ratio": 0.9},
            "schedule": {"cron": "0 9 * * 1-5"},
            "output": {"mode": "scrape"},
        },
    ),
    "long name, every label kept": (
        LONG,
        {"source": {"query": "up", "aggregation": "none"}, "threshold": {"capacity": {"value": 1}}},
    ),
    "counter, merged into one series": (
        "writes",
        {"source": {"query": "bytes_total", "counter": True}, "threshold": {"capacity": {"value": 1e12}}},
    ),
    "suspended": ("paused", {"source": {"query": "x", "groupBy": ["user"]}, "suspend": True}),
    "no output": ("quiet", {"source": {"query": "x"}, "output": {"mode": "none"}}),
}


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], cwd=cwd, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("case", list(SPECS))
def test_every_rules_file_passes_promtool_check_rules(
    case: str, prometheus_installed: None, tmp_path: Path
) -> None:
    name, doc = SPECS[case]
    spec = ForecastTaskSpec.model_validate(doc)
    path = tmp_path / "rules.yaml"
    path.write_text(rules_document(name, "team-a", spec))
    proc = promtool("check", "rules", str(path), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(rule_group(name, 'team-a', spec)['rules'])} rules found" in proc.stdout


def _fill_variables(expr: str, variables: list[dict[str, Any]]) -> str:
    """What Grafana sends for ``expr``: the horizon's text and offset, ``.*`` for All."""
    horizon = next(v for v in variables if v["name"] == "horizon")["current"]
    expr = expr.replace("${horizon:text}", horizon["text"]).replace("${horizon}", horizon["value"])
    for var in variables:
        if var["type"] == "query":
            expr = re.sub(rf"\$({var['name']}\b|\{{{var['name']}\}})", ".*", expr)
    assert "$" not in expr.replace('"$1"', ""), f"unfilled variable in {expr}"
    return expr


@pytest.mark.parametrize("case", list(SPECS))
def test_every_dashboard_query_parses(case: str, prometheus_installed: None, tmp_path: Path) -> None:
    name, doc = SPECS[case]
    model = dashboard_model(name, "team-a", ForecastTaskSpec.model_validate(doc))
    variables = model["templating"]["list"]
    rules = [
        {"record": f"panel_{i}_{target['refId']}", "expr": _fill_variables(target["expr"], variables)}
        for i, panel in enumerate(model["panels"])
        for target in panel["targets"]
    ]
    path = tmp_path / "queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    proc = promtool("check", "rules", str(path), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ---- rule unit tests: real evaluation -----------------------------------------------------------

SERIES = (
    'namespace="sre",task="storage-quota",group="vision",user="alice",storage_type="ssd",cluster="gpu-east"'
)
OTHER = SERIES.replace('user="alice"', 'user="bob"')
SCRAPE = 'job="pushgateway",instance="pg:9091"'
TASK = 'namespace="sre",name="storage-quota"'


def _series(metric: str, labels: str, values: str) -> dict[str, str]:
    return {"series": f"{metric}{{{labels}}}", "values": values}


def _alert_labels(**extra: str) -> dict[str, str]:
    labels = dict(re.findall(r'(\w+)="([^"]*)"', f"{SERIES},{SCRAPE}"))
    return {**labels, **extra}


def _promtool_test(tmp_path: Path, tests: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    spec = ForecastTaskSpec.model_validate(STORAGE["spec"])  # predictEvery 15m
    (tmp_path / "rules.yaml").write_text(rules_document("storage-quota", "sre", spec))
    doc = {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests}
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(doc, sort_keys=False, width=1_000_000))
    return promtool("test", "rules", "test.yaml", cwd=tmp_path)


def _annotations(alert: str, labels: dict[str, str] | None = None) -> dict[str, str]:
    """The rule's annotations with ``{{ $labels.x }}`` filled from ``labels`` (enough for the simple
    ones; a test spells out what the others render to)."""
    spec = ForecastTaskSpec.model_validate(STORAGE["spec"])
    rule = next(r for r in rule_group("storage-quota", "sre", spec)["rules"] if r["alert"] == alert)
    return {
        key: re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: (labels or {})[m.group(1)], text)
        for key, text in rule["annotations"].items()
    }


def test_exhaustion_alert_fires_after_the_next_run_confirms_and_says_probability_and_time(
    prometheus_installed: None, tmp_path: Path
) -> None:
    alert = f'{SERIES},{SCRAPE},rule="probability>=0.4",within="6h"'
    blip = f'{OTHER},{SCRAPE},rule="probability>=0.4",within="6h"'
    inf = " ".join(["Inf"] * 80)
    series = [
        _series(
            "foresight_exhaustion_alert", alert, "0x9 1x70"
        ),  # a run says "crosses" at 10m, and keeps saying it
        _series("foresight_exhaustion_alert", blip, "0x9 1x14 0x55"),  # one run says it, the next withdraws
        _series("foresight_exhaustion_probability", f'{SERIES},{SCRAPE},within="6h"', "0.72x80"),
        _series("foresight_exhaustion_probability", f'{SERIES},{SCRAPE},within="1h"', "0.05x80"),
        _series("foresight_time_to_threshold_seconds", f'{SERIES},{SCRAPE},bound="point"', "7200x80"),
        _series("foresight_time_to_threshold_seconds", f'{SERIES},{SCRAPE},bound="upper"', inf),
    ]
    labels = _alert_labels(severity="warning", rule="probability>=0.4", within="6h")
    expected = {
        **_annotations(ALERT_EXHAUSTION, labels),
        "summary": "group=vision user=alice storage_type=ssd cluster=gpu-east is predicted to reach 95% of "
        "its capacity within 6h",
        "description": "ForecastTask sre/storage-quota predicts that group=vision user=alice "
        "storage_type=ssd cluster=gpu-east reaches its threshold (95% of capacity) within 6h, by the alert "
        "rule the task chose from its own backtest (probability>=0.4). Probability of crossing within 6h: "
        "72%. Time to threshold: 2h 0m 0s by the point forecast, beyond the horizon by the upper bound.",
    }
    fired = {
        "exp_labels": labels,
        "exp_annotations": expected,
    }
    proc = _promtool_test(
        tmp_path,
        [
            {
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [
                    {"eval_time": "30m", "alertname": ALERT_EXHAUSTION, "exp_alerts": []},  # pending: 25m
                    {"eval_time": "36m", "alertname": ALERT_EXHAUSTION, "exp_alerts": [fired]},
                    {"eval_time": "70m", "alertname": ALERT_EXHAUSTION, "exp_alerts": [fired]},
                ],
            }
        ],
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_anomaly_alert_needs_three_flagged_predictions_in_a_row(
    prometheus_installed: None, tmp_path: Path
) -> None:
    series = [
        _series("foresight_anomaly", f"{SERIES},{SCRAPE}", "1x14 0x14 1x60"),  # one run, then three in a row
        _series("foresight_anomaly", f"{OTHER},{SCRAPE}", "0x14 1x14 0x14 1x14 0x30"),  # every other run
    ]
    labels = _alert_labels(severity="info")
    fired = {"exp_labels": labels, "exp_annotations": _annotations(ALERT_ANOMALY, labels)}
    proc = _promtool_test(
        tmp_path,
        [
            {
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [
                    {"eval_time": "20m", "alertname": ALERT_ANOMALY, "exp_alerts": []},
                    {"eval_time": "65m", "alertname": ALERT_ANOMALY, "exp_alerts": []},  # 35m of the 40m
                    {"eval_time": "75m", "alertname": ALERT_ANOMALY, "exp_alerts": [fired]},
                ],
            }
        ],
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_stale_data_alert_fires_when_the_flag_stays(prometheus_installed: None, tmp_path: Path) -> None:
    series = [_series("foresight_data_stale", f"{SERIES},{SCRAPE}", "0x4 1x60")]
    labels = _alert_labels(severity="warning")
    proc = _promtool_test(
        tmp_path,
        [
            {
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [
                    {"eval_time": "20m", "alertname": ALERT_DATA_STALE, "exp_alerts": []},
                    {
                        "eval_time": "31m",
                        "alertname": ALERT_DATA_STALE,
                        "exp_alerts": [
                            {"exp_labels": labels, "exp_annotations": _annotations(ALERT_DATA_STALE, labels)}
                        ],
                    },
                ],
            }
        ],
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_stale_alert_fires_after_three_missed_intervals_and_missing_after_an_hour(
    prometheus_installed: None, tmp_path: Path
) -> None:
    # Runs write at 0, 15, 30 and 45 min (the value is the run's time); then no run writes again,
    # while the Pushgateway keeps serving the last value.
    last_run = _series(
        "foresight_last_run_timestamp_seconds",
        f'namespace="sre",task="storage-quota",kind="predict",{SCRAPE}',
        "0x14 900x14 1800x14 2700x100",
    )
    stale = {
        "exp_labels": {"namespace": "sre", "task": "storage-quota", "severity": "warning"},
        "exp_annotations": {
            **_annotations(ALERT_STALE),
            "description": "The newest forecasts of ForecastTask sre/storage-quota are 1h 0m 0s old; a "
            "prediction is due every 15m. Alerts on them see old numbers.",
        },
    }
    missing = {
        "exp_labels": {"namespace": "sre", "task": "storage-quota", "kind": "predict", "severity": "warning"},
        "exp_annotations": _annotations(ALERT_MISSING),
    }
    proc = _promtool_test(
        tmp_path,
        [
            {
                "interval": "1m",
                "input_series": [last_run],
                "alert_rule_test": [
                    {"eval_time": "80m", "alertname": ALERT_STALE, "exp_alerts": []},  # 35 min old: fine
                    {"eval_time": "95m", "alertname": ALERT_STALE, "exp_alerts": []},  # stale, pending 10m
                    {"eval_time": "105m", "alertname": ALERT_STALE, "exp_alerts": [stale]},
                    {"eval_time": "105m", "alertname": ALERT_MISSING, "exp_alerts": []},
                ],
            },
            {
                "interval": "1m",
                "input_series": [
                    _series("foresight_forecast", f'{SERIES},horizon="1h"', "1x90")
                ],  # another gauge only
                "alert_rule_test": [
                    {"eval_time": "50m", "alertname": ALERT_MISSING, "exp_alerts": []},
                    {"eval_time": "61m", "alertname": ALERT_MISSING, "exp_alerts": [missing]},
                ],
            },
        ],
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_failing_alert_needs_failed_runs_not_a_new_task_waiting_for_its_first(
    prometheus_installed: None, tmp_path: Path
) -> None:
    operator = 'job="foresight-operator",instance="10.0.0.5:8080"'
    failing = [
        _series("foresight_resource_ready", f'kind="ForecastTask",{TASK},{operator}', "1x19 0x60"),
        _series("foresight_forecasttask_consecutive_failures", f"{TASK},{operator}", "0x19 1x14 2x50"),
    ]
    pending_task = 'namespace="sre",name="new-task"'
    new = [  # Ready=False (Pending: no run finished yet) with no failure: not failing
        _series("foresight_resource_ready", f'kind="ForecastTask",{pending_task},{operator}', "0x80"),
        _series("foresight_forecasttask_consecutive_failures", f"{pending_task},{operator}", "0x80"),
    ]
    fired = {
        "exp_labels": {
            "namespace": "sre",
            "name": "storage-quota",
            "task": "storage-quota",
            "severity": "warning",
        },
        "exp_annotations": {
            **_annotations(ALERT_FAILING),
            "description": "ForecastTask sre/storage-quota is not Ready after 2 failed runs in a row; its "
            "forecasts are not being refreshed.",
        },
    }
    proc = _promtool_test(
        tmp_path,
        [
            {
                "interval": "1m",
                "input_series": failing + new,
                "alert_rule_test": [
                    {"eval_time": "40m", "alertname": ALERT_FAILING, "exp_alerts": []},  # 20m of the 25m
                    {"eval_time": "50m", "alertname": ALERT_FAILING, "exp_alerts": [fired]},
                ],
            }
        ],
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
