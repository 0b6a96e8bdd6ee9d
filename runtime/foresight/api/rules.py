"""Rules a field must satisfy beyond its type and bounds: declared once in a model, enforced twice.

A :class:`Rule` goes into the generated CRD as a CEL ``x-kubernetes-validations`` entry, so the API
server refuses a bad object at ``kubectl apply`` (and ``foresight validate`` evaluates the same
rule offline), and it runs as a Python check whenever the model validates, so the operator's spec
parsing refuses the object as well (``Ready=False`` naming the field) if one ever gets past
admission, e.g. applied before the CRD carried the rule. Both sides come from one definition: a
regular expression or a minimum duration is written once and turned into the CEL and the Python.

:data:`SET` and :func:`keyed_by` do the same for lists whose items must be unique: the CRD says
``x-kubernetes-list-type: set`` / ``map`` (the API server refuses duplicates, and server-side apply
merges the list by item or key), the model refuses duplicates.

:func:`cel`, :func:`field_rules` and :func:`immutable` write rules that need several fields or
``oldSelf``; those live in the CRD only (CEL is the one place they are evaluated).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

from .durations import nanoseconds

__all__ = [
    "SET",
    "Rule",
    "at_least",
    "cel",
    "cel_string",
    "field_error",
    "field_rules",
    "immutable",
    "keyed_by",
    "matches",
    "not_matching",
]

JsonExtra = Callable[[dict[str, Any]], None]


def cel(
    rule: str, message: str, *, field_path: str | None = None, reason: str | None = None
) -> dict[str, str]:
    """One ``x-kubernetes-validations`` entry (evaluated by the API server and by ``foresight validate``)."""
    entry = {"rule": rule, "message": message}
    if field_path:
        entry["fieldPath"] = field_path
    if reason:
        entry["reason"] = reason
    return entry


def _add_rules(schema: dict[str, Any], rules: list[dict[str, str]]) -> None:
    schema["x-kubernetes-validations"] = [*schema.get("x-kubernetes-validations", []), *rules]


def field_rules(*rules: dict[str, str]) -> JsonExtra:
    """``json_schema_extra`` attaching CEL rules to one field (or nested object) of a model.

    A function, not a dict, so that it adds to the rules the field's type already carries
    (a dict would replace them).
    """
    return lambda schema: _add_rules(schema, list(rules))


def immutable(what: str) -> JsonExtra:
    """``json_schema_extra`` for a field that cannot change once set (a transition rule)."""
    return field_rules(cel("self == oldSelf", f"{what} is immutable once set"))


def field_error(message: str) -> PydanticCustomError:
    """What a validator raises: the message as written. (pydantic puts "Value error, " in front of
    a ``ValueError``; without a context it leaves braces alone, so `{categories}` stays as it is.)"""
    return PydanticCustomError("foresight_rule", message)


def cel_string(text: str) -> str:
    """``text`` as a CEL single-quoted string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass(frozen=True)
class Rule:
    """A check on one field's value: a CEL rule in the CRD and the same test in Python.

    Use it in ``Annotated[str, Rule(...)]``; build it with :func:`matches`, :func:`not_matching`
    or :func:`at_least` so that the CEL and the Python come from one pattern or bound.
    """

    rule: str
    """The CEL expression, over ``self`` (the field's value)."""
    message: str
    """What is wrong and what to write instead; the error names the field in front of it."""
    test: Callable[[Any], bool]
    """The same check in Python, on the validated value."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self._check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        out = handler(schema)
        _add_rules(out, [cel(self.rule, self.message)])
        return out

    def _check(self, value: Any) -> Any:
        if not self.test(value):
            raise field_error(self.message)
        return value


def matches(pattern: str, message: str) -> Rule:
    """The value contains a match of ``pattern`` (RE2 in CEL, ``re`` in Python: keep to their overlap)."""
    compiled = re.compile(pattern)
    return Rule(f"self.matches({cel_string(pattern)})", message, lambda v: bool(compiled.search(v)))


def not_matching(pattern: str, message: str) -> Rule:
    """The value contains no match of ``pattern``."""
    compiled = re.compile(pattern)
    return Rule(f"!self.matches({cel_string(pattern)})", message, lambda v: not compiled.search(v))


def at_least(minimum: str, why: str) -> Rule:
    """A Go duration of at least ``minimum``; ``why`` says what a shorter one would do."""
    floor = nanoseconds(minimum)
    return Rule(
        f"duration(self) >= duration({cel_string(minimum)})",
        f"must be at least {minimum}: {why}",
        lambda v: nanoseconds(v) >= floor,
    )


@dataclass(frozen=True)
class _UniqueItems:
    """A list whose items must be unique, by value (``key`` None) or by one field of each item."""

    key: str | None = None

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self._check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        out = handler(schema)
        if self.key is None:
            out["x-kubernetes-list-type"] = "set"
        else:
            out["x-kubernetes-list-type"] = "map"
            out["x-kubernetes-list-map-keys"] = [self.key]
        return out

    def _check(self, value: list[Any]) -> list[Any]:
        seen: set[Any] = set()
        for item in value:
            ident = item if self.key is None else getattr(item, self.key)
            if ident in seen:
                what = "each item" if self.key is None else f"each {self.key}"
                raise PydanticCustomError(
                    "foresight_duplicate",
                    "duplicate value {value}: {what} may appear only once",
                    {"value": repr(ident), "what": what},
                )
            seen.add(ident)
        return value


SET = _UniqueItems()
"""``Annotated[list[...], SET]``: a list of unique scalars (``x-kubernetes-list-type: set``)."""


def keyed_by(key: str) -> _UniqueItems:
    """``Annotated[list[Model], keyed_by("name")]``: items unique by ``key`` (a list-map).

    ``key`` is both the wire name and the attribute name, so it must be a one-word field; the
    API server needs it required (or defaulted) in the item's schema.
    """
    return _UniqueItems(key)
