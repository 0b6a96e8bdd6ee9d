"""``foresight ab status | promote`` as a user runs them (a subprocess, a kubeconfig), on the emulator.

An ABExperiment whose status names a winner (as the controller writes it: the promotion with its
spec changes): ``promote`` prints the changes and the kubectl commands and touches nothing;
``promote --apply`` patches the ClassifierService's model and promotes the ModelVersion (the old
Production version archived, the history in annotations); without a winner, or when the control
won, it says why and exits 1. ``status`` prints the evidence.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
from typing import Any

from tests.cluster.emulator import Cluster

AB = "foresight.dev/v1alpha1/abexperiments"
CS = "foresight.dev/v1alpha1/classifierservices"
MV = "foresight.dev/v1alpha1/modelversions"
NS = "photos"
CHANGES = [
    {"kind": "ClassifierService", "name": "photo-classifier",
     "patch": json.dumps({"spec": {"backend": {"type": "onnx", "onnx": {"modelVersion": "photo-net-v2"}}}})},
    {"kind": "ModelVersion", "name": "photo-net-v2", "patch": json.dumps({"spec": {"stage": "Production"}})},
]  # fmt: skip


def foresight(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "KUBE"))}
    env["KUBECONFIG"] = str(cluster.kubeconfig)
    return subprocess.run(
        [str(pathlib.Path(sys.prefix) / "bin" / "foresight"), "ab", "-n", NS, *args],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip


def setup(cluster: Cluster, status: dict[str, Any]) -> None:
    for name, stage in (("photo-net-v1", "Production"), ("photo-net-v2", "Staging")):
        cluster.api.create(
            MV,
            {"apiVersion": "foresight.dev/v1alpha1", "kind": "ModelVersion", "metadata": {"name": name},
             "spec": {"modelName": "photo-net", "version": name[-1], "framework": "onnx", "stage": stage,
                      "artifact": {"uri": f"pvc://models/{name}/model.onnx"}}},
            NS,
        )  # fmt: skip
    cluster.api.create(
        CS,
        {"apiVersion": "foresight.dev/v1alpha1", "kind": "ClassifierService",
         "metadata": {"name": "photo-classifier"},
         "spec": {"backend": {"type": "onnx", "onnx": {"modelVersion": "photo-net-v1"}}}},
        NS,
    )  # fmt: skip
    cluster.api.create(
        AB,
        {"apiVersion": "foresight.dev/v1alpha1", "kind": "ABExperiment", "metadata": {"name": "v2-vs-v1"},
         "spec": {"service": "photo-classifier",
                  "variants": [{"name": "control", "modelVersion": "photo-net-v1", "weight": 50},
                               {"name": "candidate", "modelVersion": "photo-net-v2", "weight": 50}],
                  "primaryMetric": {"name": "accuracy", "builtin": "accuracy"}}},
        NS,
    )  # fmt: skip
    cluster.api.patch(AB, "v2-vs-v1", {"status": status}, NS, sub="status")


PROMOTED = {
    "phase": "Promoted",
    "winner": "candidate",
    "weights": "control=0,candidate=100",
    "variants": [
        {"name": "control", "modelVersion": "photo-net-v1", "weight": 0, "samples": 1200, "mean": 0.61,
         "ciLow": 0.58, "ciHigh": 0.64},
        {"name": "candidate", "modelVersion": "photo-net-v2", "weight": 100, "samples": 1180, "mean": 0.9,
         "ciLow": 0.88, "ciHigh": 0.92},
    ],
    "comparisons": [{"metric": "accuracy", "candidate": "candidate", "difference": 0.29, "csLow": 0.2,
                     "csHigh": 0.35, "adjustedPValue": 0.0001, "fixedPValue": 1e-20, "effectSize": 0.7,
                     "verdict": "better", "test": "two-proportion-z"}],
    "decisions": [{"time": "2026-03-01T12:10:00Z", "action": "Promote", "reason": "WinnerFound",
                   "message": "candidate beats control"}],
    "promotion": {"winner": "candidate", "modelVersion": "photo-net-v2", "changes": CHANGES,
                  "command": f"foresight ab promote v2-vs-v1 -n {NS} --apply"},
    "conditions": [{"type": "Ready", "status": "True", "reason": "WinnerFound",
                    "message": "candidate beats control", "lastTransitionTime": "2026-03-01T12:10:00Z"}],
}  # fmt: skip


def test_promote_prints_the_change_to_commit_and_apply_makes_it(cluster: Cluster) -> None:
    setup(cluster, PROMOTED)
    shown = foresight(cluster, "promote", "v2-vs-v1")
    assert shown.returncode == 0, shown.stderr
    assert "candidate (photo-net-v2) won" in shown.stdout
    assert (
        f"kubectl -n {NS} patch classifierservices photo-classifier --type merge -p "
        '\'{"spec": {"backend": {"type": "onnx", "onnx": {"modelVersion": "photo-net-v2"}}}}\''
        in shown.stdout
    )
    assert f"kubectl -n {NS} patch modelversions photo-net-v2" in shown.stdout
    # Printing changed nothing.
    assert (
        cluster.api.get(CS, "photo-classifier", NS)["spec"]["backend"]["onnx"]["modelVersion"]
        == "photo-net-v1"
    )

    applied = foresight(cluster, "promote", "v2-vs-v1", "--apply")
    assert applied.returncode == 0, applied.stderr
    assert (
        cluster.api.get(CS, "photo-classifier", NS)["spec"]["backend"]["onnx"]["modelVersion"]
        == "photo-net-v2"
    )
    v1, v2 = (cluster.api.get(MV, n, NS) for n in ("photo-net-v1", "photo-net-v2"))
    assert (v1["spec"]["stage"], v2["spec"]["stage"]) == ("Archived", "Production")
    assert v2["metadata"]["annotations"]["foresight.dev/previous-production"] == "photo-net-v1"
    assert "photo-net-v1: Production -> Archived" in applied.stdout

    status = foresight(cluster, "status", "v2-vs-v1")
    assert status.returncode == 0, status.stderr
    assert "ABExperiment photos/v2-vs-v1: Promoted (WinnerFound)" in status.stdout
    assert "candidate  100" in status.stdout and "better" in status.stdout and "Promote" in status.stdout


def test_without_a_winner_promote_says_why(cluster: Cluster) -> None:
    running = {"phase": "Running", "weights": "control=50,candidate=50"}
    setup(cluster, running)
    out = foresight(cluster, "promote", "v2-vs-v1")
    assert out.returncode == 1
    assert (
        "no winner to promote (phase Running)" in out.stderr and "foresight ab status v2-vs-v1" in out.stderr
    )

    cluster.api.patch(
        AB, "v2-vs-v1", {"status": {"winner": "control", "phase": "WinnerFound"}}, NS, sub="status"
    )
    out = foresight(cluster, "promote", "v2-vs-v1", "--apply")
    assert out.returncode == 1 and "the control 'control' won: nothing to change" in out.stderr
    assert cluster.api.get(MV, "photo-net-v1", NS)["spec"]["stage"] == "Production"

    missing = foresight(cluster, "status", "nope")
    assert missing.returncode == 1 and "ABExperiment photos/nope not found" in missing.stderr
