"""``plan_training``: a TrainingJob spec -> the runtime's TrainConfig and what its pods need.

For ``distributed.backend: torch``, :func:`build_ddp_job` turns the single-pod Job into an Indexed
Job of one pod per rank, and :func:`build_ddp_service` makes the headless Service that names them.

Pure: the TrainConfig document (camelCase, as ``foresight train --config`` reads it), the volumes,
working directory, env and Secrets of the training pod, and the user-facing artifact URI. A spec
that cannot work in a cluster raises :class:`~foresight_operator.reconcile.errors.SpecError`
with what to change.

Paths: a ``pvc://claim/prefix`` artifacts store is mounted at :data:`ARTIFACTS_MOUNT` and made the
working directory, and the config names checkpoint / output / dataset locations *relative* to
it. The config file is read as is (nothing rewrites paths inside it), so relative paths are what
keeps it valid wherever the volume ends up mounted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from foresight.api.meta import Reason, SecretKeyRef, StoreRef
from foresight.api.trainingjob import TrainingJobSpec, TrainingReason
from foresight.contract.s3 import s3_pod_env
from foresight.contract.train_config import render_train_config
from foresight.contract.training import NON_RETRYABLE_EXIT_CODES

from ..reconcile.errors import SpecError
from ..reconcile.jobs import JOB_NAME_LABEL
from .deployment import build_service
from .pod import Volume

__all__ = [
    "ARTIFACTS_MOUNT",
    "BUILTIN_TASK_ANNOTATION",
    "CONFIG_DIR",
    "CONFIG_FILE",
    "DDP_MASTER_PORT",
    "MASTER_PORT_ANNOTATION",
    "DdpPlan",
    "TrainingPlan",
    "build_ddp_job",
    "build_ddp_service",
    "plan_training",
]

Obj = dict[str, Any]

CONFIG_DIR = "/etc/foresight/config"
CONFIG_FILE = "train.yaml"
ARTIFACTS_MOUNT = "/var/foresight/artifacts"
WORK_MOUNT = "/var/foresight/work"
DATASETS_MOUNT = "/var/foresight/datasets"
BUILTIN_TASK_ANNOTATION = "foresight.dev/builtin-task"
"""Runs a runtime task the API's ``spec.task`` enum does not list yet; today only ``toy``, the
seconds-long smoke test that checks a cluster's training set-up (image, volumes, results)."""
OVERRIDABLE_TASKS = ("toy",)
DDP_MASTER_PORT = 29500
"""torchrun's default rendezvous port on rank 0's pod."""
MASTER_PORT_ANNOTATION = "foresight.dev/ddp-master-port"
"""Overrides :data:`DDP_MASTER_PORT`. Needed where worker pods share one network namespace
(``hostNetwork`` pods, e.g. for RDMA, or a test kubelet running pods as local processes): two DDP
jobs on the same host would otherwise both listen on 29500."""
JOB_INDEX_KEY = "batch.kubernetes.io/job-completion-index"


@dataclass(frozen=True)
class DdpPlan:
    """A ``distributed.backend: torch`` run: one pod per rank in an Indexed Job."""

    workers: int
    master_port: int
    join_timeout_seconds: int


@dataclass(frozen=True)
class TrainingPlan:
    config: Obj
    """The TrainConfig document (what goes into the ConfigMap as ``train.yaml``)."""
    image: str
    pull_policy: str
    command: tuple[str, ...]
    args: tuple[str, ...]
    volumes: tuple[Volume, ...]
    working_dir: str
    env: dict[str, str] = field(default_factory=dict)
    secret_env: dict[str, SecretKeyRef] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()
    """Secrets the pod reads: they must exist before the Job is created."""
    artifact_uri: str = ""
    """Where the trained model ends up, as the user would write it (``pvc://`` or ``s3://``)."""
    ddp: DdpPlan | None = None
    """Set for ``distributed.backend: torch``: make the Job indexed with :func:`build_ddp_job`."""


@dataclass(frozen=True)
class _Store:
    scheme: str  # pvc | s3
    root: str  # claim or bucket
    prefix: str  # "" or "path/" (always ends with / when not empty)

    def join(self, *parts: str) -> str:
        return self.prefix + "/".join(p.strip("/") for p in parts if p)


