"""A Succeeded TrainingJob -> its ModelVersion: the pure builder, and the handler against the emulator.

Builder: the manifest validates as a ModelVersionSpec, names the model, artifact, checksum,
metrics, config and lineage, is *not* owned by the TrainingJob, and its name is deterministic.
Handler (``ensure_model_version`` with a real KubeClient over HTTP, no kopf loop): the
ModelVersion appears once, ``status.modelVersion`` names it, a second call (an operator restart)
makes nothing new, ``createModelVersion: false`` makes none, and a foreign object of that name is
left alone with a warning.
"""

from __future__ import annotations

import copy
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

_ROOT = str(Path(__file__).resolve().parents[3])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from foresight.api.modelversion import ModelVersionSpec  # noqa: E402
from foresight.contract.training import TrainingResult  # noqa: E402
from foresight_operator.builders.modelversion_from_training import (  # noqa: E402
    TRAINING_JOB_LABEL,
    TRAINING_JOB_UID_ANNOTATION,
    build_model_version,
    model_version_name,
)
from foresight_operator.handlers.context import HandlerContext  # noqa: E402
from foresight_operator.handlers.trainingjob import ensure_model_version  # noqa: E402

from tests.cluster.emulator import Cluster  # noqa: E402
from tests.unit.operator.conftest import handler_context  # noqa: E402

REPO = Path(_ROOT)
TJ = "foresight.dev/v1alpha1/trainingjobs"
MV = "foresight.dev/v1alpha1/modelversions"
NS = "ml"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
UID = "0a1b2c3d-4e5f-6789-abcd-ef0123456789"
SHA_MAIN = "a" * 64
SHA_MANIFEST = "b" * 64

SPEC: dict[str, Any] = {
    "task": "forecast",
    "model": "lstm",
    "dataset": {"uri": "s3://data/panels/storage.npz"},
    "hyperparameters": {"hidden": "32", "learningRate": "0.001"},
    "epochs": 3,
    "artifacts": {
        "uri": "s3://models/runs",
        "endpoint": "minio.storage:9000",
        "credentialsSecret": "s3-creds",
        "insecure": True,
    },
    "output": {"modelName": "storage-lstm"},
}
RESULT = {
    "reason": "Succeeded",
    "epochs": 3,
    "metrics": {"val_loss": 0.25, "rmse": 0.5, "flag": True},
    "artifactUri": "s3://models/runs/models/ml/nightly",
    "sha256": SHA_MAIN,
    "manifestSha256": SHA_MANIFEST,
}


def trainingjob(name: str = "nightly", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "foresight.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": name, "namespace": NS, "uid": UID, "generation": 1},
        "spec": {**copy.deepcopy(SPEC), **spec},
        "status": {
            "phase": "Succeeded",
            "artifactUri": RESULT["artifactUri"],
            "completionTime": "2026-03-01T11:58:07Z",
            "bestMetrics": {"val_loss": 0.25},
        },
    }


def test_builder_makes_a_valid_unowned_model_version_with_checksum_metrics_config_and_lineage() -> None:
    mv = build_model_version(
        trainingjob(),
        artifact_uri=RESULT["artifactUri"],
        finished=datetime(2026, 3, 1, 11, 58, 7, tzinfo=UTC),
        image="foresight-runtime:1.0",
        result=TrainingResult.model_validate(RESULT),
    )
    spec = ModelVersionSpec.model_validate(mv["spec"])  # what the API would accept
    assert mv["kind"] == "ModelVersion" and mv["apiVersion"] == "foresight.dev/v1alpha1"
    meta = mv["metadata"]
    assert meta["name"] == "storage-lstm-nightly-0a1b2c3d" and meta["namespace"] == NS
    assert "ownerReferences" not in meta  # the model outlives the job
    assert meta["labels"][TRAINING_JOB_LABEL] == "nightly"
    assert meta["annotations"][TRAINING_JOB_UID_ANNOTATION] == UID
    assert spec.model_name == "storage-lstm" and spec.version == "20260301.115807-0a1b2c3d"
    assert spec.framework == "torch" and spec.stage == "None"
    # The manifest's checksum covers the whole model directory: preferred over the main file's.
    assert spec.artifact.uri == RESULT["artifactUri"] and spec.artifact.sha256 == SHA_MANIFEST
    assert spec.artifact.store is not None and spec.artifact.store.credentials_secret == "s3-creds"
    assert spec.artifact.store.endpoint == "minio.storage:9000"
    assert spec.metrics == {"val_loss": 0.25, "rmse": 0.5}  # booleans are no metrics
    assert spec.config["hyperparameters"] == {"hidden": "32", "learningRate": "0.001"}
    assert (spec.config["task"], spec.config["model"], spec.config["epochs"]) == ("forecast", "lstm", 3)
    assert spec.config["image"] == "foresight-runtime:1.0"
    assert spec.lineage.training_job == "nightly"
    assert spec.lineage.dataset == "s3://data/panels/storage.npz"


def test_builder_pvc_artifact_has_no_store_and_search_best_config_wins() -> None:
    search = {"trials": 4, "space": {"hidden": {"type": "choice", "values": ["8", "16"]}}}
    result = {"metrics": {"val_loss": 0.1}, "sha256": SHA_MAIN, "bestConfig": {"hidden": 16}}
    body = trainingjob(search=search, artifacts={"uri": "pvc://claim/x"})
    mv = build_model_version(
        body,
        artifact_uri="pvc://claim/x/models/ml/nightly",
        finished=T0,
        image="img",
        result=TrainingResult.model_validate(result),
    )
    spec = ModelVersionSpec.model_validate(mv["spec"])
    assert spec.artifact.store is None and spec.artifact.sha256 == SHA_MAIN
    assert spec.config["hyperparameters"]["hidden"] == 16
    assert spec.config["search"]["bestConfig"] == {"hidden": 16}


