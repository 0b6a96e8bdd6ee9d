"""An ABExperiment waiting for a missing reference backs off, and what it waits for wakes it.

Against the in-process API emulator with a clock the test moves: the timer's ``due`` says when the
next look is (each failure in a row doubles the wait, up to the cap; an invalid spec waits for the
spec to change); the event handlers :func:`register_abexperiment` registers for the kinds an
experiment names (its ClassifierService, that service's Deployment, its ModelVersions, another
experiment of the service deleted) make it due at once, and the experiment then proceeds; and the
number of API calls of a waiting experiment over an hour stays a handful, not one per 5 s tick.
"""

from __future__ import annotations

import dataclasses
import itertools
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

_ROOT = str(Path(__file__).resolve().parents[3])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from foresight_operator.handlers.abexperiment import ABExperimentController, register_abexperiment  # noqa: E402
from foresight_operator.handlers.abexperiment.waits import CAP  # noqa: E402
from foresight_operator.handlers.context import HandlerContext  # noqa: E402

from tests.cluster.emulator import Cluster  # noqa: E402
from tests.unit.operator.conftest import Events, handler_context  # noqa: E402
from tests.unit.operator.test_abexperiment_handler import (  # noqa: E402
    AB,
    CS,
    NS,
    T0,
    Clock,
    experiment,
    model_version,
    onnx_service,
    ready,
)

BASE = 1.0  # the conftest's retry_delay: the first wait


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ctx(cluster: Cluster, events: Events, clock: Clock) -> HandlerContext:
    return dataclasses.replace(handler_context(cluster, events, T0), clock=clock)


@pytest.fixture
def handlers(ctx: HandlerContext) -> tuple[ABExperimentController, dict[str, Any]]:
    """The controller and the event handlers kopf would call, by id, from a real registration."""
    import kopf

    registry = kopf.OperatorRegistry()
    controller = register_abexperiment(registry, ctx, prometheus=lambda url, token: None)  # type: ignore[arg-type,return-value]
    by_id = {str(h.id): h.fn for h in registry._watching.get_all_handlers()}
    return controller, by_id


def tick(cluster: Cluster, controller: ABExperimentController, clock: Clock, name: str = "v2-vs-v1") -> bool:
    """One timer tick at the clock's time: whether it reconciled."""
    body = cluster.api.get(AB, name, NS)
    if not controller.due(body, clock()):
        return False
    controller.reconcile(body)
    return True


def test_the_wait_doubles_per_failure_and_is_capped(
    cluster: Cluster, handlers: tuple[ABExperimentController, dict[str, Any]], clock: Clock
) -> None:
    controller, _ = handlers
    cluster.api.create(AB, experiment(), NS)
    controller.reconcile(cluster.api.get(AB, "v2-vs-v1", NS))
    assert ready(cluster)[1] == "ServiceNotFound"
    waits = []
    for _ in range(14):
        wait = controller.waits.delay(NS, "v2-vs-v1", clock())
        assert wait is not None
        waits.append(wait.total_seconds())
        clock.advance(wait.total_seconds() - 0.1)
        assert not tick(cluster, controller, clock)  # not before its time
        clock.advance(0.1)
        assert tick(cluster, controller, clock)
        assert ready(cluster)[1] == "ServiceNotFound"
    assert waits[:4] == [BASE, 2 * BASE, 4 * BASE, 8 * BASE]
    assert max(waits) == waits[-1] == CAP.total_seconds()
    assert all(b >= a for a, b in itertools.pairwise(waits))


def test_an_hour_of_waiting_costs_a_handful_of_api_calls_not_one_per_tick(
    cluster: Cluster, handlers: tuple[ABExperimentController, dict[str, Any]], clock: Clock
) -> None:
    controller, _ = handlers
    cluster.api.create(AB, experiment(), NS)
    controller.reconcile(cluster.api.get(AB, "v2-vs-v1", NS))
    reconciles = 0
    for _ in range(720):  # an hour of 5 s ticks
        clock.advance(5)
        reconciles += tick(cluster, controller, clock)
    # 1+2+4+...+256 s is ~8.5 min, then every 5 min: ~20 passes, against 720 without a backoff.
    assert 15 <= reconciles <= 25


def test_the_service_created_wakes_the_experiment_which_then_proceeds(
    cluster: Cluster, handlers: tuple[ABExperimentController, dict[str, Any]], clock: Clock
) -> None:
    controller, on = handlers
    cluster.api.create(AB, experiment(), NS)
    controller.reconcile(cluster.api.get(AB, "v2-vs-v1", NS))
    for _ in range(6):  # a long wait by now
        clock.advance(controller.waits.delay(NS, "v2-vs-v1", clock()).total_seconds())  # type: ignore[union-attr]
        assert tick(cluster, controller, clock)
    assert controller.waits.delay(NS, "v2-vs-v1", clock()) == timedelta(seconds=64 * BASE)

    # An unrelated service does not wake it; its own does, through the handler kopf calls.
    other = onnx_service(cluster)
    other_body = {**other, "metadata": {**other["metadata"], "name": "another-service"}}
    on["abexperiment-service-wakes"](body=other_body, type="ADDED")
    assert not tick(cluster, controller, clock)
    on["abexperiment-service-wakes"](body=cluster.api.get(CS, "photo-classifier", NS), type="ADDED")
    assert tick(cluster, controller, clock)  # at the next tick, not in 64 s
    status, reason, message = ready(cluster)
    assert (status, reason) == ("False", "ModelVersionNotFound") and "photo-net-v1" in message

    # Still failing (the count goes on), now for a ModelVersion: its event wakes the experiment.
    model_version(cluster, "photo-net-v1")
    model_version(cluster, "photo-net-v2")
    assert not tick(cluster, controller, clock)
    on["abexperiment-modelversion-wakes"](
        body=cluster.api.get("foresight.dev/v1alpha1/modelversions", "photo-net-v2", NS), type="MODIFIED"
    )
    assert tick(cluster, controller, clock)
    assert ready(cluster)[1] == "VariantsNotLoaded"  # past every reference: the service's pods next


def test_a_spec_change_starts_the_count_over_an_invalid_spec_waits_for_it_and_deletion_forgets(
    cluster: Cluster, handlers: tuple[ABExperimentController, dict[str, Any]], clock: Clock
) -> None:
    controller, on = handlers
    cluster.api.create(AB, experiment(), NS)
    controller.reconcile(cluster.api.get(AB, "v2-vs-v1", NS))
    for _ in range(4):
        clock.advance(controller.waits.delay(NS, "v2-vs-v1", clock()).total_seconds())  # type: ignore[union-attr]
        assert tick(cluster, controller, clock)
    assert controller.waits.delay(NS, "v2-vs-v1", clock()) == timedelta(seconds=16 * BASE)
    cluster.api.patch(AB, "v2-vs-v1", {"spec": {"service": "other-classifier"}}, NS)
    controller.reconcile(cluster.api.get(AB, "v2-vs-v1", NS))  # what the update handler calls
    assert controller.waits.delay(NS, "v2-vs-v1", clock()) == timedelta(seconds=BASE)

    # A spec the controller refuses is not looked at again until it changes; no event wakes it.
    body = cluster.api.get(AB, "v2-vs-v1", NS)
    controller.waits.failed(body, clock(), until_spec_changes=True)
    clock.advance(CAP.total_seconds() * 10)
    assert controller.waits.due(NS, "v2-vs-v1", clock()) is False
    assert controller.waits.wake(NS, clock(), service="other-classifier") == []

    on["forget"](body=body, type="DELETED")
    assert len(controller.waits) == 0
