"""The ModelVersion of a trained model is one builder's: the operator's and ``foresight run``'s agree."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from foresight.api.trainingjob import TrainingJobSpec
from foresight.api.validation import validate_object
from foresight.contract.trained_model import MODEL_NAME_LABEL, TRAINING_JOB_LABEL
from foresight.contract.training import TrainingResult
from foresight.run.training_record import model_version_record
from foresight_operator.builders.modelversion_from_training import build_model_version

SPEC = {
    "task": "forecast",
    "model": "lstm",
    "dataset": {"promql": {"url": "http://prom:9090", "query": "sum(rate(x[5m]))"}},
    "hyperparameters": {"hidden": "32"},
    "epochs": 3,
    "distributed": {"workers": 2, "backend": "torch"},
    "artifacts": {"uri": "s3://models/runs", "endpoint": "minio:9000", "credentialsSecret": "s3-creds"},
    "output": {"modelName": "storage-lstm"},
}
RESULT = {"metrics": {"val_loss": 0.25, "ok": True}, "artifactUri": "s3://models/runs/models/ml/tj",
          "sha256": "a" * 64, "manifestSha256": "b" * 64, "worldSize": 2}  # fmt: skip
WHEN = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_the_cluster_and_foresight_run_record_the_same_model() -> None:
    spec = dict(SPEC)
    job = {"metadata": {"name": "tj", "namespace": "ml", "uid": "0a1b2c3d-0000"}, "spec": spec}
    result = TrainingResult.model_validate(RESULT)
    in_cluster = build_model_version(
        job, artifact_uri=RESULT["artifactUri"], finished=WHEN, image="rt:1", result=result
    )
    local = model_version_record(
        TrainingJobSpec.model_validate(spec), job="tj", namespace="ml", result=RESULT, finished=WHEN,
        mode="ssh", token="0a1b2c3d",
    )  # fmt: skip
    assert validate_object(in_cluster) == [] and validate_object(local) == []
    a, b = in_cluster["spec"], local["spec"]
    for field in ("modelName", "version", "framework", "artifact", "metrics", "lineage"):
        assert a[field] == b[field], field
    assert a["artifact"]["sha256"] == "b" * 64 and a["artifact"]["store"]["credentialsSecret"] == "s3-creds"
    assert a["metrics"] == {"val_loss": 0.25} and a["lineage"]["dataset"].startswith("promql+http://prom:9090")
    # Only where it ran differs: the image the operator knows, the mode foresight run knows.
    assert {k: v for k, v in a["config"].items() if k != "image"} == {
        k: v for k, v in b["config"].items() if k != "trainedBy"
    }
    assert (a["config"]["image"], b["config"]["trainedBy"]) == ("rt:1", "ssh")
    for obj in (in_cluster, local):
        labels = obj["metadata"]["labels"]
        assert labels[MODEL_NAME_LABEL] == "storage-lstm" and labels[TRAINING_JOB_LABEL] == "tj"


def test_a_job_that_asked_for_no_model_version_gets_none() -> None:
    spec = {k: v for k, v in SPEC.items() if k != "output"}
    with pytest.raises(ValueError, match=r"no spec\.output"):
        build_model_version(
            {"metadata": {"name": "tj", "namespace": "ml", "uid": "u"}, "spec": spec},
            artifact_uri="pvc://c/m", finished=WHEN, image="rt:1",
        )  # fmt: skip
