"""Pure builders of a ForecastTask's children: the ConfigMap with the task YAML and one Job per run.

Every run is a Job running ``foresight run -f <task.yaml> --mode <train|auto>`` in the runtime
image. Its name comes from the task, the run kind and the scheduled time (plus the attempt for
retries), so the same scheduled run always has the same Job and a restarted operator never
makes a second one. The Job carries the run's identity in annotations, which the scheduler
reads back as the task's run history.

The artifact store: ``pvc://<claim>/<path>`` mounts the claim at ``/var/lib/foresight/pvc/<claim>``
and points the runtime's ``FORESIGHT_PVC_ROOT`` at its parent, spelled through the mount
(``<mount>/..``) so that a test kubelet that maps mount paths to local directories maps it too;
``s3://`` passes the endpoint and the credentials Secret as env. Results come back in the pod's
termination message; pods need no Kubernetes API access.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import yaml
from foresight.api.forecasttask import FORECAST_TASK, ForecastTaskSpec
from foresight.api.meta import API_VERSION, RunPolicy, SecretKeyRef

from ..reconcile.errors import SpecError
from ..reconcile.names import child_name, owner_labels
from ..schedule import RunKind
from .configmap import build_configmap
from .job import build_job
from .pod import Volume

__all__ = [
    "ANNOTATION_ATTEMPT",
    "ANNOTATION_GENERATION",
    "ANNOTATION_SCHEDULED",
    "KIND",
    "PVC_ROOT",
    "RUN_KIND_LABEL",
    "TASK_DIR",
    "TASK_FILE",
    "ForecastRun",
    "build_run_job",
    "build_task_configmap",
    "config_map_name",
    "public_artifact_uri",
    "run_job_name",
    "task_document",
]

Obj = dict[str, Any]
KIND = FORECAST_TASK.kind
TASK_DIR = "/etc/foresight/task"
TASK_FILE = "task.yaml"
PVC_ROOT = "/var/lib/foresight/pvc"
RUN_KIND_LABEL = "foresight.dev/run-kind"
ANNOTATION_SCHEDULED = "foresight.dev/scheduled-time"
ANNOTATION_ATTEMPT = "foresight.dev/attempt"
ANNOTATION_GENERATION = "foresight.dev/generation"
STORE_PREFIX = "forecasttasks"  # where the runtime keeps a task's models (foresight.forecast.runner)


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


def format_scheduled(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_job_name(task: str, run: ForecastRun) -> str:
    """``<task>-<kind>-<yyyymmddthhmmss>[-r<attempt>]``, cut and hashed to 63 characters."""
    suffix = f"{run.kind}-{_stamp(run.scheduled)}" + (f"-r{run.attempt}" if run.attempt > 1 else "")
    return child_name(task, suffix)


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


@dataclass(frozen=True)
class _Store:
    volumes: tuple[Volume, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    secret_env: dict[str, SecretKeyRef] = field(default_factory=dict)


def _store(spec: ForecastTaskSpec) -> _Store:
    art = spec.artifacts
    uri = art.uri
    if uri.startswith("pvc://"):
        claim = uri[len("pvc://") :].partition("/")[0]
        mount = f"{PVC_ROOT}/{claim}"
        return _Store(
            volumes=(Volume(name="artifacts", mount_path=mount, claim=claim),),
            env={"FORESIGHT_PVC_ROOT": f"{mount}/.."},
        )
    if uri.startswith("s3://"):
        env = {"FORESIGHT_S3_REGION": art.region, "FORESIGHT_S3_SECURE": str(not art.insecure).lower()}
        if art.endpoint:
            env["FORESIGHT_S3_ENDPOINT"] = art.endpoint
        secret_env: dict[str, SecretKeyRef] = {}
        if art.credentials_secret:
            secret_env = {
                "AWS_ACCESS_KEY_ID": SecretKeyRef(name=art.credentials_secret, key="accessKey"),
                "AWS_SECRET_ACCESS_KEY": SecretKeyRef(name=art.credentials_secret, key="secretKey"),
            }
        return _Store(env=env, secret_env=secret_env)
    raise SpecError(
        f"{uri!r}: file:// locations exist only in local mode (`foresight run --local`); in a cluster use "
        "pvc://<claim>/<path> or s3://<bucket>/<prefix>",
        reason="UnsupportedURI",
        field="artifacts.uri",
    )


def secrets_needed(spec: ForecastTaskSpec) -> tuple[str, ...]:
    """Secrets a run's pod reads (they must exist before its Job is made)."""
    names = []
    if spec.source.bearer_token_secret is not None:
        names.append(spec.source.bearer_token_secret.name)
    if spec.artifacts.uri.startswith("s3://") and spec.artifacts.credentials_secret:
        names.append(spec.artifacts.credentials_secret)
    return tuple(dict.fromkeys(names))


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
    secret_env = dict(store.secret_env)
    if spec.source.bearer_token_secret is not None:
        secret_env["FORESIGHT_PROMETHEUS_TOKEN"] = spec.source.bearer_token_secret
    labels = {**owner_labels(KIND, name), RUN_KIND_LABEL: run.kind}
    job = build_job(
        name=run_job_name(name, run),
        namespace=namespace,
        labels=labels,
        image=spec.runtime.image or default_image,
        pull_policy=spec.runtime.pull_policy,
        command=("foresight", "run", "-f", f"{TASK_DIR}/{TASK_FILE}", "--mode", run.mode),
        env=store.env,
        secret_env=secret_env,
        resources=spec.resources,
        placement=spec.placement,
        run_policy=RunPolicy(backoff_limit=0),
        volumes=(
            Volume(name="task", mount_path=TASK_DIR, config_map=config_map_name(name), read_only=True),
            *store.volumes,
        ),
    )
    annotations = {
        ANNOTATION_SCHEDULED: format_scheduled(run.scheduled),
        ANNOTATION_ATTEMPT: str(run.attempt),
    }
    if run.generation is not None:
        annotations[ANNOTATION_GENERATION] = str(run.generation)
    job["metadata"]["annotations"] = annotations
    return job


def public_artifact_uri(spec: ForecastTaskSpec, runtime_uri: str | None) -> str | None:
    """The artifact URI as the user wrote the store (``pvc://claim/path/...``), from the runtime's.

    Inside the pod a PVC is a local directory, so the runtime reports a ``file://`` URI of its
    mount; status shows the claim instead. ``s3://`` URIs are already what the user wants.
    """
    if not runtime_uri:
        return None
    if runtime_uri.startswith("s3://") or not spec.artifacts.uri.startswith("pvc://"):
        return runtime_uri
    marker = f"/{STORE_PREFIX}/"
    at = runtime_uri.find(marker)
    if at < 0:
        return runtime_uri
    return spec.artifacts.uri.rstrip("/") + runtime_uri[at:]


def parse_annotations(annotations: Mapping[str, str]) -> tuple[datetime, int, int | None] | None:
    """``(scheduled, attempt, generation)`` from a run Job's annotations; ``None`` when not a run Job."""
    raw = annotations.get(ANNOTATION_SCHEDULED)
    if not raw:
        return None
    try:
        scheduled = datetime.strptime(raw, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        attempt = int(annotations.get(ANNOTATION_ATTEMPT) or 1)
        gen_raw = annotations.get(ANNOTATION_GENERATION)
        generation = int(gen_raw) if gen_raw else None
    except ValueError:
        return None
    return scheduled, attempt, generation
