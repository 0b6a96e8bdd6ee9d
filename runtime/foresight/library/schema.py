"""The JSON Schemas of the library format, shipped with the runtime, and checks against them.

``case.schema.json`` and ``manifest.schema.json`` (next to this module, package data) are the
published contract a library author can check with any JSON Schema tool; :func:`case_errors` and
:func:`manifest_errors` run them (draft 2020-12, through ``jsonschema``) and turn each violation
into a ``(field path, message)`` pair short enough for a status condition.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from importlib import resources
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError

__all__ = ["case_errors", "case_schema", "manifest_errors", "manifest_schema"]

CASE_SCHEMA_FILE = "case.schema.json"
MANIFEST_SCHEMA_FILE = "manifest.schema.json"
_MAX_MESSAGE = 200


def _load(name: str) -> dict[str, Any]:
    text = resources.files("foresight.library").joinpath(name).read_text(encoding="utf-8")
    doc: dict[str, Any] = json.loads(text)
    return doc


@functools.cache
def case_schema() -> dict[str, Any]:
    return _load(CASE_SCHEMA_FILE)


@functools.cache
def manifest_schema() -> dict[str, Any]:
    return _load(MANIFEST_SCHEMA_FILE)


@functools.cache
def _validator(name: str) -> jsonschema.Draft202012Validator:
    schema = case_schema() if name == CASE_SCHEMA_FILE else manifest_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _path(error: ValidationError) -> str:
    parts = [str(p) for p in error.absolute_path]
    if error.validator == "required":
        # "'qps' is a required property" is reported on the parent: name the missing field itself.
        missing = error.message.split("'")[1] if error.message.count("'") >= 2 else ""
        parts.append(missing)
    elif error.validator == "additionalProperties":
        extra = error.message.split("'")[1] if error.message.count("'") >= 2 else ""
        parts.append(extra)
    return ".".join(p for p in parts if p) or "(document)"


def _message(error: ValidationError) -> str:
    if error.validator == "required":
        return "is required"
    if error.validator == "additionalProperties":
        return "is not a field of this format (a typo?)"
    if error.validator == "enum":
        return f"{_short(error.instance)} is not one of {', '.join(map(str, error.validator_value))}"
    if error.validator == "type":
        return f"{_short(error.instance)} is not of type {error.validator_value}"
    if error.validator in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        bound = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}
        return f"{_short(error.instance)} must be {bound[str(error.validator)]} {error.validator_value}"
    if error.validator == "pattern":
        return f"{_short(error.instance)} does not match {error.validator_value}"
    return error.message[:_MAX_MESSAGE]


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def _errors(name: str, doc: Any) -> list[tuple[str, str]]:
    found: Iterable[ValidationError] = _validator(name).iter_errors(doc)
    out = [(_path(e), _message(e)) for e in found]
    return sorted(out)


def case_errors(doc: Any) -> list[tuple[str, str]]:
    """Schema violations of one case: ``[(field path, message), ...]``, empty when valid."""
    return _errors(CASE_SCHEMA_FILE, doc)


def manifest_errors(doc: Any) -> list[tuple[str, str]]:
    """Schema violations of a manifest (``library.json`` or a single-document library)."""
    return _errors(MANIFEST_SCHEMA_FILE, doc)
