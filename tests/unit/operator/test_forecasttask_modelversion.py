"""A ForecastTask training run -> the ModelVersion of its trained model.

Builder (pure): the manifest validates as a ModelVersionSpec and names the artifact (as the
claim, not the pod's path), its checksum, the chosen model's backtest errors, the hyper-parameters
and the lineage; it is not owned by the task and its name is deterministic per artifact; runs
that left no trained model (baselines only, predict-only, an old runtime) get none.
Status: ``modelVersion`` follows the model in use. Handler (``ensure_model_version`` with a real
KubeClient over HTTP against the emulator): one ModelVersion per artifact however often the run is
read again, and a foreign object of that name is left alone with a warning.
"""

from __future__ import annotations

import copy
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

_ROOT = str(Path(__file__).resolve().parents[3])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from foresight.api.forecasttask import ForecastTaskSpec  # noqa: E402
from foresight.api.modelversion import ModelVersionSpec  # noqa: E402
from foresight.contract.forecast import ForecastRunResult  # noqa: E402
from foresight_operator.builders.modelversion_from_forecast import (  # noqa: E402
    FORECAST_TASK_LABEL,
    FORECAST_TASK_UID_ANNOTATION,
    build_forecast_model_version,
    forecast_model_name,
    forecast_model_version_name,
)
from foresight_operator.handlers.forecasttask.controller import ForecastTaskController  # noqa: E402
from foresight_operator.handlers.forecasttask.gauges import ForecastTaskMetrics  # noqa: E402
from foresight_operator.handlers.forecasttask.results import Harvest  # noqa: E402
from foresight_operator.handlers.forecasttask.status import task_status  # noqa: E402
from foresight_operator.schedule import Outcome, Plan  # noqa: E402
from prometheus_client import CollectorRegistry  # noqa: E402

from tests.cluster.emulator import Cluster  # noqa: E402
from tests.unit.operator.conftest import handler_context  # noqa: E402

REPO = Path(_ROOT)
MV = "foresight.dev/v1alpha1/modelversions"
NS = "sre"
UID = "0a1b2c3d-4e5f-6789-abcd-ef0123456789"
T0 = datetime(2026, 3, 1, 6, 15, 10, tzinfo=UTC)
SHA = "c" * 64
POD_URI = "file:///var/lib/foresight/pvc/foresight-artifacts/../foresight-artifacts/forecasttasks/sre/disk/v1"
CLAIM_URI = "pvc://foresight-artifacts/forecasttasks/sre/disk/v1"
SPEC: dict[str, Any] = {
    "source": {"url": "http://prom:9090", "query": "storage_used_bytes", "lookback": "48h"},
    "model": {"type": "lstm", "hyperparameters": {"hiddenSize": 16, "epochs": 3}, "seed": 7},
    "horizon": "6h",
    "output": {"horizons": ["1h"], "pushgatewayUrl": "http://pgw:9091"},
}
TRAINED: dict[str, Any] = {
    "phase": "Ready", "reason": "ForecastsWritten", "message": "3 series forecast 6h ahead with lstm",
    "mode": "train", "seriesCount": 3, "model": "lstm",
    "backtest": [{"model": "lstm", "mase": 0.7, "mae": 2.0}, {"model": "linear", "mase": 1.4, "mae": None}],
    "artifactUri": POD_URI, "sha256": SHA, "trainedModels": ["lstm"],
    "lastTrainTime": "2026-03-01T06:15:10Z", "lastPredictTime": "2026-03-01T06:15:10Z",
}  # fmt: skip


def task(name: str = "disk", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "foresight.dev/v1alpha1",
        "kind": "ForecastTask",
        "metadata": {"name": name, "namespace": NS, "uid": UID, "generation": 1},
        "spec": {**copy.deepcopy(SPEC), **spec},
    }


def build(body: dict[str, Any] | None = None, **result: Any) -> dict[str, Any] | None:
    run_result = ForecastRunResult.model_validate({**TRAINED, **result})
    return build_forecast_model_version(body or task(), run_result, trained=T0, image="foresight-runtime:1.0")


