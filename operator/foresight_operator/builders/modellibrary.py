"""Pure builders of a ModelLibrary's children: the fetch Job with its config, and the ModelVersions of
the models the library carries.

The fetch Job runs ``foresight library fetch --config <file> [--source-dir <mount>]`` in the runtime
image (:mod:`foresight.library.job`); its config is a
:class:`~foresight.contract.library.FetchConfig` in a ConfigMap of the same name. One Job per
*fetch run*: the resource's generation, the attempt within it (a retry after a temporary failure or
an ``ActiveConflict`` that cleared is the next attempt) and the action (``fetch``, or ``withdraw``
when only ``spec.active`` turned false and the version is already stored), all in the name
(``<library>-fetch-g<generation>[-a<attempt>]``, ``<library>-withdraw-g<generation>...``) and in
annotations, so a restarted operator finds the Job it made and never makes a second one.

Where things go in the pod:

- the library store (``spec.store``): a PVC mounted as for every kind (:mod:`.store`), the config
  naming it as written (``pvc://claim/path``; the runtime resolves it under ``FORESIGHT_PVC_ROOT``),
  or S3 with its endpoint in the config and its keys from the Secret as ``AWS_*``;
- an ``s3`` source's keys from ``spec.source.store.credentialsSecret`` as
  ``FORESIGHT_SOURCE_AWS_*`` (:data:`~foresight.contract.library.SOURCE_CREDENTIALS_PREFIX`);
- a ``configMap`` source mounted read-only at :data:`SOURCE_DIR` (passed on the command line);
- a work directory (``emptyDir``) as ``TMPDIR``: the download and the unpacked archive.

The pod has no API access; ``backoffLimit`` is 0 because the operator retries temporary failures
itself, with a backoff, so ``status.consecutiveFailures`` and ``Degraded`` tell the truth.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml
from foresight.api.meta import Resources, RunPolicy, SecretKeyRef
from foresight.api.modellibrary import MODEL_LIBRARY, ModelLibrarySpec
from foresight.api.modelversion import Artifact, ModelVersionSpec
from foresight.contract.library import (
    SOURCE_CREDENTIALS_PREFIX,
    STORE_PREFIX,
    FetchConfig,
    ModelArtifact,
    store_prefix,
)
from foresight.contract.s3 import SECRET_ACCESS_KEY, SECRET_SECRET_KEY

from ..reconcile.names import NAME_LABEL, child_name, owner_labels
from .configmap import build_configmap
from .job import build_job
from .modelversion_common import model_version_manifest
from .pod import Volume
from .store import public_uri, store_mount

__all__ = [
    "ANNOTATION_ACTION",
    "ANNOTATION_ATTEMPT",
    "ANNOTATION_GENERATION",
    "ANNOTATION_SOURCE",
    "CONFIG_DIR",
    "CONFIG_FILE",
    "FETCH_DEADLINE_SECONDS",
    "FETCH_RESOURCES",
    "KIND",
    "MODEL_LIBRARY_LABEL",
    "SOURCE_DIR",
    "FetchPlan",
    "FetchRun",
    "build_fetch_configmap",
    "build_fetch_job",
    "build_library_model_version",
    "fetch_job_name",
    "library_model_version_name",
    "parse_fetch_run",
    "plan_fetch",
    "public_store_uri",
    "source_digest",
]

Obj = dict[str, Any]
KIND = MODEL_LIBRARY.kind
CONFIG_DIR = "/etc/foresight/library"
CONFIG_FILE = "fetch.yaml"
SOURCE_DIR = "/etc/foresight/library-source"
WORK_MOUNT = "/var/foresight/work"
ANNOTATION_GENERATION = "foresight.dev/generation"
ANNOTATION_ATTEMPT = "foresight.dev/attempt"
ANNOTATION_ACTION = "foresight.dev/fetch-action"
ANNOTATION_SOURCE = "foresight.dev/source-digest"
"""On a fetch Job: a digest of the spec without ``active`` (what was fetched), so that turning a
stored library inactive withdraws it without fetching the same source again."""
MODEL_LIBRARY_LABEL = "foresight.dev/modellibrary"
"""On the ModelVersions of a library's models: the ModelLibrary's name."""
FETCH_RESOURCES = Resources(cpu="500m", memory="1Gi")
"""The fetch pod: one download, JSON parsing and a leave-one-out estimate over at most 2,000 cases."""
FETCH_DEADLINE_SECONDS = 900
"""A fetch that hangs (a stalled download) ends as a failed Job after this long, and is retried."""
Action = Literal["fetch", "withdraw"]


@dataclass(frozen=True)
class FetchRun:
    """One fetch Job: for which generation, which attempt, doing what."""

    generation: int
    attempt: int = 1
    action: Action = "fetch"


def source_digest(spec: ModelLibrarySpec) -> str:
    """What a fetch depends on: the spec without ``active`` (12 hex characters)."""
    wire = {k: v for k, v in spec.to_wire().items() if k != "active"}
    return hashlib.sha256(json.dumps(wire, sort_keys=True).encode()).hexdigest()[:12]


def fetch_job_name(name: str, run: FetchRun) -> str:
    """``<library>-fetch-g<generation>[-a<attempt>]`` (``withdraw`` for a withdraw), cut and hashed to 63."""
    suffix = f"{run.action}-g{run.generation}" + (f"-a{run.attempt}" if run.attempt > 1 else "")
    return child_name(name, suffix)


def parse_fetch_run(annotations: dict[str, str] | None) -> FetchRun | None:
    """The run a fetch Job's annotations record; ``None`` when they do not."""
    meta = annotations or {}
    try:
        generation = int(meta[ANNOTATION_GENERATION])
        attempt = int(meta.get(ANNOTATION_ATTEMPT) or 1)
    except (KeyError, ValueError):
        return None
    action = meta.get(ANNOTATION_ACTION, "fetch")
    if action not in ("fetch", "withdraw"):
        return None
    return FetchRun(generation, attempt, action)  # type: ignore[arg-type]


