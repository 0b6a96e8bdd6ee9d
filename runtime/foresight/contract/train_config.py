"""The TrainConfig document a TrainingJob renders into: what ``foresight train --config FILE`` reads.

One renderer for every place a TrainingJob runs: the operator's ``plan_training`` (a ConfigMap
for the Job's pods), ``foresight run --local`` (processes on this machine) and
``foresight run --hosts`` (ranks on SSH hosts). Each caller decides only *where* things are (the
checkpoint, output, dataset and teacher locations as the training process will see them); what
the spec means for training is decided here, once. Pure and torch-free: the operator imports it
(part of the operator-runtime contract).
The runtime's model of the document is ``foresight.training.config.TrainConfig``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from foresight.api.trainingjob import TrainingJobSpec

from .training import PUSHGATEWAY_JOB

__all__ = ["render_train_config"]


def _search(spec: TrainingJobSpec) -> dict[str, Any] | None:
    if spec.search is None:
        return None
    s = spec.search
    space: dict[str, Any] = {}
    for key, param in s.space.items():
        entry: dict[str, Any] = {"type": param.type}
        if param.min is not None:
            entry["min"] = param.min
        if param.max is not None:
            entry["max"] = param.max
        if param.values:
            entry["values"] = list(param.values)
        space[key] = entry
    return {
        "trials": s.trials,
        "metric": s.metric,
        "mode": s.mode,
        "scheduler": s.scheduler,
        "gracePeriod": s.grace_period,
        "maxConcurrent": s.max_concurrent,
        "space": space,
    }


def _dataset(spec: TrainingJobSpec, task: str, dataset_uri: str | None) -> dict[str, Any] | None:
    dataset = spec.dataset
    if task == "toy" or dataset is None:
        return None  # the toy smoke test makes its own data
    doc: dict[str, Any] | None = None
    if dataset.promql is not None:
        pq = dataset.promql
        # Read at train time by the runtime (foresight.forecast.ingest), over the lookback ending when
        # training starts.
        doc = {
            "promql": {
                "url": pq.url,
                "query": pq.query,
                "lookback": pq.lookback,
                "step": pq.step,
                "groupBy": list(pq.group_by),
                "aggregation": pq.aggregation,
                "maxSeries": pq.max_series,
            }
        }
    elif dataset_uri is not None:
        doc = {"uri": dataset_uri}
    if doc is not None and dataset.quality is not None:
        doc["quality"] = dataset.quality.to_wire()
    return doc


def render_train_config(
    spec: TrainingJobSpec,
    *,
    task: str,
    checkpoint_uri: str,
    output_uri: str,
    dataset_uri: str | None = None,
    teacher_uri: str | None = None,
    teacher_name: str | None = None,
    grouping: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The TrainConfig document (camelCase) of ``spec``, with locations as the trainer sees them.

    Args:
        spec: the TrainingJob's spec.
        task: the runtime task to run (``spec.task``, or ``toy`` where an annotation asks for it).
        checkpoint_uri: where checkpoints go (a path, ``file://`` or ``s3://``).
        output_uri: where the trained model goes.
        dataset_uri: the dataset as the training process reads it (ignored for a PromQL dataset
            and for ``toy``, which needs none).
        teacher_uri: the distillation teacher's model directory as the process reads it.
        teacher_name: the teacher as the user named it (a ModelVersion or a URI), for the record.
        grouping: Pushgateway grouping labels (``namespace``, ``trainingjob``).
    """
    config: dict[str, Any] = {
        "task": task,
        "epochs": spec.epochs,
        "seed": spec.seed,
        "hyperparameters": dict(spec.hyperparameters),
        "checkpoint": {
            "uri": checkpoint_uri,
            "everyEpochs": spec.checkpoint.every_epochs,
            "keep": spec.checkpoint.keep,
        },
        "output": {"uri": output_uri},
    }
    if spec.model:
        config["model"] = spec.model
    if spec.distributed.backend == "torch":
        # auto: NCCL when the process sees a GPU, gloo on CPU (the runtime decides, per process).
        config["distributed"] = {
            "backend": "auto",
            "joinTimeoutSeconds": spec.distributed.join_timeout_seconds,
        }
    search = _search(spec)
    if search is not None:
        config["search"] = search
    if spec.metrics.pushgateway_url:
        config["pushgateway"] = {
            "url": spec.metrics.pushgateway_url,
            "job": PUSHGATEWAY_JOB,
            "grouping": dict(grouping or {}),
        }
    dataset = _dataset(spec, task, dataset_uri)
    if dataset is not None:
        config["dataset"] = dataset
    if spec.distillation is not None and teacher_uri is not None:
        d = spec.distillation
        config["distillation"] = {
            "teacherUri": teacher_uri,
            "teacher": teacher_name or d.teacher.model_version or d.teacher.uri or teacher_uri,
            "temperature": d.temperature,
            "alpha": d.alpha,
        }
    return config
