"""``foresight library list / show / activate-preview --cluster`` against the in-process API emulator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from foresight.cli import main as cli_main

from tests.cluster.emulator import Cluster
from tests.cluster.operator_process import REPO

from .conftest import spread_cases, write_document

MLIB = "foresight.dev/v1alpha1/modellibraries"


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    with Cluster() as running:
        crd = yaml.safe_load((REPO / "crds" / "modellibraries.foresight.dev.yaml").read_text())
        running.api.create("apiextensions.k8s.io/v1/customresourcedefinitions", crd)
        yield running


def put(cluster: Cluster, name: str, namespace: str, status: dict[str, Any]) -> None:
    body = {
        "apiVersion": "foresight.dev/v1alpha1",
        "kind": "ModelLibrary",
        "metadata": {"name": name},
        "spec": {"source": {"builtin": "postgresql-oltp"}, "version": "2026.12"},
    }
    cluster.api.create(MLIB, body, namespace)
    cluster.api.patch(MLIB, name, {"status": status}, namespace, sub="status")


ACTIVE = {
    "phase": "Ready",
    "libraryName": "test-lib",
    "active": True,
    "activeVersion": "1.0.0",
    "activeOwner": "ml/holder",
    "previousVersion": "0.9",
    "cases": 40,
    "validCases": 40,
    "invalidCases": 0,
    "quality": {"heldOut": 40, "k": 5, "architectureAccuracy": 1.0, "baselineAccuracy": 0.5},
    "conditions": [
        {
            "type": "Ready",
            "status": "True",
            "reason": "Active",
            "message": "40 cases verified and active",
            "lastTransitionTime": "2026-12-05T12:00:00Z",
        }
    ],
}


def run(cluster: Cluster, *args: str) -> int:
    return cli_main(["library", *args, "--cluster", "--kubeconfig", str(cluster.kubeconfig)])


def test_list_show_and_preview_read_the_modellibraries_status(
    cluster: Cluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    put(cluster, "holder", "ml", ACTIVE)
    put(
        cluster,
        "other",
        "team-b",
        {
            "phase": "Failed",
            "libraryName": "x",
            "conditions": [
                {
                    "type": "Ready",
                    "status": "False",
                    "reason": "ChecksumMismatch",
                    "message": "pin the new sha256",
                    "lastTransitionTime": "2026-12-05T12:00:00Z",
                }
            ],
        },
    )

    assert run(cluster, "list", "-A") == 0
    out = capsys.readouterr().out
    header, *rows = out.splitlines()
    assert header.split()[:6] == ["NAMESPACE", "NAME", "LIBRARY", "VERSION", "PHASE", "ACTIVE"]
    assert rows[0].split() == [
        "ml",
        "holder",
        "test-lib",
        "2026.12",
        "Ready",
        "true",
        "1.0.0",
        "0.9",
        "40",
        "40",
        "1.000",
        "Active",
    ]
    assert (
        rows[1].split()[:5] == ["team-b", "other", "x", "2026.12", "Failed"] and "ChecksumMismatch" in rows[1]
    )
    assert run(cluster, "list", "-n", "ml", "-o", "json") == 0
    assert [o["metadata"]["name"] for o in json.loads(capsys.readouterr().out)] == ["holder"]

    assert run(cluster, "show", "holder", "-n", "ml") == 0
    shown = capsys.readouterr().out
    assert "active version 1.0.0 (held by ml/holder)" in shown and "architecture accuracy 1.000" in shown
    assert run(cluster, "show", "missing", "-n", "ml") == 1
    assert "no ModelLibrary ml/missing" in capsys.readouterr().err

    # A newer version of the library ml/holder holds: it would replace 1.0.0, through ml/holder.
    doc = write_document(tmp_path / "lib.json", spread_cases(20), version="1.1.0")
    assert run(cluster, "activate-preview", str(doc), "-n", "ml", "-o", "json") == 0
    preview = json.loads(capsys.readouterr().out)
    assert preview["replaces"]["modelLibrary"] == "holder" and preview["replaces"]["version"] == "1.0.0"
    assert "ActiveConflict" in preview["note"] and preview["quality"]["heldOut"] == 20
    assert run(cluster, "activate-preview", str(doc), "-n", "team-b") == 0
    assert "it would be first" in capsys.readouterr().out
