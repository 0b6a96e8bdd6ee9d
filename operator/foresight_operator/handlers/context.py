"""What every handler gets: settings, the API client, metrics, a clock and an event poster."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from foresight.kube import KubeClient

from ..settings import OperatorSettings
from ..telemetry import OperatorMetrics

__all__ = ["EventPoster", "HandlerContext", "kopf_event", "utc_now"]

EventPoster = Callable[[Mapping[str, Any], str, str, str], None]
"""``(object, type Normal|Warning, reason, message)``."""


def utc_now() -> datetime:
    return datetime.now(tz=UTC)


def kopf_event(obj: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
    """Post a Kubernetes Event through kopf's background poster (retried, never blocks a handler)."""
    import kopf

    meta = obj.get("metadata") or {}
    ref = {
        "apiVersion": obj.get("apiVersion"),
        "kind": obj.get("kind"),
        "metadata": {"name": meta.get("name"), "namespace": meta.get("namespace"), "uid": meta.get("uid")},
    }
    kopf.event(ref, type=type_, reason=reason, message=message[:1000])  # type: ignore[arg-type]


@dataclass(frozen=True)
class HandlerContext:
    settings: OperatorSettings
    kube: KubeClient
    metrics: OperatorMetrics
    post_event: EventPoster = kopf_event
    clock: Callable[[], datetime] = utc_now