def test_builder_makes_a_valid_unowned_model_version_of_the_trained_artifact() -> None:
    mv = build()
    assert mv is not None
    spec = ModelVersionSpec.model_validate(mv["spec"])  # what the API would accept
    meta = mv["metadata"]
    assert meta["name"] == forecast_model_version_name("disk", CLAIM_URI) and meta["name"].startswith("disk-")
    assert "ownerReferences" not in meta  # the model outlives the task
    assert meta["labels"][FORECAST_TASK_LABEL] == "disk"
    assert meta["labels"]["foresight.dev/model-name"] == "disk"
    assert meta["annotations"][FORECAST_TASK_UID_ANNOTATION] == UID
    assert spec.model_name == "disk" and spec.version.startswith("20260301.061510-")
    assert spec.framework == "torch" and spec.stage == "None"
    assert (spec.artifact.uri, spec.artifact.sha256, spec.artifact.store) == (CLAIM_URI, SHA, None)
    assert spec.metrics == {"mase": 0.7, "mae": 2.0}  # the task's own model, not the baselines
    assert spec.config["hyperparameters"]["hiddenSize"] == 16 and spec.config["seed"] == 7
    assert (spec.config["model"], spec.config["trainedModels"]) == ("lstm", ["lstm"])
    assert spec.config["image"] == "foresight-runtime:1.0" and spec.config["kind"] == "forecast"
    assert spec.lineage.forecast_task == "disk"
    assert spec.lineage.dataset == "promql+http://prom:9090?query=storage_used_bytes"
    assert UID in spec.description


def test_builder_auto_uses_the_auto_row_and_an_s3_store() -> None:
    store = {"uri": "s3://models/ft", "endpoint": "minio:9000", "credentialsSecret": "s3"}
    body = task(model={"type": "auto", "candidates": ["ets", "lstm"]}, artifacts=store)
    backtest = [{"model": "auto", "mase": 0.5, "mae": 1.0}, {"model": "lstm", "mase": 0.9, "mae": 3.0}]
    mv = build(body, artifactUri="s3://models/ft/forecasttasks/sre/disk/v2", model="auto(ets:2,lstm:1)",
               backtest=backtest)  # fmt: skip
    assert mv is not None
    spec = ModelVersionSpec.model_validate(mv["spec"])
    assert spec.metrics == {"mase": 0.5, "mae": 1.0}
    assert spec.artifact.store is not None and spec.artifact.store.credentials_secret == "s3"
    assert spec.config["selected"] == "auto(ets:2,lstm:1)" and spec.config["candidates"] == ["ets", "lstm"]


@pytest.mark.parametrize(
    "result",
    [
        {"trainedModels": []},  # only baselines chosen: their saved "model" is just parameters
        {"mode": "predict"},  # reuses a model registered when it was trained
        {"trainedModels": None},  # an old runtime that does not say
        {"artifactUri": None},  # no artifact store
    ],
)
def test_builder_makes_none_without_a_trained_artifact(result: dict[str, Any]) -> None:
    assert build(**result) is None


def test_names_are_deterministic_per_artifact_and_valid_for_long_tasks() -> None:
    assert forecast_model_version_name("disk", CLAIM_URI) == forecast_model_version_name("disk", CLAIM_URI)
    assert forecast_model_version_name("disk", CLAIM_URI) != forecast_model_version_name(
        "disk", CLAIM_URI + "2"
    )
    long = "team.storage-" + "q" * 70
    name = forecast_model_version_name(long, CLAIM_URI)
    assert len(name) <= 63 and name == forecast_model_version_name(long, CLAIM_URI)
    model = forecast_model_name(long)
    assert len(model) <= 50 and model == forecast_model_name(long)
    mv = build(task(long))
    assert mv is not None and ModelVersionSpec.model_validate(mv["spec"]).model_name == model


