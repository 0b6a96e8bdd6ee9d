"""TrainingJob status of a DDP (Indexed) Job: workers in the message, rank 0's result, join timeouts."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from foresight_operator.handlers.trainingjob import training_status

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
BODY: dict[str, Any] = {
    "metadata": {"name": "ddp", "namespace": "ml", "generation": 1},
    "spec": {"epochs": 4, "distributed": {"backend": "torch", "workers": 2}},
}


def _job(**status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "ddp-train"},
        "spec": {"completionMode": "Indexed", "completions": 2, "parallelism": 2},
        "status": status,
    }


def _pod(index: int, phase: str, finished: str, doc: dict[str, Any] | str) -> dict[str, Any]:
    message = doc if isinstance(doc, str) else json.dumps(doc)
    return {
        "metadata": {
            "name": f"ddp-train-{index}-abcde",
            "annotations": {"batch.kubernetes.io/job-completion-index": str(index)},
        },
        "status": {
            "phase": phase,
            "containerStatuses": [
                {"state": {"terminated": {"exitCode": 0 if phase == "Succeeded" else 1, "message": message,
                                          "finishedAt": finished}}}
            ],
        },
    }  # fmt: skip


def _ready(status: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == "Ready")


def test_running_ddp_job_says_how_many_workers_are_ready() -> None:
    status = training_status(BODY, _job(active=2, ready=1), [], now=NOW, artifact_uri=None)
    assert status["phase"] == "Running"
    assert "1/2 workers ready, 0 succeeded" in _ready(status)["message"]


def test_succeeded_ddp_job_takes_the_result_of_rank_0_even_when_rank_1_ends_last() -> None:
    rank0 = {
        "reason": "Succeeded", "epochs": 4, "metrics": {"val_loss": 0.25}, "resumedFromEpoch": 2,
        "artifactUri": "models/ml/ddp", "rank": 0, "stateSha256": "abc",
    }  # fmt: skip
    rank1 = {
        "reason": "Succeeded",
        "epochs": 4,
        "metrics": {"val_loss": 0.5},
        "rank": 1,
        "stateSha256": "abc",
    }
    pods = [
        _pod(0, "Succeeded", "2026-01-02T03:00:00Z", rank0),
        _pod(1, "Succeeded", "2026-01-02T03:00:09Z", rank1),
    ]
    job = _job(succeeded=2, conditions=[{"type": "Complete", "status": "True"}])
    status = training_status(BODY, job, pods, now=NOW, artifact_uri="pvc://claim/models/ml/ddp")
    assert status["phase"] == "Succeeded"
    assert status["bestMetrics"] == {"val_loss": 0.25}
    assert status["resumedFromEpoch"] == 2
    assert status["artifactUri"] == "pvc://claim/models/ml/ddp"


def test_worker_that_never_joined_fails_the_job_with_worker_join_timeout() -> None:
    timeout = {
        "reason": "WorkerJoinTimeout", "retryable": True,
        "message": "rank 0 waited 10s for 2 workers at ddp-train-0.ddp-workers:29500",
    }  # fmt: skip
    job = _job(failed=2, conditions=[{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                                      "message": "Job has reached the specified backoff limit"}])  # fmt: skip
    pods = [
        _pod(0, "Failed", "2026-01-02T03:00:00Z", timeout),
        _pod(0, "Failed", "2026-01-02T03:00:20Z", timeout),
    ]
    status = training_status(BODY, job, pods, now=NOW, artifact_uri=None)
    assert status["phase"] == "Failed"
    ready = _ready(status)
    assert ready["reason"] == "WorkerJoinTimeout" and "waited 10s" in ready["message"]
    assert "BackoffLimitExceeded" in ready["message"] or "backoff limit" in ready["message"]
