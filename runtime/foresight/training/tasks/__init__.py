"""Built-in training tasks, chosen by ``TrainConfig.task``.

``custom`` is not here on purpose: a custom TrainingJob runs the user's own image and command,
and the runtime has nothing to do for it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ..config import TrainConfig
from ..data import load_promql_panel, resolve_dataset
from ..errors import DatasetError, TrainingConfigError
from ..trainer import TrainTask

__all__ = ["TASK_NAMES", "build_task"]

TASK_NAMES = ("forecast", "classifier", "toy")


def build_task(
    config: TrainConfig, workdir: Path, s3: Any | None = None, *, now: float | None = None
) -> TrainTask:
    """The task ``config`` names, with its dataset resolved to local files under ``workdir``.

    A PromQL dataset (forecast only) is read from Prometheus over the lookback ending at ``now``
    (Unix seconds; the clock when omitted). DDP ranks pass the same ``now`` so that they train
    on the same panel.
    """
    hp = config.hyperparameters
    if config.task == "toy":
        from .toy import ToyRegressionTask

        return ToyRegressionTask(hp, seed=config.seed)
    if config.distillation is not None and config.task != "classifier":
        raise TrainingConfigError(
            f"distillation applies to the classifier task, not {config.task!r}: a temperature softens "
            "class probabilities, which a forecaster's quantiles are not"
        )
    if config.task == "custom":
        raise TrainingConfigError(
            "task 'custom' runs your own image and command; the foresight runtime has nothing to train"
        )
    if config.task not in TASK_NAMES:
        raise TrainingConfigError(f"unknown task {config.task!r}; built-in tasks: {', '.join(TASK_NAMES)}")
    if config.dataset is None:
        raise TrainingConfigError(f"task {config.task!r} needs dataset.uri")
    if config.dataset.promql is not None:
        if config.task != "forecast":
            raise TrainingConfigError(
                f"task {config.task!r} reads files, not Prometheus: set dataset.uri (a PromQL dataset "
                "is for the forecast task)"
            )
        from .forecast import ForecastTrainingTask

        end = time.time() if now is None else now
        panel = load_promql_panel(config.dataset.promql, end=end)
        return ForecastTrainingTask(panel, config.model or "lstm", hp, seed=config.seed)
    assert config.dataset.uri is not None  # DatasetConfig holds exactly one of uri and promql
    path = resolve_dataset(config.dataset.uri, workdir, s3)
    if config.task == "classifier":
        from .classifier import ClassifierTask

        task = ClassifierTask(path, hp)
        if config.distillation is None:
            return task
        from .distill import DistillationTask

        d = config.distillation
        teacher_dir = _teacher_dir(d.teacher_uri, workdir / "teacher", s3)
        return DistillationTask(
            task, teacher_dir, teacher=d.teacher or d.teacher_uri, temperature=d.temperature, alpha=d.alpha
        )
    from .forecast import ForecastTrainingTask, load_panel_npz

    return ForecastTrainingTask(load_panel_npz(path), config.model or "lstm", hp, seed=config.seed)


def _teacher_dir(uri: str, workdir: Path, s3: Any | None) -> Path:
    """The distillation teacher's model directory, downloaded when it is on S3."""
    try:
        return resolve_dataset(uri, workdir, s3)
    except DatasetError as exc:
        raise DatasetError(
            f"distillation teacher {uri}: {exc}; check distillation.teacher (the teacher ModelVersion's "
            "artifact must still exist)"
        ) from exc
