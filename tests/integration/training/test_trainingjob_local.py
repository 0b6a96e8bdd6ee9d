"""``foresight run -f examples/trainingjob-*.yaml --local``: the shipped examples, with small overrides, end
with a ModelVersion record in the local artifact store and a training-curves PNG next to the model.

The examples run unchanged except through ``--set`` (fewer epochs, a small dataset where the
example points at a cluster's S3 bucket), as a user tries one on a laptop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml
from foresight.api.validation import validate_object
from foresight.training.tasks.classifier import make_shapes_dataset

from tests.integration.training.trainingjob_cli import ROOT, small_panel, start_run, status_json

pytestmark = pytest.mark.integration

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _record(artifacts: Path, namespace: str, name: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(
        (artifacts / "modelversions" / namespace / f"{name}.yaml").read_text()
    )
    assert validate_object(doc) == [], doc  # a ModelVersion a cluster would admit
    return doc


def _curves(artifact_uri: str) -> bytes:
    return (Path(urlparse(artifact_uri).path) / "training-curves.png").read_bytes()


def test_classifier_example_runs_locally_to_a_model_version_and_training_curves(tmp_path: Path) -> None:
    state = tmp_path / "state"
    # The example's dataset is pvc://foresight-artifacts/datasets/photos-labelled/: in local mode that
    # claim lives under --state-dir.
    make_shapes_dataset(state / "pvc/foresight-artifacts/datasets/photos-labelled", per_label=8, size=32)
    example = ROOT / "examples/trainingjob-classifier.yaml"
    run = start_run(["-f", str(example), "--local", "--state-dir", str(state),
                     "--set", "epochs=2", "--set", "hyperparameters.imageSize=32"])  # fmt: skip
    assert run.finish() == 0, run.output
    doc = status_json(state, "photos", "photo-classifier-train")
    status = doc["status"]
    assert status["phase"] == "Succeeded" and status["progress"] == {
        "epoch": 2, "epochs": 2, "metrics": status["bestMetrics"]
    }  # fmt: skip
    assert set(status["bestMetrics"]) == {"accuracy", "loss", "val_loss"}
    assert status["dataQuality"]["classCounts"] == {"circle": 8, "square": 8, "triangle": 8}
    record = _record(state / "pvc/foresight-artifacts", "photos", status["modelVersion"])
    spec = record["spec"]
    assert (
        spec["modelName"] == "photo-classifier" and spec["lineage"]["trainingJob"] == "photo-classifier-train"
    )
    assert spec["artifact"]["uri"] == status["artifactUri"] and len(spec["artifact"]["sha256"]) == 64
    assert _curves(status["artifactUri"]).startswith(PNG_MAGIC)
    assert "[local rank 0] epoch 2/2" in run.output and "NAMESPACE   NAME" in run.output


def test_gpu_ddp_example_runs_locally_as_two_ddp_processes(tmp_path: Path) -> None:
    state = tmp_path / "state"
    panel = small_panel(tmp_path / "panel.npz", series=6, steps=240)
    run = start_run([
        "-f", str(ROOT / "examples/trainingjob-gpu-ddp.yaml"), "--local", "--state-dir", str(state),
        "--set", "epochs=2", "--set", f"dataset.uri={panel.as_uri()}",
        "--set", f"artifacts.uri={(tmp_path / 'artifacts').as_uri()}",
        "--set", "hyperparameters.windowsPerEpoch=128", "--set", "hyperparameters.inputWindow=24",
        "--set", "hyperparameters.hiddenSize=16", "--set", "hyperparameters.horizon=6",
    ])  # fmt: skip
    assert run.finish() == 0, run.output
    doc = status_json(state, "ml-platform", "storage-transformer-ddp")
    ranks = doc["ranks"]
    assert sorted(ranks) == ["0", "1"] and ranks["0"]["worldSize"] == 2
    assert ranks["0"]["stateSha256"] == ranks["1"]["stateSha256"]  # DDP: the same weights on both
    assert "local rank 1" in run.output and "joined gloo process group" in run.output
    status = doc["status"]
    record = _record(tmp_path / "artifacts", "ml-platform", status["modelVersion"])
    assert record["spec"]["modelName"] == "storage-forecaster" and record["spec"]["config"]["workers"] == 2
    assert _curves(status["artifactUri"]).startswith(PNG_MAGIC)
    # The example asks one GPU per worker; without one here it says so and trains on CPU.
    import torch

    if torch.cuda.device_count() == 0:
        assert "this machine has no GPU: training on CPU" in run.output
