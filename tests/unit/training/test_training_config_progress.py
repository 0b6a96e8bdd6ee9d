"""TrainConfig parsing, search-space validation, termination-message limits, progress channels."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from foresight.contract.termination import TERMINATION_MESSAGE_LIMIT
from foresight.training import EpochStats, ProgressReporter, TrainingConfigError, load_config
from foresight.training.config import SearchParameter, TrainConfig
from foresight.training.progress import write_termination_message
from pydantic import ValidationError

YAML = """
task: forecast
model: lstm
dataset: {uri: "s3://datasets/storage/panel.npz"}
hyperparameters: {learningRate: "0.001", hiddenSize: "64", calendar: "hour", clip: "true"}
epochs: 20
batchSize: 256
checkpoint: {uri: "s3://ckpt/tj-1", everyEpochs: 2}
output: {uri: "s3://models/tj-1"}
distributed: {joinTimeoutSeconds: 60}
search:
  trials: 8
  space:
    learningRate: {type: loguniform, min: 0.0001, max: 0.01}
    layers: {type: randint, min: 1, max: 3}
"""


def test_yaml_config_in_crd_spelling_parses_numbers(tmp_path: Path) -> None:
    path = tmp_path / "train.yaml"
    path.write_text(YAML)
    cfg = load_config(path)
    assert cfg.hyperparameters == {"learningRate": 0.001, "hiddenSize": 64, "calendar": "hour", "clip": True}
    assert cfg.checkpoint is not None and cfg.checkpoint.every_epochs == 2
    assert cfg.batch_size == 256 and cfg.distributed.join_timeout_seconds == 60
    assert cfg.search is not None and cfg.search.num_samples == 8 and cfg.search.metric == "val_loss"
    # Round trip through the JSON the operator would render.
    again = TrainConfig.model_validate_json(cfg.model_dump_json(by_alias=True))
    assert again == cfg


def test_bad_config_names_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"task": "toy", "epochs": 0}))
    with pytest.raises(TrainingConfigError, match=r"(?s)bad\.json.*epochs"):
        load_config(path)
    with pytest.raises(TrainingConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")


def test_dataset_is_exactly_one_of_uri_and_promql() -> None:
    promql = {"url": "http://prom:9090", "query": "up", "lookback": "48h", "groupBy": ["user"]}
    cfg = TrainConfig.model_validate({"task": "forecast", "dataset": {"promql": promql}})
    assert cfg.dataset is not None and cfg.dataset.uri is None and cfg.dataset.promql is not None
    assert (cfg.dataset.promql.step, cfg.dataset.promql.aggregation) == ("1h", "none")
    for bad in ({}, {"uri": "/d/panel.npz", "promql": promql}):
        with pytest.raises(ValidationError, match="exactly one of uri and promql"):
            TrainConfig.model_validate({"task": "forecast", "dataset": bad})
    with pytest.raises(ValidationError, match="lookback"):
        TrainConfig.model_validate({"task": "forecast", "dataset": {"promql": {**promql, "lookback": "2d"}}})


@pytest.mark.parametrize(
    "param",
    [
        {"type": "uniform", "min": 1, "max": 1},
        {"type": "loguniform", "min": 0, "max": 1},
        {"type": "choice", "values": []},
        {"type": "randint", "min": 3},
    ],
)
def test_invalid_search_parameters_are_rejected(param: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        SearchParameter.model_validate(param)


def test_termination_message_stays_parseable_under_the_kubernetes_limit(tmp_path: Path) -> None:
    doc = {
        "reason": "Succeeded",
        "artifactUri": "s3://m/x",
        "trials": [{"id": f"t{i}", "config": {"lr": 0.1 * i}, "metric": 1.0} for i in range(500)],
    }
    path = tmp_path / "term"
    assert write_termination_message(path, doc)
    text = path.read_text()
    assert len(text.encode()) <= TERMINATION_MESSAGE_LIMIT
    parsed = json.loads(text)
    assert parsed["trialCount"] == 500 and parsed["artifactUri"] == "s3://m/x" and "trials" not in parsed
    assert not write_termination_message(tmp_path / "no-such-dir" / "sub" / "x" / "\0bad", {"reason": "x"})


def test_progress_reporter_pushes_gauges_and_survives_a_down_gateway(tmp_path: Path) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    pushed: list[tuple[str, str, bytes, Mapping[str, str]]] = []

    def pusher(url: str, job: str, registry: CollectorRegistry, grouping: Mapping[str, str]) -> None:
        pushed.append((url, job, generate_latest(registry), dict(grouping)))
        if len(pushed) == 2:
            raise ConnectionRefusedError("gateway down")

    out = io.StringIO()
    rep = ProgressReporter(
        stdout=out,
        progress_file=tmp_path / "p" / "progress.json",
        pushgateway_url="http://127.0.0.1:9",
        grouping={"trainingjob": "tj-1"},
        pusher=pusher,
    )
    for epoch in (1, 2):
        rep.epoch(EpochStats(epoch, 2, 0.5 / epoch, float("nan"), {"accuracy": 0.9}, 1.0, 2.0 - epoch))
    assert len(pushed) == 2
    url, job, body, grouping = pushed[0]
    text = body.decode()
    assert (url, job, grouping) == ("http://127.0.0.1:9", "foresight-training", {"trainingjob": "tj-1"})
    assert "foresight_training_epoch 1.0" in text and "foresight_training_loss 0.5" in text
    assert 'foresight_training_metric{name="accuracy"} 0.9' in text
    progress = json.loads((tmp_path / "p" / "progress.json").read_text())
    assert progress["epoch"] == 2 and progress["val_loss"] is None  # NaN is written as null
    assert len(out.getvalue().splitlines()) == 2
    silent = io.StringIO()
    ProgressReporter(stdout=silent, enabled=False).epoch(EpochStats(1, 1, 0.1, 0.1, {}, 1.0, 0.0))
    assert silent.getvalue() == ""
