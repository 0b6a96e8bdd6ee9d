"""kopf works against the emulator: watch, finalizers, status patches, events, deletion handlers."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.cluster.emulator import Cluster
from tests.cluster.kubectl import Kubectl
from tests.cluster.samples import CRD, widget
from tests.polling import wait_for

pytestmark = pytest.mark.e2e

OPERATOR = """
import kopf


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_):
    settings.peering.standalone = True
    settings.watching.server_timeout = 10
    settings.persistence.finalizer = "example.dev/widget-operator"
    settings.posting.loggers = True  # kopf 1.45 posts log lines as events only when asked


@kopf.on.create("example.dev", "v1", "widgets", id="announce")
def announce(body, **_):
    kopf.info(body, reason="Accepted", message="widget accepted")


@kopf.on.create("example.dev", "v1", "widgets")
def created(spec, patch, **_):
    patch.status["phase"] = "Seen"
    return {"size": spec["size"]}


@kopf.on.update("example.dev", "v1", "widgets", field="spec.replicas")
def scaled(new, patch, **_):
    patch.status["replicas"] = new


@kopf.on.delete("example.dev", "v1", "widgets")
def deleted(name, logger, **_):
    logger.info(f"cleaning up {name}")
"""


@pytest.fixture
def operator(cluster: Cluster, kubectl: Kubectl, tmp_path: pathlib.Path) -> Iterator[pathlib.Path]:
    kubectl.apply(yaml.safe_dump(CRD)).check()
    (tmp_path / "widget_operator.py").write_text(OPERATOR)
    log = tmp_path / "kopf.log"
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "PYTHONPATH": str(tmp_path)}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kopf", "run", "--standalone", "-n", "default", "-m", "widget_operator"],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_kopf_operator_handles_create_update_delete(
    cluster: Cluster, kubectl: Kubectl, operator: pathlib.Path
) -> None:
    api = cluster.api
    kubectl.apply(widget("w1")).check()

    def events_of(name: str) -> list[dict[str, Any]]:
        return api.list("v1/events", "default", field_selector=f"involvedObject.name={name}")

    def handled(obj: dict[str, Any] | None) -> bool:
        return ((obj or {}).get("status") or {}).get("phase") == "Seen"

    seen = api.wait_for("example.dev/v1/widgets", "w1", handled, "default", timeout=30)
    assert seen is not None, operator.read_text()
    assert seen["status"]["created"] == {"size": "small"}
    assert "example.dev/widget-operator" in seen["metadata"]["finalizers"]
    # kopf wrote status through the status subresource, so the generation did not move.
    assert seen["metadata"]["generation"] == 1

    kubectl("patch", "wd", "w1", "--type=merge", "-p", '{"spec":{"replicas":4}}').check()
    api.wait_for(
        "example.dev/v1/widgets",
        "w1",
        lambda o: ((o or {}).get("status") or {}).get("replicas") == 4,
        "default",
    )

    # kopf posts its events from a background queue: wait for them to arrive.
    wait_for(
        lambda: any("created" in e["message"] and "succeeded" in e["message"] for e in events_of("w1")),
        lambda: f"kopf's events of w1 (have {events_of('w1')}; operator log: {operator.read_text()})",
        timeout=30,
        interval=0.1,
    )
    described = kubectl("describe", "wd", "w1").check().stdout
    assert "Accepted" in described and "widget accepted" in described

    kubectl("delete", "wd", "w1", "--wait=false").check()
    api.wait_for("example.dev/v1/widgets", "w1", lambda o: o is None, "default", timeout=30)
    assert "cleaning up w1" in operator.read_text()
    # kopf touched only what its RBAC would have to allow.
    touched = {(r.verb, r.resource) for r in cluster.requests(user_agent="kopf")}
    assert ("watch", "widgets") in touched and ("patch", "widgets") in touched
    assert {res for _, res in touched} <= {
        "widgets",
        "events",
        "namespaces",
        "customresourcedefinitions",
        None,
        "",
    }