def _parse_store(uri: str, what: str) -> _Store:
    for scheme in ("pvc", "s3"):
        head = f"{scheme}://"
        if uri.startswith(head):
            root, _, rest = uri[len(head) :].partition("/")
            if not root:
                raise SpecError(f"{uri!r} has no {'claim' if scheme == 'pvc' else 'bucket'} name", field=what)
            prefix = rest.strip("/")
            return _Store(scheme, root, f"{prefix}/" if prefix else "")
    if uri.startswith("file://"):
        raise SpecError(
            f"{uri!r}: file:// locations exist only in local mode (`foresight run --local`); in a cluster "
            "use pvc://<claim>/<path> or s3://<bucket>/<prefix>",
            reason=Reason.UNSUPPORTED_URI,
            field=what,
        )
    raise SpecError(
        f"{uri!r}: use pvc://<claim>/<path> or s3://<bucket>/<prefix>",
        reason=Reason.UNSUPPORTED_URI,
        field=what,
    )


@dataclass
class _PodNeeds:
    """What the training pod needs beyond its config, collected while the plan is made."""

    volumes: list[Volume]
    env: dict[str, str] = field(default_factory=dict)
    secret_env: dict[str, SecretKeyRef] = field(default_factory=dict)

    def add_s3(self, store: StoreRef) -> None:
        s3 = s3_pod_env(store)
        self.env.update(s3.env)
        self.secret_env.update(s3.secret_env)


def _task(spec: TrainingJobSpec, builtin_task: str | None) -> str:
    if builtin_task is None:
        return spec.task
    if builtin_task not in OVERRIDABLE_TASKS:
        raise SpecError(
            f"annotation {BUILTIN_TASK_ANNOTATION}={builtin_task!r} names no runtime task; "
            f"use one of {', '.join(OVERRIDABLE_TASKS)} or remove the annotation",
            reason=TrainingReason.UNKNOWN_TASK,
        )
    return builtin_task


@dataclass(frozen=True)
class _Locations:
    working_dir: str
    checkpoint_uri: str
    output_uri: str
    artifact_uri: str
    """Where the trained model ends up, as the user would write it."""


def _locations(spec: TrainingJobSpec, artifacts: _Store, run_dir: str, needs: _PodNeeds) -> _Locations:
    """Checkpoints and the model under the artifacts store; a ``pvc://`` store is mounted as the
    working directory (the config's paths are relative to it), an ``s3://`` one gets a scratch dir."""
    if artifacts.scheme == "pvc":
        needs.volumes.append(Volume(name="artifacts", mount_path=ARTIFACTS_MOUNT, claim=artifacts.root))
        output_uri = artifacts.join("models", run_dir)
        return _Locations(
            working_dir=ARTIFACTS_MOUNT,
            checkpoint_uri=artifacts.join("checkpoints", run_dir),
            output_uri=output_uri,
            artifact_uri=f"pvc://{artifacts.root}/{output_uri}",
        )
    needs.volumes.append(Volume(name="work", mount_path=WORK_MOUNT, empty_dir=True))
    needs.add_s3(spec.artifacts)
    bucket = f"s3://{artifacts.root}/"
    output_uri = bucket + artifacts.join("models", run_dir)
    return _Locations(
        working_dir=WORK_MOUNT,
        checkpoint_uri=bucket + artifacts.join("checkpoints", run_dir),
        output_uri=output_uri,
        artifact_uri=output_uri,
    )


def _check_promql_dataset(task: str) -> None:
    if task != "forecast":
        raise SpecError(
            f"a PromQL dataset is read by the forecast task only; task {task} reads files: set "
            "dataset.uri instead of dataset.promql",
            reason=TrainingReason.UNSUPPORTED_DATASET,
            field="dataset.promql",
        )


def _check_one_s3_identity(spec: TrainingJobSpec, store: StoreRef) -> None:
    """One pod talks to one S3 endpoint with one set of credentials: a dataset store that differs from
    the artifacts store is refused, not silently replaced by the artifacts' settings."""
    if store.endpoint != spec.artifacts.endpoint:
        raise SpecError(
            f"dataset.store.endpoint {store.endpoint!r} differs from artifacts.endpoint "
            f"{spec.artifacts.endpoint!r}; one TrainingJob talks to one S3 endpoint",
            reason=Reason.INVALID_SPEC,
            field="dataset.store.endpoint",
        )
    if store.credentials_secret != spec.artifacts.credentials_secret:
        raise SpecError(
            f"dataset.store.credentialsSecret {store.credentials_secret!r} differs from "
            f"artifacts.credentialsSecret {spec.artifacts.credentials_secret!r}; the pod gets "
            "one set of S3 credentials: give one Secret that can read the dataset and "
            "write the artifacts, or drop dataset.store",
            reason=Reason.INVALID_SPEC,
            field="dataset.store.credentialsSecret",
        )


