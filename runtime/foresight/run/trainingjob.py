"""``foresight run -f trainingjob.yaml --local | --hosts ...``: a TrainingJob without Kubernetes.

The same YAML a cluster runs, through the same runtime entry point as its pods
(``foresight train --config``, started per rank by :mod:`foresight.run.rank_agent`), with the
TrainConfig rendered by the same function as the operator's
(:func:`foresight.contract.train_config.render_train_config`). Only *where* differs:

- ``--local``: ranks are processes on this machine: one, or ``distributed.workers`` DDP ranks
  (gloo on 127.0.0.1, NCCL when each rank gets a GPU) for ``backend: torch``. ``pvc://`` locations
  resolve under ``--state-dir`` (``<state>/pvc/<claim>/<path>``), ``file://`` as they are, ``s3://``
  through the S3 endpoint of the spec with keys from ``AWS_ACCESS_KEY_ID`` /
  ``AWS_SECRET_ACCESS_KEY``.
- ``--hosts`` / ``--hosts-file``: ranks on SSH hosts (:mod:`foresight.run.hosts`), one per host x
  GPU (one per host on CPU), rendezvous on the first host. Checkpoints and the model go to a
  store every host sees: ``s3://`` (or a ``file://`` path mounted at the same place everywhere).
  A host that drops is handled by ``--on-host-failure``: ``resume`` (default: go on without it,
  from the newest checkpoint), ``wait`` (until it answers again) or ``fail``.

Retryable failures (a rank killed, workers that did not join) restart every rank from the newest
checkpoint, up to ``runPolicy.backoffLimit`` times; ``runPolicy.activeDeadlineSeconds`` bounds
the whole run. At the end: a kubectl-like status, the ModelVersion record in the artifact store
(:mod:`foresight.run.training_record`), the training-curves PNG next to the model, and
``<state>/trainingjobs/<namespace>/<name>/status.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlparse

import yaml

from foresight import __version__
from foresight.api.trainingjob import TrainingJobSpec
from foresight.artifacts import ArtifactError, ArtifactStore, S3Options, open_store
from foresight.contract import env as pod_env
from foresight.contract.s3 import S3Environment
from foresight.contract.train_config import render_train_config

from .hosts import Host, HostCheck, HostsError, SshClient, load_inventory, parse_hosts, preflight
from .launcher import Attempt, Launcher, RankSpec
from .local import DEFAULT_STATE_DIR, TaskFileError, apply_overrides, s3_options
from .training_record import find_record, model_version_record, read_distillation, write_record
from .training_report import build_status, format_event, format_status

__all__ = [
    "BAD_INPUT_REASONS",
    "HOST_FAILURE_POLICIES",
    "JobFile",
    "apply_overrides",
    "is_trainingjob_file",
    "load_trainingjob",
    "main_trainingjob",
]

HOST_FAILURE_POLICIES = ("resume", "wait", "fail")
BAD_INPUT_REASONS = (
    "InvalidConfig", "DatasetNotFound", "DataQualityFailed", "PromQLError", "BadCredentials",
    "CheckpointMismatch", "NaNLoss",
)  # fmt: skip
"""Failures a restart cannot fix: exit code 2 (fix the spec or the data)."""
HOST_PROBE_INTERVAL_S = 5.0


@dataclass(frozen=True)
class JobFile:
    name: str
    namespace: str
    spec: TrainingJobSpec


def is_trainingjob_file(path: str) -> bool:
    """Whether the first foresight.dev document of ``path`` is a TrainingJob (``-`` is never one)."""
    if path == "-":
        return False
    try:
        docs = list(yaml.safe_load_all(Path(path).read_text()))
    except (OSError, yaml.YAMLError):
        return False
    ours = [
        d for d in docs if isinstance(d, dict) and str(d.get("apiVersion", "")).startswith("foresight.dev/")
    ]
    return bool(ours) and ours[0].get("kind") == "TrainingJob"


def load_trainingjob(path: str, *, sets: Sequence[str] = (), default_namespace: str = "default") -> JobFile:
    """The TrainingJob of a YAML file with ``--set`` overrides, validated as the API server would."""
    from foresight.api.validation import validate_object

    try:
        docs = [d for d in yaml.safe_load_all(Path(path).read_text()) if d is not None]
    except OSError as exc:
        raise TaskFileError(path, f"cannot read: {exc}") from exc
    except yaml.YAMLError as exc:
        raise TaskFileError(path, f"not valid YAML: {exc}") from exc
    doc = next(
        (
            d
            for d in docs
            if isinstance(d, dict) and str(d.get("apiVersion", "")).startswith("foresight.dev/")
        ),
        None,
    )
    if doc is None or doc.get("kind") != "TrainingJob":
        raise TaskFileError(
            path, "no TrainingJob in the file (apiVersion foresight.dev/v1alpha1, kind TrainingJob)"
        )
    try:
        doc = apply_overrides(doc, sets)
    except ValueError as exc:
        raise TaskFileError(path, str(exc)) from exc
    errors = validate_object(doc)
    if errors:
        with_sets = " (after --set)" if sets else ""
        raise TaskFileError(path, f"invalid{with_sets}: " + "; ".join(str(e) for e in errors))
    meta = doc.get("metadata") or {}
    return JobFile(
        name=str(meta["name"]),
        namespace=str(meta.get("namespace") or default_namespace),
        spec=TrainingJobSpec.model_validate(doc["spec"]),
    )


# --- where things are -----------------------------------------------------------------------


@dataclass(frozen=True)
class Locations:
    root: str
    """The artifact store's root as the ranks see it (a path or ``s3://bucket/prefix``)."""
    checkpoint: str
    output: str
    dataset: str | None = None
    teacher: str | None = None
    teacher_name: str | None = None


