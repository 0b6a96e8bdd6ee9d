"""ModelVersion through the real operator, kubectl, the test kubelet and the ``foresight models`` CLI.

Two toy models are published into the PVC the kubelet serves as a directory (as a TrainingJob
leaves them, with a manifest). Applying ModelVersions starts one verify Job each; the one with
``optimize`` gets ONNX and int8 artifacts, written next to the original in the PVC, with parity
and latency in status. ``foresight models promote`` moves Production to the second version, a
hand-made double Production is flagged as a conflict on both, and ``foresight models rollback``
restores the first.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
from typing import Any

import pytest
import torch
import yaml
from foresight.artifacts import LocalArtifactStore
from foresight.training.tasks.toy import ToyRegressionTask

from tests.cluster.emulator import Cluster
from tests.cluster.kubectl import Kubectl
from tests.cluster.kubelet import Kubelet
from tests.cluster.operator_process import OperatorProcess

pytestmark = pytest.mark.e2e


MV = "foresight.dev/v1alpha1/modelversions"
CLAIM = "foresight-artifacts"




def publish_toy(pvc: pathlib.Path, prefix: str, seed: int, tmp: pathlib.Path) -> None:
    torch.manual_seed(seed)
    task = ToyRegressionTask({"hidden": 8}, seed=seed)
    src = tmp / f"src-{seed}"
    src.mkdir()
    task.export(task.build_model({"hidden": 8}), src)
    LocalArtifactStore(pvc).put_dir(src, prefix)


def model_version(name: str, version: str, stage: str, rmse: float, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "foresight.dev/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {"name": name},
        "spec": {
            "modelName": "disk",
            "version": version,
            "artifact": {"uri": f"pvc://{CLAIM}/models/default/toy-{version}"},
            "stage": stage,
            "metrics": {"rmse": rmse},
            "resources": {"cpu": "250m", "memory": "512Mi"},
            **spec,
        },
    }


def models(cluster: Cluster, *args: str) -> str:
    """``foresight models ARGS`` as a user runs it (kubeconfig from the environment)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "KUBE"))}
    env["KUBECONFIG"] = str(cluster.kubeconfig)
    proc = subprocess.run(
        [str(pathlib.Path(sys.prefix) / "bin" / "foresight"), "models", "-n", "default", *args],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def status_of(o: dict[str, Any] | None) -> dict[str, Any]:
    return dict((o or {}).get("status") or {})


def conflict(o: dict[str, Any] | None) -> str | None:
    conds = status_of(o).get("conditions") or []
    return next((c["status"] for c in conds if c["type"] == "Conflict"), None)


def test_verify_optimise_promote_conflict_and_rollback(
    cluster: Cluster, kubectl: Kubectl, kubelet: Kubelet, operator: OperatorProcess, tmp_path: pathlib.Path
) -> None:
    api = cluster.api
    pvc = tmp_path / "kubelet" / "pvcs" / "default" / CLAIM
    pvc.mkdir(parents=True)
    publish_toy(pvc, "models/default/toy-1", seed=0, tmp=tmp_path)
    publish_toy(pvc, "models/default/toy-2", seed=1, tmp=tmp_path)
    optimize = {"onnx": True, "quantize": True, "parityThreshold": 1e-4, "batchSizes": [1, 8]}
    first = model_version("disk-1", "1", "Production", 0.30, optimize=optimize)
    second = model_version("disk-2", "2", "Staging", 0.20)
    kubectl.apply(yaml.safe_dump_all([first, second])).check()
    applied = {n: api.get(MV, n, "default")["spec"] for n in ("disk-1", "disk-2")}  # defaults filled in

    def verified_production(o: dict[str, Any] | None) -> bool:
        return status_of(o).get("phase") in ("Ready", "Failed") and status_of(o).get("production") is True

    mv1 = api.wait_for(MV, "disk-1", verified_production, "default", timeout=150)
    st = status_of(mv1)
    assert st["phase"] == "Ready" and st["verified"] is True, (st, operator.log.read_text()[-3000:])
    assert len(st["checksum"]) == 64 and st["sizeBytes"] > 0
    assert st["parityMaxAbsDiff"] < 1e-4
    for field, name in (("onnx", "model.onnx"), ("int8", "model.int8.onnx")):
        assert st[field]["uri"] == f"pvc://{CLAIM}/models/default/toy-1.optimized/{name}"
        on_disk = pvc / "models/default/toy-1.optimized" / name
        assert on_disk.stat().st_size == st[field]["sizeBytes"]
    assert {(e["runtime"], e["batchSize"]) for e in st["latency"]} == {
        (r, b) for r in ("eager", "onnx", "onnx-int8") for b in (1, 8)
    }
    ready = next(c for c in st["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "Verified")
    # One verify Job, owned by the ModelVersion; the operator never touched the spec.
    jobs = api.list("batch/v1/jobs", "default", label_selector="foresight.dev/name=disk-1")
    assert len(jobs) == 1 and jobs[0]["metadata"]["ownerReferences"][0]["name"] == "disk-1"
    assert mv1 is not None and mv1["spec"] == applied["disk-1"]  # verifying wrote status only
    assert api.get(MV, "disk-2", "default")["spec"] == applied["disk-2"]
    api.wait_for(MV, "disk-2", lambda o: status_of(o).get("phase") == "Ready", "default", timeout=60)

    table = models(cluster, "list")
    assert "disk-1" in table and "disk-2" in table and "Production" in table
    assert models(cluster, "best", "--metric", "rmse", "--min").startswith("disk-2\t")
    assert "rmse" in models(cluster, "compare", "disk-1", "disk-2")

    # Promote the second version: Production moves, the first is archived (spec patched as a user).
    models(cluster, "promote", "disk-2")
    api.wait_for(MV, "disk-2", lambda o: status_of(o).get("production") is True, "default", timeout=30)
    mv1 = api.wait_for(MV, "disk-1", lambda o: status_of(o).get("production") is False, "default", timeout=30)
    assert mv1 is not None and mv1["spec"]["stage"] == "Archived"

    # Two versions declared Production by hand: both get Conflict, neither serves.
    api.patch(MV, "disk-1", {"spec": {"stage": "Production"}}, "default")
    for name in ("disk-1", "disk-2"):
        obj = api.wait_for(MV, name, lambda o: conflict(o) == "True", "default", timeout=30)
        assert status_of(obj).get("production") is False
    api.patch(MV, "disk-1", {"spec": {"stage": "Archived"}}, "default")
    api.wait_for(MV, "disk-2", lambda o: status_of(o).get("production") is True, "default", timeout=30)

    # Roll back: the first version is Production again, the second archived.
    out = models(cluster, "rollback", "disk")
    assert "disk-1" in out and "disk-2" in out
    api.wait_for(MV, "disk-1", lambda o: status_of(o).get("production") is True, "default", timeout=30)
    mv2 = api.wait_for(MV, "disk-2", lambda o: status_of(o).get("production") is False, "default", timeout=30)
    assert mv2 is not None and mv2["spec"]["stage"] == "Archived"
    assert conflict(api.get(MV, "disk-1", "default")) == "False"
    # `show` prints one version: spec, status and the history the CLI keeps in annotations.
    shown = json.loads(models(cluster, "show", "disk-1", "-o", "json"))
    assert shown["name"] == "disk-1" and shown["spec"]["stage"] == "Production"
    assert shown["status"]["verified"] is True and shown["status"]["production"] is True
    assert any(k.startswith("foresight.dev/") for k in shown.get("annotations", {})), shown
    # Stage changes start no new verify Job (the verify key ignores stage).
    assert len(api.list("batch/v1/jobs", "default", label_selector="foresight.dev/name=disk-1")) == 1
