"""ABExperiment controller against the in-process API emulator (no kopf loop, no kubelet, no pods).

The controller's passes are called directly with a real KubeClient over HTTP and a clock the test
moves, so what is asserted is what the API server holds: conditions naming what to fix for each
missing reference, the routing ConfigMap (owned by the ClassifierService) with the effective
weights, the ClassifierService's pods loading every variant, the clock starting only once they
do, analyses one interval apart from counters a fake Prometheus serves (tests/unit/operator/
ab_counters.py: the classifier's series as a synthetic stream drives them), progressive steps
that change the routing but not the pods, a rollback with its Warning event, a promotion with the
spec change to commit, PromQL errors and an unreachable Prometheus as conditions, a bandit whose
state survives a new controller (an operator restart), and the experiment's gauges on /metrics.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

_ROOT = str(Path(__file__).resolve().parents[3])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from foresight.experiment.simulation import CounterSimulator, VariantTruth  # noqa: E402
from foresight_operator.builders.classifierservice import (  # noqa: E402
    CONFIG_HASH_ANNOTATION,
    VARIANTS_ANNOTATION,
)
from foresight_operator.handlers.abexperiment import ABExperimentController  # noqa: E402
from foresight_operator.handlers.classifierservice import reconcile as reconcile_service  # noqa: E402
from foresight_operator.handlers.context import HandlerContext  # noqa: E402
from foresight_operator.reconcile import WaitError  # noqa: E402
from prometheus_client import generate_latest  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from tests.cluster.emulator import Cluster  # noqa: E402
from tests.unit.operator.ab_counters import CounterStore  # noqa: E402
from tests.unit.operator.conftest import Events, handler_context  # noqa: E402

AB = "foresight.dev/v1alpha1/abexperiments"
CS = "foresight.dev/v1alpha1/classifierservices"
MV = "foresight.dev/v1alpha1/modelversions"
CM = "v1/configmaps"
DEPLOY = "apps/v1/deployments"
NS = "photos"
ROUTING = "photo-classifier-routing"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
REPO = Path(_ROOT)
SERVICE = yaml.safe_load((REPO / "examples" / "classifierservice.yaml").read_text())


@dataclasses.dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store() -> CounterStore:
    return CounterStore()


@pytest.fixture
def ctx(cluster: Cluster, events: Events, clock: Clock) -> HandlerContext:
    return dataclasses.replace(handler_context(cluster, events, T0), clock=clock)


@pytest.fixture
def controller(ctx: HandlerContext, store: CounterStore) -> ABExperimentController:
    return ABExperimentController(ctx, lambda url, token: store)


def experiment(name: str = "v2-vs-v1", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "foresight.dev/v1alpha1",
        "kind": "ABExperiment",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "service": "photo-classifier",
            "variants": [
                {"name": "control", "modelVersion": "photo-net-v1", "weight": 90},
                {"name": "candidate", "modelVersion": "photo-net-v2", "weight": 10},
            ],
            "primaryMetric": {"name": "accuracy", "builtin": "accuracy", "minimumDetectableEffect": 0.05},
            "guardMetrics": [{"name": "errors", "builtin": "errorRate", "max": 0.05}],
            "minSamples": 200,
            "analysisInterval": "30s",
            "strategy": {
                "type": "progressive",
                "steps": [{"weight": 10, "pause": "1m"}, {"weight": 50, "pause": "1m"}],
            },
            "autoPromote": True,
            "prometheus": {"url": "http://prometheus.monitoring:9090"},
            **spec,
        },
    }
    return body


def model_version(cluster: Cluster, name: str, *, onnx: bool = True, ready: bool = True) -> None:
    framework, uri = (
        ("onnx", f"pvc://models/{name}/model.onnx") if onnx else ("torch", f"pvc://models/{name}")
    )
    cluster.api.create(
        MV,
        {"apiVersion": "foresight.dev/v1alpha1", "kind": "ModelVersion", "metadata": {"name": name},
         "spec": {"modelName": "photo-net", "version": name[-1], "framework": framework,
                  "artifact": {"uri": uri}}},
        NS,
    )  # fmt: skip
    status = "True" if ready else "False"
    cond = {"type": "Ready", "status": status, "reason": "Verified" if ready else "Verifying", "message": "",
            "lastTransitionTime": "2026-03-01T11:00:00Z"}  # fmt: skip
    cluster.api.patch(MV, name, {"status": {"phase": "Ready", "conditions": [cond]}}, NS, sub="status")


def onnx_service(cluster: Cluster) -> dict[str, Any]:
    body = copy.deepcopy(SERVICE)
    body["spec"]["backend"] = {"type": "onnx", "onnx": {"modelVersion": "photo-net-v1"}}
    return cluster.api.create(CS, body, NS)


def roll_out(cluster: Cluster) -> None:
    """What the Deployment controller writes once the pods of the current template are available."""
    dep = cluster.api.get(DEPLOY, "photo-classifier", NS)
    available = {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}
    status = {"observedGeneration": dep["metadata"].get("generation", 1), "replicas": 1, "updatedReplicas": 1,
              "readyReplicas": 1, "availableReplicas": 1, "conditions": [available]}  # fmt: skip
    cluster.api.patch(DEPLOY, "photo-classifier", {"status": status}, NS, sub="status")


def ready(cluster: Cluster, name: str = "v2-vs-v1") -> tuple[str, str, str]:
    obj = cluster.api.get(AB, name, NS)
    cond = next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")
    return cond["status"], cond["reason"], cond["message"]


def routing(cluster: Cluster) -> dict[str, int]:
    cm = cluster.api.get(CM, ROUTING, NS)
    return {v["name"]: v["weight"] for v in json.loads(cm["data"]["routing.json"])["variants"]}


def start(cluster: Cluster, ctx: HandlerContext, controller: ABExperimentController, **spec: Any) -> None:
    """Models, service and experiment in place, the service rolled out with the variants: started."""
    model_version(cluster, "photo-net-v1")
    model_version(cluster, "photo-net-v2")
    onnx_service(cluster)
    cluster.api.create(AB, experiment(**spec), NS)
    reconcile_service(ctx, cluster.api.get(CS, "photo-classifier", NS))
    roll_out(cluster)
    controller.reconcile(cluster.api.get(AB, "v2-vs-v1", NS))
    assert cluster.api.get(AB, "v2-vs-v1", NS)["status"]["phase"] == "Running"


def tick(
    cluster: Cluster, controller: ABExperimentController, clock: Clock, seconds: float = 30
) -> dict[str, Any]:
    clock.advance(seconds)
    controller.reconcile(cluster.api.get(AB, "v2-vs-v1", NS))
    return dict(cluster.api.get(AB, "v2-vs-v1", NS)["status"])


def feed(store: CounterStore, sim: CounterSimulator, cluster: Cluster) -> None:
    """One interval of synthetic traffic at the weights in the routing ConfigMap."""
    sim.step(routing(cluster))
    store.load(sim)


def state_of(status: dict[str, Any]) -> dict[str, Any]:
    """The analysis's state as the status keeps it (a JSON string: nulls survive merge patches)."""
    return dict(json.loads(status["analysisState"]["state"]))


