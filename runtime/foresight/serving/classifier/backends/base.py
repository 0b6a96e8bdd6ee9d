"""The one interface every classifier backend implements: prepare an image, then classify it.

``prepare`` decodes the checked upload into what the backend sends or runs (a downscaled JPEG, a
normalised tensor); a corrupt image fails there, as the client's 415, before any backend call is
made or counted. ``classify`` makes the call(s): it reports every attempt through ``on_call`` (the
ledger counts attempts and billed calls from it), stays within ``deadline`` (a
``time.monotonic()`` value: the request's, across all retries) and raises the
:class:`~..errors.UpstreamError` family on failure.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from ..images import CheckedImage

__all__ = ["BackendResult", "ClassifierBackend", "OnCall"]

P = TypeVar("P")

OnCall = Callable[[bool], None]
"""Called once per backend call attempt with whether the upstream answered it (billed)."""


@dataclass(frozen=True)
class BackendResult:
    """A classification: the category key, a confidence in [0, 1], whether it is a real result
    (False: the model named no category or several, see :mod:`..answers`), the raw answer."""

    category: str
    confidence: float
    certain: bool = True
    raw_answer: str | None = None


class ClassifierBackend(ABC, Generic[P]):
    """Both methods block (they run in worker threads) and must be safe from several threads at once."""

    name: str

    @abstractmethod
    def prepare(self, image: CheckedImage) -> P:
        """What :meth:`classify` needs from ``image``; raises ImageRejected when it cannot be decoded."""

    @abstractmethod
    def classify(self, prepared: P, *, deadline: float, on_call: OnCall) -> BackendResult: ...

    def close(self) -> None:  # most backends hold nothing to release
        """Release connections or sessions."""
