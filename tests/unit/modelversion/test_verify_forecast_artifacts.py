"""What a ForecastTask run saves can be verified as a ModelVersion: the run reports the artifact's
checksum and which models in it are trained, and the verify job loads the directory and runs it."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
from foresight.api.forecasttask import ForecastTaskSpec
from foresight.api.modelversion import ModelVersionSpec
from foresight.artifacts import LocalArtifactStore
from foresight.forecast.pipeline import run_forecast_task
from foresight.forecast.result import RunResult
from foresight.modelversion.verify import JobConfig, run_job
from foresight.run.memory import MemoryPrometheus

STEP = 3600
NOW = 1_770_000_000 // STEP * STEP
TINY = {"inputWindow": 24, "hiddenSize": 8, "layers": 1, "epochs": 1, "windowsPerEpoch": 100, "batchSize": 64}


def train(store: LocalArtifactStore, model: dict[str, Any]) -> RunResult:
    ts = NOW - STEP * np.arange(6 * 24)[::-1]
    prom = MemoryPrometheus()
    for i, user in enumerate(["alice", "bob"]):
        prom.add("used_bytes", {"user": user}, ts, 50 + 5 * np.sin(2 * np.pi * ts / 86400) + i)
    spec = ForecastTaskSpec.model_validate(
        {
            "source": {"query": "used_bytes", "lookback": "120h", "step": "1h", "groupBy": ["user"]},
            "model": {"backtestFolds": 1, **model},
            "horizon": "6h",
            "output": {"mode": "none", "horizons": ["6h"]},
        }
    )
    result = run_forecast_task(
        spec, name="disk", namespace="team-a", prometheus=prom, pushgateway=None, store=store,
        clock=lambda: NOW + 60, mode="train",
    )  # fmt: skip
    assert result.ok, result.message
    return result


def verify(uri: str, sha256: str | None, tmp_path: Path) -> dict[str, Any]:
    spec = ModelVersionSpec.model_validate(
        {"modelName": "disk", "version": "1", "artifact": {"uri": uri, "sha256": sha256}}
    )
    code, doc = run_job(
        JobConfig(name="disk-1", namespace="team-a", generation=1, spec=spec),
        environ={"FORESIGHT_TERMINATION_LOG": str(tmp_path / "termination-log")},
        stdout=io.StringIO(),
        workdir=tmp_path,
        latency_repeats=3,
    )
    doc["exitCode"] = code
    return doc


def test_a_trained_forecast_model_reports_its_checksum_and_verifies(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    result = train(store, {"type": "lstm", "hyperparameters": TINY})

    assert result.trained_models == ["lstm"]
    assert result.artifact_uri is not None and result.artifact_sha256 is not None
    key = result.artifact_uri.split("/forecasttasks/", 1)[1]
    info = store.get_dir(f"forecasttasks/{key}", tmp_path / "copy")
    assert result.artifact_sha256 == info.manifest.sha256
    message = json.loads(result.as_message().termination_message())
    assert (message["sha256"], message["trainedModels"]) == (info.manifest.sha256, ["lstm"])

    doc = verify(result.artifact_uri, result.artifact_sha256, tmp_path)
    assert (doc["exitCode"], doc["reason"], doc["verified"]) == (0, "Verified", True), doc
    assert doc["format"] == "forecast-lstm" and doc["checksum"] == result.artifact_sha256


def test_a_baseline_only_run_reports_no_trained_model_and_verify_says_why(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    result = train(store, {"type": "auto", "candidates": ["naive", "seasonal_naive"]})

    assert result.trained_models == []
    assert json.loads(result.as_message().termination_message())["trainedModels"] == []
    assert result.artifact_uri is not None
    doc = verify(result.artifact_uri, result.artifact_sha256, tmp_path)
    assert doc["reason"] == "LoadFailed", doc
    assert "only baselines" in doc["message"]