def samples(ctx: HandlerContext, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    out = {}
    for family in text_string_to_metric_families(generate_latest(ctx.metrics.registry).decode()):
        for s in family.samples:
            if s.name == name:
                out[tuple(sorted(s.labels.items()))] = s.value
    return out


# --- references -------------------------------------------------------------------------------


def test_each_missing_reference_is_a_condition_naming_what_to_fix_and_nothing_is_routed(
    cluster: Cluster, ctx: HandlerContext, controller: ABExperimentController, events: Events
) -> None:
    cluster.api.create(AB, experiment(), NS)
    controller.reconcile(cluster.api.get(AB, "v2-vs-v1", NS))
    status, reason, message = ready(cluster)
    assert (status, reason) == ("False", "ServiceNotFound")
    assert f"ClassifierService {NS}/photo-classifier not found" in message and "spec.service" in message
    assert cluster.api.get(AB, "v2-vs-v1", NS)["status"]["phase"] == "Pending"
    assert events == [("Warning", "ServiceNotFound", message)]
    controller.reconcile(cluster.api.get(AB, "v2-vs-v1", NS))
    assert len(events) == 1  # the same problem again: no second event

    model_version(cluster, "photo-net-v1")
    onnx_service(cluster)
    controller.reconcile(cluster.api.get(AB, "v2-vs-v1", NS))
    _, reason, message = ready(cluster)
    assert reason == "ModelVersionNotFound"
    assert f"ModelVersion {NS}/photo-net-v2 not found" in message
    assert "spec.variants[1].modelVersion (variant candidate)" in message

    model_version(cluster, "photo-net-v2", onnx=False)
    controller.reconcile(cluster.api.get(AB, "v2-vs-v1", NS))
    _, reason, message = ready(cluster)
    assert (
        reason == "UnsupportedArtifact" and "has no ONNX artifact" in message and "optimize.onnx" in message
    )
    assert cluster.api.find(CM, ROUTING, NS) is None  # nothing routed while a model is missing

    # The service does not load the variants either: it keeps serving its own model.
    reconcile_service(ctx, cluster.api.get(CS, "photo-classifier", NS))
    template = cluster.api.get(DEPLOY, "photo-classifier", NS)["spec"]["template"]
    assert VARIANTS_ANNOTATION not in template["metadata"]["annotations"]
    assert "routing" not in {v["name"] for v in template["spec"]["volumes"]}


def test_the_service_loads_every_variant_and_the_clock_starts_once_its_pods_do(
    cluster: Cluster, ctx: HandlerContext, controller: ABExperimentController, store: CounterStore
) -> None:
    model_version(cluster, "photo-net-v1")
    model_version(cluster, "photo-net-v2")
    svc = onnx_service(cluster)
    cluster.api.create(AB, experiment(), NS)
    controller.reconcile(cluster.api.get(AB, "v2-vs-v1", NS))
    # The routing is written (the first progressive step, owned by the service); the pods have no
    # variants yet, so the experiment waits and says why.
    assert routing(cluster) == {"control": 90, "candidate": 10}
    (owner,) = cluster.api.get(CM, ROUTING, NS)["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"]) == ("ClassifierService", svc["metadata"]["uid"])
    status, reason, message = ready(cluster)
    assert (status, reason) == ("False", "VariantsNotLoaded") and "serves its own model" in message

    reconcile_service(ctx, cluster.api.get(CS, "photo-classifier", NS))
    dep = cluster.api.get(DEPLOY, "photo-classifier", NS)
    pod = dep["spec"]["template"]
    assert pod["metadata"]["annotations"][VARIANTS_ANNOTATION] == f"{NS}/v2-vs-v1:control,candidate"
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["routing"]["configMap"] == {"name": ROUTING, "optional": True}
    config = yaml.safe_load(cluster.api.get(CM, "photo-classifier-config", NS)["data"]["classifier.yaml"])
    assert [(v["name"], v["backend"]["onnx"]["modelPath"]) for v in config["variants"]] == [
        ("control", "/var/lib/foresight/models/photo-net-v1/model.onnx"),
        ("candidate", "/var/lib/foresight/models/photo-net-v2/model.onnx"),
    ]  # one claim, the backend's: mounted once
    assert config["routing"]["file"] == "/etc/foresight/routing/routing.json"
    assert "weight" not in json.dumps(config)  # weights live in the routing file only

    controller.reconcile(cluster.api.get(AB, "v2-vs-v1", NS))
    assert ready(cluster)[1] == "VariantsNotLoaded"  # rolling out
    roll_out(cluster)
    controller.reconcile(cluster.api.get(AB, "v2-vs-v1", NS))
    ab = cluster.api.get(AB, "v2-vs-v1", NS)
    assert ab["status"]["phase"] == "Running" and ab["status"]["weights"] == "control=90,candidate=10"
    status, reason, message = ready(cluster)
    assert (status, reason) == (
        "False",
        "CollectingSamples",
    ) and "first analysis at 2026-03-01T12:00:30Z" in message
    assert state_of(ab["status"])["startedAt"].startswith("2026-03-01T12:00:00")
    assert store.queries == []  # not due yet: nothing asked of Prometheus


