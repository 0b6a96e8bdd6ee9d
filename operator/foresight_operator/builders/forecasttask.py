"""Pure builders of a ForecastTask's children: the ConfigMap with the task YAML, one Job per run and,
for ``output.mode: scrape``, the Deployment and Service that serve its forecasts for scraping.

Every run is a Job running ``foresight run -f <task.yaml> --mode <train|auto>`` in the runtime
image. Its name comes from the task, the run kind and the scheduled time (plus the attempt for
retries), so the same scheduled run always has the same Job and a restarted operator never
makes a second one. The Job carries the run's identity in annotations, which the scheduler
reads back as the task's run history.

The artifact store: ``pvc://<claim>/<path>`` mounts the claim at ``/var/lib/foresight/pvc/<claim>``
and points the runtime's ``FORESIGHT_PVC_ROOT`` at its parent, spelled through the mount
(``<mount>/..``) so that a test kubelet that maps mount paths to local directories maps it too;
``s3://`` passes the endpoint and the credentials Secret as env (:func:`foresight.contract.s3.s3_pod_env`).
Results come back in the pod's termination message (:class:`foresight.contract.forecast.ForecastRunResult`);
pods need no Kubernetes API access.

Scrape mode (:func:`build_scrape_children`): a 1-replica Deployment ``<task>-forecasts`` runs
``foresight serve forecasts`` with the same store (a PVC mounted read-only at the same path, or the
same S3 env), probes on ``/healthz``, and small fixed resources (no GPU: it only reads a file). It
keeps the task's placement (node selector, tolerations, service account: what lets it reach the
store as the runs do). Its Service carries ``prometheus.io/scrape|port|path``. The pods get a
``foresight.dev/component: forecasts`` label, so the Service never selects a run's pod.

A sharded task (``spec.parallelism`` > 1) is served by shard, one endpoint per shard: the same
server as a StatefulSet of ``parallelism`` pods, pod ``<task>-forecasts-<i>`` serving shard ``i``'s
exposition (its ordinal, from its name, is its shard), so each Prometheus scrape is one shard's
gauges, independent of the others. The same Service finds them (its endpoints are the pods, which
annotation-based ``kubernetes_sd`` with ``role: endpoints`` scrapes one by one), and the pods carry
the ``prometheus.io`` annotations too, for ``role: pod`` discovery (PodMonitor-style).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import yaml
from foresight.api.forecasttask import FORECAST_TASK, ForecastTaskSpec
from foresight.api.meta import API_VERSION, Resources, RunPolicy, SecretKeyRef
from foresight.contract import env as pod_env
from foresight.contract.forecast import HEALTH_PATH, METRICS_PATH, SERVER_PORT, STORE_PREFIX

from ..reconcile.conditions import format_time, parse_time
from ..reconcile.names import child_name, owner_labels
from ..schedule import RunKind
from .configmap import build_configmap
from .deployment import build_deployment, build_service, liveness_probe, stamp_spec_hash
from .job import build_job
from .pod import Volume
from .store import PVC_ROOT, StoreMount, public_uri, store_mount

__all__ = [
    "ANNOTATION_ATTEMPT",
    "ANNOTATION_GENERATION",
    "ANNOTATION_SCHEDULED",
    "COMPONENT_LABEL",
    "KIND",
    "PVC_ROOT",
    "RUN_KIND_LABEL",
    "SCRAPE_PORT",
    "SERVER_RESOURCES",
    "TASK_DIR",
    "TASK_FILE",
    "ForecastRun",
    "ScrapeChildren",
    "build_run_job",
    "build_scrape_children",
    "build_task_configmap",
    "config_map_name",
    "forecasts_name",
    "parse_annotations",
    "public_artifact_uri",
    "run_job_name",
    "run_suffix",
    "secret_refs",
    "task_document",
]

Obj = dict[str, Any]
KIND = FORECAST_TASK.kind
TASK_DIR = "/etc/foresight/task"
TASK_FILE = "task.yaml"
RUN_KIND_LABEL = "foresight.dev/run-kind"
ANNOTATION_SCHEDULED = "foresight.dev/scheduled-time"
ANNOTATION_ATTEMPT = "foresight.dev/attempt"
ANNOTATION_GENERATION = "foresight.dev/generation"
COMPONENT_LABEL = "foresight.dev/component"
SCRAPE_COMPONENT = "forecasts"
SCRAPE_PORT = SERVER_PORT
SERVER_RESOURCES = Resources(cpu="50m", memory="256Mi")
"""The forecast server's pod: it reads one small object every few seconds and answers scrapes."""
_DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class ForecastRun:
    """One run of a task: its kind, scheduled time (UTC, whole seconds) and attempt."""

    kind: RunKind
    scheduled: datetime
    attempt: int = 1
    generation: int | None = None

    @property
    def mode(self) -> str:
        """``foresight run --mode``: train runs train; predict runs use ``auto``, which trains
        only when no usable model is saved (none yet, or trained for another spec)."""
        return "train" if self.kind == "train" else "auto"


