"""Polling for tests that wait on something asynchronous (a scrape, a subprocess, a server).

Every wait in tests/ goes through :func:`wait_for` (the emulator's own machinery in tests/cluster/
has its watch-based waits), so a timeout always fails the same way: an ``AssertionError`` naming
what was awaited, with the last value seen or the last error that counted as "not yet".
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["wait_for"]

T = TypeVar("T")


def wait_for(
    fn: Callable[[], T],
    what: str | Callable[[], str],
    timeout: float = 30.0,
    interval: float = 0.2,
    *,
    until: Callable[[T], object] = bool,
    ignoring: tuple[type[BaseException], ...] = (),
) -> T:
    """Poll ``fn`` until its value passes ``until`` (default: is truthy) and return that value; fail
    naming ``what``.

    ``what`` may be a callable, called only on failure (for context such as a log tail).
    ``until`` lets the value that is waited on be the one a failure shows (a whole stats document,
    not just ``False``).
    ``ignoring``: exception types that mean "not yet" (a server not listening yet); any other
    exception ends the wait at once (a process that died should not be waited out). On timeout
    the ``AssertionError`` names the last value ``fn`` returned, or chains the last ignored error.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    error: BaseException | None = None
    while True:
        try:
            value = fn()
        except ignoring as exc:
            error = exc
        else:
            if until(value):
                return value
            last, error = value, None
        if time.monotonic() > deadline:
            described = what() if callable(what) else what
            seen = f"last error: {error!r}" if error is not None else f"last value: {_short(last)}"
            raise AssertionError(f"timed out after {timeout:g}s waiting for {described} ({seen})") from error
        time.sleep(interval)


def _short(value: object, limit: int = 500) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