# --- analyses ---------------------------------------------------------------------------------


def test_progressive_steps_move_the_routing_not_the_pods_and_a_guard_breach_rolls_back(
    cluster: Cluster,
    ctx: HandlerContext,
    controller: ABExperimentController,
    store: CounterStore,
    clock: Clock,
    events: Events,
) -> None:
    start(cluster, ctx, controller)
    template = cluster.api.get(DEPLOY, "photo-classifier", NS)["spec"]["template"]["metadata"]["annotations"]

    # No counters at all: NoData, said once as a Warning, weights kept.
    status = tick(cluster, controller, clock)
    assert status["decision"]["action"] == "NoData" and ready(cluster)[1] == "NoData"
    assert "no classify requests with a variant label" in status["decision"]["message"]
    assert store.queries and all('namespace="photos"' in q for q in store.queries)

    sim = CounterSimulator(
        {"control": VariantTruth(accuracy=0.8), "candidate": VariantTruth(accuracy=0.8)}, 40, 30, seed=1
    )
    for _ in range(3):
        feed(store, sim, cluster)
        status = tick(cluster, controller, clock)
        if status["decision"]["action"] == "StepForward":
            break
    assert status["decision"]["action"] == "StepForward", status["decision"]
    assert routing(cluster) == {"control": 50, "candidate": 50}
    assert status["weights"] == "control=50,candidate=50" and status["currentStep"] == 1
    assert any(r == "StepForward" for _, r, _ in events)
    after = cluster.api.get(DEPLOY, "photo-classifier", NS)["spec"]["template"]["metadata"]["annotations"]
    reconcile_service(ctx, cluster.api.get(CS, "photo-classifier", NS))
    again = cluster.api.get(DEPLOY, "photo-classifier", NS)["spec"]["template"]["metadata"]["annotations"]
    assert after[CONFIG_HASH_ANNOTATION] == template[CONFIG_HASH_ANNOTATION] == again[CONFIG_HASH_ANNOTATION]

    # The candidate starts failing half its requests: rolled back at the next analysis.
    sim.truths["candidate"] = VariantTruth(accuracy=0.8, error_rate=0.5)
    feed(store, sim, cluster)
    status = tick(cluster, controller, clock)
    assert status["phase"] == "RolledBack" and status["decision"]["action"] == "Rollback"
    assert routing(cluster) == {"control": 100, "candidate": 0}
    st, reason, message = ready(cluster)
    assert (st, reason) == ("False", "GuardBreached") and "guard errors on candidate" in message
    assert ("Warning", "RolledBack", message) in events
    history = [d["action"] for d in status["decisions"]]
    assert history[0] == "NoData" and "StepForward" in history and history[-1] == "Rollback"
    assert status["decisionCounts"]["Rollback"] == 1
    weight = samples(ctx, "foresight_abexperiment_weight")
    assert weight[(("name", "v2-vs-v1"), ("namespace", NS), ("variant", "candidate"))] == 0
    assert weight[(("name", "v2-vs-v1"), ("namespace", NS), ("variant", "control"))] == 100

    # Finished: the timer no longer analyses it.
    asked = len(store.queries)
    assert not controller.due(cluster.api.get(AB, "v2-vs-v1", NS), clock() + timedelta(hours=1))
    tick(cluster, controller, clock)
    assert len(store.queries) == asked and routing(cluster) == {"control": 100, "candidate": 0}

    controller.forget(NS, "v2-vs-v1")
    assert samples(ctx, "foresight_abexperiment_weight") == {}


