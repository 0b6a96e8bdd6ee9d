"""The Prometheus Operator's ``PrometheusRule`` kind, for clusters that have it.

A cluster with the Prometheus Operator (kube-prometheus-stack) serves
``monitoring.coreos.com/v1`` ``PrometheusRule`` through the CRD
``prometheusrules.monitoring.coreos.com``. A test that wants such a cluster installs
:data:`PROMETHEUS_RULE_CRD` (``kubectl apply``, or :func:`install_prometheus_rules`, as ``helm
install`` of the chart would); the emulator then serves the kind like any applied CRD (discovery,
admission against this schema, watches, garbage collection by owner references).

The schema is a structural schema of the fields a rule file has (groups of named rule lists; a rule
is an ``alert`` or a ``record`` with an ``expr``, an optional ``for`` / ``keep_firing_for`` in
Prometheus' duration grammar, ``labels`` and ``annotations`` of strings), written for these tests
after the Prometheus Operator's API documentation: a field the real CRD does not know is pruned, so
a test's ``cluster.server.pruned`` check catches a rule object the real API server would cut.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PROMETHEUS_RULES", "PROMETHEUS_RULE_CRD", "install_prometheus_rules"]

PROMETHEUS_RULES = "monitoring.coreos.com/v1/prometheusrules"
"""The resource path the emulator's :class:`~tests.cluster.emulator.ApiClient` takes."""

_DURATION = r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
_STRINGS = {"type": "object", "additionalProperties": {"type": "string"}}

_RULE: dict[str, Any] = {
    "type": "object",
    "required": ["expr"],
    "properties": {
        "alert": {"type": "string"},
        "record": {"type": "string"},
        "expr": {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]},
        "for": {"type": "string", "pattern": _DURATION},
        "keep_firing_for": {"type": "string", "minLength": 1, "pattern": _DURATION},
        "labels": _STRINGS,
        "annotations": _STRINGS,
    },
}
_GROUP: dict[str, Any] = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "interval": {"type": "string", "pattern": _DURATION},
        "query_offset": {"type": "string", "pattern": _DURATION},
        "limit": {"type": "integer"},
        "labels": _STRINGS,
        "partial_response_strategy": {"type": "string"},
        "rules": {"type": "array", "items": _RULE},
    },
}

PROMETHEUS_RULE_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "prometheusrules.monitoring.coreos.com"},
    "spec": {
        "group": "monitoring.coreos.com",
        "names": {
            "kind": "PrometheusRule",
            "listKind": "PrometheusRuleList",
            "plural": "prometheusrules",
            "singular": "prometheusrule",
            "shortNames": ["promrule"],
            "categories": ["prometheus-operator"],
        },
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "required": ["spec"],
                        "properties": {
                            "apiVersion": {"type": "string"},
                            "kind": {"type": "string"},
                            "metadata": {"type": "object"},
                            "spec": {
                                "type": "object",
                                "properties": {
                                    "groups": {
                                        "type": "array",
                                        "items": _GROUP,
                                        "x-kubernetes-list-type": "map",
                                        "x-kubernetes-list-map-keys": ["name"],
                                    }
                                },
                            },
                        },
                    }
                },
            }
        ],
    },
}
"""The ``prometheusrules.monitoring.coreos.com`` CRD (v1, served), as the Prometheus Operator installs it."""


def install_prometheus_rules(api: Any) -> dict[str, Any]:
    """Install the CRD through ``api`` (an :class:`~tests.cluster.emulator.ApiClient`); the object made."""
    created: dict[str, Any] = api.create(
        "apiextensions.k8s.io/v1/customresourcedefinitions", PROMETHEUS_RULE_CRD
    )
    return created
