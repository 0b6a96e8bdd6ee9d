"""``foresight library list / show / activate-preview --cluster``: the ModelLibraries of a cluster.

What the fetch Jobs found is in each ModelLibrary's status (counts, checksum, quality, the active
and previous version, who holds the library name); these read it through the Kubernetes API
(kubeconfig or in-cluster, :func:`foresight.kube.connect`), so a laptop needs no access to the
artifact store. ``activate-preview FILE --cluster`` compares a library file with what the namespace
has active: which ModelLibrary holds its name (applying it would be an ``ActiveConflict`` unless it
is that one), the version and quality it would replace.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import Any

from foresight.api.meta import API_VERSION
from foresight.api.modellibrary import MODEL_LIBRARY
from foresight.kube import KubeClient, ResourceRef, connect

from .records import Library

__all__ = [
    "LIST_HEADER",
    "MODEL_LIBRARIES",
    "client_for",
    "cluster_libraries",
    "list_rows",
    "preview_document",
    "show_text",
]

MODEL_LIBRARIES = ResourceRef(API_VERSION, MODEL_LIBRARY.plural, MODEL_LIBRARY.kind)
Obj = dict[str, Any]
LIST_HEADER = ("NAMESPACE", "NAME", "LIBRARY", "VERSION", "PHASE", "ACTIVE", "ACTIVE-VERSION", "PREVIOUS",
               "CASES", "VALID", "ACCURACY", "REASON")  # fmt: skip


def client_for(args: argparse.Namespace) -> tuple[KubeClient, str]:
    client, default_ns = connect(args.kubeconfig, args.context, user_agent="foresight-library")
    return client, args.namespace or default_ns


def cluster_libraries(args: argparse.Namespace) -> list[Obj]:
    """The ModelLibraries of ``--namespace`` (the context's by default), or of every namespace (``-A``)."""
    client, namespace = client_for(args)
    return client.list(MODEL_LIBRARIES, None if getattr(args, "all_namespaces", False) else namespace)


def _ready(status: Mapping[str, Any]) -> Obj:
    return next((dict(c) for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})


def _cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def list_rows(objs: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    """One row per ModelLibrary, :data:`LIST_HEADER`'s columns."""
    rows = []
    for obj in sorted(objs, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"])):
        meta, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
        quality = status.get("quality") or {}
        values = (meta.get("namespace"), meta["name"], status.get("libraryName"), spec.get("version"),
                  status.get("phase"), status.get("active", False), status.get("activeVersion"),
                  status.get("previousVersion"), status.get("cases"), status.get("validCases"),
                  quality.get("architectureAccuracy"), _ready(status).get("reason"))  # fmt: skip
        rows.append([_cell(v) for v in values])
    return rows


def show_text(obj: Mapping[str, Any]) -> str:
    """A ModelLibrary's status for a person: what is active, what the last fetch found, what to do."""
    meta, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
    ready = _ready(status)
    source = status.get("source") or {}
    quality = status.get("quality") or {}
    lines = [
        f"ModelLibrary {meta.get('namespace')}/{meta['name']}: library {status.get('libraryName') or '?'}, "
        f"spec version {spec.get('version')}, phase {status.get('phase') or '-'}",
        f"ready: {ready.get('status', 'Unknown')} ({ready.get('reason', '-')}): {ready.get('message', '')}",
        f"active: {_cell(status.get('active', False))}; active version {_cell(status.get('activeVersion'))} "
        f"(held by {_cell(status.get('activeOwner'))}); previous {_cell(status.get('previousVersion'))}",
        f"cases: {_cell(status.get('cases'))} ({_cell(status.get('validCases'))} valid, "
        f"{_cell(status.get('invalidCases'))} invalid); models {_cell(status.get('models'))}; "
        f"checksum {_cell(status.get('checksum'))}",
        f"source: {source.get('kind', '-')} {source.get('location', '')} reachable "
        f"{_cell(source.get('reachable'))}" + (f" ({source['message']})" if source.get("message") else ""),
        f"stored: {_cell(status.get('storedUri'))}; pointer {_cell(status.get('pointer'))}",
    ]
    if quality:
        lines.append(
            f"leave-one-out quality (k={quality.get('k')}, {quality.get('heldOut')} held out): architecture "
            f"accuracy {_cell(quality.get('architectureAccuracy'))} (most common: "
            f"{_cell(quality.get('baselineAccuracy'))}), node count MAE {_cell(quality.get('nodeCountMAE'))}"
        )
    lines += [f"invalid: {r}" for r in status.get("invalidReasons") or []]
    if status.get("modelVersions"):
        lines.append("ModelVersions: " + ", ".join(status["modelVersions"]))
    if status.get("nextRetryTime"):
        lines.append(f"next attempt: {status['nextRetryTime']} ({status.get('consecutiveFailures')} failed)")
    return "\n".join(lines) + "\n"


def preview_document(
    new: Library, quality: Mapping[str, Any] | None, objs: Sequence[Mapping[str, Any]]
) -> Obj:
    """What activating ``new`` would change in a namespace with ModelLibraries ``objs`` (their statuses)."""
    holders = [o for o in objs if (o.get("status") or {}).get("libraryName") == new.name]
    active = next((o for o in holders if (o.get("status") or {}).get("active")), None)
    doc: Obj = {
        "library": new.name,
        "version": new.version,
        "checksum": new.checksum,
        "cases": len(new.cases),
        "quality": dict(quality) if quality else None,
        "claimedBy": sorted(o["metadata"]["name"] for o in holders),
    }
    if active is None:
        doc["replaces"] = None
        return doc
    status = active.get("status") or {}
    doc["replaces"] = {
        "modelLibrary": active["metadata"]["name"],
        "version": status.get("activeVersion"),
        "cases": status.get("cases"),
        "quality": status.get("quality"),
    }
    doc["note"] = (
        f"ModelLibrary {active['metadata']['name']} holds {new.name}: apply the new version through it "
        "(its spec.version and sha256); another ModelLibrary with active: true would be an ActiveConflict"
    )
    return doc