def _join(root: str, *parts: str) -> str:
    return "/".join([root.rstrip("/"), *(p.strip("/") for p in parts if p)])


def _place(uri: str, *, pvc_root: Path | None, what: str, path: str) -> str:
    """``uri`` as a rank reads it: ``pvc://`` under ``pvc_root`` (local mode), ``file://`` a path."""
    parsed = urlparse(uri)
    if parsed.scheme == "pvc":
        if pvc_root is None:
            raise TaskFileError(
                path,
                f"{what} {uri}: pvc:// exists only in a cluster (and under --state-dir in --local mode); "
                "on SSH hosts use s3:// (a store every host reaches) or file:// on a shared mount",
            )
        return str(pvc_root / parsed.netloc / parsed.path.lstrip("/"))
    if parsed.scheme == "file":
        return parsed.path
    return uri


def resolve_locations(job: JobFile, *, pvc_root: Path | None, path: str, s3: S3Options | None) -> Locations:
    """Checkpoint, output, dataset and teacher locations, as in the cluster's layout."""
    spec = job.spec
    root = _place(spec.artifacts.uri, pvc_root=pvc_root, what="artifacts.uri", path=path)
    run_dir = f"{job.namespace}/{job.name}"
    dataset = None
    if spec.dataset is not None and spec.dataset.uri:
        dataset = _place(spec.dataset.uri, pvc_root=pvc_root, what="dataset.uri", path=path)
    teacher = teacher_name = None
    if spec.distillation is not None:
        ref = spec.distillation.teacher
        teacher_name = ref.model_version or ref.uri
        uri = ref.uri
        if ref.model_version is not None:
            record = find_record(_store(root, s3), job.namespace, ref.model_version)
            if record is None:
                raise TaskFileError(
                    path,
                    f"distillation.teacher.modelVersion {ref.model_version}: no ModelVersion record "
                    f"{job.namespace}/{ref.model_version} in {root}/modelversions (the record a local or "
                    "SSH run of the teacher's TrainingJob wrote); run the teacher first, or name its "
                    "artifact with distillation.teacher.uri",
                )
            uri = str(record["spec"]["artifact"]["uri"])
        assert uri is not None
        teacher = _place(uri, pvc_root=pvc_root, what="distillation.teacher", path=path)
    return Locations(
        root=root,
        checkpoint=_join(root, "checkpoints", run_dir),
        output=_join(root, "models", run_dir),
        dataset=dataset,
        teacher=teacher,
        teacher_name=teacher_name,
    )


