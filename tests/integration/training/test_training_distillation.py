"""Distillation end to end on this machine: a teacher classifier, then a smaller student distilled from
its ModelVersion, whose record carries size, latency and accuracy against the teacher; the
ModelVersion verify step (what a cluster runs) reads the same comparison into its result."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from foresight.api.modelversion import ModelVersionSpec
from foresight.modelversion.verify import JobConfig, verify_model
from foresight.training.tasks.classifier import make_shapes_dataset

from tests.integration.training.trainingjob_cli import start_run, status_json, write_trainingjob

pytestmark = pytest.mark.integration


def _classifier(data: Path, artifacts: Path, channels: int, **extra: Any) -> dict[str, Any]:
    return {
        "task": "classifier", "model": "small-cnn", "epochs": 3, "seed": 1,
        "dataset": {"uri": data.as_uri()},
        "hyperparameters": {"imageSize": "32", "channels": str(channels), "learningRate": "0.01"},
        "artifacts": {"uri": artifacts.as_uri()},
        "output": {"modelName": "shapes"},
        **extra,
    }  # fmt: skip


def test_student_distilled_from_a_teacher_model_version_records_size_latency_and_accuracy(
    tmp_path: Path,
) -> None:
    data = make_shapes_dataset(tmp_path / "shapes", per_label=10, size=32)
    artifacts, state = tmp_path / "artifacts", tmp_path / "state"
    teacher_job = write_trainingjob(
        tmp_path / "teacher.yaml", "teacher", "ml", _classifier(data, artifacts, 16)
    )
    run = start_run(["-f", str(teacher_job), "--local", "--state-dir", str(state)])
    assert run.finish() == 0, run.output
    teacher = status_json(state, "ml", "teacher")["status"]["modelVersion"]

    distillation = {"teacher": {"modelVersion": teacher}, "temperature": 4.0, "alpha": 0.7}
    spec = _classifier(data, artifacts, 4, distillation=distillation)
    student_job = write_trainingjob(tmp_path / "student.yaml", "student", "ml", spec)
    run = start_run(["-f", str(student_job), "--local", "--state-dir", str(state)])
    assert run.finish() == 0, run.output
    status = status_json(state, "ml", "student")["status"]
    record = yaml.safe_load((artifacts / "modelversions/ml" / f"{status['modelVersion']}.yaml").read_text())
    distilled = record["status"]["distillation"]
    assert distilled["teacher"] == teacher and record["spec"]["lineage"]["parent"] == teacher
    assert (distilled["temperature"], distilled["alpha"]) == (4.0, 0.7)
    assert distilled["studentParameters"] < distilled["teacherParameters"] / 4  # channels 4 vs 16
    assert distilled["studentSizeBytes"] < distilled["teacherSizeBytes"] and distilled["sizeRatio"] < 0.5
    assert distilled["teacherP50Ms"] > 0 and distilled["studentP50Ms"] > 0 and distilled["speedup"] > 0
    assert distilled["accuracyChange"] == pytest.approx(
        distilled["studentAccuracy"] - distilled["teacherAccuracy"], abs=1e-3
    )
    metrics = record["spec"]["metrics"]
    assert metrics["teacher_accuracy"] == pytest.approx(distilled["teacherAccuracy"], abs=1e-3)
    assert metrics["accuracy"] == pytest.approx(distilled["studentAccuracy"], abs=1e-3)

    # What a cluster's verify Job makes of the student: the comparison lands in its result, which
    # the operator folds into the ModelVersion's status.distillation.
    doc = verify_model(
        JobConfig(name=record["metadata"]["name"], namespace="ml", generation=1,
                  spec=ModelVersionSpec.model_validate(record["spec"])),
        pvc_mounts={}, s3=None, workdir=tmp_path / "verify", emit=lambda event: None, latency_repeats=3,
    )  # fmt: skip
    assert doc["verified"] is True and doc["format"] == "classifier"
    assert doc["distillation"] == distilled
