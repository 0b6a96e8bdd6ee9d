"""The operator's side of the dataset quality report and of distillation.

- ``training_status`` folds the runtime's ``dataQuality`` into ``status.dataQuality``, on success and
  on a DataQualityFailed failure (whose reason and message become the Ready condition's);
- ``plan_training`` renders ``spec.dataset.quality`` and the distillation teacher into the pod's
  TrainConfig, mounting a teacher on another claim read-only, and refuses an S3 teacher the pod
  could not read;
- the reconcile handler waits (Pending-style WaitError, reason TeacherNotFound) for a teacher
  ModelVersion that does not exist yet, and resolves one that does to its artifact URI;
- the student's ModelVersion names its teacher in ``lineage.parent``, and the verify result's
  ``distillation`` lands in the ModelVersion status.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from foresight.api.trainingjob import TrainingJobSpec
from foresight.training.config import TrainConfig
from foresight_operator.builders import plan_training
from foresight_operator.builders.modelversion_from_training import build_model_version
from foresight_operator.handlers.modelversion import verify_status
from foresight_operator.handlers.trainingjob import _teacher_uri, training_status
from foresight_operator.reconcile import SpecError, WaitError

from tests.cluster.emulator import Cluster
from tests.unit.operator.conftest import Events, handler_context

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
FAILURE = "missing 96 of 960 points (10.00%) > maxMissingFraction 5.00%"
QUALITY = {"total": 960, "rows": 4, "missing": 96, "duplicates": 0, "outOfRange": 0, "outliers": 0,
           "passed": False, "failures": [FAILURE]}  # fmt: skip


def _pod(phase: str, doc: dict[str, Any]) -> dict[str, Any]:
    code = 0 if phase == "Succeeded" else 10
    terminated = {"exitCode": code, "message": json.dumps(doc), "finishedAt": "2026-01-02T03:04:00Z"}
    statuses = [{"state": {"terminated": terminated}}]
    return {"metadata": {"name": "tj-train-x"}, "status": {"phase": phase, "containerStatuses": statuses}}


def _body() -> dict[str, Any]:
    return {"metadata": {"name": "tj", "namespace": "ml", "generation": 1}, "spec": {"epochs": 2}}


def test_a_data_quality_failure_is_the_ready_reason_with_the_report_in_status() -> None:
    failed = {"type": "Failed", "status": "True", "reason": "PodFailurePolicy", "message": "exit code 10"}
    job = {"metadata": {"name": "tj-train"}, "status": {"failed": 1, "conditions": [failed]}}
    doc = {"reason": "DataQualityFailed", "message": "dataset quality check failed before training: ...",
           "retryable": False, "dataQuality": QUALITY}  # fmt: skip
    status = training_status(_body(), job, [_pod("Failed", doc)], now=NOW, artifact_uri=None)
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (status["phase"], ready["reason"]) == ("Failed", "DataQualityFailed")
    assert ready["message"].startswith("dataset quality check failed before training")
    assert status["dataQuality"] == QUALITY


def test_a_succeeded_run_keeps_its_quality_report() -> None:
    job = {"metadata": {"name": "tj-train"}, "status": {"succeeded": 1,
           "conditions": [{"type": "Complete", "status": "True"}]}}  # fmt: skip
    report = {**QUALITY, "passed": True, "failures": []}
    doc = {"reason": "Succeeded", "epochs": 2, "metrics": {"val_loss": 0.1}, "dataQuality": report}
    status = training_status(_body(), job, [_pod("Succeeded", doc)], now=NOW, artifact_uri="pvc://a/m")
    assert status["phase"] == "Succeeded" and status["dataQuality"] == report


def _spec(**extra: Any) -> TrainingJobSpec:
    return TrainingJobSpec.model_validate({
        "task": "classifier", "dataset": {"uri": "pvc://arts/datasets/photos/",
                                          "quality": {"maxClassImbalance": 3, "minImageSize": 32}},
        "artifacts": {"uri": "pvc://arts/runs"}, **extra,
    })  # fmt: skip


def _plan(spec: TrainingJobSpec, teacher_uri: str | None = None) -> Any:
    return plan_training(spec, namespace="ml", name="student", config_map="c", default_image="rt",
                         teacher_uri=teacher_uri)  # fmt: skip


def test_quality_thresholds_and_a_teacher_reach_the_pods_train_config() -> None:
    distill = {"teacher": {"modelVersion": "teacher-v1"}, "temperature": 4.0, "alpha": 0.3}
    plan = _plan(_spec(distillation=distill), teacher_uri="pvc://arts/runs/models/ml/teacher")
    config = TrainConfig.model_validate(plan.config)  # what the pod reads, valid for the runtime
    assert config.dataset is not None and config.dataset.quality is not None
    assert (config.dataset.quality.max_class_imbalance, config.dataset.quality.min_image_size) == (3, 32)
    assert plan.config["distillation"] == {"teacherUri": "runs/models/ml/teacher", "teacher": "teacher-v1",
                                           "temperature": 4.0, "alpha": 0.3}  # fmt: skip
    # A teacher on another claim is mounted read-only, as a dataset is.
    other = _plan(_spec(distillation={"teacher": {"uri": "pvc://zoo/teacher"}}))
    mount = next(v for v in other.volumes if v.claim == "zoo")
    assert mount.read_only and other.config["distillation"]["teacherUri"] == f"{mount.mount_path}/teacher"


def test_an_s3_teacher_needs_the_artifacts_on_s3_too() -> None:
    with pytest.raises(SpecError) as info:
        _plan(_spec(distillation={"teacher": {"uri": "s3://zoo/teacher"}}))
    assert info.value.field == "distillation.teacher" and "put both on one store" in info.value.message


def test_the_reconcile_waits_for_the_teacher_model_version_then_uses_its_artifact(
    cluster: Cluster, events: Events
) -> None:
    ctx = handler_context(cluster, events, NOW)
    spec = _spec(distillation={"teacher": {"modelVersion": "teacher-v1"}}).to_wire()
    body = {"metadata": {"name": "student", "namespace": "ml", "uid": "u"}, "spec": spec}
    with pytest.raises(WaitError) as info:
        _teacher_uri(ctx, body)
    assert info.value.reason == "TeacherNotFound" and "ml/teacher-v1 not found" in str(info.value)
    cluster.api.create("foresight.dev/v1alpha1/modelversions", {
        "apiVersion": "foresight.dev/v1alpha1", "kind": "ModelVersion",
        "metadata": {"name": "teacher-v1", "namespace": "ml"},
        "spec": {"modelName": "shapes", "version": "1", "artifact": {"uri": "pvc://arts/runs/models/ml/teacher"}},
    })  # fmt: skip
    assert _teacher_uri(ctx, body) == "pvc://arts/runs/models/ml/teacher"


def test_the_students_model_version_names_its_teacher_and_gets_the_comparison_in_status() -> None:
    tj = {"metadata": {"name": "student", "namespace": "ml", "uid": "0123456789"},
          "spec": {**_spec(distillation={"teacher": {"modelVersion": "teacher-v1"}}).to_wire(),
                   "output": {"modelName": "shapes"}},
          "status": {"bestMetrics": {"accuracy": 0.9}}}  # fmt: skip
    mv = build_model_version(tj, artifact_uri="pvc://arts/runs/models/ml/student", finished=NOW, image="rt")
    assert mv["spec"]["lineage"]["parent"] == "teacher-v1"
    distilled = {"teacher": "teacher-v1", "temperature": 3.0, "alpha": 0.5, "teacherParameters": 100,
                 "studentParameters": 10, "teacherSizeBytes": 1000, "studentSizeBytes": 200, "sizeRatio": 0.2,
                 "teacherP50Ms": 1.0, "studentP50Ms": 0.5, "speedup": 2.0, "teacherAccuracy": 0.9,
                 "studentAccuracy": 0.85, "accuracyChange": -0.05}  # fmt: skip
    verify = {"reason": "Verified", "message": "ok", "verified": True, "checksum": "c" * 64, "sizeBytes": 5,
              "distillation": distilled}  # fmt: skip
    job = {"metadata": {"name": "v"}, "status": {"conditions": [{"type": "Complete", "status": "True"}]}}
    body = {"metadata": {"name": "student-mv", "generation": 1}, "spec": mv["spec"]}
    status = verify_status(body, job, [_pod("Succeeded", verify)], now=NOW)
    assert status["phase"] == "Ready" and status["distillation"] == distilled
