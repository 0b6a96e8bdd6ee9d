"""``spec.metrics.pushgatewayUrl``: a real Pushgateway receives the gauges after every epoch.

The TrainingJob spec goes through ``plan_training`` (the ``toy`` smoke-test task, as the
``foresight.dev/builtin-task`` annotation selects it) into the config a pod reads; the run pushes
with the real ``prometheus_client`` pusher, and after each epoch the test reads the gateway back.
"""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import pytest
import requests
import yaml
from foresight.api.trainingjob import TrainingJobSpec
from foresight.training import EpochStats, load_config, run_training
from foresight_operator.builders import plan_training
from prometheus_client.parser import text_string_to_metric_families

from tests.servers.prometheus import PushgatewayServer

pytestmark = pytest.mark.integration


def _group(gateway: str, namespace: str, name: str) -> dict[str, float]:
    """The gateway's samples of one TrainingJob's group: ``name{labels}`` -> value."""
    text = requests.get(f"{gateway}/metrics", timeout=5).text
    want = {"job": "foresight-training", "namespace": namespace, "trainingjob": name}
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if {k: s.labels.get(k) for k in want} == want:
                extra = {k: v for k, v in s.labels.items() if k not in want and k != "instance"}
                key = s.name + (
                    "{" + ",".join(f"{k}={v}" for k, v in sorted(extra.items())) + "}" if extra else ""
                )
                out[key] = s.value
    return out


def test_each_epoch_pushes_loss_metrics_epoch_and_eta_grouped_by_namespace_and_name(
    pushgateway: PushgatewayServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    namespace, name = "ml", f"pushed-{uuid.uuid4().hex[:8]}"
    spec = TrainingJobSpec.model_validate(
        {"task": "forecast", "epochs": 3, "seed": 1, "dataset": {"uri": "pvc://data/panel.npz"},
         "hyperparameters": {"hidden": "8", "samples": "128", "learningRate": "0.01"},
         "metrics": {"pushgatewayUrl": pushgateway.url}}
    )  # fmt: skip
    plan = plan_training(
        spec, namespace=namespace, name=name, config_map="c", default_image="rt", builtin_task="toy"
    )
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(plan.config))
    (tmp_path / "artifacts").mkdir()
    monkeypatch.chdir(tmp_path / "artifacts")  # the pod's working directory

    seen: list[tuple[EpochStats, dict[str, float]]] = []

    def after_epoch(stats: EpochStats) -> None:  # runs after the reporter pushed this epoch
        seen.append((stats, _group(pushgateway.url, namespace, name)))

    environ = {"FORESIGHT_TERMINATION_LOG": str(tmp_path / "termination-log")}
    code, doc = run_training(
        load_config(tmp_path / "train.yaml"), environ=environ, stdout=io.StringIO(), on_epoch_end=after_epoch
    )
    assert code == 0, doc
    assert [stats.epoch for stats, _ in seen] == [1, 2, 3]
    for stats, group in seen:
        assert group["foresight_training_epoch"] == stats.epoch
        assert group["foresight_training_epochs"] == 3
        assert group["foresight_training_loss"] == pytest.approx(stats.loss)
        assert group["foresight_training_val_loss"] == pytest.approx(stats.val_loss)
        assert group["foresight_training_metric{name=rmse}"] == pytest.approx(stats.metrics["rmse"])
        assert group["foresight_training_eta_seconds"] == pytest.approx(stats.eta_seconds)
        assert group["foresight_training_epoch_seconds"] == pytest.approx(stats.seconds)
    assert seen[-1][1]["foresight_training_eta_seconds"] == 0
    assert seen[-1][1]["foresight_training_val_loss"] == pytest.approx(doc["metrics"]["val_loss"])
