"""A task's alerting rules and Grafana dashboard, as children the task owns.

On every reconcile (:func:`sync_monitoring_children`):

- where the cluster serves ``prometheusrules.monitoring.coreos.com`` (the Prometheus Operator is
  installed; found by getting the CRD, as the ray backend finds KubeRay), the PrometheusRule
  ``<task>-rules`` is created or patched, and a ``<task>-rules`` ConfigMap this task made before
  the CRD appeared is deleted (the same rules must not be loaded twice);
- otherwise the same rules go into the ConfigMap ``<task>-rules``, for a Prometheus that loads
  rule files;
- the dashboard ConfigMap ``<task>-dashboard`` is created or patched either way.

The objects are built by the pure builders (:mod:`~foresight_operator.builders.forecast_rules`,
:mod:`~foresight_operator.builders.forecast_dashboard`) and carry the task as their owner, so
garbage collection removes them with it; nothing here runs on deletion.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from foresight.api.forecasttask import ForecastTaskSpec
from foresight.kube import CONFIGMAPS, CRDS, ResourceRef

from ...builders.forecast_dashboard import build_dashboard_configmap
from ...builders.forecast_rules import (
    PROMETHEUS_RULE_API_VERSION,
    PROMETHEUS_RULE_CRD,
    build_prometheus_rule,
    build_rules_configmap,
    rules_name,
)
from ...reconcile import owned_by
from ...reconcile.updates import configmap_update, replace_spec_update
from ..children import make_child
from ..context import HandlerContext

__all__ = ["PROMETHEUS_RULES", "prometheus_rules_served", "sync_monitoring_children"]

Obj = dict[str, Any]
PROMETHEUS_RULES = ResourceRef(PROMETHEUS_RULE_API_VERSION, "prometheusrules", "PrometheusRule")


def prometheus_rules_served(ctx: HandlerContext) -> bool:
    """Whether the cluster serves ``monitoring.coreos.com/v1`` PrometheusRules (its CRD exists and
    serves that version)."""
    crd = ctx.kube.get(CRDS, PROMETHEUS_RULE_CRD, None)
    if crd is None:
        return False
    version = PROMETHEUS_RULE_API_VERSION.rpartition("/")[2]
    versions = (crd.get("spec") or {}).get("versions") or []
    return any(v.get("name") == version and v.get("served", True) for v in versions)


def _owner_reference(body: Mapping[str, Any]) -> Obj:
    import kopf

    return dict(kopf.build_owner_reference(body))  # type: ignore[arg-type]


def _delete_rules_configmap(ctx: HandlerContext, body: Mapping[str, Any]) -> None:
    """The rules ConfigMap this task owns, once a PrometheusRule carries its rules (one not ours stays)."""
    meta = body["metadata"]
    name = rules_name(meta["name"])
    stale = ctx.kube.get(CONFIGMAPS, name, meta["namespace"])
    if stale is not None and owned_by(stale, meta["uid"]):
        ctx.kube.delete(CONFIGMAPS, name, meta["namespace"])
        ctx.post_event(
            body, "Normal", "ConfigMapDeleted",
            f"deleted ConfigMap {name}: the cluster now serves PrometheusRules, and PrometheusRule {name} "
            "carries the same rules",
        )  # fmt: skip


def sync_monitoring_children(ctx: HandlerContext, body: Mapping[str, Any], spec: ForecastTaskSpec) -> None:
    """Make the task's rules (a PrometheusRule, or a ConfigMap without the Prometheus Operator) and
    its dashboard ConfigMap exist, owned by the task and current."""
    meta = body["metadata"]
    name, namespace = meta["name"], meta["namespace"]
    owner, settings = _owner_reference(body), ctx.settings.monitoring
    if prometheus_rules_served(ctx):
        rule = build_prometheus_rule(name, namespace, spec, owner, settings=settings)
        make_child(
            ctx, body, PROMETHEUS_RULES, rule, update=replace_spec_update,
            announce=f"created PrometheusRule {rule['metadata']['name']}: the task's alerting rules, for the "
            "Prometheus Operator",
        )  # fmt: skip
        _delete_rules_configmap(ctx, body)
    else:
        cm = build_rules_configmap(name, namespace, spec, owner, settings=settings)
        make_child(
            ctx, body, CONFIGMAPS, cm, update=configmap_update,
            announce=f"created ConfigMap {cm['metadata']['name']}: the task's alerting rules as a rules file "
            f"(no {PROMETHEUS_RULE_CRD} in this cluster: mount it into Prometheus and list it under "
            "rule_files)",
        )  # fmt: skip
    dashboard = build_dashboard_configmap(name, namespace, spec, owner, settings=settings)
    make_child(
        ctx, body, CONFIGMAPS, dashboard, update=configmap_update,
        announce=f"created ConfigMap {dashboard['metadata']['name']}: the task's Grafana dashboard",
    )  # fmt: skip
