"""Fixtures for handler tests against the in-process API emulator (no kopf loop, no kubelet).

- ``cluster``: a fresh :class:`~tests.cluster.emulator.Cluster` with the project's CRDs applied.
- ``events``: the ``(type, reason, message)`` of every Event the handler under test posts.
- :func:`handler_context`: a :class:`HandlerContext` with a real KubeClient over HTTP to that
  cluster, a fixed clock and the events list; each test module makes its ``ctx`` from it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import yaml
from foresight.kube import KubeClient
from foresight_operator.handlers.context import HandlerContext
from foresight_operator.settings import OperatorSettings
from foresight_operator.telemetry import OperatorMetrics
from prometheus_client import CollectorRegistry

from tests.cluster.emulator import Cluster
from tests.cluster.operator_process import REPO

Events = list[tuple[str, str, str]]


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    with Cluster() as running:
        for path in sorted((REPO / "crds").glob("*.foresight.dev.yaml")):
            crd = yaml.safe_load(path.read_text())
            running.api.create("apiextensions.k8s.io/v1/customresourcedefinitions", crd)
        yield running


@pytest.fixture
def events() -> Events:
    return []


def handler_context(cluster: Cluster, events: Events, now: datetime, **settings: Any) -> HandlerContext:
    """A handler context over ``cluster`` whose clock says ``now``; ``settings`` override the defaults."""
    import kubernetes

    api = kubernetes.config.new_client_from_config(config_file=str(cluster.kubeconfig))
    return HandlerContext(
        settings=OperatorSettings(**{"retry_delay": 1.0, "metrics_port": None, **settings}),
        kube=KubeClient(api, timeout=10),
        metrics=OperatorMetrics(CollectorRegistry()),
        post_event=lambda obj, type_, reason, message: events.append((type_, reason, message)),
        clock=lambda: now,
    )
