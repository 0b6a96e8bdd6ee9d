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

from foresight.api.meta import SecretKeyRef, StoreRef
from foresight.api.trainconfig import render_train_config
from foresight.api.trainingjob import TrainingJobSpec

from ..reconcile.errors import SpecError
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
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
NON_RETRYABLE_EXIT_CODES = (2, 3, 4, 5, 7, 8, 10)
"""Exit codes of ``foresight train`` for failures a retry cannot fix (invalid config, dataset not
found, NaN loss, checkpoint from another model, bad S3 credentials, PromQL error, data quality
under the spec's thresholds; see
``foresight.training.errors``). Copied rather than imported so the operator does not import torch;
a unit test keeps the two in step."""
CREDENTIALS_SECRET_ENV = "FORESIGHT_S3_CREDENTIALS_SECRET"
"""The name of the S3 credentials Secret (not its content), so BadCredentials names what to fix."""


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
            reason="UnsupportedURI",
            field=what,
        )
    raise SpecError(
        f"{uri!r}: use pvc://<claim>/<path> or s3://<bucket>/<prefix>", reason="UnsupportedURI", field=what
    )


def _s3_env(store: StoreRef) -> tuple[dict[str, str], dict[str, SecretKeyRef], tuple[str, ...]]:
    env: dict[str, str] = {
        "FORESIGHT_S3_REGION": store.region,
        "FORESIGHT_S3_SECURE": str(not store.insecure).lower(),
    }
    if store.endpoint:
        env["FORESIGHT_S3_ENDPOINT"] = store.endpoint
    secret_env: dict[str, SecretKeyRef] = {}
    secrets: tuple[str, ...] = ()
    if store.credentials_secret:
        secret = store.credentials_secret
        secret_env = {
            "AWS_ACCESS_KEY_ID": SecretKeyRef(name=secret, key="accessKey"),
            "AWS_SECRET_ACCESS_KEY": SecretKeyRef(name=secret, key="secretKey"),
        }
        secrets = (secret,)
        env[CREDENTIALS_SECRET_ENV] = secret
    return env, secret_env, secrets


def _pvc_path(data: _Store, artifacts: _Store, volumes: list[Volume]) -> str:
    """Where the pod sees ``pvc://<claim>/<prefix>``: relative to the working directory when it is
    the artifacts claim, else under a read-only mount of its claim (added to ``volumes``)."""
    if data.root == artifacts.root and artifacts.scheme == "pvc":
        return data.prefix.rstrip("/") if data.prefix else "."
    mount = f"{DATASETS_MOUNT}/{data.root}"
    if not any(v.mount_path == mount for v in volumes):
        volumes.append(Volume(name=f"data-{len(volumes)}", mount_path=mount, claim=data.root, read_only=True))
    return f"{mount}/{data.prefix}".rstrip("/")


def _teacher_path(
    spec: TrainingJobSpec, teacher_uri: str | None, artifacts: _Store, volumes: list[Volume]
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
        return _pvc_path(teacher, artifacts, volumes)
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
    task: str = spec.task
    if builtin_task is not None:
        if builtin_task not in OVERRIDABLE_TASKS:
            raise SpecError(
                f"annotation {BUILTIN_TASK_ANNOTATION}={builtin_task!r} names no runtime task; "
                f"use one of {', '.join(OVERRIDABLE_TASKS)} or remove the annotation",
                reason="UnknownTask",
            )
        task = builtin_task

    artifacts = _parse_store(spec.artifacts.uri, "artifacts.uri")
    volumes: list[Volume] = [
        Volume(name="config", mount_path=CONFIG_DIR, config_map=config_map, read_only=True)
    ]
    env: dict[str, str] = {}
    secret_env: dict[str, SecretKeyRef] = {}
    secrets: list[str] = []
    run_dir = f"{namespace}/{name}"
    if artifacts.scheme == "pvc":
        volumes.append(Volume(name="artifacts", mount_path=ARTIFACTS_MOUNT, claim=artifacts.root))
        working_dir = ARTIFACTS_MOUNT
        checkpoint_uri = artifacts.join("checkpoints", run_dir)
        output_uri = artifacts.join("models", run_dir)
        artifact_uri = f"pvc://{artifacts.root}/{output_uri}"
    else:
        volumes.append(Volume(name="work", mount_path=WORK_MOUNT, empty_dir=True))
        working_dir = WORK_MOUNT
        checkpoint_uri = f"s3://{artifacts.root}/" + artifacts.join("checkpoints", run_dir)
        output_uri = f"s3://{artifacts.root}/" + artifacts.join("models", run_dir)
        artifact_uri = output_uri
        e, se, s = _s3_env(spec.artifacts)
        env.update(e)
        secret_env.update(se)
        secrets.extend(s)

    dataset_uri: str | None = None
    if task != "toy" and spec.dataset is not None and spec.dataset.promql is not None:
        if task != "forecast":
            raise SpecError(
                f"a PromQL dataset is read by the forecast task only; task {task} reads files: set "
                "dataset.uri instead of dataset.promql",
                reason="UnsupportedDataset",
                field="dataset.promql",
            )
    elif task != "toy" and spec.dataset is not None:
        uri = spec.dataset.uri or ""
        data = _parse_store(uri, "dataset.uri")
        if data.scheme == "pvc":
            dataset_uri = _pvc_path(data, artifacts, volumes)
        else:
            dataset_uri = uri
            store = spec.dataset.store
            if store is not None:
                if artifacts.scheme == "s3" and (store.endpoint != spec.artifacts.endpoint):
                    raise SpecError(
                        f"dataset.store.endpoint {store.endpoint!r} differs from artifacts.endpoint "
                        f"{spec.artifacts.endpoint!r}; one TrainingJob talks to one S3 endpoint",
                        reason="InvalidSpec",
                        field="dataset.store.endpoint",
                    )
                if artifacts.scheme == "s3" and (
                    store.credentials_secret != spec.artifacts.credentials_secret
                ):
                    raise SpecError(
                        f"dataset.store.credentialsSecret {store.credentials_secret!r} differs from "
                        f"artifacts.credentialsSecret {spec.artifacts.credentials_secret!r}; the pod gets "
                        "one set of S3 credentials: give one Secret that can read the dataset and "
                        "write the artifacts, or drop dataset.store",
                        reason="InvalidSpec",
                        field="dataset.store.credentialsSecret",
                    )
                if artifacts.scheme != "s3":  # else the artifacts store's settings already apply
                    e, se, s = _s3_env(store)
                    env.update(e)
                    secret_env.update(se)
                    secrets.extend(s)
    pod_teacher_uri = _teacher_path(spec, teacher_uri, artifacts, volumes)
    config = render_train_config(
        spec,
        task=task,
        checkpoint_uri=checkpoint_uri,
        output_uri=output_uri,
        dataset_uri=dataset_uri,
        teacher_uri=pod_teacher_uri,
        teacher_name=teacher_name,
        grouping={"namespace": namespace, "trainingjob": name},
    )

    image = spec.runtime.image or default_image
    if task == "custom":
        command, args = tuple(spec.command), tuple(spec.args)
    else:
        command, args = ("foresight", "train", "--config", f"{CONFIG_DIR}/{CONFIG_FILE}"), ()
    return TrainingPlan(
        config=config,
        image=image,
        pull_policy=spec.runtime.pull_policy,
        command=command,
        args=args,
        volumes=tuple(volumes),
        working_dir=working_dir,
        env=env,
        secret_env=secret_env,
        secrets=tuple(dict.fromkeys(secrets)),
        artifact_uri=artifact_uri,
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
                reason="InvalidSpec",
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