@dataclass(frozen=True)
class FetchPlan:
    """Everything one fetch Job needs."""

    name: str
    """Of both the Job and its ConfigMap."""
    run: FetchRun
    config: FetchConfig
    image: str
    pull_policy: str
    command: tuple[str, ...]
    volumes: tuple[Volume, ...]
    env: dict[str, str] = field(default_factory=dict)
    secret_env: dict[str, SecretKeyRef] = field(default_factory=dict)
    config_map: str | None = None
    """The source ConfigMap the pod mounts (it must exist first)."""


def _source_secrets(spec: ModelLibrarySpec) -> dict[str, SecretKeyRef]:
    store = spec.source.store
    if spec.source.s3 is None or store is None or not store.credentials_secret:
        return {}
    secret = store.credentials_secret
    return {
        f"{SOURCE_CREDENTIALS_PREFIX}AWS_ACCESS_KEY_ID": SecretKeyRef(name=secret, key=SECRET_ACCESS_KEY),
        f"{SOURCE_CREDENTIALS_PREFIX}AWS_SECRET_ACCESS_KEY": SecretKeyRef(name=secret, key=SECRET_SECRET_KEY),
    }


def plan_fetch(
    spec: ModelLibrarySpec,
    *,
    name: str,
    namespace: str,
    run: FetchRun,
    default_image: str,
    library_name: str | None = None,
    protected_owners: tuple[str, ...] = (),
) -> FetchPlan:
    """The fetch Job of ``run`` for ModelLibrary ``namespace/name`` (:class:`SpecError` if it cannot run).

    ``library_name``: the name the last fetch found (a withdraw needs it); ``protected_owners``: the
    other ModelLibraries of the namespace that want to be active (their pointer is not taken over).
    """
    job_name = fetch_job_name(name, run)
    store = store_mount(spec.store, field="store.uri", volume="store")
    config = FetchConfig(
        name=name,
        namespace=namespace,
        generation=run.generation,
        spec=spec,
        action=run.action,
        library_name=library_name,
        protected_owners=sorted(protected_owners),
        store=spec.store.uri,
        store_endpoint=spec.store.endpoint,
        store_region=spec.store.region,
        store_insecure=spec.store.insecure,
        prefix=store_prefix(namespace),
    )
    volumes = [
        Volume(name="config", mount_path=CONFIG_DIR, config_map=job_name, read_only=True),
        Volume(name="work", mount_path=WORK_MOUNT, empty_dir=True),
        *store.volumes,
    ]
    command = ["foresight", "library", "fetch", "--config", f"{CONFIG_DIR}/{CONFIG_FILE}"]
    cm = spec.source.config_map
    if cm is not None and run.action == "fetch":
        volumes.append(Volume(name="source", mount_path=SOURCE_DIR, config_map=cm.name, read_only=True))
        command += ["--source-dir", SOURCE_DIR]
    secret_env = dict(store.secret_env)
    if run.action == "fetch":
        secret_env.update(_source_secrets(spec))
    return FetchPlan(
        name=job_name,
        run=run,
        config=config,
        image=spec.runtime.image or default_image,
        pull_policy=spec.runtime.pull_policy,
        command=tuple(command),
        volumes=tuple(volumes),
        env={**store.env, "TMPDIR": WORK_MOUNT},
        secret_env=secret_env,
        config_map=cm.name if cm is not None and run.action == "fetch" else None,
    )