def test_builder_without_termination_message_uses_status_metrics_and_no_checksum() -> None:
    mv = build_model_version(trainingjob(), artifact_uri=RESULT["artifactUri"], finished=T0, image="img")
    assert mv["spec"]["metrics"] == {"val_loss": 0.25}
    assert "sha256" not in mv["spec"]["artifact"]


def test_builder_refuses_a_job_without_output() -> None:
    body = trainingjob()
    del body["spec"]["output"]
    with pytest.raises(ValueError, match=r"no spec\.output"):
        build_model_version(body, artifact_uri="pvc://c/m", finished=T0, image="img")


def test_model_version_name_is_deterministic_and_a_dns_label() -> None:
    long = "x" * 60
    assert model_version_name("m", "job", UID) == model_version_name("m", "job", UID) == "m-job-0a1b2c3d"
    name = model_version_name("model", long, UID)
    assert len(name) <= 63 and name == model_version_name("model", long, UID)
    assert name != model_version_name("model", long, "ffffffff-0000")


# --- handler -------------------------------------------------------------------------------


@pytest.fixture
def ctx(cluster: Cluster, events: list[tuple[str, str, str]]) -> HandlerContext:
    return handler_context(cluster, events, T0)


def succeeded(cluster: Cluster, **spec: Any) -> dict[str, Any]:
    """A TrainingJob in the API with a Succeeded status and the pod that reported the result."""
    body = trainingjob(**spec)
    status = body.pop("status")
    del body["metadata"]["uid"], body["metadata"]["generation"]
    created = cluster.api.create(TJ, body, NS)
    name = created["metadata"]["name"]
    cluster.api.patch(TJ, name, {"status": status}, NS, sub="status")
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{name}-train-abcde",
            "labels": {"batch.kubernetes.io/job-name": f"{name}-train"},
        },
        "spec": {"containers": [{"name": "train", "image": "img"}]},
    }
    cluster.api.create("v1/pods", pod, NS)
    term = {"exitCode": 0, "message": json.dumps(RESULT), "finishedAt": "2026-03-01T11:58:07Z"}
    pod_status = {
        "phase": "Succeeded",
        "containerStatuses": [{"name": "train", "state": {"terminated": term}}],
    }
    cluster.api.patch("v1/pods", pod["metadata"]["name"], {"status": pod_status}, NS, sub="status")
    got = cluster.api.get(TJ, name, NS)
    assert got is not None
    return got


def test_handler_creates_one_model_version_and_names_it_in_status(
    cluster: Cluster, ctx: HandlerContext, events: list[tuple[str, str, str]]
) -> None:
    body = succeeded(cluster)
    uid = body["metadata"]["uid"]
    name = ensure_model_version(ctx, body)
    assert name == model_version_name("storage-lstm", "nightly", uid)
    mv = cluster.api.get(MV, name, NS)
    assert mv is not None and "ownerReferences" not in mv["metadata"]
    artifact = mv["spec"]["artifact"]
    assert (artifact["uri"], artifact["sha256"]) == (RESULT["artifactUri"], SHA_MANIFEST)
    assert artifact["store"]["credentialsSecret"] == "s3-creds"
    assert mv["spec"]["metrics"] == {"val_loss": 0.25, "rmse": 0.5}
    assert mv["spec"]["lineage"]["trainingJob"] == "nightly"
    assert mv["metadata"]["annotations"][TRAINING_JOB_UID_ANNOTATION] == uid
    tj = cluster.api.get(TJ, "nightly", NS)
    assert tj is not None and tj["status"]["modelVersion"] == name
    assert tj["status"]["phase"] == "Succeeded"  # the rest of the status is kept
    assert [e[1] for e in events] == ["ModelVersionCreated"]

    # A second run (another Job event, an operator restart): nothing new, no second event.
    assert ensure_model_version(ctx, tj) == name
    assert len(cluster.api.list(MV, NS)) == 1
    assert [e[1] for e in events] == ["ModelVersionCreated"]


def test_handler_makes_none_when_the_spec_says_so(cluster: Cluster, ctx: HandlerContext) -> None:
    body = succeeded(cluster, output={"modelName": "storage-lstm", "createModelVersion": False})
    assert ensure_model_version(ctx, body) is None
    assert cluster.api.list(MV, NS) == []


def test_handler_leaves_a_foreign_model_version_alone(
    cluster: Cluster, ctx: HandlerContext, events: list[tuple[str, str, str]]
) -> None:
    body = succeeded(cluster)
    name = model_version_name("storage-lstm", "nightly", body["metadata"]["uid"])
    foreign = {
        "apiVersion": "foresight.dev/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {"name": name},
        "spec": {"modelName": "storage-lstm", "version": "1", "artifact": {"uri": "pvc://c/other"}},
    }
    cluster.api.create(MV, foreign, NS)
    assert ensure_model_version(ctx, body) is None
    kept = cluster.api.get(MV, name, NS)
    assert kept is not None and kept["spec"]["artifact"]["uri"] == "pvc://c/other"
    assert events[-1][:2] == ("Warning", "ModelVersionConflict") and name in events[-1][2]
    tj = cluster.api.get(TJ, "nightly", NS)
    assert tj is not None and "modelVersion" not in tj["status"]
