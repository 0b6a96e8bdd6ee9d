"""Offline validation of Foresight resources: what the API server would say, before `kubectl apply`.

Two layers, both derived from the API models: the pydantic models (types, bounds, enums, unknown
fields) and the CEL ``x-kubernetes-validations`` rules of the generated CRD schema, evaluated with
``cel-python`` (with the Kubernetes list library's ``sum()`` added). Every error names the field,
as ``spec.source.query``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

import celpy
from celpy import celtypes
from pydantic import ValidationError

from . import API_VERSION, KINDS
from .crd import structural_schema
from .meta import KindInfo

__all__ = ["FieldError", "evaluate_rules", "validate_object"]


@dataclass(frozen=True)
class FieldError:
    """One problem with one field."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def _k8s_sum(items: celtypes.ListType) -> Any:
    total: Any = celtypes.IntType(0)
    for item in items:
        total = total + item
    return total


_FUNCTIONS = {"sum": _k8s_sum}


@cache
def _program(rule: str) -> Any:
    env = celpy.Environment()
    return env.program(env.compile(rule), functions=_FUNCTIONS)


@cache
def _spec_schema(kind: str) -> dict[str, Any]:
    info = KINDS[kind]
    return structural_schema(info.spec_model, extra_rules=info.spec_validations)


def _walk(
    schema: dict[str, Any], value: Any, old: Any, path: str
) -> Iterator[tuple[dict[str, Any], Any, Any, str]]:
    """Yield every (schema node, value, old value, path) pair where the value is present."""
    yield schema, value, old, path
    if isinstance(value, dict) and "properties" in schema:
        for name, sub in schema["properties"].items():
            if name in value:
                old_sub = old.get(name) if isinstance(old, dict) else None
                yield from _walk(sub, value[name], old_sub, f"{path}.{name}")
    elif isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            # Transition rules inside lists only apply to map lists; correlate by index is not what
            # Kubernetes does, so old values are not passed down into list items.
            yield from _walk(schema["items"], item, None, f"{path}[{i}]")


def evaluate_rules(
    schema: dict[str, Any], value: Any, *, old: Any = None, path: str = "spec"
) -> list[FieldError]:
    """Evaluate every CEL rule of ``schema`` against ``value`` (``old`` enables transition rules)."""
    errors: list[FieldError] = []
    for node, val, old_val, where in _walk(schema, value, old, path):
        for rule in node.get("x-kubernetes-validations", []):
            uses_old = "oldSelf" in rule["rule"]
            if uses_old and old_val is None:
                continue  # transition rules only run on updates where the old value exists
            activation = {"self": celpy.json_to_cel(val)}
            if uses_old:
                activation["oldSelf"] = celpy.json_to_cel(old_val)
            field = where + rule.get("fieldPath", "")
            try:
                result = _program(rule["rule"]).evaluate(activation)
            except Exception as exc:  # a rule that cannot be evaluated rejects, as in Kubernetes
                errors.append(FieldError(field, f"{rule['message']} (rule could not be evaluated: {exc})"))
                continue
            if isinstance(result, Exception) or not bool(result):
                errors.append(FieldError(field, rule["message"]))
    return errors


def _pydantic_errors(exc: ValidationError, prefix: str) -> list[FieldError]:
    out = []
    for err in exc.errors():
        loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"])
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown field (check the spelling; fields are camelCase)"
        elif err["type"] in ("literal_error", "enum") and "expected" in err.get("ctx", {}):
            message = f"unsupported value {err.get('input')!r}: {message}"
        out.append(FieldError(prefix + loc, message))
    return out


def validate_object(obj: Any, *, old: dict[str, Any] | None = None) -> list[FieldError]:
    """Validate one resource (a dict as loaded from YAML). An empty list means valid."""
    if not isinstance(obj, dict):
        return [FieldError("<document>", "expected a mapping with apiVersion, kind, metadata and spec")]
    errors: list[FieldError] = []
    if obj.get("apiVersion") != API_VERSION:
        errors.append(FieldError("apiVersion", f"expected {API_VERSION!r}, got {obj.get('apiVersion')!r}"))
    kind = obj.get("kind")
    info: KindInfo | None = KINDS.get(kind) if isinstance(kind, str) else None
    if info is None:
        errors.append(FieldError("kind", f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}"))
        return errors
    name = (obj.get("metadata") or {}).get("name")
    if not isinstance(name, str) or not name:
        errors.append(FieldError("metadata.name", "required"))
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        errors.append(FieldError("spec", "required: a mapping"))
        return errors
    try:
        # Strict JSON-mode validation types values as the API server does: "yes" is not a boolean
        # and 3 is not a string (YAML dates and the like are sent as strings, as kubectl does).
        parsed = info.spec_model.model_validate_json(json.dumps(spec, default=str), strict=True)
    except ValidationError as exc:
        return errors + _pydantic_errors(exc, "spec")
    defaulted = parsed.model_dump(by_alias=True, exclude_none=True, mode="json")
    old_spec = None
    if old is not None and isinstance(old.get("spec"), dict):
        try:
            old_spec = info.spec_model.model_validate(old["spec"]).model_dump(
                by_alias=True, exclude_none=True, mode="json"
            )
        except ValidationError:
            old_spec = old["spec"]
    errors += evaluate_rules(_spec_schema(info.kind), defaulted, old=old_spec)
    return errors
