"""A ForecastTask's alerting rules and dashboard through the real operator, kubectl and Prometheus.

- Before the Prometheus Operator is installed, a task with a threshold owns a ``<task>-rules``
  ConfigMap (a rules file) and its ``<task>-dashboard`` ConfigMap. Once the cluster serves
  ``prometheusrules.monitoring.coreos.com`` (the test applies the CRD with kubectl, as ``helm
  install`` of kube-prometheus-stack would), a new task gets a PrometheusRule instead, an existing
  one moves its rules there at its next reconcile, and ``kubectl get promrule`` lists them. The
  rule groups, written to a rules file as the Prometheus Operator does, load into a real Prometheus
  (``/-/reload``, then ``/api/v1/rules``). ``kubectl delete ft`` takes the rules and the dashboard
  along (garbage collection by owner references).
- A task whose history has one quota ramping towards its threshold runs through the test kubelet;
  its exhaustion probability (``foresight_exhaustion_probability{within}``) and the verdict of the
  alert rule it chose (``foresight_exhaustion_alert``) reach Prometheus through the Pushgateway,
  and the task's own ``ForesightExhaustionPredicted`` rule, loaded there, goes pending for that
  quota only.
"""

from __future__ import annotations

import pathlib
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import requests
import yaml

from tests.cluster.emulator import Cluster
from tests.cluster.kubectl import Kubectl
from tests.cluster.kubelet import Kubelet
from tests.cluster.operator_process import OperatorProcess
from tests.cluster.prometheus_operator import PROMETHEUS_RULE_CRD, PROMETHEUS_RULES
from tests.polling import wait_for
from tests.servers.prometheus import (
    PrometheusServer,
    PushgatewayServer,
    backfill,
    ensure_installed,
    openmetrics,
)

pytestmark = pytest.mark.e2e

FT = "foresight.dev/v1alpha1/forecasttasks"
CM = "v1/configmaps"
NS = "sre"
STEP = 3600
HOURS = 8 * 24
NAMESPACE = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}
USERS = ("alice", "bob", "carol", "dave")


def task(
    name: str, prom_url: str = "http://127.0.0.1:1", pgw_url: str = "http://127.0.0.1:1"
) -> dict[str, Any]:
    """A task over ``quota_used_bytes`` per user with a threshold at 95% of ``quota_limit_bytes``."""
    return {
        "apiVersion": "foresight.dev/v1alpha1",
        "kind": "ForecastTask",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "source": {"url": prom_url, "query": "quota_used_bytes", "groupBy": ["user"], "lookback": "168h",
                       "step": "1h", "unit": "bytes", "valueRange": {"min": 0}},
            "model": {"type": "auto", "candidates": ["naive", "seasonal_naive", "linear", "theta"],
                      "backtestFolds": 3},
            "horizon": "12h",
            "threshold": {"capacity": {"query": "quota_limit_bytes"}, "ratio": 0.95},
            "schedule": {"retrainEvery": "1h", "predictEvery": "1h"},
            "output": {"pushgatewayUrl": pgw_url, "horizons": ["1h", "6h", "12h"]},
            "resources": {"cpu": "250m", "memory": "512Mi"},
        },
    }  # fmt: skip


