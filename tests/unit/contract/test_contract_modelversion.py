"""The ModelVersion verify Job's contract: the verdict the runtime writes is the status the operator shows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from foresight.contract.modelversion import VerifyResult
from foresight.contract.termination import TERMINATION_MESSAGE_LIMIT
from foresight_operator.handlers.modelversion import verify_status

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
VERDICT: dict[str, Any] = {
    "reason": "Verified", "message": "checksum matched", "verified": True, "checksum": "a" * 64,
    "sizeBytes": 1234, "format": "torch", "generation": 1,
    "onnx": {"uri": "pvc://a/m.optimized/model.onnx", "sha256": "b" * 64, "sizeBytes": 99},
    "parityMaxAbsDiff": 1e-7, "parityPassed": True,
    "latency": [{"runtime": "onnx", "batchSize": 1, "p50Ms": 0.1, "p99Ms": 0.2}],
    "verifiedTime": "2026-11-22T11:59:00Z",
}  # fmt: skip


def finished(text: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    job = {
        "metadata": {"name": "disk-1-verify-abc"},
        "status": {"conditions": [{"type": "Complete", "status": "True"}]},
    }
    term = {"message": text, "finishedAt": "2026-11-22T11:59:00Z"}
    return job, [{"status": {"phase": "Succeeded", "containerStatuses": [{"state": {"terminated": term}}]}}]


def test_the_verdict_reads_back_into_the_status_fields() -> None:
    text = VerifyResult.of(VERDICT).termination_message()
    assert VerifyResult.from_termination_message(text) == VerifyResult.of(VERDICT)
    body = {"metadata": {"name": "disk-1", "namespace": "ml", "generation": 1}, "spec": {}, "status": {}}
    status = verify_status(body, *finished(text), now=NOW)
    assert status["phase"] == "Ready" and status["verified"] is True
    assert status["onnx"] == VERDICT["onnx"] and status["latency"] == VERDICT["latency"]
    assert "format" not in status and "parityPassed" not in status  # not status fields


def test_a_huge_message_is_cut_but_keeps_the_verdict() -> None:
    text = VerifyResult.of({**VERDICT, "message": "m" * 10_000}).termination_message()
    assert len(text.encode()) <= TERMINATION_MESSAGE_LIMIT
    back = VerifyResult.from_termination_message(text)
    assert back is not None and back.verified and back.reason == "Verified" and back.checksum == "a" * 64
