"""ForecastTask ``output.mode: scrape``: the forecast server's Deployment and Service.

Builders (pure): the Deployment runs ``foresight serve forecasts`` on the task's store, mounted
read-only where the run Jobs mount it, with probes on the health endpoint and small resources; the
Service selects only its pods and carries the ``prometheus.io`` annotations. Handler
(``ForecastTaskController.reconcile`` with a real KubeClient over HTTP against the API emulator):
both children appear owned by a scrape-mode task, a repeat writes nothing, a pushgateway-mode task
gets none, and switching a task away from scrape deletes them.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from foresight.api.forecasttask import ForecastTaskSpec
from foresight.contract.forecast import HEALTH_PATH, METRICS_PATH
from foresight_operator.builders.forecasttask import (
    ForecastRun,
    build_run_job,
    build_scrape_children,
    forecasts_name,
)
from foresight_operator.handlers.context import HandlerContext
from foresight_operator.handlers.forecasttask.controller import ForecastTaskController
from foresight_operator.handlers.forecasttask.gauges import ForecastTaskMetrics
from foresight_operator.reconcile import SpecError, WaitError, owner_labels
from prometheus_client import CollectorRegistry

from tests.cluster.emulator import Cluster
from tests.unit.operator.conftest import Events, handler_context

NS = "sre"
T0 = datetime(2026, 3, 1, 6, 15, tzinfo=UTC)
FT = "foresight.dev/v1alpha1/forecasttasks"
SPEC: dict[str, Any] = {
    "source": {"url": "http://prom:9090", "query": "storage_used_bytes", "lookback": "48h"},
    "horizon": "6h",
    "output": {"mode": "scrape", "horizons": ["1h"]},
    "resources": {"cpu": "2", "memory": "4Gi", "gpu": 1},
    "placement": {
        "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-H100"},
        "serviceAccountName": "forecasts",
    },
}


def make_spec(**extra: Any) -> ForecastTaskSpec:
    return ForecastTaskSpec.model_validate({**copy.deepcopy(SPEC), **extra})


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    (c,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(c)


def test_deployment_serves_the_task_store_read_only_where_the_runs_mount_it() -> None:
    spec = make_spec()
    children = build_scrape_children(spec, name="disk", namespace=NS, default_image="rt:1")
    dep = children.deployment
    assert (dep["kind"], dep["metadata"]["name"], dep["metadata"]["namespace"]) == (
        "Deployment", "disk-forecasts", NS,
    )  # fmt: skip
    assert dep["spec"]["replicas"] == 1
    c = container(dep)
    assert c["image"] == "rt:1"
    assert c["command"] == [
        "foresight", "serve", "forecasts", "--store", "pvc://foresight-artifacts/", "--namespace", NS,
        "--name", "disk", "--host", "0.0.0.0", "--port", "8080",
    ]  # fmt: skip
    assert c["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    for probe in ("readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"] == {"path": HEALTH_PATH, "port": "http"}, probe
    # Modest and GPU-free, whatever the runs ask for.
    assert c["resources"] == {"requests": {"cpu": "50m", "memory": "256Mi"}, "limits": {"memory": "256Mi"}}

    job = build_run_job(spec, name="disk", namespace=NS, run=ForecastRun("train", T0), default_image="rt:1")
    jc = job["spec"]["template"]["spec"]["containers"][0]
    job_store = next(m for m in jc["volumeMounts"] if m["name"] == "artifacts")
    (mount,) = c["volumeMounts"]
    assert mount == {**job_store, "readOnly": True}
    pod = dep["spec"]["template"]["spec"]
    (volume,) = pod["volumes"]
    assert volume == next(v for v in job["spec"]["template"]["spec"]["volumes"] if v["name"] == "artifacts")
    env = {e["name"]: e.get("value") for e in c["env"]}
    job_env = {e["name"]: e.get("value") for e in jc["env"]}
    assert env["FORESIGHT_PVC_ROOT"] == job_env["FORESIGHT_PVC_ROOT"]
    assert pod["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-H100"}
    assert pod["serviceAccountName"] == "forecasts"


def test_service_selects_only_the_server_and_says_how_to_scrape_it() -> None:
    children = build_scrape_children(make_spec(), name="disk", namespace=NS, default_image="rt:1")
    svc, dep = children.service, children.deployment
    assert svc["metadata"]["name"] == "disk-forecasts"
    assert svc["metadata"]["annotations"] == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "8080",
        "prometheus.io/path": METRICS_PATH,
    }
    assert svc["spec"]["ports"] == [{"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}]
    selector = svc["spec"]["selector"]
    assert selector == dep["spec"]["selector"]["matchLabels"] == dep["spec"]["template"]["metadata"]["labels"]
    assert owner_labels("ForecastTask", "disk").items() <= selector.items()
    run_pod_labels = build_run_job(
        make_spec(), name="disk", namespace=NS, run=ForecastRun("predict", T0), default_image="rt:1"
    )["spec"]["template"]["metadata"]["labels"]
    assert not selector.items() <= run_pod_labels.items()  # a run's pod is never an endpoint
    assert children.endpoint == "http://disk-forecasts.sre.svc:8080/metrics"


def test_s3_store_env_and_names_valid_for_any_task_name() -> None:
    spec = make_spec(artifacts={"uri": "s3://models/ft", "endpoint": "minio:9000", "credentialsSecret": "s3"})
    c = container(build_scrape_children(spec, name="disk", namespace=NS, default_image="x").deployment)
    env = {e["name"]: e for e in c["env"]}
    assert env["FORESIGHT_S3_ENDPOINT"]["value"] == "minio:9000"
    assert env["AWS_ACCESS_KEY_ID"]["valueFrom"] == {"secretKeyRef": {"name": "s3", "key": "accessKey"}}
    assert "FORESIGHT_PROMETHEUS_TOKEN" not in env  # the server never queries Prometheus
    assert "volumeMounts" not in c
    assert c["command"][4] == "s3://models/ft"
    assert forecasts_name("9-disks").startswith("ft-9-disks")  # a Service name starts with a letter
    long = forecasts_name("team.storage-" + "q" * 70)
    assert len(long) <= 63 and long == forecasts_name("team.storage-" + "q" * 70)
    with pytest.raises(SpecError, match="file:// locations exist only in local mode"):
        build_scrape_children(make_spec(artifacts={"uri": "file:///tmp/x"}), name="t", namespace=NS,
                              default_image="x")  # fmt: skip


def test_the_deployment_hash_follows_its_spec() -> None:
    def digest(spec: ForecastTaskSpec, image: str = "rt:1") -> str:
        dep = build_scrape_children(spec, name="disk", namespace=NS, default_image=image).deployment
        return str(dep["metadata"]["annotations"]["foresight.dev/spec-sha256"])

    assert digest(make_spec()) == digest(make_spec())
    assert digest(make_spec()) != digest(make_spec(), image="rt:2")
    assert digest(make_spec()) != digest(make_spec(artifacts={"uri": "pvc://other/"}))
    # What the server does not depend on does not roll it.
    assert digest(make_spec()) == digest(make_spec(horizon="12h"))


# --- handler -------------------------------------------------------------------------------------


@pytest.fixture
def ctx(cluster: Cluster, events: Events) -> HandlerContext:
    return handler_context(cluster, events, T0, runtime_image="foresight-runtime:test")


@pytest.fixture
def controller(ctx: HandlerContext) -> ForecastTaskController:
    return ForecastTaskController(ctx, ForecastTaskMetrics(CollectorRegistry()))


def apply(cluster: Cluster, name: str, mode: str) -> dict[str, Any]:
    spec = copy.deepcopy(SPEC)
    spec["output"] = {"mode": mode, "horizons": ["1h"], "pushgatewayUrl": "http://pgw:9091"}
    body = {"apiVersion": "foresight.dev/v1alpha1", "kind": "ForecastTask",
            "metadata": {"name": name, "namespace": NS}, "spec": spec}  # fmt: skip
    return cluster.api.create(FT, body, NS)


def writes(cluster: Cluster, since: int, *resources: str) -> list[tuple[str, str | None]]:
    return [
        (r.verb, r.resource)
        for r in cluster.requests()[since:]
        if r.verb in ("create", "patch", "update", "delete") and r.resource in resources
    ]


def test_a_scrape_task_owns_its_server_deployment_and_service(
    cluster: Cluster, controller: ForecastTaskController, events: Events
) -> None:
    body = apply(cluster, "disk", "scrape")
    controller.reconcile(body)
    uid = body["metadata"]["uid"]
    for resource in ("apps/v1/deployments", "v1/services"):
        child = cluster.api.get(resource, "disk-forecasts", NS)
        (ref,) = child["metadata"]["ownerReferences"]
        assert (ref["kind"], ref["name"], ref["uid"], ref["controller"]) == (
            "ForecastTask",
            "disk",
            uid,
            True,
        )
        assert owner_labels("ForecastTask", "disk").items() <= child["metadata"]["labels"].items()
    dep = cluster.api.get("apps/v1/deployments", "disk-forecasts", NS)
    assert container(dep)["image"] == "foresight-runtime:test"
    svc = cluster.api.get("v1/services", "disk-forecasts", NS)
    assert svc["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    assert {"DeploymentCreated", "ServiceCreated"} <= {reason for _, reason, _ in events}
    assert len(cluster.api.list("batch/v1/jobs", NS)) == 1  # the runs go on as in pushgateway mode

    before = len(cluster.requests())
    controller.reconcile(cluster.api.get(FT, "disk", NS))
    assert writes(cluster, before, "deployments", "services") == []

    # A changed image reaches the Deployment (and only then is it patched).
    cluster.api.patch(FT, "disk", {"spec": {"runtime": {"image": "foresight-runtime:2"}}}, NS)
    before = len(cluster.requests())
    controller.reconcile(cluster.api.get(FT, "disk", NS))
    assert writes(cluster, before, "deployments", "services") == [("patch", "deployments")]
    assert container(cluster.api.get("apps/v1/deployments", "disk-forecasts", NS))["image"] == (
        "foresight-runtime:2"
    )

    # Away from scrape mode, the server goes.
    cluster.api.patch(FT, "disk", {"spec": {"output": {"mode": "pushgateway"}}}, NS)
    controller.reconcile(cluster.api.get(FT, "disk", NS))
    assert cluster.api.list("apps/v1/deployments", NS) == []
    assert cluster.api.list("v1/services", NS) == []
    assert {"DeploymentDeleted", "ServiceDeleted"} <= {reason for _, reason, _ in events}


def test_a_pushgateway_task_gets_no_server(cluster: Cluster, controller: ForecastTaskController) -> None:
    controller.reconcile(apply(cluster, "disk", "pushgateway"))
    assert cluster.api.list("apps/v1/deployments", NS) == []
    assert cluster.api.list("v1/services", NS) == []
    assert len(cluster.api.list("batch/v1/jobs", NS)) == 1
    assert cluster.api.get("v1/configmaps", "disk-task", NS) is not None


def test_a_foreign_object_of_that_name_is_left_alone(
    cluster: Cluster, controller: ForecastTaskController
) -> None:
    foreign = {"metadata": {"name": "disk-forecasts"},
               "spec": {"ports": [{"port": 80}], "selector": {"app": "other"}}}  # fmt: skip
    cluster.api.create("v1/services", foreign, NS)
    with pytest.raises(WaitError, match="already exists and is not owned by this resource"):
        controller.reconcile(apply(cluster, "disk", "scrape"))
    assert cluster.api.get("v1/services", "disk-forecasts", NS)["spec"]["selector"] == {"app": "other"}
    # Switching the task to pushgateway mode does not delete what it does not own.
    cluster.api.patch(FT, "disk", {"spec": {"output": {"mode": "pushgateway"}}}, NS)
    controller.reconcile(cluster.api.get(FT, "disk", NS))
    assert cluster.api.get("v1/services", "disk-forecasts", NS) is not None
