"""Admission for custom resources: OpenAPI v3 (structural) schema defaulting, pruning and validation.

What a real API server does with a CRD's ``openAPIV3Schema`` on create / update / patch, in the
order it does it: apply ``default``s, prune unknown fields (unless
``x-kubernetes-preserve-unknown-fields``), validate (types, required, enum, bounds, lengths,
patterns, item and property counts, unique items of ``x-kubernetes-list-type`` ``set`` and
``map`` lists) and evaluate ``x-kubernetes-validations`` CEL rules with ``celpy`` (``oldSelf`` is
bound on update; transition rules that use it are skipped on create, as in Kubernetes), with
Kubernetes' ``<list>.sum()`` and Go's grammar for ``duration()``. Failures come back as
:class:`FieldError` with the field path (``spec.horizon``) and the wording of the real API server,
so a 422 ``Status`` reads like the real thing in kubectl.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

import celpy
from foresight.api.durations import nanoseconds

_MISSING = object()


@dataclass(frozen=True)
class FieldError:
    """One invalid field, as a Kubernetes ``StatusCause``."""

    field: str
    reason: str  # FieldValueRequired, FieldValueInvalid, FieldValueNotSupported, FieldValueTypeInvalid
    message: str  # the part after "field: "

    def as_cause(self) -> dict[str, str]:
        return {"reason": self.reason, "message": self.message, "field": self.field}

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def _fmt(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return '"object"'
    if isinstance(value, list):
        return '"array"'
    return str(value)


def _type_ok(value: Any, schema: dict[str, Any]) -> bool:
    kind = schema.get("type")
    if value is None:
        return bool(schema.get("nullable"))
    if schema.get("x-kubernetes-int-or-string"):
        return isinstance(value, (int, str)) and not isinstance(value, bool)
    match kind:
        case "object":
            return isinstance(value, dict)
        case "array":
            return isinstance(value, list)
        case "string":
            return isinstance(value, str)
        case "integer":
            return isinstance(value, int) and not isinstance(value, bool)
        case "number":
            return isinstance(value, (int, float)) and not isinstance(value, bool)
        case "boolean":
            return isinstance(value, bool)
        case _:
            return True


def apply_defaults(value: Any, schema: dict[str, Any]) -> Any:
    """Fill in ``default`` values of absent properties, recursively (mutates and returns value)."""
    if isinstance(value, dict):
        for key, sub in (schema.get("properties") or {}).items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
            if key in value:
                value[key] = apply_defaults(value[key], sub)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key in list(value):
                if key not in (schema.get("properties") or {}):
                    value[key] = apply_defaults(value[key], extra)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [apply_defaults(item, schema["items"]) for item in value]
    return value


def prune(value: Any, schema: dict[str, Any], path: str, unknown: list[str]) -> Any:
    """Drop fields the schema does not know; their paths go to ``unknown`` (for strict validation)."""
    if schema.get("x-kubernetes-preserve-unknown-fields") and "properties" not in schema:
        return value
    if isinstance(value, dict) and schema.get("type", "object") == "object":
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        preserve = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
        for key in list(value):
            sub_path = f"{path}.{key}" if path else key
            if key in props:
                value[key] = prune(value[key], props[key], sub_path, unknown)
            elif isinstance(extra, dict):
                value[key] = prune(value[key], extra, sub_path, unknown)
            elif extra is True or preserve:
                continue
            else:
                unknown.append(sub_path)
                del value[key]
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [prune(item, schema["items"], f"{path}[{i}]", unknown) for i, item in enumerate(value)]
    return value


def validate(
    value: Any, schema: dict[str, Any], path: str, errors: list[FieldError], old: Any = _MISSING
) -> None:
    """Check ``value`` against ``schema``, appending every violation to ``errors``."""
    if not _type_ok(value, schema):
        want = schema.get("type", "?")
        errors.append(
            FieldError(
                path,
                "FieldValueTypeInvalid",
                f"Invalid value: {_fmt(value)}: {path} in body must be of type {want}: {_fmt(value)}",
            )
        )
        return
    if value is None:
        return
    if "enum" in schema and value not in schema["enum"]:
        supported = ", ".join(_fmt(v) for v in schema["enum"])
        errors.append(
            FieldError(
                path,
                "FieldValueNotSupported",
                f"Unsupported value: {_fmt(value)}: supported values: {supported}",
            )
        )
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema:
            exclusive = bool(schema.get("exclusiveMinimum"))
            if value < schema["minimum"] or (exclusive and value == schema["minimum"]):
                rel = "greater than" if exclusive else "greater than or equal to"
                errors.append(
                    FieldError(
                        path,
                        "FieldValueInvalid",
                        f"Invalid value: {value}: {path} in body should be {rel} {schema['minimum']}",
                    )
                )
        if "maximum" in schema:
            exclusive = bool(schema.get("exclusiveMaximum"))
            if value > schema["maximum"] or (exclusive and value == schema["maximum"]):
                rel = "less than" if exclusive else "less than or equal to"
                errors.append(
                    FieldError(
                        path,
                        "FieldValueInvalid",
                        f"Invalid value: {value}: {path} in body should be {rel} {schema['maximum']}",
                    )
                )
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            errors.append(
                FieldError(
                    path,
                    "FieldValueInvalid",
                    f"Invalid value: {_fmt(value)}: {path} in body should be at least "
                    f"{schema['minLength']} chars long",
                )
            )
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errors.append(
                FieldError(
                    path,
                    "FieldValueTooLong",
                    f"Too long: may not be more than {schema['maxLength']} bytes",
                )
            )
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append(
                FieldError(
                    path,
                    "FieldValueInvalid",
                    f"Invalid value: {_fmt(value)}: {path} in body should match '{schema['pattern']}'",
                )
            )
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            errors.append(
                FieldError(
                    path,
                    "FieldValueInvalid",
                    f"Invalid value: {len(value)}: {path} in body should have at least "
                    f"{schema['minItems']} items",
                )
            )
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errors.append(
                FieldError(
                    path,
                    "FieldValueTooMany",
                    f"Too many: {len(value)}: must have at most {schema['maxItems']} items",
                )
            )
        items = schema.get("items")
        if isinstance(items, dict):
            for i, item in enumerate(value):
                validate(item, items, f"{path}[{i}]", errors)
        _check_unique(value, schema, path, errors)
    if isinstance(value, dict):
        if "maxProperties" in schema and len(value) > schema["maxProperties"]:
            errors.append(
                FieldError(
                    path,
                    "FieldValueTooMany",
                    f"Too many: {len(value)}: must have at most {schema['maxProperties']} items",
                )
            )
        if "minProperties" in schema and len(value) < schema["minProperties"]:
            errors.append(
                FieldError(
                    path,
                    "FieldValueInvalid",
                    f"Invalid value: {len(value)}: {path} in body should have at least "
                    f"{schema['minProperties']} properties",
                )
            )
        props = schema.get("properties") or {}
        for key in schema.get("required") or []:
            if key not in value:
                sub_path = f"{path}.{key}" if path else key
                errors.append(FieldError(sub_path, "FieldValueRequired", "Required value"))
        for key, sub in props.items():
            if key in value:
                sub_path = f"{path}.{key}" if path else key
                sub_old = old.get(key, _MISSING) if isinstance(old, dict) else _MISSING
                validate(value[key], sub, sub_path, errors, sub_old)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key, item in value.items():
                if key not in props:
                    validate(item, extra, f"{path}.{key}" if path else key, errors)
    for rule in schema.get("x-kubernetes-validations") or []:
        _check_rule(rule, value, old, path, errors)


def _go_repr(value: Any) -> str:
    """How the API server prints a duplicate (Go's %#v of the decoded JSON value)."""
    if isinstance(value, dict):
        inner = ", ".join(f"{_go_repr(k)}:{_go_repr(v)}" for k, v in value.items())
        return f"map[string]interface {{}}{{{inner}}}"
    return _fmt(value)


def _check_unique(value: list[Any], schema: dict[str, Any], path: str, errors: list[FieldError]) -> None:
    """``x-kubernetes-list-type: set`` items, and ``map`` items by their keys, appear once each."""
    list_type = schema.get("x-kubernetes-list-type")
    if list_type not in ("set", "map"):
        return
    keys = schema.get("x-kubernetes-list-map-keys") or []
    seen: list[Any] = []
    for i, item in enumerate(value):
        ident = (
            item if list_type == "set" else [item.get(k) if isinstance(item, dict) else None for k in keys]
        )
        if ident in seen:
            shown = item if list_type == "set" else {k: item.get(k) for k in keys}
            errors.append(
                FieldError(f"{path}[{i}]", "FieldValueDuplicate", f"Duplicate value: {_go_repr(shown)}")
            )
        else:
            seen.append(ident)


_CEL_ENV = celpy.Environment()


def _list_sum(items: Any) -> Any:
    """Kubernetes' CEL list library ``<list>.sum()`` (not part of standard CEL, so not in celpy)."""
    total: Any = celpy.celtypes.IntType(0)
    for item in items:
        total = total + item
    return total


def _duration(value: Any) -> Any:
    """CEL's ``duration(string)`` as the API server has it: Go's ``time.ParseDuration``.

    celpy's own reads ``1us`` and ``1ns`` as 0s and refuses ``0``; Foresight's parser implements
    Go's grammar (without a sign, which no Foresight rule uses) and is tested against Go's cases.
    """
    if isinstance(value, celpy.celtypes.DurationType):
        return value
    ns = nanoseconds(str(value))
    return celpy.celtypes.DurationType(seconds=ns // 1_000_000_000, nanos=ns % 1_000_000_000)


_K8S_FUNCTIONS = {"sum": _list_sum, "duration": _duration}


@cache
def _program(expression: str) -> Any:
    """A compiled rule (the API server compiles each CRD's rules once, not per request)."""
    return _CEL_ENV.program(_CEL_ENV.compile(expression), functions=_K8S_FUNCTIONS)


@lru_cache(maxsize=65536)
def _outcome(expression: str, value_json: str, old_json: str | None) -> str | None:
    """``None`` when the rule holds for ``self`` (and ``oldSelf``) as JSON, else why not.

    Memoised: a rule is a pure function of its inputs, and most writes (status, annotations) leave
    the values its rules see unchanged. A real API server evaluates CEL in microseconds; celpy
    takes milliseconds per rule, which made the emulator, not the operator, the bottleneck of
    thousands of resources (bench/operator_scale.py)."""
    activation: dict[str, Any] = {"self": celpy.json_to_cel(json.loads(value_json))}
    if old_json is not None:
        activation["oldSelf"] = celpy.json_to_cel(json.loads(old_json))
    try:
        result = _program(expression).evaluate(activation)
    except Exception as exc:  # a rule that cannot run is reported like the API server does
        return f"rule error: {exc}"
    return None if result is True or bool(result) is True else ""


def _check_rule(rule: dict[str, Any], value: Any, old: Any, path: str, errors: list[FieldError]) -> None:
    expression = rule["rule"]
    uses_old = "oldSelf" in expression
    if uses_old and old is _MISSING and not rule.get("optionalOldSelf"):
        return  # a transition rule: Kubernetes only runs it on updates that had an old value
    old_json = json.dumps(None if old is _MISSING else old, sort_keys=True) if uses_old else None
    why = _outcome(expression, json.dumps(value, sort_keys=True), old_json)
    if why is None:
        return
    field = path
    if rule.get("fieldPath"):
        field = f"{path}{rule['fieldPath']}" if path else rule["fieldPath"].lstrip(".")
    message = why or rule.get("message") or f"failed rule: {expression}"
    errors.append(FieldError(field, "FieldValueInvalid", f"Invalid value: {_fmt(value)}: {message}"))


def admit(
    obj: dict[str, Any], schema: dict[str, Any], old: dict[str, Any] | None
) -> tuple[dict[str, Any], list[str], list[FieldError]]:
    """Default, prune and validate a whole custom object.

    Returns the admitted object, the pruned unknown field paths and the errors (empty = valid).
    ``apiVersion``, ``kind`` and ``metadata`` are the API server's business, not the schema's.
    """
    body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
    body = apply_defaults(body, schema)
    unknown: list[str] = []
    body = prune(body, schema, "", unknown)
    errors: list[FieldError] = []
    old_body: Any = _MISSING
    if old is not None:
        old_body = {k: v for k, v in old.items() if k not in ("apiVersion", "kind", "metadata")}
    validate(body, schema, "", errors, old_body)
    admitted: dict[str, Any] = {k: obj[k] for k in ("apiVersion", "kind", "metadata") if k in obj}
    admitted.update(body)
    return admitted, unknown, errors
