"""One lock per resource: a controller never reconciles the same object in two threads at once.

kopf runs handlers in a thread pool and several triggers (a spec change, a child's event, a timer
or wake-up) can land together; each controller serialises them per ``(namespace, name)``.
"""

from __future__ import annotations

import threading

__all__ = ["KeyedLocks"]


class KeyedLocks:
    """A lock per ``(namespace, name)``, made on first use and dropped when the object is gone."""

    def __init__(self) -> None:
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()

    def lock(self, namespace: str, name: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault((namespace, name), threading.Lock())

    def forget(self, namespace: str, name: str) -> None:
        with self._guard:
            self._locks.pop((namespace, name), None)
