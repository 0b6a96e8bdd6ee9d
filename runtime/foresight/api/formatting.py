"""How times and series are written wherever a person reads them: messages, status, tables.

Torch- and numpy-free (the API layer), so the operator and Prometheus errors use the same words as
the runtime's reports.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

__all__ = ["rfc3339", "series_text"]


def rfc3339(seconds: float) -> str:
    """Unix ``seconds`` as an RFC 3339 UTC time (``2026-03-01T06:00:00Z``): how times appear in
    messages, status and tables, never as raw epoch seconds."""
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def series_text(key: Mapping[str, str]) -> str:
    """A series as messages and tables name it: ``user=alice,cluster=east`` (``{}`` when it has no
    labels: everything merged into one series)."""
    return ",".join(f"{k}={v}" for k, v in key.items()) or "{}"