# --- status ----------------------------------------------------------------------------------


def harvest(job: str, doc: dict[str, Any]) -> Harvest:
    result = ForecastRunResult.model_validate(doc)
    return Harvest(job, "train", T0, 1, Outcome.SUCCEEDED, "ForecastsWritten", "ok", T0, result)


def status_after(
    current: dict[str, Any], h: Harvest, model_versions: dict[str, str | None]
) -> dict[str, Any]:
    return task_status(
        current, spec=ForecastTaskSpec.model_validate(SPEC), generation=1, now=T0, harvests=[h], active=None,
        plan=Plan(None, T0 + timedelta(minutes=15), 0), degraded_after=3, model_versions=model_versions,
    )  # fmt: skip


def test_status_model_version_follows_the_model_in_use() -> None:
    trained = status_after({}, harvest("disk-train-1", TRAINED), {"disk-train-1": "disk-abc"})
    assert trained["modelVersion"] == "disk-abc"
    predicted = status_after(trained, harvest("disk-predict-1", {**TRAINED, "mode": "predict"}), {})
    assert predicted["modelVersion"] == "disk-abc"  # predictions use the last trained model
    baseline = status_after(predicted, harvest("disk-train-2", TRAINED), {"disk-train-2": None})
    assert "modelVersion" not in baseline  # a retrain chose baselines: no ModelVersion is in use


# --- handler against the emulator --------------------------------------------------------------


@pytest.fixture
def controller(cluster: Cluster, events: list[tuple[str, str, str]]) -> ForecastTaskController:
    ctx = handler_context(cluster, events, T0, runtime_image="rt:2")
    return ForecastTaskController(ctx, ForecastTaskMetrics(CollectorRegistry()))


def test_handler_creates_one_model_version_per_artifact(
    cluster: Cluster, controller: ForecastTaskController, events: list[tuple[str, str, str]]
) -> None:
    body = task()
    spec = ForecastTaskSpec.model_validate(body["spec"])
    name = controller.ensure_model_version(body, spec, harvest("disk-train-1", TRAINED))
    assert name == forecast_model_version_name("disk", CLAIM_URI)
    mv = cluster.api.get(MV, name, NS)
    assert mv is not None and mv["spec"]["artifact"] == {"uri": CLAIM_URI, "sha256": SHA}
    assert mv["spec"]["config"]["image"] == "rt:2"
    assert [e[1] for e in events] == ["ModelVersionCreated"] and name in events[0][2]

    # The same run read again (a crash before the status write, an operator restart): nothing new.
    assert controller.ensure_model_version(body, spec, harvest("disk-train-1", TRAINED)) == name
    assert len(cluster.api.list(MV, NS)) == 1 and len(events) == 1
    # A baseline run registers nothing.
    baseline = {**TRAINED, "trainedModels": [], "artifactUri": POD_URI + "x"}
    assert controller.ensure_model_version(body, spec, harvest("disk-train-2", baseline)) is None
    assert len(cluster.api.list(MV, NS)) == 1


def test_handler_leaves_a_foreign_model_version_alone(
    cluster: Cluster, controller: ForecastTaskController, events: list[tuple[str, str, str]]
) -> None:
    name = forecast_model_version_name("disk", CLAIM_URI)
    foreign = {
        "apiVersion": "foresight.dev/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {"name": name},
        "spec": {"modelName": "disk", "version": "1", "artifact": {"uri": "pvc://c/other"}},
    }
    cluster.api.create(MV, foreign, NS)
    body = task()
    spec = ForecastTaskSpec.model_validate(body["spec"])
    assert controller.ensure_model_version(body, spec, harvest("disk-train-1", TRAINED)) is None
    kept = cluster.api.get(MV, name, NS)
    assert kept is not None and kept["spec"]["artifact"]["uri"] == "pvc://c/other"
    assert [e[:2] for e in events] == [("Warning", "ModelVersionConflict")]
    assert "pvc://c/other" in events[0][2]
