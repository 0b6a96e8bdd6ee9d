"""Generate CustomResourceDefinitions from the API models.

pydantic emits JSON Schema 2020-12 with ``$ref``s, ``anyOf [X, null]`` for optionals and numeric
``exclusiveMinimum``; Kubernetes wants a *structural* OpenAPI v3.0 schema: everything inlined,
every node typed, no nulls, boolean ``exclusiveMinimum``. :func:`structural_schema` does that
conversion, :func:`build_crd` adds the CRD around it. The output is deterministic so a test can
compare it with the committed ``crds/``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import core_schema

from .meta import CATEGORY, GROUP, VERSION, KindInfo

__all__ = ["build_crd", "crd_filename", "render_crd", "structural_schema", "write_crds"]

_DROP_KEYS = {"title", "$defs", "discriminator"}


def _resolve(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_resolve(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = copy.deepcopy(defs[node["$ref"].rsplit("/", 1)[-1]])
        extra = {k: v for k, v in node.items() if k != "$ref"}
        target.update(extra)  # a field's description / default wins over the model's
        return _resolve(target, defs)
    return {k: _resolve(v, defs) for k, v in node.items()}


def _merge_validations(a: dict[str, Any], b: dict[str, Any]) -> None:
    rules = a.get("x-kubernetes-validations", []) + b.get("x-kubernetes-validations", [])
    if rules:
        a["x-kubernetes-validations"] = rules


def _structural(node: Any) -> Any:
    if isinstance(node, list):
        return [_structural(n) for n in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    # Optional[X] -> X (absence means unset; nulls are dropped on the wire).
    for key in ("anyOf", "oneOf"):
        if key in node:
            options = [o for o in node[key] if o.get("type") != "null"]
            if len(options) == 1:
                base = dict(options[0])
                outer = {k: v for k, v in node.items() if k != key}
                _merge_validations(base, outer)
                outer.pop("x-kubernetes-validations", None)
                base.update(outer)
                node = base
            else:
                raise ValueError(
                    f"cannot make a structural schema from a union of {len(options)} types: {node}"
                )
    for k in _DROP_KEYS:
        node.pop(k, None)
    if node.get("default", "") is None:
        node.pop("default")
    if "const" in node:
        node["enum"] = [node.pop("const")]
    for bound, plain in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if bound in node and not isinstance(node[bound], bool):
            node[plain] = node.pop(bound)
            node[bound] = True
    if node.get("additionalProperties") is False:
        del node["additionalProperties"]  # structural schemas prune unknown fields instead
    if "enum" in node and "type" not in node:
        node["type"] = "string"
    if "properties" in node:
        node.setdefault("type", "object")
        node["properties"] = {k: _structural(v) for k, v in node["properties"].items()}
    if "items" in node:
        node["items"] = _structural(node["items"])
    if isinstance(node.get("additionalProperties"), dict):
        node["additionalProperties"] = _structural(node["additionalProperties"])
    if node.get("x-kubernetes-preserve-unknown-fields"):
        node["type"] = "object"
        node.pop("additionalProperties", None)
    # pydantic writes a nested model's default as a full dump; Kubernetes applies defaults level by
    # level, so `{}` is enough (and keeps one source for every leaf default). `{}` also makes CEL
    # rules safe to read through optional objects that have defaults.
    if isinstance(node.get("default"), dict) and node.get("type") == "object" and "properties" in node:
        node["default"] = {}
    if "type" not in node:
        raise ValueError(f"schema node without a type: {node}")
    return node


class _WithFactoryDefaults(GenerateJsonSchema):
    """Emit the value of ``default_factory`` too (pydantic leaves it out).

    Kubernetes applies schema defaults before it evaluates CEL, so every field with a default in
    the model must have it in the CRD: a rule reading ``self.output.horizons`` must never meet a
    missing field just because the user left ``output`` out.
    """

    def get_default_value(self, schema: core_schema.WithDefaultSchema) -> Any:
        factory = schema.get("default_factory")
        if factory is not None and not schema.get("default_factory_takes_data"):
            return factory()  # type: ignore[call-arg]
        return super().get_default_value(schema)


def structural_schema(model: type[Any], *, extra_rules: tuple[dict[str, str], ...] = ()) -> dict[str, Any]:
    """The structural OpenAPI v3 schema of a pydantic model, with CEL rules attached at the top."""
    raw = model.model_json_schema(by_alias=True, mode="validation", schema_generator=_WithFactoryDefaults)
    defs = raw.pop("$defs", {})
    schema = _structural(_resolve(raw, defs))
    if extra_rules:
        schema["x-kubernetes-validations"] = schema.get("x-kubernetes-validations", []) + list(extra_rules)
    return schema


def build_crd(info: KindInfo) -> dict[str, Any]:
    """The CustomResourceDefinition of one kind, as a dict."""
    spec_schema = structural_schema(info.spec_model, extra_rules=info.spec_validations)
    spec_schema["description"] = (
        (info.spec_model.__doc__ or "spec: the desired state.").strip().split("\n")[0]
    )
    status_schema = structural_schema(info.status_model)
    status_schema["description"] = "status: observed state, written by the operator only."
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{info.plural}.{GROUP}",
            "labels": {"app.kubernetes.io/part-of": "foresight"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": info.kind,
                "listKind": f"{info.kind}List",
                "plural": info.plural,
                "singular": info.singular,
                "shortNames": list(info.short_names),
                "categories": [CATEGORY],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": list(info.printer_columns),
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": info.description,
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec_schema,
                                "status": status_schema,
                            },
                        }
                    },
                }
            ],
        },
    }


def crd_filename(info: KindInfo) -> str:
    return f"{info.plural}.{GROUP}.yaml"


def render_crd(info: KindInfo) -> str:
    header = "# Generated by `foresight crds` (make crds) from runtime/foresight/api. Do not edit by hand.\n"
    return header + yaml.safe_dump(build_crd(info), sort_keys=False, allow_unicode=True, width=120)


def write_crds(directory: Path, kinds: list[KindInfo]) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for info in kinds:
        path = directory / crd_filename(info)
        path.write_text(render_crd(info), encoding="utf-8")
        written.append(path)
    return written
