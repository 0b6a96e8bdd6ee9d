"""Distillation: Hinton's loss, refusal of a teacher with other labels, and the record the export writes."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import torch
from foresight.api.modelversion import Distilled
from foresight.training import DatasetError, TrainConfig, TrainingConfigError, run_training
from foresight.training.tasks.classifier import ClassifierTask, SmallCNN, make_shapes_dataset
from foresight.training.tasks.distill import DISTILLATION_FILE, DistillationTask


def _teacher(directory: Path, labels: list[str], channels: int = 8, size: int = 24) -> Path:
    directory.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(SmallCNN(len(labels), channels).state_dict(), directory / "model.pt")
    (directory / "labels.json").write_text(json.dumps(labels))
    (directory / "model.json").write_text(
        json.dumps({"task": "classifier", "channels": channels, "imageSize": size, "labels": labels})
    )
    return directory


@pytest.fixture
def shapes(tmp_path: Path) -> Path:
    return make_shapes_dataset(tmp_path / "shapes", labels=("circle", "square"), per_label=5, size=24)


def test_loss_is_hintons_soft_and_hard_mix(tmp_path: Path, shapes: Path) -> None:
    base = ClassifierTask(shapes, {"imageSize": 24, "channels": 2})
    task = DistillationTask(base, _teacher(tmp_path / "t", ["circle", "square"]), teacher="t",
                            temperature=2.0, alpha=0.25)  # fmt: skip
    student = task.build_model({"imageSize": 24, "channels": 2}).eval()  # no dropout: one forward = another
    x, y = torch.rand(4, 3, 24, 24, generator=torch.Generator().manual_seed(1)), torch.tensor([0, 1, 1, 0])
    s, t = student(x), task.teacher(x)
    kl = torch.sum(torch.softmax(t / 2, 1) * (torch.log_softmax(t / 2, 1) - torch.log_softmax(s / 2, 1))) / 4
    expected = 0.25 * 4 * kl + 0.75 * torch.nn.functional.cross_entropy(s, y)
    with torch.no_grad():
        assert float(task.loss(student, (x, y))) == pytest.approx(float(expected), rel=1e-5)
    # alpha 0 is plain training on the labels.
    plain = DistillationTask(base, task.teacher_dir, teacher="t", temperature=2.0, alpha=0.0)
    with torch.no_grad():
        hard = float(torch.nn.functional.cross_entropy(s, y))
        assert float(plain.loss(student, (x, y))) == pytest.approx(hard, rel=1e-5)


def test_a_teacher_trained_on_other_labels_is_refused(tmp_path: Path, shapes: Path) -> None:
    base = ClassifierTask(shapes, {})
    with pytest.raises(DatasetError, match=r"teacher was trained on labels \['cat', 'dog'\]"):
        DistillationTask(
            base, _teacher(tmp_path / "t", ["cat", "dog"]), teacher="t", temperature=3, alpha=0.5
        )
    (tmp_path / "empty").mkdir()
    with pytest.raises(TrainingConfigError, match="not a classifier model directory"):
        DistillationTask(base, tmp_path / "empty", teacher="t", temperature=3, alpha=0.5)


def test_a_distillation_run_exports_a_classifier_with_its_comparison_to_the_teacher(
    tmp_path: Path, shapes: Path, environ: dict[str, str]
) -> None:
    teacher = _teacher(tmp_path / "teacher", ["circle", "square"], channels=8)
    config = TrainConfig.model_validate({
        "task": "classifier", "epochs": 1, "batchSize": 4,
        "dataset": {"uri": shapes.as_uri()},
        "hyperparameters": {"imageSize": "24", "channels": "2"},
        "output": {"uri": str(tmp_path / "out")},
        "distillation": {"teacherUri": teacher.as_uri(), "teacher": "shapes-v1", "temperature": 3,
                         "alpha": 0.5},
    })  # fmt: skip
    code, doc = run_training(config, environ=environ, stdout=io.StringIO())
    assert code == 0, doc
    record = Distilled.model_validate(json.loads((tmp_path / "out" / DISTILLATION_FILE).read_text()))
    assert record.teacher == "shapes-v1" and (record.temperature, record.alpha) == (3.0, 0.5)
    assert record.student_parameters < record.teacher_parameters
    assert record.size_ratio == pytest.approx(record.student_size_bytes / record.teacher_size_bytes, abs=1e-4)
    assert record.accuracy_change == pytest.approx(
        record.student_accuracy - record.teacher_accuracy, abs=1e-3
    )
    assert doc["metrics"]["teacher_accuracy"] == pytest.approx(record.teacher_accuracy, abs=1e-3)
    assert (tmp_path / "out" / "model.onnx").is_file()  # still an ordinary classifier artifact


def test_distillation_of_a_forecaster_is_refused(tmp_path: Path, environ: dict[str, str]) -> None:
    config = TrainConfig.model_validate({
        "task": "forecast", "dataset": {"uri": str(tmp_path)},
        "distillation": {"teacherUri": str(tmp_path)},
    })  # fmt: skip
    code, doc = run_training(config, environ=environ, stdout=io.StringIO())
    assert (code, doc["reason"]) == (2, "InvalidConfig")
    assert "distillation applies to the classifier task" in doc["message"]
