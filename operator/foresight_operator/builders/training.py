"""``plan_training``: a TrainingJob spec -> the runtime's TrainConfig and what its pod needs.

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

from dataclasses import dataclass, field
from typing import Any

from foresight.api.meta import SecretKeyRef, StoreRef
from foresight.api.trainingjob import TrainingJobSpec

from ..reconcile.errors import SpecError
from .pod import Volume

__all__ = [
    "ARTIFACTS_MOUNT",
    "BUILTIN_TASK_ANNOTATION",
    "CONFIG_DIR",
    "CONFIG_FILE",
    "TrainingPlan",
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
    return env, secret_env, secrets


def _search(spec: TrainingJobSpec) -> Obj | None:
    if spec.search is None:
        return None
    s = spec.search
    space: Obj = {}
    for key, param in s.space.items():
        entry: Obj = {"type": param.type}
        if param.min is not None:
            entry["min"] = param.min
        if param.max is not None:
            entry["max"] = param.max
        if param.values:
            entry["values"] = list(param.values)
        space[key] = entry
    return {
        "trials": s.trials,
        "metric": s.metric,
        "mode": s.mode,
        "scheduler": s.scheduler,
        "gracePeriod": s.grace_period,
        "maxConcurrent": s.max_concurrent,
        "space": space,
    }


def plan_training(
    spec: TrainingJobSpec,
    *,
    namespace: str,
    name: str,
    config_map: str,
    default_image: str,
    builtin_task: str | None = None,
) -> TrainingPlan:
    """Everything the single-pod training Job of ``namespace/name`` needs.

    ``builtin_task`` is the value of the :data:`BUILTIN_TASK_ANNOTATION` annotation, if any.
    """
    if spec.distributed.backend != "none":
        raise SpecError(
            f"backend {spec.distributed.backend!r} is not served by this operator version yet; "
            "set distributed.backend: none (one pod) to train now",
            reason="UnsupportedBackend",
            field="distributed.backend",
        )
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

    config: Obj = {
        "task": task,
        "epochs": spec.epochs,
        "seed": spec.seed,
        "hyperparameters": dict(spec.hyperparameters),
        "checkpoint": {
            "uri": checkpoint_uri,
            "everyEpochs": spec.checkpoint.every_epochs,
            "keep": spec.checkpoint.keep,
        },
        "output": {"uri": output_uri},
    }
    if spec.model:
        config["model"] = spec.model
    search = _search(spec)
    if search is not None:
        config["search"] = search

    if task != "toy" and spec.dataset is not None:
        if spec.dataset.promql is not None:
            raise SpecError(
                "PromQL datasets are not read by the training runtime yet: export the series to a .npz "
                "panel (foresight.timeseries) and set dataset.uri to its pvc:// or s3:// location",
                reason="UnsupportedDataset",
                field="dataset.promql",
            )
        uri = spec.dataset.uri or ""
        data = _parse_store(uri, "dataset.uri")
        if data.scheme == "pvc":
            if data.root == artifacts.root and artifacts.scheme == "pvc":
                dataset_uri = data.prefix.rstrip("/") if data.prefix else "."
            else:
                mount = f"{DATASETS_MOUNT}/{data.root}"
                volumes.append(
                    Volume(name=f"data-{len(volumes)}", mount_path=mount, claim=data.root, read_only=True)
                )
                dataset_uri = f"{mount}/{data.prefix}".rstrip("/")
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
                if artifacts.scheme != "s3":  # else the artifacts store's settings already apply
                    e, se, s = _s3_env(store)
                    env.update(e)
                    secret_env.update(se)
                    secrets.extend(s)
        config["dataset"] = {"uri": dataset_uri}

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
    )