def _store(root: str, s3: S3Options | None) -> ArtifactStore:
    return open_store(root, s3=s3 if root.startswith("s3://") else None)


def _s3(
    spec: TrainingJobSpec, environ: Mapping[str, str]
) -> tuple[S3Options | None, dict[str, str], dict[str, str]]:
    """S3 options for this process, and the ranks' S3 environment: plain, and secret (on stdin only)."""
    uses_s3 = spec.artifacts.uri.startswith("s3://") or bool(
        spec.dataset and spec.dataset.uri and spec.dataset.uri.startswith("s3://")
    )
    if not uses_s3:
        return None, {}, {}
    store = (
        spec.artifacts
        if spec.artifacts.uri.startswith("s3://")
        else (spec.dataset.store if spec.dataset else None)
    )
    store = store or spec.artifacts
    opts = s3_options(environ, store.endpoint, store.region, store.insecure)
    # What a pod's env holds (the contract's names), so the ranks read it as pods do.
    env = S3Environment(endpoint=opts.endpoint, region=opts.region, secure=opts.secure).to_environ()
    secret = {k: environ[k] for k in pod_env.AWS_CREDENTIALS if environ.get(k)}
    return opts, env, secret


# --- placing ranks --------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _dist_env(
    rank: int, world: int, local_rank: int, master: str, port: int, gpu: int | None
) -> dict[str, str]:
    return {
        "RANK": str(rank),
        "WORLD_SIZE": str(world),
        "LOCAL_RANK": str(local_rank),
        "MASTER_ADDR": master,
        "MASTER_PORT": str(port),
        # One GPU per rank (or none: a CPU job must not grab a GPU it did not ask for).
        "CUDA_VISIBLE_DEVICES": "" if gpu is None else str(gpu),
    }


