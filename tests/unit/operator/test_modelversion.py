"""ModelVersion: the verify Job plan (pure builder), status from the Job, and the Production rule."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from foresight.api.modelversion import ModelVersionSpec
from foresight_operator.builders.modelversion import plan_verify, verify_key
from foresight_operator.handlers.modelversion import production_updates, verify_status
from foresight_operator.reconcile import SpecError

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def spec(**fields: Any) -> ModelVersionSpec:
    body = {
        "modelName": "disk",
        "version": "1",
        "artifact": {"uri": "pvc://foresight-artifacts/models/default/toy"},
        **fields,
    }
    return ModelVersionSpec.model_validate(body)


def test_verify_job_mounts_the_claim_and_tells_the_runtime_where() -> None:
    plan = plan_verify(spec(), namespace="ml", name="disk-1", generation=2, default_image="img:1")
    assert plan.name == f"disk-1-verify-{plan.key}"
    assert plan.command == (
        "foresight",
        "model-job",
        "--config",
        "/etc/foresight/modelversion/modelversion.yaml",
    )
    claims = {v.claim: v.mount_path for v in plan.volumes if v.claim}
    assert claims == {"foresight-artifacts": "/var/foresight/pvc/foresight-artifacts"}
    assert json.loads(plan.env["FORESIGHT_PVC_MOUNTS"]) == claims
    assert [v.config_map for v in plan.volumes if v.config_map] == [plan.name]
    assert plan.config["spec"]["artifact"]["uri"] == "pvc://foresight-artifacts/models/default/toy"
    assert (plan.config["name"], plan.config["namespace"], plan.config["generation"]) == ("disk-1", "ml", 2)
    assert plan.image == "img:1" and plan.secrets == ()


def test_verify_key_changes_with_optimize_but_not_with_stage_or_metrics() -> None:
    base = verify_key(spec())
    assert verify_key(spec(stage="Production", metrics={"mae": 1.0}, description="x")) == base
    assert verify_key(spec(optimize={"onnx": True, "quantize": True})) != base
    assert verify_key(spec(optimize={"onnx": True, "quantize": False})) != verify_key(
        spec(optimize={"onnx": True, "quantize": True})
    )


def test_s3_artifacts_get_endpoint_env_and_the_credentials_secret() -> None:
    s3 = spec(
        artifact={
            "uri": "s3://models/disk/1",
            "store": {
                "uri": "s3://models/",
                "endpoint": "minio:9000",
                "insecure": True,
                "credentialsSecret": "s3",
            },
        }
    )
    plan = plan_verify(s3, namespace="ml", name="disk-1", generation=1, default_image="img")
    assert plan.env["FORESIGHT_S3_ENDPOINT"] == "minio:9000" and plan.env["FORESIGHT_S3_SECURE"] == "false"
    assert {k: (r.name, r.key) for k, r in plan.secret_env.items()} == {
        "AWS_ACCESS_KEY_ID": ("s3", "accessKey"),
        "AWS_SECRET_ACCESS_KEY": ("s3", "secretKey"),
    }
    assert plan.secrets == ("s3",)
    assert not any(v.claim for v in plan.volumes)


def test_file_uris_are_refused_in_a_cluster() -> None:
    with pytest.raises(SpecError, match="local mode"):
        plan_verify(
            spec(artifact={"uri": "file:///tmp/m"}), namespace="ml", name="x", generation=1, default_image="i"
        )


def body(status: dict[str, Any] | None = None, **spec_fields: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": spec_fields.pop("name", "disk-1"), "namespace": "ml", "generation": 1},
        "spec": {"modelName": "disk", "version": "1", "artifact": {"uri": "pvc://a/m"}, **spec_fields},
        "status": status or {},
    }


def finished(message: dict[str, Any], ok: bool = True) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    job = {
        "metadata": {"name": "disk-1-verify-abc"},
        "status": {"conditions": [{"type": "Complete" if ok else "Failed", "status": "True"}]},
    }
    pod = {
        "status": {
            "phase": "Succeeded" if ok else "Failed",
            "containerStatuses": [
                {
                    "state": {
                        "terminated": {"message": json.dumps(message), "finishedAt": "2026-11-22T11:59:00Z"}
                    }
                }
            ],
        }
    }
    return job, [pod]


def cond(status: dict[str, Any], ctype: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == ctype)


def test_status_from_a_verified_and_optimised_result() -> None:
    doc = {
        "reason": "Verified",
        "message": "checksum matched",
        "verified": True,
        "checksum": "a" * 64,
        "sizeBytes": 1234,
        "onnx": {"uri": "pvc://a/m.optimized/model.onnx", "sha256": "b" * 64, "sizeBytes": 99},
        "int8": {"uri": "pvc://a/m.optimized/model.int8.onnx", "sha256": "c" * 64, "sizeBytes": 50},
        "parityMaxAbsDiff": 1e-7,
        "latency": [{"runtime": "onnx", "batchSize": 1, "p50Ms": 0.1, "p99Ms": 0.2}],
        "verifiedTime": "2026-11-22T11:59:00Z",
        "format": "toy",
    }
    job, pods = finished(doc)
    status = verify_status(body({"production": True}), job, pods, now=NOW)
    assert status["phase"] == "Ready" and status["verified"] is True and status["checksum"] == "a" * 64
    assert status["onnx"]["sizeBytes"] == 99 and status["int8"]["uri"].endswith("model.int8.onnx")
    assert status["latency"][0]["p50Ms"] == 0.1 and status["parityMaxAbsDiff"] == 1e-7
    assert "format" not in status  # only fields the status model has
    assert status["production"] is True  # the Production part is not this function's
    assert (cond(status, "Ready")["status"], cond(status, "Ready")["reason"]) == ("True", "Verified")
    assert cond(status, "Progressing")["status"] == "False"


def test_a_negative_verdict_fails_with_its_reason_and_clears_old_results() -> None:
    job, pods = finished({"reason": "ChecksumMismatch", "message": "expected x got y", "verified": False})
    old = {"verified": True, "checksum": "a" * 64, "onnx": {"uri": "u", "sha256": "s", "sizeBytes": 1}}
    status = verify_status(body(old), job, pods, now=NOW)
    assert status["phase"] == "Failed" and status["verified"] is False
    assert "onnx" not in status and "checksum" not in status
    ready = cond(status, "Ready")
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "False",
        "ChecksumMismatch",
        "expected x got y",
    )


def test_store_failures_that_used_up_the_retries_say_so() -> None:
    job, pods = finished({"reason": "StoreUnavailable", "message": "down", "retryable": True}, ok=False)
    status = verify_status(body(), job, pods, now=NOW)
    assert status["phase"] == "Failed" and cond(status, "Ready")["reason"] == "StoreUnavailable"
    assert "delete the Job" in cond(status, "Ready")["message"]


def test_a_running_reverification_keeps_the_earlier_result() -> None:
    job = {"metadata": {"name": "disk-1-verify-new"}, "status": {"active": 1}}
    old = {"verified": True, "checksum": "a" * 64, "phase": "Ready"}
    status = verify_status(body(old), job, [], now=NOW)
    assert status["phase"] == "Verifying" and status["verified"] is True and status["checksum"] == "a" * 64
    assert cond(status, "Progressing")["status"] == "True"


def version(
    name: str, stage: str, verified: bool = True, conditions: list[Any] | None = None
) -> dict[str, Any]:
    b = body({"verified": verified, "conditions": conditions or []}, name=name, stage=stage)
    return b


def test_the_single_verified_production_version_is_production() -> None:
    updates = production_updates([version("a", "Production"), version("b", "Archived")], now=NOW)
    assert updates["a"]["production"] is True and "b" not in updates
    assert cond(updates["a"], "Conflict")["status"] == "False"


def test_two_declared_production_versions_conflict_and_neither_serves() -> None:
    versions = [
        version("a", "Production", conditions=[]),
        version("b", "Production"),
        version("c", "Staging"),
    ]
    versions[0]["status"]["production"] = True  # was production before b was declared too
    updates = production_updates(versions, now=NOW)
    for name, other in (("a", "b"), ("b", "a")):
        assert updates[name]["production"] is False
        conflict = cond(updates[name], "Conflict")
        assert (conflict["status"], conflict["reason"]) == ("True", "ProductionConflict")
        assert other in conflict["message"]
    assert "c" not in updates
    # Resolved by archiving b: a serves again and both conflicts clear.
    resolved = [
        {**versions[0], "status": updates["a"]},
        {**versions[1], "spec": {**versions[1]["spec"], "stage": "Archived"}, "status": updates["b"]},
    ]
    after = production_updates(resolved, now=NOW)
    assert after["a"]["production"] is True and cond(after["a"], "Conflict")["status"] == "False"
    assert cond(after["b"], "Conflict")["status"] == "False" and after["b"]["production"] is False


def test_an_unverified_production_version_does_not_serve() -> None:
    updates = production_updates([version("a", "Production", verified=False)], now=NOW)
    assert updates["a"].get("production", False) is False
    assert "not serving" in cond(updates["a"], "Conflict")["message"]
    # Nothing changes on a second pass: the operator's writes converge.
    again = [{**version("a", "Production", verified=False), "status": updates["a"]}]
    assert production_updates(again, now=NOW) == {}