def _labels(name: str) -> dict[str, str]:
    return owner_labels(KIND, name)


def build_fetch_configmap(plan: FetchPlan, *, name: str, namespace: str) -> Obj:
    """The ConfigMap holding the Job's config (no ownerReferences: the caller adopts it)."""
    text = yaml.safe_dump(
        plan.config.model_dump(by_alias=True, exclude_none=True, mode="json"), sort_keys=True
    )
    return build_configmap(
        name=plan.name, namespace=namespace, labels=_labels(name), data={CONFIG_FILE: text}
    )


def build_fetch_job(plan: FetchPlan, *, name: str, namespace: str) -> Obj:
    """The fetch Job (no ownerReferences: the caller adopts it)."""
    job = build_job(
        name=plan.name,
        namespace=namespace,
        labels=_labels(name),
        image=plan.image,
        pull_policy=plan.pull_policy,
        command=plan.command,
        env=plan.env,
        secret_env=plan.secret_env,
        resources=FETCH_RESOURCES,
        run_policy=RunPolicy(backoff_limit=0, active_deadline_seconds=FETCH_DEADLINE_SECONDS),
        volumes=plan.volumes,
        working_dir=WORK_MOUNT,
    )
    job["metadata"]["annotations"] = {
        ANNOTATION_GENERATION: str(plan.run.generation),
        ANNOTATION_ATTEMPT: str(plan.run.attempt),
        ANNOTATION_ACTION: plan.run.action,
        ANNOTATION_SOURCE: source_digest(plan.config.spec),
    }
    return job


def public_store_uri(spec: ModelLibrarySpec, runtime_uri: str | None) -> str | None:
    """A URI the fetch pod reported, as the user wrote the store (``pvc://claim/...`` for a PVC)."""
    return public_uri(spec.store.uri, runtime_uri, STORE_PREFIX)


_NOT_NAME = re.compile(r"[^a-z0-9-]+")
_MODEL_NAME_MAX = 50  # ModelVersionSpec.model_name


def library_model_version_name(name: str, model: str, version: str) -> str:
    """``<library>-<model>-<version>`` (a DNS label: cut and hashed past 63 characters)."""
    return child_name(name, _NOT_NAME.sub("-", f"{model}-{version}".lower()).strip("-"))


def build_library_model_version(
    library: dict[str, Any], artifact: ModelArtifact, *, library_name: str, version: str
) -> Obj:
    """The ModelVersion of one model a verified library carries (no ownerReferences: the caller adopts it).

    ``artifact`` is the stored model as the fetch result names it; its URI is turned into the store's
    public form, its sha256 is that of the model directory's manifest (what a verify Job checks).
    """
    meta = library["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    spec = ModelLibrarySpec.model_validate(dict(library.get("spec") or {}))
    uri = public_store_uri(spec, artifact.uri) or artifact.uri
    model_name = _NOT_NAME.sub("-", f"{library_name}-{artifact.name}".lower()).strip("-")[:_MODEL_NAME_MAX]
    mv_spec = ModelVersionSpec(
        model_name=model_name.rstrip("-"),
        version=re.sub(r"[^A-Za-z0-9_.-]", "-", version),
        framework="torch",
        artifact=Artifact(
            uri=uri,
            sha256=artifact.sha256 or None,
            store=spec.store if uri.startswith("s3://") else None,
        ),
        config={"kind": "library", "type": artifact.type, "library": library_name, "libraryVersion": version},
        description=f"model {artifact.name} ({artifact.type}) of library {library_name} {version}, "
        f"from ModelLibrary {namespace}/{name}",
    )
    return model_version_manifest(
        library_model_version_name(name, artifact.name, version),
        namespace,
        mv_spec,
        labels={MODEL_LIBRARY_LABEL: _labels(name)[NAME_LABEL]},
        annotations={},
    )