def local_ranks(spec: TrainingJobSpec, environ: Mapping[str, str], emit: Any, path: str) -> list[RankSpec]:
    """The ranks of a ``--local`` run: one, or ``workers`` DDP processes for ``backend: torch``."""
    workers = spec.distributed.workers if spec.distributed.backend == "torch" else 1
    gpus: list[int | None] = [None] * workers
    if spec.resources.gpu > 0:
        import torch

        visible = torch.cuda.device_count()
        if visible == 0:
            emit(f"note: resources.gpu is {spec.resources.gpu} but this machine has no GPU: training on CPU")
        elif visible < workers:
            raise TaskFileError(
                path,
                f"{workers} ranks need one GPU each and {visible} are visible: --set distributed.workers="
                f"{visible}, or --set resources.gpu=0 to train on CPU",
            )
        else:
            gpus = list(range(workers))
    port = _free_port()
    threads = {}
    if workers > 1 and "OMP_NUM_THREADS" not in environ:
        # As torchrun does: N ranks each using every core would fight over them.
        threads = {"OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // workers))}
    return [
        RankSpec(rank=r, host=None, env={**_dist_env(r, workers, r, "127.0.0.1", port, gpus[r]), **threads})
        for r in range(workers)
    ]


def host_ranks(checks: Sequence[HostCheck]) -> list[RankSpec]:
    """One rank per host x GPU (one per host on CPU); rank 0 on the first host hosts the rendezvous."""
    slots = [(c.host, i, gpu) for c in checks for i, gpu in enumerate(c.gpus or [None])]
    master = checks[0].host.rendezvous_address
    port = checks[0].free_port or 29500
    world = len(slots)
    return [
        RankSpec(rank=r, host=h, env=_dist_env(r, world, local, master, port, gpu))
        for r, (h, local, gpu) in enumerate(slots)
    ]


# --- the run --------------------------------------------------------------------------------


@dataclass
class HostPlan:
    """Everything an SSH run needs to (re)place its ranks on the hosts still in the job."""

    ssh: SshClient
    hosts: list[Host]
    policy: str
    wait_timeout_s: float
    want_gpus: bool
    dataset_path: str | None
    s3_endpoint: str | None
    dropped: list[Host] = field(default_factory=list)

    def check(self, hosts: Sequence[Host]) -> list[HostCheck]:
        return preflight(
            self.ssh, hosts, version=__version__, want_gpus=self.want_gpus,
            dataset_path=self.dataset_path, s3_endpoint=self.s3_endpoint,
        )  # fmt: skip


@dataclass
class Outcome:
    attempt: Attempt
    restarts: int
    hosts: list[str]


def _next_hosts(plan: HostPlan, attempt: Attempt, emit: Any) -> list[HostCheck] | None:
    """After a host dropped: the checked hosts to go on with, or ``None`` to stop (policy / none left)."""
    names = ", ".join(h.label for h in attempt.lost)
    if plan.policy == "fail":
        emit(f"host(s) {names} dropped; --on-host-failure fail: stopping")
        return None
    if plan.policy == "resume":
        plan.dropped += attempt.lost
        plan.hosts = [h for h in plan.hosts if h not in attempt.lost]
        if not plan.hosts:
            emit(f"host(s) {names} dropped and no host is left")
            return None
        emit(f"host(s) {names} dropped; resuming from the newest checkpoint on {len(plan.hosts)} host(s)")
        return plan.check(plan.hosts)
    emit(
        f"host(s) {names} dropped; waiting up to {plan.wait_timeout_s:g}s for them to answer "
        "(--on-host-failure wait)"
    )
    end = time.monotonic() + plan.wait_timeout_s
    while True:
        try:
            checks = plan.check(plan.hosts)
        except HostsError as exc:
            if time.monotonic() > end:
                emit(f"still unreachable after {plan.wait_timeout_s:g}s: {exc}")
                return None
            time.sleep(HOST_PROBE_INTERVAL_S)
            continue
        emit(f"every host answers again; resuming from the newest checkpoint on {len(checks)} host(s)")
        return checks


def run_attempts(
    launcher: Launcher,
    ranks: list[RankSpec],
    config: Mapping[str, Any],
    secret_env: Mapping[str, str],
    *,
    spec: TrainingJobSpec,
    plan: HostPlan | None,
) -> Outcome:
    """Attempts until success, a failure a restart cannot fix, the backoff limit or the deadline."""
    policy = spec.run_policy
    deadline = time.monotonic() + policy.active_deadline_seconds if policy.active_deadline_seconds else None
    restarts = host_restarts = 0
    while True:
        placed = list(dict.fromkeys(r.host.label for r in ranks if r.host is not None)) or ["local"]
        launcher.emit(f"starting {len(ranks)} rank(s) on {', '.join(placed)}")
        attempt = launcher.run(ranks, config, secret_env, deadline=deadline)
        if attempt.ok or attempt.interrupted or attempt.reason == "DeadlineExceeded":
            return Outcome(attempt, restarts, placed)
        if attempt.lost and plan is not None:
            # A lost host is a disruption (a pod's node going away), not a failure of the job: it does
            # not count against backoffLimit, but a job cannot lose hosts forever.
            host_restarts += 1
            checks = _next_hosts(plan, attempt, launcher.emit) if host_restarts <= 3 * len(ranks) else None
            if checks is None:
                return Outcome(attempt, restarts, placed)
            ranks = host_ranks(checks)
        elif attempt.retryable and restarts < policy.backoff_limit:
            launcher.emit(
                f"{attempt.reason}: {attempt.message}; restarting every rank from the newest checkpoint"
            )
        else:
            if attempt.retryable:
                attempt.message += f" (runPolicy.backoffLimit {policy.backoff_limit} reached)"
            return Outcome(attempt, restarts, placed)
        restarts += 1


def _exit_code(attempt: Attempt) -> int:
    if attempt.ok:
        return 0
    if attempt.interrupted:
        return 130
    if attempt.reason in BAD_INPUT_REASONS:
        return 2
    return 3 if attempt.retryable else 1


def _finish(
    job: JobFile,
    outcome: Outcome,
    *,
    locations: Locations,
    s3: S3Options | None,
    mode: str,
    started: datetime,
    state_dir: Path,
    out: TextIO,
) -> int:
    """Record the model (on success), print the status, write ``status.json``; returns the exit code."""
    attempt, spec = outcome.attempt, job.spec
    finished = datetime.now(tz=UTC)
    result = attempt.results.get(0)
    mv_name = None
    if attempt.ok and result is not None and spec.output is not None and spec.output.create_model_version:
        mv_name = _record(job, result, locations=locations, s3=s3, mode=mode, finished=finished, out=out)
    status = build_status(
        ok=attempt.ok, reason=attempt.reason, message=attempt.message, epochs=spec.epochs,
        result=result if attempt.ok else _failure_doc(attempt), last_epoch=attempt.last_epoch,
        restarts=outcome.restarts, started=started, finished=finished, model_version=mv_name,
    )  # fmt: skip
    where = ", ".join(outcome.hosts)
    out.write("\n" + format_status(status, name=job.name, namespace=job.namespace, where=where) + "\n")
    hashes = {rank: doc.get("stateSha256") for rank, doc in sorted(attempt.results.items())}
    if attempt.ok and len(hashes) > 1:
        same = len(set(hashes.values())) == 1
        out.write(f"\nFinal weights on the {len(hashes)} ranks: {'identical' if same else 'DIFFERENT'} "
                  f"(sha256 {next(iter(hashes.values()))})\n")  # fmt: skip
    if attempt.ok and result is not None and result.get("artifactUri"):
        out.write(f"Training curves: {str(result['artifactUri']).rstrip('/')}/training-curves.png\n")
    target = state_dir / "trainingjobs" / job.namespace / job.name / "status.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(
        {"status": status.to_wire(), "ranks": {str(k): v for k, v in attempt.results.items()},
         "hosts": outcome.hosts, "mode": mode}, indent=2, sort_keys=True, default=str,
    ))  # fmt: skip
    out.write(f"Status written to {target}\n")
    out.flush()
    return _exit_code(attempt)


