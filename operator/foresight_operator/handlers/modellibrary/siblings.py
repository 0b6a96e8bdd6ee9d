"""The ModelLibraries of one namespace, as they share library names: who holds one, who waits for it.

Two ModelLibraries cannot both be the active version of one library name: the pointer
(``<store>/modellibraries/<namespace>/<library>/active.json``) names one owner. The rule, first come
first served:

- a fetch Job never takes the pointer over from another ModelLibrary that still wants to be active
  (:func:`protected_owners`: live, ``active`` not false); it stores its version and ends with
  ``ActiveConflict`` naming the holder, and its ModelLibrary waits in phase ``Conflict``;
- the holder letting go (``active: false``, deleted, or now fetching another library) releases the
  name (:func:`holder_released`), and every waiting ModelLibrary is reconciled on any change of a
  ModelLibrary of its namespace, so the first to try next takes it;
- two Jobs that activated the same name at the same moment both wrote complete pointers and the
  last write holds: the ModelLibrary whose result says it holds the pointer tells the others that
  claimed the same name (:func:`take_over_from_siblings`), which turn ``Conflict``, naming it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from foresight.api.modellibrary import LibraryPhase

from ...reconcile import MODEL_LIBRARIES
from ..common import write_and_report_status
from ..context import HandlerContext
from .models import prune_model_versions
from .status import conflict_status

__all__ = ["Conflicts", "holder_released", "protected_owners", "take_over_from_siblings"]

log = logging.getLogger(__name__)
Obj = dict[str, Any]


def _live(obj: Mapping[str, Any] | None) -> bool:
    return obj is not None and not (obj.get("metadata") or {}).get("deletionTimestamp")


def _wants_active(obj: Mapping[str, Any]) -> bool:
    return (obj.get("spec") or {}).get("active", True) is not False


def protected_owners(ctx: HandlerContext, namespace: str, name: str) -> tuple[str, ...]:
    """``namespace/name`` of every other ModelLibrary of the namespace that wants to be active."""
    return tuple(
        sorted(
            f"{namespace}/{obj['metadata']['name']}"
            for obj in ctx.kube.list(MODEL_LIBRARIES, namespace)
            if obj["metadata"]["name"] != name and _live(obj) and _wants_active(obj)
        )
    )


def holder_released(ctx: HandlerContext, namespace: str, status: Mapping[str, Any]) -> bool:
    """Whether the ModelLibrary a ``Conflict`` status names (``activeOwner``) no longer holds the name."""
    holder = str(status.get("activeOwner") or "")
    holder_ns, _, holder_name = holder.rpartition("/")
    if not holder_name or holder_ns != namespace:
        return True
    obj = ctx.kube.get(MODEL_LIBRARIES, holder_name, namespace)
    if not _live(obj) or obj is None or not _wants_active(obj):
        return True
    claimed = (obj.get("status") or {}).get("libraryName")
    return bool(claimed) and claimed != status.get("libraryName")


class Conflicts:
    """The ModelLibraries waiting in phase ``Conflict``, per namespace, as the events show them.

    Every ModelLibrary event passes through :meth:`see` (kopf's initial listing included), so the
    set mirrors the watch: asking it costs no API call, where listing the namespace on every event
    of any library made the work grow with the square of their number (250 libraries created at
    once: hundreds of lists of 250 objects each).
    """

    def __init__(self) -> None:
        self._waiting: dict[str, set[str]] = {}
        self._lock = threading.Lock()

    def see(self, body: Mapping[str, Any], *, deleted: bool = False) -> None:
        meta = body.get("metadata") or {}
        namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
        waiting = (
            not deleted and _live(body) and (body.get("status") or {}).get("phase") == LibraryPhase.CONFLICT
        )
        with self._lock:
            names = self._waiting.setdefault(namespace, set())
            if waiting:
                names.add(name)
            else:
                names.discard(name)
            if not names:
                del self._waiting[namespace]

    def waiting(self, namespace: str) -> list[str]:
        """The ModelLibraries of ``namespace`` waiting in phase ``Conflict``."""
        with self._lock:
            return sorted(self._waiting.get(namespace, ()))


def take_over_from_siblings(
    ctx: HandlerContext, namespace: str, holder: str, library: str, version: str | None
) -> None:
    """Tell the other ModelLibraries whose status still claims ``library`` active that ``holder`` has it."""
    owner = f"{namespace}/{holder}"
    for obj in ctx.kube.list(MODEL_LIBRARIES, namespace):
        name = obj["metadata"]["name"]
        status = obj.get("status") or {}
        if name == holder or not _live(obj) or not _wants_active(obj):
            continue
        if not status.get("active") or status.get("libraryName") != library:
            continue

        def compute(current: Obj) -> Obj | None:
            now = current.get("status") or {}
            if not now.get("active") or now.get("libraryName") != library:
                return None
            return conflict_status(
                dict(now), holder=owner, holder_version=version, library=library, now=ctx.clock()
            )

        written = write_and_report_status(
            ctx, MODEL_LIBRARIES, namespace, name, compute, warn_phases=(LibraryPhase.CONFLICT,)
        )
        if written is not None and written.changed:
            log.info("ModelLibrary %s/%s: %s now holds library %s", namespace, name, owner, library)
            prune_model_versions(ctx, namespace, name, keep=())