def _stamp(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y%m%dt%H%M%S")


def run_suffix(run: ForecastRun) -> str:
    """``<kind>-<yyyymmddthhmmss>[-r<attempt>]``: what names a run's Jobs after their task."""
    return f"{run.kind}-{_stamp(run.scheduled)}" + (f"-r{run.attempt}" if run.attempt > 1 else "")


def run_job_name(task: str, run: ForecastRun) -> str:
    """``<task>-<kind>-<yyyymmddthhmmss>[-r<attempt>]``, cut and hashed to 63 characters."""
    return child_name(task, run_suffix(run))


def config_map_name(task: str) -> str:
    return child_name(task, "task")


def task_document(name: str, namespace: str, spec: ForecastTaskSpec) -> str:
    """The resource as ``foresight run -f`` reads it: defaults filled in, no status."""
    doc = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec.to_wire(),
    }
    return yaml.safe_dump(doc, sort_keys=True)


def build_task_configmap(name: str, namespace: str, spec: ForecastTaskSpec) -> Obj:
    return build_configmap(
        name=config_map_name(name),
        namespace=namespace,
        labels=owner_labels(KIND, name),
        data={TASK_FILE: task_document(name, namespace, spec)},
    )


def _store(spec: ForecastTaskSpec) -> StoreMount:
    return store_mount(spec.artifacts, field="artifacts.uri")


def _secret_env(spec: ForecastTaskSpec, store: StoreMount) -> dict[str, SecretKeyRef]:
    secret_env = dict(store.secret_env)
    if spec.source.bearer_token_secret is not None:
        secret_env[pod_env.PROMETHEUS_TOKEN] = spec.source.bearer_token_secret
    return secret_env


def secret_refs(spec: ForecastTaskSpec) -> tuple[SecretKeyRef, ...]:
    """The Secret keys a run's pod reads (they must exist before its Job is made)."""
    return tuple(_secret_env(spec, _store(spec)).values())


def build_run_job(
    spec: ForecastTaskSpec,
    *,
    name: str,
    namespace: str,
    run: ForecastRun,
    default_image: str,
) -> Obj:
    """The Job of one run (no ownerReferences: the caller adopts it).

    ``backoffLimit`` is 0: a failed run is retried by the operator, with a backoff and a fresh
    Job, only when its failure is temporary (a pod retry would hammer a Prometheus that is down,
    and repeat a bad query for nothing).
    """
    store = _store(spec)
    labels = {**owner_labels(KIND, name), RUN_KIND_LABEL: run.kind}
    job = build_job(
        name=run_job_name(name, run),
        namespace=namespace,
        labels=labels,
        image=spec.runtime.image or default_image,
        pull_policy=spec.runtime.pull_policy,
        command=("foresight", "run", "-f", f"{TASK_DIR}/{TASK_FILE}", "--mode", run.mode),
        env=store.env,
        secret_env=_secret_env(spec, store),
        resources=spec.resources,
        placement=spec.placement,
        run_policy=RunPolicy(backoff_limit=0),
        volumes=(
            Volume(name="task", mount_path=TASK_DIR, config_map=config_map_name(name), read_only=True),
            *store.volumes,
        ),
    )
    annotations = {
        ANNOTATION_SCHEDULED: format_time(run.scheduled),
        ANNOTATION_ATTEMPT: str(run.attempt),
    }
    if run.generation is not None:
        annotations[ANNOTATION_GENERATION] = str(run.generation)
    job["metadata"]["annotations"] = annotations
    return job


def forecasts_name(task: str) -> str:
    """The scrape-mode Deployment and Service: ``<task>-forecasts`` (a valid Service name)."""
    own = child_name(task, SCRAPE_COMPONENT)
    return own if _DNS_1035.match(own) else child_name(f"ft-{task}", SCRAPE_COMPONENT)


@dataclass(frozen=True)
class ScrapeChildren:
    """What a scrape-mode task owns beyond its runs (no ownerReferences: the caller adopts them)."""

    deployment: Obj | None
    """The server of a single-pod task (``None`` for a sharded one)."""
    service: Obj
    endpoint: str
    """``http://<service>.<namespace>.svc:<port>/metrics``."""
    statefulset: Obj | None = None
    """The servers of a sharded task, one pod per shard (``None`` for a single-pod one)."""


