"""Sample objects for tests of the cluster itself: a small CRD of group example.dev.

``Widget`` (short name ``wd``, category ``examples``) has printer columns (one with a
``[?(@.type=="Ready")]`` filter), a status subresource, an enum, a required field, bounds, a
pattern, an item limit, defaults and two CEL rules (one a transition rule using ``oldSelf``).
``GADGETS`` is the same CRD for kind ``Gadget`` (``gd``), in the same category.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.dev"},
    "spec": {
        "group": "example.dev",
        "scope": "Namespaced",
        "names": {
            "plural": "widgets",
            "singular": "widget",
            "kind": "Widget",
            "shortNames": ["wd"],
            "categories": ["examples"],
        },
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"name": "Size", "type": "string", "jsonPath": ".spec.size"},
                    {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
                    {
                        "name": "Ready",
                        "type": "string",
                        "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
                    },
                ],
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["size"],
                                "x-kubernetes-validations": [
                                    {
                                        "rule": "self.replicas <= self.maxReplicas",
                                        "message": "replicas exceed maxReplicas",
                                    },
                                    {"rule": "self.size == oldSelf.size", "message": "size is immutable"},
                                ],
                                "properties": {
                                    "size": {"type": "string", "enum": ["small", "large"]},
                                    "replicas": {"type": "integer", "minimum": 0, "default": 1},
                                    "maxReplicas": {"type": "integer", "maximum": 10, "default": 5},
                                    "label": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 8},
                                    "tags": {"type": "array", "maxItems": 2, "items": {"type": "string"}},
                                },
                            },
                            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                        },
                    }
                },
            }
        ],
    },
}
GADGETS = json.loads(
    json.dumps(CRD).replace("widget", "gadget").replace("Widget", "Gadget").replace('"wd"', '"gd"')
)


def widget(name: str, **spec: Any) -> str:
    """A Widget manifest as YAML, valid unless ``spec`` overrides make it invalid."""
    return yaml.safe_dump(
        {
            "apiVersion": "example.dev/v1",
            "kind": "Widget",
            "metadata": {"name": name},
            "spec": {"size": "small", **spec},
        }
    )