def test_a_significant_winner_is_promoted_with_the_evidence_and_the_change_to_commit(
    cluster: Cluster,
    ctx: HandlerContext,
    controller: ABExperimentController,
    store: CounterStore,
    clock: Clock,
) -> None:
    start(cluster, ctx, controller, strategy={"type": "fixed"},
          variants=[{"name": "control", "modelVersion": "photo-net-v1", "weight": 50},
                    {"name": "candidate", "modelVersion": "photo-net-v2", "weight": 50}])  # fmt: skip
    sim = CounterSimulator(
        {"control": VariantTruth(accuracy=0.6), "candidate": VariantTruth(accuracy=0.9)}, 40, 30, seed=2
    )
    for _ in range(10):
        feed(store, sim, cluster)
        status = tick(cluster, controller, clock)
        if status["phase"] != "Running":
            break
    assert status["phase"] == "Promoted" and status["winner"] == "candidate", status["decision"]
    assert routing(cluster) == {"control": 0, "candidate": 100}
    assert ready(cluster)[:2] == ("True", "WinnerFound")
    variants = {v["name"]: v for v in status["variants"]}
    assert variants["candidate"]["mean"] > variants["control"]["mean"]
    assert variants["candidate"]["ciLow"] < variants["candidate"]["mean"] < variants["candidate"]["ciHigh"]
    assert variants["candidate"]["samples"] >= 200 and variants["candidate"]["requests"] > 0
    (comparison,) = status["comparisons"]
    assert comparison["verdict"] == "better" and comparison["adjustedPValue"] <= 0.05
    assert comparison["csLow"] > 0 and comparison["test"] == "two-proportion-z"
    assert status["pValue"] == comparison["adjustedPValue"] and status["effectSize"] > 0
    assert set(status["sampleSize"]["sequential"]) == {"control", "candidate"}
    assert status["srm"]["mismatch"] is False
    assert status["promotion"]["modelVersion"] == "photo-net-v2"
    patches = {c["kind"]: json.loads(c["patch"]) for c in status["promotion"]["changes"]}
    assert patches == {
        "ClassifierService": {
            "spec": {"backend": {"type": "onnx", "onnx": {"modelVersion": "photo-net-v2"}}}
        },
        "ModelVersion": {"spec": {"stage": "Production"}},
    }
    assert status["samples"] == round(sum(v["samples"] for v in status["variants"]))
    # The operator never wrote a spec.
    assert (
        cluster.api.get(CS, "photo-classifier", NS)["spec"]["backend"]["onnx"]["modelVersion"]
        == "photo-net-v1"
    )


