"""Knowledge distillation (seed 004): train a small classifier to match a trained teacher classifier.

The student is the ``classifier`` task's own model (:class:`~.classifier.SmallCNN`, usually with
fewer ``channels``) on the same labelled images; the teacher is a classifier model directory a
TrainingJob published (``model.json``, ``model.pt``, ``labels.json``). The loss is Hinton's:

    alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) * CE(student, labels)

(the T^2 keeps the soft term's gradients on the scale of the hard one as T grows). Why only the
classifier: a temperature softens a distribution over classes; the forecasting networks output
quantiles, which have no such distribution, and distilling them is a different method (matching
the teacher's quantiles), not this one.

The exported student is an ordinary classifier artifact (the ClassifierService ``onnx`` backend
and the ModelVersion verify step load it as one) plus ``distillation.json``: parameter counts,
saved-weight sizes, eager CPU latency at batch 1 and validation accuracy of teacher and student,
which the verify step copies into the student ModelVersion's ``status.distillation``.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping, Sized
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from foresight.api.trainingjob import DatasetQuality

from ..errors import DatasetError, TrainingConfigError
from ..quality import QualityReport
from .classifier import ClassifierTask, load_classifier

__all__ = ["DISTILLATION_FILE", "DistillationTask"]

DISTILLATION_FILE = "distillation.json"
LATENCY_REPEATS = 200
"""Timed single-image calls per model: enough for a stable median of a small CNN on a CPU."""


def _parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _p50_ms(model: nn.Module, example: torch.Tensor) -> float:
    from foresight.optimize.latency import measure

    before = torch.get_num_threads()
    torch.set_num_threads(1)  # one request, one thread: what a serving pod does at batch 1
    try:
        with torch.inference_mode():
            samples = measure(lambda: model(example), warmup=20, repeats=LATENCY_REPEATS)
    finally:
        torch.set_num_threads(before)
    return float(sorted(samples)[len(samples) // 2])


class DistillationTask:
    """The classifier task with a teacher in the loss. Hyperparameters: the classifier's."""

    name = "classifier"
    """The student is a classifier: checkpoints, export and loaders treat it as one."""

    def __init__(
        self, base: ClassifierTask, teacher_dir: Path, *, teacher: str, temperature: float, alpha: float
    ) -> None:
        """
        Args:
            base: the classifier task (dataset, student architecture, export).
            teacher_dir: the teacher's model directory, already local.
            teacher: the teacher as the spec named it (for the record).
            temperature: softening temperature T (> 0).
            alpha: weight of the distillation term (0..1).
        """
        if temperature <= 0 or not 0 <= alpha <= 1:
            raise TrainingConfigError(
                f"distillation needs temperature > 0 and 0 <= alpha <= 1, got {temperature} and {alpha}"
            )
        val = base.datasets()[1]
        if isinstance(val, Sized) and len(val) == 0:
            raise DatasetError(
                "distillation compares student and teacher on the validation images, and there are "
                f"none: give every class at least valEvery ({base.hparams.get('valEvery', 5)}) images"
            )
        self.base = base
        self.teacher_name = teacher
        self.temperature = float(temperature)
        self.alpha = float(alpha)
        self.teacher_dir = teacher_dir
        try:
            self.teacher, labels, self.teacher_size = load_classifier(teacher_dir)
        except ValueError as exc:
            raise TrainingConfigError(
                f"the distillation teacher at {teacher_dir} is not a classifier model directory "
                f"(model.json, model.pt, labels.json as a classifier TrainingJob publishes them): {exc}"
            ) from exc
        if labels != base.labels:
            raise DatasetError(
                f"the teacher was trained on labels {labels} but the dataset has {base.labels}: distil on "
                "the teacher's labels (the same folder names)"
            )
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self._teacher_accuracy: float | None = None

    def quality_report(self, quality: DatasetQuality | None) -> QualityReport:
        return self.base.quality_report(quality)

    def architecture(self, hparams: Mapping[str, Any]) -> dict[str, Any]:
        return self.base.architecture(hparams)

    def build_model(self, hparams: Mapping[str, Any]) -> nn.Module:
        return self.base.build_model(hparams)

    def datasets(self) -> tuple[Dataset[Any], Dataset[Any]]:
        return self.base.datasets()

    def _teacher_input(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] == self.teacher_size:
            return x
        # The teacher sees images at the size it was trained on.
        return nn.functional.interpolate(x, size=(self.teacher_size, self.teacher_size), mode="bilinear")

    def _teacher_logits(self, x: torch.Tensor) -> torch.Tensor:
        if next(self.teacher.parameters()).device != x.device:
            self.teacher.to(x.device)
        with torch.no_grad():
            return self.teacher(self._teacher_input(x))

    def loss(self, model: nn.Module, batch: Any) -> torch.Tensor:
        x, y = batch
        student = model(x)
        t = self.temperature
        soft = nn.functional.kl_div(
            nn.functional.log_softmax(student / t, dim=1),
            nn.functional.softmax(self._teacher_logits(x) / t, dim=1),
            reduction="batchmean",
        )
        hard = nn.functional.cross_entropy(student, y)
        return self.alpha * t * t * soft + (1 - self.alpha) * hard

    def _accuracy(self, logits_of: Any, val: Dataset[Any], device: torch.device) -> float:
        correct, n = 0, 0
        for x, y in DataLoader(val, batch_size=64):
            logits = logits_of(x.to(device))
            correct += int((logits.argmax(1).cpu() == y).sum())
            n += len(y)
        return correct / n if n else math.nan

    def evaluate(self, model: nn.Module, val: Dataset[Any]) -> dict[str, float]:
        metrics = self.base.evaluate(model, val)
        if self._teacher_accuracy is None:
            device = next(model.parameters()).device
            self._teacher_accuracy = self._accuracy(self._teacher_logits, val, device)
        metrics["teacher_accuracy"] = self._teacher_accuracy
        metrics["accuracy_change"] = metrics["accuracy"] - self._teacher_accuracy
        return metrics

    def export(self, model: nn.Module, directory: Path) -> str:
        main = self.base.export(model, directory)
        student = copy.deepcopy(model).cpu().eval()
        teacher = copy.deepcopy(self.teacher).cpu().eval()
        size = self.base.size
        example = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
        ts = self.teacher_size
        teacher_example = torch.rand(1, 3, ts, ts, generator=torch.Generator().manual_seed(0))
        _, val = self.base.datasets()
        cpu = torch.device("cpu")
        with torch.no_grad():
            student_acc = self._accuracy(student, val, cpu)
            teacher_acc = self._accuracy(lambda x: teacher(self._teacher_input(x)), val, cpu)
        teacher_bytes = (self.teacher_dir / "model.pt").stat().st_size
        student_bytes = (directory / "model.pt").stat().st_size
        teacher_ms, student_ms = _p50_ms(teacher, teacher_example), _p50_ms(student, example)
        record = {
            "teacher": self.teacher_name,
            "temperature": self.temperature,
            "alpha": self.alpha,
            "teacherParameters": _parameters(teacher),
            "studentParameters": _parameters(student),
            "teacherSizeBytes": teacher_bytes,
            "studentSizeBytes": student_bytes,
            "sizeRatio": round(student_bytes / teacher_bytes, 4),
            "teacherP50Ms": round(teacher_ms, 4),
            "studentP50Ms": round(student_ms, 4),
            "speedup": round(teacher_ms / student_ms, 3) if student_ms > 0 else 0.0,
            "teacherAccuracy": round(teacher_acc, 4),
            "studentAccuracy": round(student_acc, 4),
            "accuracyChange": round(student_acc - teacher_acc, 4),
        }
        (directory / DISTILLATION_FILE).write_text(json.dumps(record, indent=2, sort_keys=True))
        return main