def rules_of(api: Any, name: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = api.find(PROMETHEUS_RULES, f"{name}-rules", NS)
    return found


def load_rules(
    prom: PrometheusServer, groups: list[dict[str, Any]], path: pathlib.Path
) -> list[dict[str, Any]]:
    """Write ``groups`` as the rules file Prometheus reads (what the Prometheus Operator does with a
    PrometheusRule), reload, and return the groups Prometheus then evaluates."""
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    requests.post(prom.url + "/-/reload", timeout=10).raise_for_status()

    def loaded() -> list[dict[str, Any]] | None:
        body = requests.get(prom.url + "/api/v1/rules", timeout=10).json()
        have: list[dict[str, Any]] = body["data"]["groups"]
        return have if {g["name"] for g in have} >= {g["name"] for g in groups} else None

    result: list[dict[str, Any]] = wait_for(loaded, "the task's rule groups loaded by Prometheus")
    return result


def test_a_task_owns_its_rules_and_dashboard_which_follow_the_prometheus_operator_and_leave_with_it(
    cluster: Cluster, kubectl: Kubectl, operator: OperatorProcess, tmp_path: pathlib.Path
) -> None:
    ensure_installed()
    api = cluster.api
    kubectl.apply(yaml.safe_dump(NAMESPACE)).check()
    kubectl.apply(yaml.safe_dump(task("early"))).check()

    # No Prometheus Operator yet: the rules are a file in a ConfigMap.
    early_rules = api.wait_for(CM, "early-rules", lambda o: o is not None, NS, timeout=30)
    assert early_rules is not None, operator.log.read_text()[-3000:]
    assert api.wait_for(CM, "early-dashboard", lambda o: o is not None, NS, timeout=30) is not None

    # kube-prometheus-stack installed: a new task gets a PrometheusRule, the early one moves its rules
    # there at its next reconcile (here: a spec change), and the rules ConfigMap goes.
    kubectl.apply(yaml.safe_dump(PROMETHEUS_RULE_CRD)).check()
    kubectl.apply(yaml.safe_dump(task("quota"))).check()
    rule = api.wait_for(PROMETHEUS_RULES, "quota-rules", lambda o: o is not None, NS, timeout=30)
    assert rule is not None, operator.log.read_text()[-3000:]
    body = api.get(FT, "quota", NS)
    (ref,) = rule["metadata"]["ownerReferences"]
    assert (ref["kind"], ref["name"], ref["uid"]) == ("ForecastTask", "quota", body["metadata"]["uid"])
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    board = api.wait_for(CM, "quota-dashboard", lambda o: o is not None, NS, timeout=30)
    assert board is not None and board["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert api.find(CM, "quota-rules", NS) is None
    kubectl("patch", "ft", "early", "-n", NS, "--type=merge", "-p", '{"spec":{"horizon":"6h",'
            '"output":{"horizons":["1h","6h"]}}}').check()  # fmt: skip
    assert api.wait_for(PROMETHEUS_RULES, "early-rules", lambda o: o is not None, NS, timeout=30) is not None
    assert api.wait_for(CM, "early-rules", lambda o: o is None, NS, timeout=30) is None
    listed = kubectl("get", "promrule", "-n", NS).check().stdout
    assert "quota-rules" in listed and "early-rules" in listed, listed

    # The rules load into a real Prometheus, every alert healthy.
    rules_file = tmp_path / "rules" / "foresight.yaml"
    rules_file.parent.mkdir()
    config = {"rule_files": [str(rules_file.parent / "*.yaml")]}
    with PrometheusServer(tmp_path / "prom", config=config) as prom:
        groups = load_rules(prom, rule["spec"]["groups"], rules_file)
    (group,) = [g for g in groups if g["name"] == f"foresight-{NS}-quota"]
    alerts = {r["name"]: r["health"] for r in group["rules"]}
    assert "ForesightExhaustionPredicted" in alerts and "ForesightSourceDataStale" in alerts, alerts
    assert set(alerts.values()) <= {"ok", "unknown"}, alerts

    # kubectl delete takes the rules and the dashboard along.
    kubectl("delete", "ft", "quota", "-n", NS, "--wait=false").check()
    assert api.wait_for(FT, "quota", lambda o: o is None, NS, timeout=60) is None
    assert api.wait_for(PROMETHEUS_RULES, "quota-rules", lambda o: o is None, NS, timeout=30) is None
    assert api.wait_for(CM, "quota-dashboard", lambda o: o is None, NS, timeout=30) is None
    assert api.find(PROMETHEUS_RULES, "early-rules", NS) is not None  # the other task's stay


def quota_history(now: int) -> str:
    """Three users cycling around 80% of a 100-byte quota, one (dave) ramping to 95% about 5 h
    after the last sample."""
    hours = np.arange(HOURS)
    ts = (now - STEP * (HOURS - 1 - hours)).tolist()
    used, limit = [], []
    for i, user in enumerate(USERS):
        if user == "dave":
            vals = 94.0 - 0.2 * (HOURS - 1 - hours)
        else:
            vals = 80 + 2 * np.sin(2 * np.pi * hours / 24) + i
        used.append(({"user": user}, list(zip(ts, vals.tolist(), strict=True))))
        limit.append(({"user": user}, [(t, 100.0) for t in ts]))
    return openmetrics({"quota_used_bytes": ("gauge", used), "quota_limit_bytes": ("gauge", limit)})


@pytest.fixture
def servers(tmp_path: pathlib.Path) -> Iterator[tuple[PrometheusServer, PushgatewayServer, pathlib.Path]]:
    """Prometheus (8 days of quota history, a rules directory) scraping a Pushgateway."""
    ensure_installed()
    backfill(quota_history(int(time.time()) // STEP * STEP), tmp_path / "prom-data")
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    pgw = PushgatewayServer(tmp_path / "pgw", None)
    config = {"rule_files": [str(rules_dir / "*.yaml")]}
    with pgw, PrometheusServer(tmp_path / "prom-data", config=config, pushgateway=pgw) as prom:
        yield prom, pgw, rules_dir


def test_exhaustion_probability_and_the_alert_verdict_reach_prometheus_where_the_rule_fires(
    cluster: Cluster,
    kubectl: Kubectl,
    kubelet: Kubelet,
    operator: OperatorProcess,
    servers: tuple[PrometheusServer, PushgatewayServer, pathlib.Path],
) -> None:
    prom, pgw, rules_dir = servers
    api = cluster.api
    kubectl.apply(yaml.safe_dump(NAMESPACE)).check()
    kubectl.apply(yaml.safe_dump(PROMETHEUS_RULE_CRD)).check()
    kubectl.apply(yaml.safe_dump(task("quota", prom.url, pgw.url))).check()
    done = api.wait_for(FT, "quota", lambda o: bool(((o or {}).get("status") or {}).get("lastPredictTime")),
                        NS, timeout=240, interval=0.5)  # fmt: skip
    assert done is not None, (api.get(FT, "quota", NS), operator.log.read_text()[-3000:])
    rule = rules_of(api, "quota")
    assert rule is not None
    load_rules(prom, rule["spec"]["groups"], rules_dir / "quota.yaml")

    selector = f'{{task="quota",namespace="{NS}"}}'
    probability = wait_for(lambda: prom.query(f"foresight_exhaustion_probability{selector}"),
                           "the exhaustion probability scraped by Prometheus")  # fmt: skip
    assert {r["metric"]["within"] for r in probability} == {"1h", "6h", "12h"}
    assert {r["metric"]["user"] for r in probability} == set(USERS)
    by = {(r["metric"]["user"], r["metric"]["within"]): float(r["value"][1]) for r in probability}
    assert all(0.0 <= p <= 1.0 for p in by.values()), by
    assert by[("dave", "12h")] >= 0.5 > max(by[(u, "12h")] for u in USERS if u != "dave"), by

    verdicts = wait_for(lambda: prom.query(f"foresight_exhaustion_alert{selector}"),
                        "the alert verdict scraped by Prometheus")  # fmt: skip
    alert = {r["metric"]["user"]: float(r["value"][1]) for r in verdicts}
    assert alert == {"alice": 0.0, "bob": 0.0, "carol": 0.0, "dave": 1.0}, verdicts

    # The task's own rule, loaded into that Prometheus, sees it: pending for dave only (its `for:`
    # waits for the next run to confirm before it fires).
    pending = wait_for(
        lambda: prom.query('ALERTS{alertname="ForesightExhaustionPredicted"}'), "the exhaustion alert pending"
    )
    assert {r["metric"]["user"] for r in pending} == {"dave"}, pending
