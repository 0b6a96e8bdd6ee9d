"""The one interface every classifier backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from ..images import CheckedImage

__all__ = ["BackendResult", "ClassifierBackend"]


@dataclass(frozen=True)
class BackendResult:
    """A classification: the category key, a confidence in [0, 1], and the model's raw answer."""

    category: str
    confidence: float
    raw_answer: str | None = None


class ClassifierBackend(ABC):
    """Classifies one checked image. ``classify`` blocks (it is run in a worker thread) and raises
    UpstreamError on failure; it must be safe to call from several threads at once."""

    name: str

    @abstractmethod
    def classify(self, image: CheckedImage) -> BackendResult: ...

    def close(self) -> None:  # noqa: B027 - most backends hold nothing to release
        """Release connections or sessions."""
