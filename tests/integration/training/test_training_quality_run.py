"""The dataset quality report of a real run: shown before training, in the status, and a gate.

``foresight run --local`` of forecast TrainingJobs on a panel with missing values: without
thresholds the report is shown and training goes on; with ``spec.dataset.quality`` over what the
data has, the run fails before the first epoch with DataQualityFailed, naming counts and threshold.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration.training.trainingjob_cli import small_panel, start_run, status_json, write_trainingjob

pytestmark = pytest.mark.integration


def _spec(panel: Path, artifacts: Path, **dataset: Any) -> dict[str, Any]:
    return {
        "task": "forecast", "model": "gru", "epochs": 2,
        "dataset": {"uri": panel.as_uri(), **dataset},
        "hyperparameters": {"horizon": "6", "inputWindow": "24", "hiddenSize": "8", "windowsPerEpoch": "128"},
        "artifacts": {"uri": artifacts.as_uri()},
        "output": {"modelName": "quality-test"},
    }  # fmt: skip


def test_a_dataset_over_the_missing_threshold_fails_before_training_naming_counts_and_threshold(
    tmp_path: Path,
) -> None:
    panel = small_panel(tmp_path / "panel.npz", series=4, steps=240, nan_every=10)  # 96 of 960 points
    job = write_trainingjob(tmp_path / "tj.yaml", "gated", "ml", _spec(
        panel, tmp_path / "artifacts", quality={"maxMissingFraction": 0.05, "maxDuplicateFraction": 0.0}
    ))  # fmt: skip
    run = start_run(["-f", str(job), "--local", "--state-dir", str(tmp_path / "state")])
    assert run.finish() == 2, run.output  # bad input: fix the data or the thresholds
    status = status_json(tmp_path / "state", "ml", "gated")["status"]
    ready = status["conditions"][0]
    assert (status["phase"], ready["reason"]) == ("Failed", "DataQualityFailed")
    assert "missing 96 of 960 points (10.00%) > maxMissingFraction 5.00%" in ready["message"]
    assert "relax spec.dataset.quality" in ready["message"]
    quality = status["dataQuality"]
    assert (quality["missing"], quality["total"], quality["rows"], quality["passed"]) == (96, 960, 4, False)
    assert quality["failures"] == ["missing 96 of 960 points (10.00%) > maxMissingFraction 5.00%"]
    # Nothing trained: no epoch line, no checkpoint.
    assert " epoch 1/2 " not in run.output
    assert not (tmp_path / "artifacts/checkpoints/ml/gated").exists()


def test_without_thresholds_the_report_is_shown_and_training_goes_on(tmp_path: Path) -> None:
    panel = small_panel(tmp_path / "panel.npz", series=4, steps=240, nan_every=10)
    job = write_trainingjob(tmp_path / "tj.yaml", "reported", "ml", _spec(panel, tmp_path / "artifacts"))
    run = start_run(["-f", str(job), "--local", "--state-dir", str(tmp_path / "state")])
    assert run.finish() == 0, run.output
    assert "data quality: 960 points, missing 96 (10.00%), duplicate series 0 of 4" in run.output
    status = status_json(tmp_path / "state", "ml", "reported")["status"]
    assert status["phase"] == "Succeeded"
    assert status["dataQuality"]["missing"] == 96 and status["dataQuality"]["passed"] is True