def _failure_doc(attempt: Attempt) -> dict[str, Any] | None:
    # The failing rank's result carries what status shows of a failure (a data quality report).
    for run in attempt.runs:
        if run.result is not None and run.result.get("reason") == attempt.reason:
            return run.result
    return None


def _record(
    job: JobFile,
    result: Mapping[str, Any],
    *,
    locations: Locations,
    s3: S3Options | None,
    mode: str,
    finished: datetime,
    out: TextIO,
) -> str | None:
    try:
        model_store = _store(str(result["artifactUri"]), s3)
        record = model_version_record(
            job.spec, job=job.name, namespace=job.namespace, result=result, finished=finished, mode=mode,
            distillation=read_distillation(model_store),
        )  # fmt: skip
        uri = write_record(_store(locations.root, s3), record)
    except (ArtifactError, OSError, KeyError, ValueError) as exc:
        out.write(f"warning: the ModelVersion record was not written: {exc}\n")
        return None
    out.write(f"\nModelVersion {record['metadata']['name']} recorded at {uri}\n")
    return str(record["metadata"]["name"])


def _setup_hosts(
    args: argparse.Namespace, job: JobFile, locations: Locations, s3: S3Options | None
) -> HostPlan:
    spec = job.spec
    if spec.task == "custom":
        raise HostsError("a custom task runs your image's command: run it on the hosts yourself")
    if spec.distributed.backend == "ray" or spec.search is not None:
        raise HostsError(
            "over SSH foresight runs torch DDP ranks; a Ray backend or a search needs a Ray cluster: run it "
            "with --local (Ray on this machine) or in Kubernetes (KubeRay)"
        )
    remote_env = dict(kv.split("=", 1) for kv in args.remote_env or [])
    if args.hosts_file:
        hosts = load_inventory(args.hosts_file, python=args.remote_python, env=remote_env)
    else:
        hosts = parse_hosts(args.hosts, python=args.remote_python, env=remote_env)
    ssh = SshClient(identity_file=args.identity_file, options=tuple(args.ssh_option or ()))
    dataset_path = (
        locations.dataset if locations.dataset and not locations.dataset.startswith("s3://") else None
    )
    return HostPlan(
        ssh=ssh, hosts=hosts, policy=args.on_host_failure, wait_timeout_s=args.host_wait_timeout,
        want_gpus=spec.resources.gpu > 0, dataset_path=dataset_path, s3_endpoint=s3.endpoint if s3 else None,
    )  # fmt: skip


