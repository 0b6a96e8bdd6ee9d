"""The two kinds of reconcile failure, mapped to retry behaviour.

- :class:`SpecError` (permanent): the spec cannot work as written. The resource gets
  ``Ready=False`` with the reason and a message that says what to change; kopf does not retry it
  until the spec changes (no retry storm).
- :class:`WaitError` (temporary): something outside the spec is not there yet or failed (a
  missing Secret, an API error). kopf retries with a delay; after ``degraded_after`` failures in
  a row the resource's ``Degraded`` condition turns True.
"""

from __future__ import annotations

from foresight.api.meta import Reason

__all__ = ["ReconcileError", "SpecError", "WaitError"]


class ReconcileError(Exception):
    """Base: carries a condition ``reason`` (CamelCase) and a user-facing ``message``."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


class SpecError(ReconcileError):
    """The spec is invalid or asks for something unsupported: fix the spec (permanent)."""

    def __init__(self, message: str, *, reason: str = Reason.INVALID_SPEC, field: str | None = None) -> None:
        super().__init__(f"spec.{field}: {message}" if field else message, reason=reason)
        self.field = field


class WaitError(ReconcileError):
    """Retry later: a dependency is missing or the API failed (temporary)."""

    def __init__(
        self, message: str, *, reason: str = Reason.TEMPORARY_FAILURE, delay: float | None = None
    ) -> None:
        super().__init__(message, reason=reason)
        self.delay = delay
