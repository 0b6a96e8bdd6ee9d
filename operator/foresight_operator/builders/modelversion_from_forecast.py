"""``build_forecast_model_version``: a ForecastTask training run -> the ModelVersion of its model.

Pure: the ForecastTask and its run's result (:class:`~foresight.contract.forecast.ForecastRunResult`:
``mode``, ``artifactUri``, ``sha256``, ``trainedModels``, ``backtest``) in, the ModelVersion manifest out,
built through :class:`~foresight.api.modelversion.ModelVersionSpec` so it is valid before it
reaches the API; ``None`` when the run left no trained model to register:

- a predict-only run reuses a model that was registered when it was trained;
- a run whose chosen models are all baselines (naive, seasonal_naive, linear, ets, theta) saved
  only their parameters: there are no weights to verify, optimise or promote, and they are
  refitted on every run anyway, so a ModelVersion would only add noise to the registry;
- a runtime too old to report ``trainedModels`` is treated the same way (it is unknown whether
  the artifact holds weights; the next run with a current image registers its model).

The ModelVersion is *not* owned by the task: a trained model is what a user promotes to
Production and serves, and deleting or re-creating the task (to change its schedule, say) must
not delete it. It is tied to the task by the ``foresight.dev/forecasttask`` label, an annotation
with the task's uid and ``spec.lineage`` instead.

Its name is ``<task>-<hash of the artifact URI>``: every training run saves to a new, time-stamped
directory, so one artifact gives one name, and re-reading the same run (a second reconcile, an
operator restart) finds the ModelVersion made before.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from foresight.api.forecasttask import FORECAST_TASK, ForecastTaskSpec
from foresight.api.modelversion import Artifact, Lineage, ModelVersionSpec
from foresight.contract.forecast import BacktestScore, ForecastRunResult
from foresight.contract.trained_model import numeric_metrics, promql_dataset, version_tag

from ..reconcile.names import NAME_LABEL, child_name, owner_labels
from .forecasttask import public_artifact_uri
from .modelversion_common import model_version_manifest

__all__ = [
    "FORECAST_TASK_LABEL",
    "FORECAST_TASK_UID_ANNOTATION",
    "build_forecast_model_version",
    "forecast_model_name",
    "forecast_model_version_name",
]

Obj = dict[str, Any]
FORECAST_TASK_LABEL = "foresight.dev/forecasttask"
FORECAST_TASK_UID_ANNOTATION = "foresight.dev/forecasttask-uid"
_MODEL_NAME_MAX = 50  # ModelVersionSpec.model_name
_HASH_CHARS = 10


def _digest(text: str, chars: int = _HASH_CHARS) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:chars]


def forecast_model_name(task_name: str) -> str:
    """``spec.modelName``: the task's name (a task is one model family), cut and hashed past 50."""
    name = re.sub(r"[^a-z0-9-]", "-", task_name.lower()).strip("-") or "forecast"
    if len(name) <= _MODEL_NAME_MAX:
        return name
    return f"{name[: _MODEL_NAME_MAX - 9].rstrip('-')}-{_digest(task_name, 8)}"


def forecast_model_version_name(task_name: str, artifact_uri: str) -> str:
    """``<task>-<sha256(artifact URI)[:10]>`` (cut and hashed when longer than 63 characters)."""
    return child_name(task_name, _digest(artifact_uri))


def _chosen_scores(spec: ForecastTaskSpec, rows: Sequence[BacktestScore] | None) -> dict[str, float]:
    # The backtest has a row per model, baselines included; the task's own model is the one whose
    # errors describe this ModelVersion (for `auto`, the row of the per-series picks together).
    chosen = str(spec.model.type)
    for row in rows or []:
        if row.model == chosen:
            return numeric_metrics(row.model_dump(exclude={"model"}))
    return {}


def build_forecast_model_version(
    task: Mapping[str, Any], result: ForecastRunResult, *, trained: datetime, image: str
) -> Obj | None:
    """The ModelVersion manifest of the model a ForecastTask run trained, or ``None`` (see above).

    ``task`` is the ForecastTask (metadata and spec), ``result`` its run's result, ``trained`` when
    the run trained (its ``lastTrainTime``, else the run's end) and ``image`` the runtime image the
    run used.
    """
    meta = task["metadata"]
    ns, name, uid = meta["namespace"], meta["name"], meta["uid"]
    spec = ForecastTaskSpec.model_validate(dict(task.get("spec") or {}))
    trained_models = result.trained_models
    if result.mode != "train" or not trained_models:
        return None
    uri = public_artifact_uri(spec, result.artifact_uri)
    if not uri:
        return None
    sha = result.sha256
    config: Obj = {
        "kind": "forecast",
        "model": str(spec.model.type),
        "trainedModels": list(trained_models),
        "hyperparameters": spec.model.hyperparameters.to_wire(),
        "seed": spec.model.seed,
        "backtestFolds": spec.model.backtest_folds,
        "horizon": spec.horizon,
        "step": spec.source.step,
        "image": image,
    }
    if result.model:
        config["selected"] = result.model  # e.g. auto(ets:12,lstm:30)
    if str(spec.model.type) == "auto":
        config["candidates"] = [str(c) for c in spec.model.candidates]
    mv_spec = ModelVersionSpec(
        model_name=forecast_model_name(name),
        version=version_tag(trained, _digest(uri, 8)),
        # Every trained forecaster (and an auto model's trained picks) is a torch network.
        framework="torch",
        artifact=Artifact(
            uri=uri,
            sha256=str(sha).lower() if sha else None,
            store=spec.artifacts if uri.startswith("s3://") else None,
        ),
        metrics=_chosen_scores(spec, result.backtest),
        config=config,
        lineage=Lineage(forecast_task=name, dataset=promql_dataset(spec.source.url, spec.source.query)),
        description=f"trained by ForecastTask {ns}/{name} (uid {uid})",
    )
    return model_version_manifest(
        forecast_model_version_name(name, uri),
        ns,
        mv_spec,
        # A label value is at most 63 characters: owner_labels cuts and hashes long names.
        labels={FORECAST_TASK_LABEL: owner_labels(FORECAST_TASK.kind, name)[NAME_LABEL]},
        annotations={FORECAST_TASK_UID_ANNOTATION: uid},
    )