def main_trainingjob(
    args: argparse.Namespace, *, environ: Mapping[str, str] | None = None, stdout: TextIO | None = None
) -> int:
    """``foresight run -f trainingjob.yaml --local | --hosts ...``; returns the exit code."""
    env = dict(os.environ) if environ is None else dict(environ)
    out = stdout or sys.stdout

    def emit(line: str) -> None:
        out.write(line + "\n")
        out.flush()

    try:
        return _main(args, env, out, emit)
    except KeyboardInterrupt:  # Ctrl-C before any rank started (ranks are stopped by the launcher)
        print("interrupted: nothing was started", file=sys.stderr, flush=True)
        return 130


def _main(args: argparse.Namespace, env: Mapping[str, str], out: TextIO, emit: Callable[[str], None]) -> int:
    state_dir = Path(args.state_dir or DEFAULT_STATE_DIR).resolve()
    ssh_mode = bool(args.hosts or args.hosts_file)
    try:
        job = load_trainingjob(
            args.filename, sets=args.set or (), default_namespace=args.namespace or "default"
        )
        if job.spec.task == "custom":
            raise TaskFileError(
                args.filename, "a custom task runs your own image and command: run that command"
            )
        s3, s3_env, secret_env = _s3(job.spec, env)
        locations = resolve_locations(
            job, pvc_root=None if ssh_mode else state_dir / "pvc", path=args.filename, s3=s3
        )
        config = render_train_config(
            job.spec, task=job.spec.task, checkpoint_uri=locations.checkpoint, output_uri=locations.output,
            dataset_uri=locations.dataset, teacher_uri=locations.teacher, teacher_name=locations.teacher_name,
            grouping={"namespace": job.namespace, "trainingjob": job.name},
        )  # fmt: skip
        plan = _setup_hosts(args, job, locations, s3) if ssh_mode else None
        if plan is not None:
            emit(f"checking {len(plan.hosts)} host(s) over SSH: " + ", ".join(h.label for h in plan.hosts))
            ranks = host_ranks(plan.check(plan.hosts))
        else:
            ranks = local_ranks(job.spec, env, emit, args.filename)
    except (TaskFileError, HostsError, ArtifactError) as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    mode = "ssh" if ssh_mode else "local"
    model = f", model {job.spec.model}" if job.spec.model else ""
    emit(f"running TrainingJob {job.namespace}/{job.name} ({mode}): task {job.spec.task}{model}, "
         f"{job.spec.epochs} epochs")  # fmt: skip
    launcher = Launcher(emit=emit, format_event=format_event, ssh=plan.ssh if plan else None)
    started = datetime.now(tz=UTC)
    outcome = run_attempts(launcher, ranks, config, {**s3_env, **secret_env}, spec=job.spec, plan=plan)
    return _finish(
        job, outcome, locations=locations, s3=s3, mode=mode, started=started, state_dir=state_dir, out=out
    )