def _pvc_path(data: _Store, artifacts: _Store, needs: _PodNeeds) -> str:
    """Where the pod sees ``pvc://<claim>/<prefix>``: relative to the working directory when it is
    the artifacts claim, else under a read-only mount of its claim (added to the pod's volumes)."""
    if data.root == artifacts.root and artifacts.scheme == "pvc":
        return data.prefix.rstrip("/") if data.prefix else "."
    mount = f"{DATASETS_MOUNT}/{data.root}"
    if not any(v.mount_path == mount for v in needs.volumes):
        needs.volumes.append(
            Volume(name=f"data-{len(needs.volumes)}", mount_path=mount, claim=data.root, read_only=True)
        )
    return f"{mount}/{data.prefix}".rstrip("/")


def _file_dataset(spec: TrainingJobSpec, artifacts: _Store, needs: _PodNeeds) -> str:
    """The dataset as the pod reads it: a ``pvc://`` dataset is a path (see :func:`_pvc_path`); an
    ``s3://`` dataset needs its store's S3 environment."""
    assert spec.dataset is not None
    uri = spec.dataset.uri or ""
    data = _parse_store(uri, "dataset.uri")
    if data.scheme == "pvc":
        return _pvc_path(data, artifacts, needs)
    store = spec.dataset.store
    if store is not None:
        if artifacts.scheme == "s3":
            _check_one_s3_identity(spec, store)  # the artifacts store's settings already apply
        else:
            needs.add_s3(store)
    return uri


def _teacher_path(
    spec: TrainingJobSpec, teacher_uri: str | None, artifacts: _Store, needs: _PodNeeds
) -> str | None:
    """Where the pod reads the distillation teacher's model directory (``None``: no distillation)."""
    if spec.distillation is None:
        return None
    uri = teacher_uri or spec.distillation.teacher.uri
    if uri is None:
        # A teacher ModelVersion not resolved by the caller: only the reconcile handler renders the
        # ConfigMap, and it resolves (or waits for) the ModelVersion first.
        return None
    teacher = _parse_store(uri, "distillation.teacher")
    if teacher.scheme == "pvc":
        return _pvc_path(teacher, artifacts, needs)
    if artifacts.scheme != "s3":
        raise SpecError(
            f"teacher {uri} is on S3 but artifacts.uri {spec.artifacts.uri} is not: the pod reads an "
            "s3:// teacher with the artifacts store's endpoint and credentials; put both on one store",
            field="distillation.teacher",
        )
    return uri


def plan_training(
    spec: TrainingJobSpec,
    *,
    namespace: str,
    name: str,
    config_map: str,
    default_image: str,
    builtin_task: str | None = None,
    master_port: str | None = None,
    teacher_uri: str | None = None,
    teacher_name: str | None = None,
) -> TrainingPlan:
    """Everything the training Job of ``namespace/name`` needs (one pod, or DDP workers).

    ``builtin_task`` is the value of the :data:`BUILTIN_TASK_ANNOTATION` annotation, if any;
    ``master_port`` the value of :data:`MASTER_PORT_ANNOTATION`, if any; ``teacher_uri`` the
    distillation teacher's artifact URI (``spec.distillation.teacher.uri``, or the artifact of the
    ModelVersion it names, resolved by the handler) and ``teacher_name`` what the spec named.
    """
    # backend ray: the same plan (config, volumes, env) goes into a KubeRay RayJob instead of a
    # Job (builders.rayjob); whether the RayJob CRD is installed is the handler's question.
    ddp = _ddp_plan(spec, master_port)
    task = _task(spec, builtin_task)
    artifacts = _parse_store(spec.artifacts.uri, "artifacts.uri")
    needs = _PodNeeds(
        volumes=[Volume(name="config", mount_path=CONFIG_DIR, config_map=config_map, read_only=True)]
    )
    where = _locations(spec, artifacts, f"{namespace}/{name}", needs)
    dataset_uri: str | None = None
    if task != "toy" and spec.dataset is not None:
        if spec.dataset.promql is not None:
            _check_promql_dataset(task)
        else:
            dataset_uri = _file_dataset(spec, artifacts, needs)
    config = render_train_config(
        spec,
        task=task,
        checkpoint_uri=where.checkpoint_uri,
        output_uri=where.output_uri,
        dataset_uri=dataset_uri,
        teacher_uri=_teacher_path(spec, teacher_uri, artifacts, needs),
        teacher_name=teacher_name,
        grouping={"namespace": namespace, "trainingjob": name},
    )
    if task == "custom":
        command, args = tuple(spec.command), tuple(spec.args)
    else:
        command, args = ("foresight", "train", "--config", f"{CONFIG_DIR}/{CONFIG_FILE}"), ()
    return TrainingPlan(
        config=config,
        image=spec.runtime.image or default_image,
        pull_policy=spec.runtime.pull_policy,
        command=command,
        args=args,
        volumes=tuple(needs.volumes),
        working_dir=where.working_dir,
        env=needs.env,
        secret_env=needs.secret_env,
        secrets=tuple(dict.fromkeys(ref.name for ref in needs.secret_env.values())),
        artifact_uri=where.artifact_uri,
        ddp=ddp,
    )


