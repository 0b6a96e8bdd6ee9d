"""The termination message: the one channel from a finished runtime pod back to the operator.

A pod has no API access. It writes one JSON document to its termination log (the container's
``terminationMessagePath``); the kubelet copies it into the pod's status, capped at
:data:`TERMINATION_MESSAGE_LIMIT` bytes, and the operator reads it from there. Each kind's result
is a :class:`ResultMessage` subclass (:mod:`.forecast`, :mod:`.training`, :mod:`.modelversion`):
the runtime builds it and calls :meth:`ResultMessage.termination_message`, which drops the least
important parts until it fits (a cut JSON document would be useless), and the operator parses it
with :meth:`ResultMessage.from_termination_message`, through the same class.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

from . import env as names

__all__ = [
    "TERMINATION_MESSAGE_LIMIT",
    "ResultMessage",
    "Shrink",
    "compact_json",
    "cut_message",
    "fit_message",
    "keep_only",
    "parse_json_object",
    "termination_log_path",
    "write_termination_log",
]

log = logging.getLogger(__name__)

TERMINATION_MESSAGE_LIMIT = 4096
"""Kubernetes truncates a termination message beyond 4096 bytes."""

Doc = dict[str, Any]
Shrink = Callable[[Doc], Doc | None]
"""One way to make a message smaller: a smaller copy of the document, or ``None`` when it does not apply."""


def termination_log_path(environ: Mapping[str, str]) -> Path:
    """Where this pod writes its termination message (``FORESIGHT_TERMINATION_MESSAGE_PATH``, then
    ``FORESIGHT_TERMINATION_LOG``, then the kubelet's default ``/dev/termination-log``)."""
    return Path(
        environ.get(names.TERMINATION_MESSAGE_PATH)
        or environ.get(names.TERMINATION_LOG)
        or names.TERMINATION_LOG_PATH
    )


def write_termination_log(path: Path, text: str) -> bool:
    """Write ``text`` to the termination log; ``False`` when it cannot be written (outside a pod)."""
    try:
        if str(path.parent) != "/dev":
            path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w") as fh:
            fh.write(text)
    except (OSError, ValueError) as exc:  # ValueError: a path with a NUL byte
        log.info("termination message not written to %s (%s); outside Kubernetes that is expected", path, exc)
        return False
    return True


def compact_json(doc: Mapping[str, Any]) -> str:
    """The message's wire form: compact, keys sorted, no NaN (JSON has none)."""
    return json.dumps(doc, separators=(",", ":"), sort_keys=True, allow_nan=False)


def parse_json_object(raw: str) -> Doc | None:
    """``raw`` as a JSON object, or ``None`` (empty, a log tail, a cut or non-object document)."""
    if not raw.strip().startswith("{"):
        return None
    try:
        loaded = json.loads(raw)
    except ValueError:
        return None
    return loaded if isinstance(loaded, dict) else None


def fit_message(
    doc: Mapping[str, Any], steps: Sequence[Shrink], limit: int = TERMINATION_MESSAGE_LIMIT
) -> str:
    """``doc`` as compact JSON under ``limit`` bytes that still parses (a cut document would be
    useless): ``steps`` make it smaller, least important part first, until it fits. NaN and
    infinities become ``null``."""
    current: Doc = _finite(dict(doc))
    text = compact_json(current)
    for step in steps:
        if len(text.encode()) <= limit:
            break
        smaller = step(current)
        if smaller is not None:
            current = smaller
            text = compact_json(current)
    return text


def _finite(value: Any) -> Any:
    # JSON has no NaN: a diverged metric reaches the reader as null instead of breaking the message.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


class ResultMessage(BaseModel):
    """Base of every kind's result: camelCase on the wire, like the status it feeds.

    Unknown fields are ignored when reading, so an operator reads the messages of a newer runtime;
    :meth:`of` (the writer's constructor) refuses them, so a runtime never writes a field the
    operator does not know.
    """

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    @classmethod
    def of(cls, doc: Mapping[str, Any]) -> Self:
        """The writer's constructor: ``doc`` (camelCase keys) validated, unknown keys refused."""
        known = {f.alias or name for name, f in cls.model_fields.items()} | set(cls.model_fields)
        unknown = sorted(set(doc) - known)
        if unknown:
            raise ValueError(f"{cls.__name__} has no field(s) {', '.join(unknown)}: add them to the contract")
        return cls.model_validate(dict(doc))

    def to_wire(self) -> Doc:
        """The document (camelCase; the fields the writer set, ``null`` included, and no others;
        NaN and infinities as ``null``)."""
        return dict(_finite(self.model_dump(by_alias=True, exclude_unset=True, mode="json")))

    @classmethod
    def shrink_steps(cls) -> Sequence[Shrink]:
        """How to make this kind's message smaller, least important part first."""
        return ()

    def termination_message(self, limit: int = TERMINATION_MESSAGE_LIMIT) -> str:
        """Compact JSON under ``limit`` bytes, still parseable (see :meth:`shrink_steps`)."""
        return fit_message(self.to_wire(), self.shrink_steps(), limit)

    @classmethod
    def from_termination_message(cls, raw: str) -> Self | None:
        """The result a pod left, or ``None`` when it left none that parses (a crash's log tail)."""
        doc = parse_json_object(raw)
        if doc is None:
            return None
        try:
            return cls.model_validate(doc)
        except ValidationError as exc:
            log.warning("a %s termination message does not match the contract: %s", cls.__name__, exc)
            return None


def cut_message(limit: int) -> Shrink:
    """A :data:`Shrink` that cuts ``message`` to ``limit`` characters."""

    def step(doc: Doc) -> Doc | None:
        if "message" not in doc:
            return None
        return {**doc, "message": str(doc["message"])[:limit]}

    return step


def keep_only(keys: Sequence[str], *, cut_strings: int | None = None) -> Shrink:
    """The last resort: only ``keys`` (strings cut to ``cut_strings`` characters when given)."""

    def step(doc: Doc) -> Doc:
        return {
            k: (v[:cut_strings] if cut_strings is not None and isinstance(v, str) else v)
            for k, v in doc.items()
            if k in keys
        }

    return step
