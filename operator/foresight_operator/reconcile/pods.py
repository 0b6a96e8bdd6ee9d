"""What a finished pod left behind: its container's terminated state, termination message, end time.

The runtime writes its result into the termination message (:mod:`foresight.contract.termination`);
the kubelet copies it into ``status.containerStatuses[].state.terminated``, where these read it.
Every runtime pod has one container, so the first terminated one is the pod's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["ended", "finished_at", "terminated", "termination_message"]

Obj = dict[str, Any]


def terminated(pod: Mapping[str, Any]) -> Obj | None:
    """The terminated state of the pod's container (``None`` while it has not terminated)."""
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        term = (cs.get("state") or {}).get("terminated")
        if term:
            return dict(term)
    return None


def termination_message(pod: Mapping[str, Any]) -> str:
    """The raw termination message (``""`` when there is none): the runtime's JSON, or, after a
    crash before it wrote one, the log tail (``terminationMessagePolicy: FallbackToLogsOnError``)."""
    return str((terminated(pod) or {}).get("message") or "")


def finished_at(pod: Mapping[str, Any]) -> str:
    """When the container terminated (RFC 3339, so it sorts), ``""`` when not recorded."""
    return str((terminated(pod) or {}).get("finishedAt") or "")


def ended(pods: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The pods whose container terminated, oldest first (the last one is the newest result)."""
    return sorted((p for p in pods if terminated(p) is not None), key=finished_at)
