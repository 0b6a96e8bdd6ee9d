"""The verify / optimise job on a local store with a tiny torch model: verdicts and the message."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from foresight.api.modelversion import ModelVersionSpec
from foresight.artifacts import LocalArtifactStore, sha256_file
from foresight.contract.env import PVC_MOUNTS as PVC_MOUNTS_ENV
from foresight.contract.modelversion import EXIT_RETRY
from foresight.modelversion.verify import (
    JobConfig,
    VerifyError,
    load_job_config,
    resolve_uri,
    run_job,
)

from .conftest import publish_toy


def config(uri: str, **spec: Any) -> JobConfig:
    body = {"modelName": "toy", "version": "1", "artifact": {"uri": uri}, **spec}
    return JobConfig(
        name="toy-1", namespace="default", generation=1, spec=ModelVersionSpec.model_validate(body)
    )


def run(
    cfg: JobConfig, tmp_path: Path, environ: dict[str, str] | None = None
) -> tuple[int, dict[str, Any], str]:
    term = tmp_path / "termination-log"
    out = io.StringIO()
    code, doc = run_job(
        cfg,
        environ={"FORESIGHT_TERMINATION_LOG": str(term), **(environ or {})},
        stdout=out,
        workdir=tmp_path,
        latency_repeats=3,
    )
    # What the operator reads is the termination message, not the return value.
    assert json.loads(term.read_text()) == json.loads(json.dumps(doc, default=str))
    assert len(term.read_bytes()) <= 4096
    return code, doc, out.getvalue()


def test_verifies_a_published_directory_with_manifest_checksum_and_inference(
    store_root: Path, tmp_path: Path
) -> None:
    uri = publish_toy(store_root)
    manifest_sha = sha256_file(store_root / "models/default/toy/MANIFEST.json")
    code, doc, log = run(config(uri, artifact={"uri": uri, "sha256": manifest_sha}), tmp_path)
    assert code == 0
    assert doc["reason"] == "Verified" and doc["verified"] is True
    assert doc["checksum"] == manifest_sha
    files = [p for p in (store_root / "models/default/toy").iterdir() if p.name in ("model.pt", "model.json")]
    assert doc["sizeBytes"] == sum(p.stat().st_size for p in files)
    assert doc["format"] == "toy" and "output shape [4, 1]" in doc["message"]
    events = [json.loads(line)["event"] for line in log.splitlines()]
    assert events == ["fetch", "fetched", "verified", "result"]


def test_the_model_files_checksum_is_accepted_as_expected_sha256(store_root: Path, tmp_path: Path) -> None:
    uri = publish_toy(store_root)
    weights_sha = sha256_file(store_root / "models/default/toy/model.pt")
    code, doc, _ = run(config(uri, artifact={"uri": uri, "sha256": weights_sha}), tmp_path)
    assert (code, doc["reason"]) == (0, "Verified")


def test_wrong_expected_sha256_is_a_checksum_mismatch(store_root: Path, tmp_path: Path) -> None:
    uri = publish_toy(store_root)
    code, doc, _ = run(config(uri, artifact={"uri": uri, "sha256": "0" * 64}), tmp_path)
    assert code == 0  # a verdict, not a retry
    assert doc["reason"] == "ChecksumMismatch" and doc["verified"] is False
    assert "0" * 64 in doc["message"] and "spec.artifact.sha256" in doc["message"]


def test_a_file_changed_after_publishing_is_a_checksum_mismatch(store_root: Path, tmp_path: Path) -> None:
    uri = publish_toy(store_root)
    weights = store_root / "models/default/toy/model.pt"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte, size unchanged
    weights.write_bytes(bytes(data))
    _, doc, _ = run(config(uri), tmp_path)
    assert doc["reason"] == "ChecksumMismatch"
    assert "model.pt" in doc["message"]


def test_missing_artifact_is_artifact_not_found(store_root: Path, tmp_path: Path) -> None:
    uri = (store_root / "models/nope").as_uri()
    _, doc, _ = run(config(uri), tmp_path)
    assert doc["reason"] == "ArtifactNotFound" and "models/nope" in doc["message"]


def test_weights_that_do_not_fit_the_description_fail_to_load(store_root: Path, tmp_path: Path) -> None:
    # A model.json that says hidden=16 next to weights of hidden=8: checksums fine, loading not.
    src = tmp_path / "bad"
    src.mkdir()
    good = Path(publish_toy(store_root).removeprefix("file://"))
    (src / "model.pt").write_bytes((good / "model.pt").read_bytes())
    (src / "model.json").write_text(json.dumps({"task": "toy", "features": 8, "hidden": 16}))
    uri = LocalArtifactStore(store_root).put_dir(src, "models/bad").uri
    _, doc, _ = run(config(uri), tmp_path)
    assert doc["reason"] == "LoadFailed" and "does not fit" in doc["message"]


def test_optimize_writes_onnx_and_int8_next_to_the_original_with_parity_and_latency(
    store_root: Path, tmp_path: Path
) -> None:
    uri = publish_toy(store_root)
    optimize = {"onnx": True, "quantize": True, "parityThreshold": 1e-4, "batchSizes": [1, 16]}
    code, doc, _ = run(config(uri, optimize=optimize), tmp_path)
    assert code == 0 and doc["reason"] == "Verified", doc
    assert doc["parityMaxAbsDiff"] < 1e-4 and doc["parityPassed"] is True
    out = LocalArtifactStore(store_root)
    for field, name in (("onnx", "model.onnx"), ("int8", "model.int8.onnx")):
        art = doc[field]
        assert art["uri"] == f"{uri}.optimized/{name}"
        stored = out.stat(f"models/default/toy.optimized/{name}")
        assert (stored.sha256, stored.size) == (art["sha256"], art["sizeBytes"])
    assert out.has_dir("models/default/toy.optimized")
    runtimes = {(entry["runtime"], entry["batchSize"]) for entry in doc["latency"]}
    assert runtimes == {(r, b) for r in ("eager", "onnx", "onnx-int8") for b in (1, 16)}
    assert all(entry["p99Ms"] >= entry["p50Ms"] > 0 for entry in doc["latency"])
    # The original directory is untouched: its manifest still verifies.
    assert out.read_manifest("models/default/toy")


def test_parity_above_the_threshold_is_reported_not_hidden(store_root: Path, tmp_path: Path) -> None:
    uri = publish_toy(store_root)
    # int8 is skipped; a threshold no float32 export can meet forces the failure path.
    optimize = {"onnx": True, "quantize": False, "parityThreshold": 1e-12, "batchSizes": [1]}
    code, doc, _ = run(config(uri, optimize=optimize), tmp_path)
    if doc.get("parityMaxAbsDiff") == 0.0:
        pytest.skip("ONNX Runtime reproduced eager bit for bit; the threshold cannot be exceeded")
    assert code == 0 and doc["reason"] == "ParityFailed"
    assert doc["parityPassed"] is False and "parityThreshold" in doc["message"]


def test_pruning_reports_the_sparsity_reached(store_root: Path, tmp_path: Path) -> None:
    uri = publish_toy(store_root, hidden=16)
    optimize = {"onnx": False, "prune": {"sparsity": 0.5}, "batchSizes": [1]}
    _, doc, _ = run(config(uri, optimize=optimize), tmp_path)
    assert doc["reason"] == "Verified", doc
    assert doc["sparsity"] == pytest.approx(0.5, abs=0.05)


def test_pvc_uris_resolve_through_the_pod_mounts(store_root: Path, tmp_path: Path) -> None:
    publish_toy(store_root)
    mounts = json.dumps({"foresight-artifacts": str(store_root)})
    code, doc, _ = run(
        config("pvc://foresight-artifacts/models/default/toy"), tmp_path, {PVC_MOUNTS_ENV: mounts}
    )
    assert (code, doc["reason"]) == (0, "Verified")
    with pytest.raises(VerifyError, match="not mounted"):
        resolve_uri("pvc://other/models/x", {"foresight-artifacts": str(store_root)})


def test_unreachable_s3_store_exits_for_a_retry(tmp_path: Path) -> None:
    port = 9  # discard: nothing listens there on 127.0.0.1
    environ = {"FORESIGHT_S3_ENDPOINT": f"127.0.0.1:{port}", "FORESIGHT_S3_SECURE": "false"}
    code, doc, _ = run(config("s3://models/toy/v1"), tmp_path, environ)
    assert code == EXIT_RETRY and doc["reason"] == "StoreUnavailable" and doc["retryable"] is True


def test_job_config_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "mv.yaml"
    path.write_text(
        "name: toy-1\nnamespace: ml\ngeneration: 3\nspec:\n  modelName: toy\n  version: '1'\n"
        "  artifact: {uri: 'pvc://foresight-artifacts/models/ml/toy'}\n"
    )
    cfg = load_job_config(path)
    assert (cfg.name, cfg.namespace, cfg.generation, cfg.spec.model_name) == ("toy-1", "ml", 3, "toy")