def build_scrape_children(
    spec: ForecastTaskSpec, *, name: str, namespace: str, default_image: str
) -> ScrapeChildren:
    """The Deployment and Service that serve task ``namespace/name``'s forecasts for scraping.

    The Deployment carries the SHA-256 of its spec (:func:`~.deployment.stamp_spec_hash`), so the
    handler patches it only when what the operator wants changed.
    """
    store = _store(spec)
    labels = {**owner_labels(KIND, name), COMPONENT_LABEL: SCRAPE_COMPONENT}
    own = forecasts_name(name)
    volumes = tuple(
        Volume(name=v.name, mount_path=v.mount_path, claim=v.claim, read_only=True) for v in store.volumes
    )
    deployment = build_deployment(
        name=own,
        namespace=namespace,
        labels=labels,
        selector=labels,
        image=spec.runtime.image or default_image,
        pull_policy=spec.runtime.pull_policy,
        command=[
            *("foresight", "serve", "forecasts", "--store", spec.artifacts.uri),
            *("--namespace", namespace, "--name", name, "--host", "0.0.0.0", "--port", str(SCRAPE_PORT)),
        ],
        port=SCRAPE_PORT,
        replicas=1,
        env=store.env,
        secret_env=store.secret_env,
        resources=SERVER_RESOURCES,
        placement=spec.placement,
        volumes=volumes,
        readiness_path=HEALTH_PATH,
        container_name="forecasts",
    )
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"] = liveness_probe(HEALTH_PATH)
    service = build_service(name=own, namespace=namespace, labels=labels, selector=labels, port=SCRAPE_PORT)
    service["metadata"]["annotations"] = dict(SCRAPE_ANNOTATIONS)
    endpoint = f"http://{own}.{namespace}.svc:{SCRAPE_PORT}{METRICS_PATH}"
    if spec.parallelism > 1:
        sts = _per_shard(deployment, own, spec.parallelism)
        stamp_spec_hash(sts)
        return ScrapeChildren(deployment=None, service=service, endpoint=endpoint, statefulset=sts)
    stamp_spec_hash(deployment)
    return ScrapeChildren(deployment=deployment, service=service, endpoint=endpoint)


SCRAPE_ANNOTATIONS = {
    "prometheus.io/scrape": "true",
    "prometheus.io/port": str(SCRAPE_PORT),
    "prometheus.io/path": METRICS_PATH,
}


def _per_shard(deployment: Obj, service: str, shards: int) -> Obj:
    """The forecast server's Deployment as a StatefulSet of ``shards`` pods, pod ``i`` serving shard
    ``i`` (``--shard $(POD_NAME)``: the ordinal ends the pod's name)."""
    template = json.loads(json.dumps(deployment["spec"]["template"]))
    template["metadata"]["annotations"] = dict(SCRAPE_ANNOTATIONS)
    container = template["spec"]["containers"][0]
    container["command"] = [*container["command"], "--shard", "$(POD_NAME)"]
    pod_name = {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
    container["env"] = [*container.get("env", []), pod_name]
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": json.loads(json.dumps(deployment["metadata"])),
        "spec": {
            "replicas": shards,
            "serviceName": service,
            # The shards' servers are independent: start and replace them all at once.
            "podManagementPolicy": "Parallel",
            "selector": deployment["spec"]["selector"],
            "template": template,
        },
    }


def public_artifact_uri(spec: ForecastTaskSpec, runtime_uri: str | None) -> str | None:
    """The artifact URI as the user wrote the store (``pvc://claim/path/...``), from the runtime's.

    Inside the pod a PVC is a local directory, so the runtime reports a ``file://`` URI of its
    mount; status shows the claim instead. ``s3://`` URIs are already what the user wants.
    """
    return public_uri(spec.artifacts.uri, runtime_uri, STORE_PREFIX)


def parse_annotations(annotations: Mapping[str, str]) -> tuple[datetime, int, int | None] | None:
    """``(scheduled, attempt, generation)`` from a run Job's annotations; ``None`` when not a run Job."""
    scheduled = parse_time(annotations.get(ANNOTATION_SCHEDULED))
    if scheduled is None:
        return None
    try:
        attempt = int(annotations.get(ANNOTATION_ATTEMPT) or 1)
        gen_raw = annotations.get(ANNOTATION_GENERATION)
        generation = int(gen_raw) if gen_raw else None
    except ValueError:
        return None
    return scheduled, attempt, generation