def test_promql_errors_and_an_unreachable_prometheus_are_conditions_then_the_analysis_resumes(
    cluster: Cluster,
    ctx: HandlerContext,
    controller: ABExperimentController,
    store: CounterStore,
    clock: Clock,
) -> None:
    broken = {"name": "timeouts", "rate": {"successes": {"metric": "timeouts_total",
              "matchers": [{"label": "code", "op": "Match", "value": "("}]},
              "trials": {"metric": "requests_total"}}, "max": 0.1}  # fmt: skip
    start(cluster, ctx, controller, guardMetrics=[broken])
    tick(cluster, controller, clock)
    status, reason, message = ready(cluster)
    assert (status, reason) == ("False", "PromQLError")
    assert "metric timeouts" in message and "error parsing regexp" in message
    assert 'code=~"("' in message and "matchers" in message

    cluster.api.patch(AB, "v2-vs-v1", {"spec": {"guardMetrics": []}}, NS)  # fixed: starts over
    controller.reconcile(cluster.api.get(AB, "v2-vs-v1", NS))
    store.fail_with = store.unavailable("http://prometheus.monitoring:9090")
    tick(cluster, controller, clock)
    assert ready(cluster)[1] == "PrometheusUnavailable"
    store.fail_with = None
    controller.reconcile(cluster.api.get(AB, "v2-vs-v1", NS))  # still due: analysed at once
    assert ready(cluster)[1] == "NoData"


def test_a_bandits_state_survives_a_new_controller(
    cluster: Cluster, ctx: HandlerContext, store: CounterStore, clock: Clock
) -> None:
    first = ABExperimentController(ctx, lambda url, token: store)
    bandit = {"type": "bandit", "bandit": {"algorithm": "thompson", "floor": 10, "minChange": 0}}
    start(cluster, ctx, first, strategy=bandit, guardMetrics=[], autoPromote=False,
          variants=[{"name": "control", "modelVersion": "photo-net-v1", "weight": 50},
                    {"name": "candidate", "modelVersion": "photo-net-v2", "weight": 50}])  # fmt: skip
    sim = CounterSimulator(
        {"control": VariantTruth(accuracy=0.5), "candidate": VariantTruth(accuracy=0.7)}, 10, 30, seed=3
    )
    for _ in range(3):
        feed(store, sim, cluster)
        status = tick(cluster, first, clock)
    before = state_of(status)
    assert before["bandit"]["rounds"] == 3

    restarted = ABExperimentController(ctx, lambda url, token: store)  # an operator restart
    feed(store, sim, cluster)
    status = tick(cluster, restarted, clock)
    after = state_of(status)
    assert after["bandit"]["rounds"] == 4 and after["startedAt"] == before["startedAt"]
    for arm, stats in before["bandit"]["arms"].items():
        assert after["bandit"]["arms"][arm]["n"] >= stats["n"] > 0
    assert routing(cluster) == after["weights"] and min(after["weights"].values()) >= 10  # the floor


