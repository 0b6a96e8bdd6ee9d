"""The TrainingJob run's contract: the runtime's termination message is what the operator reads."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from foresight.contract.training import TrainingResult
from foresight.training.progress import write_termination_message
from foresight_operator.handlers.trainingjob import training_status

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SUCCESS: dict[str, Any] = {
    "reason": "Succeeded", "epochs": 3, "metrics": {"val_loss": 0.25, "loss": 0.3}, "fingerprint": "f",
    "stateSha256": "s", "resumedFromEpoch": None, "artifactUri": "s3://m/models/ml/nightly",
    "sha256": "a" * 64, "manifestSha256": "b" * 64, "files": {"model.pt": "a" * 64}, "rank": 0,
    "worldSize": 1,
}  # fmt: skip


def finished(text: str, ok: bool) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    cond = {"type": "Complete" if ok else "Failed", "status": "True"}
    job = {"metadata": {"name": "nightly-train"}, "spec": {}, "status": {"conditions": [cond]}}
    term = {"exitCode": 0 if ok else 3, "message": text, "finishedAt": "2026-03-01T11:58:07Z"}
    pod = {
        "status": {
            "phase": "Succeeded" if ok else "Failed",
            "containerStatuses": [{"state": {"terminated": term}}],
        }
    }
    return job, [pod]


def test_the_runtime_writer_and_the_operator_reader_agree(tmp_path: Path) -> None:
    path = tmp_path / "termination-log"
    assert write_termination_message(path, SUCCESS)  # the runtime's writer
    text = path.read_text()
    assert TrainingResult.from_termination_message(text) == TrainingResult.of(SUCCESS)
    job, pods = finished(text, ok=True)
    body = {"metadata": {"name": "nightly", "generation": 1}, "spec": {"epochs": 3}, "status": {}}
    status = training_status(body, job, pods, now=T0, artifact_uri="s3://m/models/ml/nightly")
    assert status["bestMetrics"] == {"val_loss": 0.25, "loss": 0.3}
    assert status["progress"] == {"epoch": 3, "epochs": 3, "metrics": {"val_loss": 0.25, "loss": 0.3}}
    assert status["artifactUri"] == "s3://m/models/ml/nightly"


def test_a_failure_reason_reaches_the_condition(tmp_path: Path) -> None:
    path = tmp_path / "termination-log"
    failure = {"reason": "DatasetNotFound", "message": "s3://d/x.npz: no such object", "retryable": False}
    assert write_termination_message(path, failure)
    job, pods = finished(path.read_text(), ok=False)
    body = {"metadata": {"name": "nightly", "generation": 1}, "spec": {}, "status": {}}
    status = training_status(body, job, pods, now=T0, artifact_uri=None)
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (status["phase"], ready["reason"]) == ("Failed", "DatasetNotFound")
    assert "no such object" in ready["message"]


def test_metrics_that_are_no_numbers_are_dropped_on_both_sides() -> None:
    result = TrainingResult.of({"reason": "Succeeded", "metrics": {"val_loss": 0.5, "ok": True, "note": "x"}})
    assert result.metrics == {"val_loss": 0.5}
