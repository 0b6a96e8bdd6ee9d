"""A TrainingJob's ``dataset.promql``: the forecast task trained on history in a real Prometheus.

The TrainingJob spec goes through ``plan_training`` into the TrainConfig a pod reads, and the run
happens in the artifacts' working directory, as in the pod. History is backfilled with promtool.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from foresight.api.trainingjob import TrainingJobSpec
from foresight.forecast.ingest import load_panel
from foresight.prometheus import PrometheusClient
from foresight.training import load_config, run_training
from foresight_operator.builders import plan_training

from tests.servers.prometheus import PrometheusServer, backfill, free_port, openmetrics

pytestmark = pytest.mark.integration

STEP = 3600
HOURS = 7 * 24
NOW = int(time.time()) // STEP * STEP  # the last backfilled hour
LEVELS = {"alice": 150.0, "bob": 400.0}
HP = {"horizon": "6", "inputWindow": "24", "hiddenSize": "8", "layers": "1", "windowsPerEpoch": "256"}


def history() -> str:
    """alice = two volumes (100 + daily wave, and a flat 50) summed by user; bob = 400 + wave."""
    hours = np.arange(HOURS)
    ts = (NOW - STEP * (HOURS - 1 - hours)).tolist()
    wave = np.sin(2 * np.pi * hours / 24)
    raw = [
        ({"user": "alice", "volume": "v1"}, 100 + 10 * wave),
        ({"user": "alice", "volume": "v2"}, np.full(HOURS, 50.0)),
        ({"user": "bob", "volume": "v1"}, 400 + 20 * wave),
    ]
    series = [(labels, list(zip(ts, vals.tolist(), strict=True))) for labels, vals in raw]
    return openmetrics({"tj_used_bytes": ("gauge", series)})


@pytest.fixture(scope="module")
def prom(prometheus_installed: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    data = tmp_path_factory.mktemp("tj-history") / "data"
    backfill(history(), data)
    server = PrometheusServer(data)
    server.start()
    yield server
    server.stop()


def _run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, promql: dict[str, Any], epochs: int = 2
) -> tuple[int, dict[str, Any], dict[str, Any]]:
    """Plan the TrainingJob, write its config file as the ConfigMap would, train in the work dir."""
    spec = TrainingJobSpec.model_validate(
        {"task": "forecast", "model": "lstm", "epochs": epochs, "seed": 3, "hyperparameters": HP,
         "dataset": {"promql": promql}}
    )  # fmt: skip
    plan = plan_training(spec, namespace="ml", name="usage", config_map="usage-config", default_image="rt")
    config_file = tmp_path / "train.yaml"
    config_file.write_text(yaml.safe_dump(plan.config))
    work = tmp_path / "artifacts"
    work.mkdir()
    monkeypatch.chdir(work)  # the pod's working directory: the mounted artifacts claim
    environ = {"FORESIGHT_TERMINATION_LOG": str(tmp_path / "termination-log")}
    code, doc = run_training(load_config(config_file), environ=environ, stdout=io.StringIO())
    term = json.loads((tmp_path / "termination-log").read_text())
    return code, doc, term


def test_forecast_task_trains_on_prometheus_history_grouped_by_user(
    prom: PrometheusServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from foresight.forecast.models import load_model

    promql = {"url": prom.url, "query": "tj_used_bytes", "lookback": "144h", "step": "1h",
              "groupBy": ["user"], "aggregation": "sum"}  # fmt: skip
    code, doc, term = _run(tmp_path, monkeypatch, promql)
    assert code == 0, doc
    assert term["epochs"] == 2 and np.isfinite(term["metrics"]["val_loss"])
    model_dir = tmp_path / "artifacts" / "models" / "ml" / "usage"
    model = load_model(model_dir)
    assert model.name == "lstm"
    # The model was trained on the panel the ingestion makes: one series per user, volumes summed.
    panel = load_panel(
        PrometheusClient(prom.url), "tj_used_bytes", start=NOW - 144 * STEP, end=NOW, step=STEP,
        group_by=["user"], aggregate="sum",
    )  # fmt: skip
    assert panel.keys == [{"user": "alice"}, {"user": "bob"}] and panel.n_steps == 145
    forecast = model.predict(panel, 6)
    assert forecast.point.shape == (2, 6) and np.isfinite(forecast.point).all()
    # Levels 150 and 400 are learnt (the network predicts from the last values, not from zero).
    means = forecast.point.mean(axis=1)
    assert abs(means[0] - LEVELS["alice"]) < 30 and abs(means[1] - LEVELS["bob"]) < 60


@pytest.mark.parametrize(
    ("query", "url", "code", "reason", "retryable", "says"),
    [
        ("sum(tj_used_bytes", None, 8, "PromQLError", False, "parse error"),
        ("tj_missing_metric", None, 3, "DatasetNotFound", False, "returned no series"),
        ("tj_used_bytes", "closed", 9, "PrometheusUnavailable", True, "unavailable after 4 attempt(s)"),
    ],
    ids=["syntax-error", "no-series", "unreachable"],
)
def test_prometheus_failures_become_training_reasons(
    prom: PrometheusServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    query: str,
    url: str | None,
    code: int,
    reason: str,
    retryable: bool,
    says: str,
) -> None:
    target = prom.url if url is None else f"http://127.0.0.1:{free_port()}"
    got, doc, term = _run(tmp_path, monkeypatch, {"url": target, "query": query, "lookback": "48h"})
    assert got == code, doc
    assert (term["reason"], term["retryable"]) == (reason, retryable)
    # What went wrong, in Prometheus' own words, and where: the query, or the URL that is down.
    assert says in term["message"] and (query if url is None else target) in term["message"]
    assert not (tmp_path / "artifacts" / "models").exists()  # nothing half-trained is published