def test_one_experiment_routes_a_service_the_next_one_waits(
    cluster: Cluster, ctx: HandlerContext, controller: ABExperimentController, store: CounterStore
) -> None:
    start(cluster, ctx, controller)
    cluster.api.create(AB, experiment("another"), NS)
    controller.reconcile(cluster.api.get(AB, "another", NS))
    _, reason, message = ready(cluster, "another")
    assert reason == "RoutingConflict" and f"ABExperiment {NS}/v2-vs-v1 already routes" in message
    assert (
        json.loads(cluster.api.get(CM, ROUTING, NS)["data"]["routing.json"])["experiment"] == f"{NS}/v2-vs-v1"
    )

    # The first one goes: the service drops its variants (its own model again), the other takes over.
    cluster.api.delete(AB, "v2-vs-v1", NS)
    cluster.api.delete(AB, "another", NS)
    reconcile_service(ctx, cluster.api.get(CS, "photo-classifier", NS))
    template = cluster.api.get(DEPLOY, "photo-classifier", NS)["spec"]["template"]
    assert VARIANTS_ANNOTATION not in template["metadata"]["annotations"]
    config = yaml.safe_load(cluster.api.get(CM, "photo-classifier-config", NS)["data"]["classifier.yaml"])
    # No variants; the routing file (the contract's default path) is no longer mounted, so every
    # request goes to the control.
    assert not config.get("variants")
    assert "routing" not in {v["name"] for v in template["spec"]["volumes"]}


def test_suspend_keeps_the_state_and_another_spec_change_starts_over(
    cluster: Cluster,
    ctx: HandlerContext,
    controller: ABExperimentController,
    store: CounterStore,
    clock: Clock,
) -> None:
    start(cluster, ctx, controller)
    started = state_of(cluster.api.get(AB, "v2-vs-v1", NS)["status"])["startedAt"]
    cluster.api.patch(AB, "v2-vs-v1", {"spec": {"suspend": True}}, NS)
    clock.advance(5)
    controller.reconcile(cluster.api.get(AB, "v2-vs-v1", NS))  # toggled: at once, not at the interval
    ab = cluster.api.get(AB, "v2-vs-v1", NS)
    assert ab["status"]["phase"] == "Suspended" and ready(cluster)[1] == "Suspended"
    assert state_of(ab["status"])["startedAt"] == started
    assert store.queries == []  # suspended: Prometheus is not asked

    cluster.api.patch(AB, "v2-vs-v1", {"spec": {"suspend": False, "minSamples": 300}}, NS)
    clock.advance(5)
    controller.reconcile(cluster.api.get(AB, "v2-vs-v1", NS))
    ab = cluster.api.get(AB, "v2-vs-v1", NS)
    assert ab["status"]["phase"] == "Running" and ab["status"]["decisions"] == []
    assert state_of(ab["status"])["startedAt"] != started


def test_references_raise_wait_errors_with_the_experiments_reasons(
    cluster: Cluster, ctx: HandlerContext
) -> None:
    from foresight.api.abexperiment import ABExperimentSpec
    from foresight_operator.handlers.abexperiment.references import require_models

    spec = ABExperimentSpec.model_validate(experiment()["spec"])
    model_version(cluster, "photo-net-v1", ready=False)
    with pytest.raises(WaitError) as err:
        require_models(ctx, NS, spec)
    assert err.value.reason == "ModelVersionNotReady" and "is not Ready yet" in err.value.message
