"""The real operator process for end-to-end tests: ``foresight operator`` as a subprocess.

:class:`OperatorProcess` starts it against one :class:`~tests.cluster.emulator.Cluster` (its
kubeconfig, a 1 s retry delay, metrics and liveness on free loopback ports, the log in a file that
survives a SIGKILL), waits for ``/readyz``, and can be killed (SIGKILL, as when a node dies) or
stopped (SIGTERM).

:func:`operator_calls` is what the operator (kopf and its own client) asked the API server, as
``(apiGroup, resource[/subresource], verb)``; :func:`declared_calls` is the same for
manifests/operator-api-calls.yaml, which the ClusterRole must grant exactly. Every end-to-end
test checks the first is inside the second, so RBAC never lags behind the code.
"""

from __future__ import annotations

import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import requests
import yaml

from .emulator import Cluster

__all__ = ["REPO", "OperatorProcess", "declared_calls", "free_port", "operator_calls"]

REPO = pathlib.Path(__file__).resolve().parents[2]
OPERATOR_AGENTS = ("kopf", "foresight-operator")  # kopf's own session and the operator's KubeClient
Call = tuple[str, str, str]


def operator_calls(cluster: Cluster) -> set[Call]:
    """The resource API calls the operator made on ``cluster`` (discovery and health excluded)."""
    return {
        (r.group or "", r.resource + (f"/{r.subresource}" if r.subresource else ""), r.verb)
        for r in cluster.requests()
        if r.user_agent.startswith(OPERATOR_AGENTS) and r.resource
    }


def declared_calls() -> set[Call]:
    """The calls manifests/operator-api-calls.yaml declares (and rbac.yaml grants)."""
    doc = yaml.safe_load((REPO / "manifests" / "operator-api-calls.yaml").read_text())
    return {
        (entry["apiGroup"], resource, verb)
        for entry in doc["calls"]
        for resource in entry["resources"]
        for verb in entry["verbs"]
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OperatorProcess:
    """``foresight operator`` as a subprocess against one cluster; start / kill / stop, log file."""

    def __init__(self, cluster: Cluster, workdir: pathlib.Path, env: dict[str, str] | None = None) -> None:
        self.cluster = cluster
        self.env = dict(env or {})
        """Extra environment (operator settings such as FORESIGHT_EXPERIMENT_TIME_SCALE)."""
        self.log = workdir / "operator.log"
        self.metrics_port = free_port()
        self.liveness_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, wait_ready: bool = True) -> OperatorProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "KUBE"))}
        env.update(
            KUBECONFIG=str(self.cluster.kubeconfig),
            FORESIGHT_RUNTIME_IMAGE="foresight-runtime:e2e",
            FORESIGHT_RETRY_DELAY="1",
            FORESIGHT_PROGRESS_INTERVAL="1",
            FORESIGHT_WATCH_SERVER_TIMEOUT="20",
            PYTHONUNBUFFERED="1",  # the log must survive a SIGKILL
        )
        env.update(self.env)
        cmd = [
            str(pathlib.Path(sys.prefix) / "bin" / "foresight"), "operator", "--all-namespaces",
            "--metrics-host", "127.0.0.1", "--metrics-port", str(self.metrics_port),
            "--liveness", f"http://127.0.0.1:{self.liveness_port}/healthz",
        ]  # fmt: skip
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
        if wait_ready:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, self.log.read_text()
            try:
                if requests.get(self.url("/readyz"), timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"operator not ready in {timeout}s:\n{self.log.read_text()[-4000:]}")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.metrics_port}{path}"

    def kill(self) -> None:
        """SIGKILL: no clean-up at all, as when a node dies."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
