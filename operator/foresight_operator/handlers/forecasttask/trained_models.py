"""The ModelVersion of the model a training run saved: made once per artifact, named in status.

Made before the status write that takes the run in, so a crash in between reads the run again
and finds the ModelVersion by its deterministic name. A ModelVersion of that name that holds
another artifact is left alone, with a Warning event.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from foresight.api.forecasttask import ForecastTaskSpec

from ...builders.forecasttask import KIND
from ...builders.modelversion_from_forecast import build_forecast_model_version
from ...reconcile import MODEL_VERSIONS, get_or_create, parse_time
from ..context import HandlerContext
from .results import Harvest

__all__ = ["register_model_version"]


def register_model_version(
    ctx: HandlerContext, body: Mapping[str, Any], spec: ForecastTaskSpec, h: Harvest
) -> str | None:
    """Make the ModelVersion of the model run ``h`` trained; its name, or ``None`` if none."""
    if h.result is None:
        return None
    manifest = build_forecast_model_version(
        body,
        h.result,
        trained=parse_time(h.result.last_train_time) or h.finished,
        image=spec.runtime.image or ctx.settings.runtime_image,
    )
    if manifest is None:
        return None  # a baseline (or predict-only) run: see build_forecast_model_version
    ns, mv_name = body["metadata"]["namespace"], manifest["metadata"]["name"]
    mv_spec, uri = manifest["spec"], manifest["spec"]["artifact"]["uri"]
    existing, created = get_or_create(ctx.kube, MODEL_VERSIONS, manifest)
    if created:
        ctx.metrics.children.labels(kind=KIND, child="ModelVersion").inc()
        ctx.post_event(
            body, "Normal", "ModelVersionCreated",
            f"ModelVersion {mv_name} ({mv_spec['modelName']} {mv_spec['version']}) holds the model run "
            f"{h.job} trained ({uri})",
        )  # fmt: skip
    theirs = ((existing.get("spec") or {}).get("artifact") or {}).get("uri")
    if theirs != uri:
        ctx.post_event(
            body, "Warning", "ModelVersionConflict",
            f"ModelVersion {ns}/{mv_name} exists for another artifact ({theirs}), so the model run "
            f"{h.job} trained is not registered: rename or delete that ModelVersion",
        )  # fmt: skip
        return None
    return str(mv_name)
