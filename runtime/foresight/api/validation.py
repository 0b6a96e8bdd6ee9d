"""Offline validation of Foresight resources: what the API server would say, before `kubectl apply`.

Two layers, both derived from the API models: the pydantic models (types, bounds, enums, unknown
fields, the Python side of :mod:`foresight.api.rules`) and the CEL ``x-kubernetes-validations``
rules of the generated CRD schema, evaluated with ``cel-python`` (with the Kubernetes list
library's ``sum()`` added, and ``duration()`` reading Go's grammar as the API server does, where
cel-python's own reads ``1us`` as 0s and refuses ``0``). Before either, the document itself is
checked for what YAML can say but JSON, and so the API server, cannot: NaN, infinities, integers
beyond 64 bits, keys that are not strings. Every error names the field, as ``spec.source.query``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

import celpy
from celpy import celtypes
from pydantic import ValidationError

from . import API_VERSION, KINDS
from .crd import structural_schema
from .durations import nanoseconds
from .meta import KindInfo

__all__ = ["FieldError", "evaluate_rules", "json_errors", "validate_object"]


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


def _go_duration(value: Any) -> celtypes.DurationType:
    """CEL's ``duration(string)`` with Go's grammar (an error for anything else, as in Kubernetes)."""
    if isinstance(value, celtypes.DurationType):
        return value
    ns = nanoseconds(str(value))
    return celtypes.DurationType(seconds=ns // 1_000_000_000, nanos=ns % 1_000_000_000)


_FUNCTIONS = {"sum": _k8s_sum, "duration": _go_duration}


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
    if isinstance(value, dict) and isinstance(schema.get("additionalProperties"), dict):
        for name, item in value.items():
            if name not in schema.get("properties", {}):
                yield from _walk(schema["additionalProperties"], item, None, f"{path}.{name}")
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
        rules = node.get("x-kubernetes-validations", [])
        if not rules:
            continue
        this = celpy.json_to_cel(val)  # once per node: converting a whole spec is not free
        for rule in rules:
            uses_old = "oldSelf" in rule["rule"]
            if uses_old and old_val is None:
                continue  # transition rules only run on updates where the old value exists
            activation = {"self": this}
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


_INT64 = (-(2**63), 2**63 - 1)
MAX_VALUES = 1_000_000
"""Values one spec may hold once YAML aliases are expanded (``kubectl`` expands them too): a
"billion laughs" document or an alias that contains itself stops here instead of exhausting memory."""


def json_errors(value: Any, path: str) -> list[FieldError]:
    """What YAML can hold but JSON (what kubectl sends) cannot: NaN, infinities, integers beyond
    64 bits and mapping keys that are not strings, each named by its field."""
    errors: list[FieldError] = []
    # Paths are kept as (parent, segment) links and spelled out only for an error: a deep or
    # self-referencing document would otherwise cost the square of its depth in string copies.
    Link = tuple[Any, str] | None
    stack: list[tuple[Any, Link]] = [(value, None)]

    def spell(link: Link) -> str:
        parts: list[str] = []
        while link is not None:
            link, segment = link
            parts.append(segment)
        return path + "".join(reversed(parts))

    seen = 0
    while stack:
        node, link = stack.pop()
        seen += 1
        if seen > MAX_VALUES:
            return [FieldError(path, f"more than {MAX_VALUES:,} values once YAML aliases are expanded")]
        if isinstance(node, bool):
            continue
        if isinstance(node, float) and not math.isfinite(node):
            message = f"{node} is not a number the API accepts: JSON has no NaN or infinity"
            errors.append(FieldError(spell(link), message))
        elif isinstance(node, int) and not _INT64[0] <= node <= _INT64[1]:
            errors.append(FieldError(spell(link), "out of range: the API stores integers in 64 bits"))
        elif isinstance(node, dict):
            for key, item in node.items():
                if isinstance(key, str):
                    stack.append((item, (link, f".{key}")))
                else:
                    message = f"key {key!r} is not a string: quote it in the YAML"
                    errors.append(FieldError(spell((link, f".{key}")), message))
        elif isinstance(node, list):
            stack.extend((item, (link, f"[{i}]")) for i, item in enumerate(node))
    return sorted(errors, key=lambda e: e.field)


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
    meta = obj.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    if not isinstance(name, str) or not name:
        errors.append(FieldError("metadata.name", "required"))
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        errors.append(FieldError("spec", "required: a mapping"))
        return errors
    not_json = json_errors(spec, "spec")
    if not_json:
        return errors + not_json
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