def _ddp_plan(spec: TrainingJobSpec, master_port: str | None) -> DdpPlan | None:
    if spec.distributed.backend != "torch":
        return None
    port = DDP_MASTER_PORT
    if master_port is not None:
        try:
            port = int(master_port)
        except ValueError:
            port = 0
        if not 1024 <= port <= 65535:
            raise SpecError(
                f"annotation {MASTER_PORT_ANNOTATION}={master_port!r} is not a port number in 1024-65535; "
                "fix it or remove the annotation (default 29500)",
                reason=Reason.INVALID_SPEC,
            )
    return DdpPlan(
        workers=spec.distributed.workers,
        master_port=port,
        join_timeout_seconds=spec.distributed.join_timeout_seconds,
    )


def build_ddp_service(
    *, name: str, namespace: str, labels: Mapping[str, str], job_name: str, ddp: DdpPlan
) -> Obj:
    """The headless Service that gives each worker pod a DNS name ``<job>-<index>.<service>``.

    Its name is the pods' ``subdomain``; it selects the Job's pods by the job-name label Kubernetes
    puts on them, and publishes not-ready pods too (workers resolve rank 0 before anyone is ready).
    """
    return build_service(
        name=name,
        namespace=namespace,
        labels=labels,
        selector={JOB_NAME_LABEL: job_name},
        port=ddp.master_port,
        target_port=ddp.master_port,
        port_name="c10d",
        headless=True,
    )


def build_ddp_job(job: Obj, *, ddp: DdpPlan, service: str) -> Obj:
    """The single-pod training ``job`` (from ``build_job``) made into a DDP Indexed Job (a new dict).

    ``completions = parallelism = workers``; each pod gets the torchrun environment: ``WORLD_SIZE``,
    ``RANK`` (the pod's completion index, from its annotation), ``LOCAL_RANK`` 0 (one process per
    pod), ``MASTER_ADDR`` = rank 0's stable name ``<job>-0.<service>`` (Kubernetes names an Indexed
    Job's pods ``<job>-<index>`` and their ``subdomain`` is the headless Service) and
    ``MASTER_PORT``. A failed pod is replaced by a pod of the same index (``backoffLimit`` counts
    every failed pod); its rank resumes from the newest checkpoint. Failures a retry cannot fix
    (:data:`NON_RETRYABLE_EXIT_CODES`) fail the Job at once through ``podFailurePolicy``, and
    disruptions (eviction, preemption, node drain) do not count against ``backoffLimit``.
    """
    out: Obj = json.loads(json.dumps(job))
    name = out["metadata"]["name"]
    spec = out["spec"]
    spec["completionMode"] = "Indexed"
    spec["completions"] = ddp.workers
    spec["parallelism"] = ddp.workers
    pod = spec["template"]["spec"]
    pod["subdomain"] = service
    container = pod["containers"][0]
    spec["podFailurePolicy"] = {
        "rules": [
            {
                "action": "FailJob",
                "onExitCodes": {
                    "containerName": container["name"],
                    "operator": "In",
                    "values": list(NON_RETRYABLE_EXIT_CODES),
                },
            },
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
        ]
    }
    ddp_env: list[Obj] = [
        {"name": "WORLD_SIZE", "value": str(ddp.workers)},
        {
            "name": "RANK",
            "valueFrom": {"fieldRef": {"fieldPath": f"metadata.annotations['{JOB_INDEX_KEY}']"}},
        },
        {"name": "LOCAL_RANK", "value": "0"},
        {"name": "MASTER_ADDR", "value": f"{name}-0.{service}"},
        {"name": "MASTER_PORT", "value": str(ddp.master_port)},
    ]
    taken = {e["name"] for e in ddp_env}
    container["env"] = [e for e in container.get("env") or [] if e["name"] not in taken] + ddp_env
    return out
