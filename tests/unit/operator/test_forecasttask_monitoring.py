"""A ForecastTask's alerting rules and dashboard as children (``ForecastTaskController.reconcile``
with a real KubeClient over HTTP against the API emulator).

Without the Prometheus Operator the rules are a ConfigMap; once the cluster serves PrometheusRules
(its CRD installed) they become a PrometheusRule and the ConfigMap goes; the dashboard ConfigMap is
there either way; all three are owned by the task, labelled for the selectors of
kube-prometheus-stack, patched when the spec changes, untouched when it does not, and removed
with the task by garbage collection. A foreign object of the same name is left alone.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from foresight_operator.builders.forecast_dashboard import dashboard_file_key
from foresight_operator.builders.forecast_rules import ALERT_EXHAUSTION, rules_file_key
from foresight_operator.handlers.context import HandlerContext
from foresight_operator.handlers.forecasttask.controller import ForecastTaskController
from foresight_operator.handlers.forecasttask.gauges import ForecastTaskMetrics
from foresight_operator.reconcile import owner_labels
from prometheus_client import CollectorRegistry

from tests.cluster.emulator import Cluster
from tests.cluster.prometheus_operator import PROMETHEUS_RULES, install_prometheus_rules
from tests.unit.operator.conftest import Events, handler_context

NS = "sre"
T0 = datetime(2026, 3, 1, 6, 15, tzinfo=UTC)
FT = "foresight.dev/v1alpha1/forecasttasks"
CM = "v1/configmaps"
SPEC: dict[str, Any] = {
    "source": {"url": "http://prom:9090", "query": "storage_used_bytes", "lookback": "48h",
               "groupBy": ["user"]},
    "horizon": "6h",
    "threshold": {"capacity": {"query": "storage_quota_bytes"}, "ratio": 0.9},
    "output": {"horizons": ["1h", "6h"], "pushgatewayUrl": "http://pgw:9091"},
}  # fmt: skip


@pytest.fixture
def ctx(cluster: Cluster, events: Events) -> HandlerContext:
    return handler_context(cluster, events, T0, runtime_image="foresight-runtime:test")


@pytest.fixture
def controller(ctx: HandlerContext) -> ForecastTaskController:
    return ForecastTaskController(ctx, ForecastTaskMetrics(CollectorRegistry()))


def apply(cluster: Cluster, name: str = "disk", **spec: Any) -> dict[str, Any]:
    body = {"apiVersion": "foresight.dev/v1alpha1", "kind": "ForecastTask",
            "metadata": {"name": name, "namespace": NS}, "spec": {**copy.deepcopy(SPEC), **spec}}  # fmt: skip
    return cluster.api.create(FT, body, NS)


def writes(cluster: Cluster, since: int) -> list[tuple[str, str | None, str | None]]:
    """The writes of rules and dashboards since request ``since``: ``(verb, resource, name)``."""
    return sorted(
        (r.verb, r.resource, r.name)
        for r in cluster.requests()[since:]
        if r.verb in ("create", "patch", "update", "delete")
        and r.resource in ("configmaps", "prometheusrules")
        and (r.name or "").endswith(("-rules", "-dashboard"))
    )


def assert_owned(obj: dict[str, Any], body: dict[str, Any]) -> None:
    (ref,) = obj["metadata"]["ownerReferences"]
    assert (ref["kind"], ref["name"], ref["uid"], ref["controller"]) == (
        "ForecastTask", body["metadata"]["name"], body["metadata"]["uid"], True,
    )  # fmt: skip
    assert owner_labels("ForecastTask", body["metadata"]["name"]).items() <= obj["metadata"]["labels"].items()


def test_without_the_prometheus_operator_the_rules_are_a_configmap_next_to_the_dashboard(
    cluster: Cluster, controller: ForecastTaskController, events: Events
) -> None:
    body = apply(cluster)
    controller.reconcile(body)
    rules = cluster.api.get(CM, "disk-rules", NS)
    assert_owned(rules, body)
    assert rules["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    doc = yaml.safe_load(rules["data"][rules_file_key("disk")])
    (group,) = doc["groups"]
    assert group["name"] == "foresight-sre-disk"
    assert ALERT_EXHAUSTION in {r["alert"] for r in group["rules"]}
    board = cluster.api.get(CM, "disk-dashboard", NS)
    assert_owned(board, body)
    assert board["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert dashboard_file_key("disk", NS) in board["data"]
    reasons = [(reason, message) for _, reason, message in events if reason == "ConfigMapCreated"]
    assert any("disk-rules" in m and "rule_files" in m for _, m in reasons), reasons
    assert any("disk-dashboard" in m for _, m in reasons), reasons

    # A repeat reconcile writes nothing; a changed spec patches the rules (no threshold: no
    # exhaustion alert) and the dashboard.
    before = len(cluster.requests())
    controller.reconcile(cluster.api.get(FT, "disk", NS))
    assert writes(cluster, before) == []
    cluster.api.patch(FT, "disk", {"spec": {"threshold": None}}, NS)
    before = len(cluster.requests())
    controller.reconcile(cluster.api.get(FT, "disk", NS))
    assert writes(cluster, before) == [
        ("patch", "configmaps", "disk-dashboard"), ("patch", "configmaps", "disk-rules"),
    ]  # fmt: skip
    doc = yaml.safe_load(cluster.api.get(CM, "disk-rules", NS)["data"][rules_file_key("disk")])
    assert ALERT_EXHAUSTION not in {r["alert"] for r in doc["groups"][0]["rules"]}

    # Garbage collection removes them with the task.
    cluster.api.delete(FT, "disk", NS)
    assert cluster.api.find(CM, "disk-rules", NS) is None
    assert cluster.api.find(CM, "disk-dashboard", NS) is None


def test_once_the_cluster_serves_prometheusrules_the_rules_move_there(
    cluster: Cluster, controller: ForecastTaskController, events: Events
) -> None:
    body = apply(cluster)
    controller.reconcile(body)
    assert cluster.api.find(CM, "disk-rules", NS) is not None
    install_prometheus_rules(cluster.api)  # helm install of the Prometheus Operator
    controller.reconcile(cluster.api.get(FT, "disk", NS))
    rule = cluster.api.get(PROMETHEUS_RULES, "disk-rules", NS)
    assert_owned(rule, body)
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    (group,) = rule["spec"]["groups"]
    assert group["name"] == "foresight-sre-disk" and group["rules"][0]["alert"] == ALERT_EXHAUSTION
    assert cluster.api.find(CM, "disk-rules", NS) is None  # not loaded twice
    assert cluster.api.find(CM, "disk-dashboard", NS) is not None
    reasons = {reason for _, reason, _ in events}
    assert {"PrometheusRuleCreated", "ConfigMapDeleted"} <= reasons
    assert not cluster.server.pruned, cluster.server.pruned  # the object fits the real CRD's schema

    before = len(cluster.requests())
    controller.reconcile(cluster.api.get(FT, "disk", NS))
    assert writes(cluster, before) == []
    cluster.api.patch(FT, "disk", {"spec": {"schedule": {"predictEvery": "30m"}}}, NS)
    before = len(cluster.requests())
    controller.reconcile(cluster.api.get(FT, "disk", NS))
    assert writes(cluster, before) == [("patch", "prometheusrules", "disk-rules")]

    cluster.api.delete(FT, "disk", NS)
    assert cluster.api.find(PROMETHEUS_RULES, "disk-rules", NS) is None


def test_a_foreign_rules_configmap_is_neither_adopted_nor_deleted(
    cluster: Cluster, controller: ForecastTaskController
) -> None:
    foreign = {"metadata": {"name": "disk-rules"}, "data": {"mine.yaml": "groups: []\n"}}
    cluster.api.create(CM, foreign, NS)
    install_prometheus_rules(cluster.api)
    controller.reconcile(apply(cluster))
    assert cluster.api.get(CM, "disk-rules", NS)["data"] == {"mine.yaml": "groups: []\n"}
    assert cluster.api.find(PROMETHEUS_RULES, "disk-rules", NS) is not None
