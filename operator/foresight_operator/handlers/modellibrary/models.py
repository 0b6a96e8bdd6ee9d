"""The models a library carries, as ModelVersions of the registry (while the library is active).

A verified library's models are stored next to its cases (``.../versions/<v>/models/<model>/``, each
a directory with its own manifest). While the ModelLibrary holds the active version, each model is a
ModelVersion named ``<library>-<model>-<version>``, owned by the ModelLibrary (deleted with it) and
labelled ``foresight.dev/modellibrary=<library>``; the ModelVersion controller verifies it like any
other (checksum, one inference). A new active version makes new ModelVersions and deletes those of
the version it replaced; withdrawing or losing the library name deletes them all.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from typing import Any

from foresight.contract.library import FetchResult
from foresight.kube import KubeApiError

from ...builders.modellibrary import MODEL_LIBRARY_LABEL, build_library_model_version
from ...reconcile import MODEL_VERSIONS
from ...reconcile.names import NAME_LABEL, owner_labels
from ..children import make_child
from ..context import HandlerContext

__all__ = ["ensure_model_versions", "prune_model_versions"]

log = logging.getLogger(__name__)


def ensure_model_versions(ctx: HandlerContext, library: Mapping[str, Any], result: FetchResult) -> list[str]:
    """Make the ModelVersion of every model ``result`` names; their names."""
    if not result.model_artifacts:
        if result.model_artifact_count:
            ctx.post_event(
                library,
                "Warning",
                "ModelVersionsNotMade",
                f"the library carries {result.model_artifact_count} models, but the fetch result was too "
                "large to name them: no ModelVersions were made; fewer or shorter-named models fit",
            )
        return []
    if not result.library_name or not result.version:
        return []
    names = []
    for artifact in result.model_artifacts:
        manifest = build_library_model_version(
            dict(library), artifact, library_name=result.library_name, version=result.version
        )
        mv_name = manifest["metadata"]["name"]
        make_child(
            ctx,
            library,
            MODEL_VERSIONS,
            manifest,
            announce=f"ModelVersion {mv_name} holds model {artifact.name} ({artifact.type}) of library "
            f"{result.library_name} {result.version}",
            reason="ModelVersionCreated",
        )
        names.append(str(mv_name))
    return names


def prune_model_versions(ctx: HandlerContext, namespace: str, name: str, *, keep: Collection[str]) -> None:
    """Delete the ModelVersions of ModelLibrary ``namespace/name`` that are not in ``keep``."""
    label = owner_labels("ModelLibrary", name)[NAME_LABEL]
    for mv in ctx.kube.list(MODEL_VERSIONS, namespace, label_selector=f"{MODEL_LIBRARY_LABEL}={label}"):
        mv_name = mv["metadata"]["name"]
        refs = mv["metadata"].get("ownerReferences") or []
        if mv_name in keep or not any(
            r.get("kind") == "ModelLibrary" and r.get("name") == name for r in refs
        ):
            continue  # kept, or not made by this ModelLibrary (a label alone is no proof)
        try:
            ctx.kube.delete(MODEL_VERSIONS, mv_name, namespace)
        except KubeApiError as exc:  # the next fold tries again
            log.warning(
                "ModelVersion %s/%s of ModelLibrary %s not deleted: %s", namespace, mv_name, name, exc
            )
