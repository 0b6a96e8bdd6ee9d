"""The library package's one error: a condition reason, a message that says what to do, retryable.

Every failure of reading, verifying, fetching or storing a library becomes a :class:`LibraryError`
whose ``reason`` is a :class:`foresight.api.modellibrary.LibraryReason` (the operator writes it into
the ModelLibrary's conditions as is) and whose ``retryable`` tells the fetch Job's exit code whether
trying again later can help (an unreachable source can come back; a wrong checksum cannot).
"""

from __future__ import annotations

from foresight.api.modellibrary import LibraryReason

__all__ = ["LibraryError", "LibraryReason"]


class LibraryError(Exception):
    """A library that cannot be used as asked; ``message`` says why and what to do."""

    def __init__(self, reason: LibraryReason, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.retryable = retryable

    def __str__(self) -> str:
        return f"{self.reason.value}: {self.message}"
