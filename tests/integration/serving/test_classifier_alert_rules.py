"""The shipped classifier alert rules (examples/monitoring) through the real ``promtool``.

``promtool check rules`` validates them; ``promtool test rules`` evaluates them on synthetic series
of the service's own metrics (the names the service exports, checked against a live app), so a
drifting, slow or failing variant fires its alert and a healthy one does not.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from foresight.contract.classifier import ClassifierConfig
from foresight.serving.classifier import create_app

pytestmark = pytest.mark.integration

RULES = Path(__file__).resolve().parents[3] / "examples" / "monitoring" / "classifierservice-alerts.yaml"
BAD = 'namespace="photos",job="photo-classifier",variant="candidate"'
GOOD = 'namespace="photos",job="photo-classifier",variant="control"'


def _rules(tmp_path: Path) -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text())
    assert doc["kind"] == "PrometheusRule"
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": doc["spec"]["groups"]}))
    return [rule for group in doc["spec"]["groups"] for rule in group["rules"]]


def _promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def test_the_rules_pass_promtool_and_use_only_metrics_the_service_exports(
    prometheus_installed: None, tmp_path: Path
) -> None:
    rules = _rules(tmp_path)
    proc = _promtool("check", "rules", "rules.yaml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(rules)} rules found" in proc.stdout
    config = ClassifierConfig.model_validate({"cache": {"sqlite_path": str(tmp_path / "c.db")}})
    with TestClient(create_app(config, environ={"DASHSCOPE_API_KEY": "sk-unused"})) as client:
        exported = client.get("/metrics").text
    for rule in rules:
        for name in re.findall(r"foresight_classifier_\w+", rule["expr"]):
            assert f"# HELP {name} " in exported or f"\n{name}{{" in exported, name


def _render(template: str, labels: dict[str, str], value: float) -> str:
    """An annotation as Prometheus renders it, for the template forms the rules use."""
    text = re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels[m.group(1)], template)
    text = re.sub(r'\{\{ \$value \| printf "(%\.\df)" \}\}', lambda m: m.group(1) % value, text)
    return text.replace("{{ $value | humanizePercentage }}", f"{value * 100:.4g}%")


def _bucket(labels: str, endpoint: str, le: str, values: str) -> dict[str, str]:
    return {
        "series": f'foresight_classifier_request_seconds_bucket{{{labels},endpoint="{endpoint}",le="{le}"}}',
        "values": values,
    }


def _requests(labels: str, status: str, values: str) -> dict[str, str]:
    return {
        "series": f'foresight_classifier_requests_total{{{labels},endpoint="classify",status="{status}"}}',
        "values": values,
    }


def test_a_drifting_slow_failing_variant_fires_and_the_healthy_one_does_not(
    prometheus_installed: None, tmp_path: Path
) -> None:
    _rules(tmp_path)
    series = [
        {"series": f"foresight_classifier_prediction_drift_psi{{{BAD}}}", "values": "0.4x60"},
        {"series": f"foresight_classifier_prediction_drift_psi{{{GOOD}}}", "values": "0.02x60"},
        # candidate: every classify takes 5-10 s; control: all under 0.25 s
        _bucket(BAD, "classify", "5", "0x60"),
        _bucket(BAD, "classify", "10", "0+60x60"),
        _bucket(BAD, "classify", "+Inf", "0+60x60"),
        _bucket(GOOD, "classify", "0.25", "0+60x60"),
        _bucket(GOOD, "classify", "+Inf", "0+60x60"),
        # candidate: 10 of 60 requests a minute fail; control: none
        _requests(BAD, "200", "0+50x60"),
        _requests(BAD, "502", "0+10x60"),
        _requests(GOOD, "200", "0+60x60"),
        _requests(GOOD, "502", "0x60"),
    ]
    labels = {"namespace": "photos", "job": "photo-classifier", "variant": "candidate"}

    rules = {r["alert"]: r for r in _rules(tmp_path)}

    def fired(alert: str, severity: str, value: float) -> dict[str, Any]:
        annotations = {k: _render(v, labels, value) for k, v in rules[alert]["annotations"].items()}
        expected = {"exp_labels": {**labels, "severity": severity}, "exp_annotations": annotations}
        return {"eval_time": "45m", "alertname": alert, "exp_alerts": [expected]}

    tests = [
        {
            "interval": "1m",
            "input_series": series,
            "alert_rule_test": [
                fired("ClassifierPredictionDrift", "warning", 0.4),
                fired("ClassifierSlow", "warning", 9.95),  # 5 + (10 - 5) x 0.99 in the (5, 10] bucket
                fired("ClassifierErrorRateHigh", "critical", 10 / 60),
                {"eval_time": "45m", "alertname": "ClassifierCachedPathSlow", "exp_alerts": []},
                {
                    "eval_time": "20m",
                    "alertname": "ClassifierPredictionDrift",
                    "exp_alerts": [],
                },  # not for 30m yet
            ],
        }
    ]
    (tmp_path / "test.yaml").write_text(
        yaml.safe_dump(
            {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests}, width=10**6
        )
    )
    proc = _promtool("test", "rules", "test.yaml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
