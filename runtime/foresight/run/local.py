"""``foresight run``: read a resource file, wire the real clients, run it once, report.

The environment is read here, once (STYLE.md rule 7), and passed down:

- ``FORESIGHT_TERMINATION_MESSAGE_PATH`` (also ``FORESIGHT_TERMINATION_LOG``, the training
  runtime's name): where the JSON result goes; default ``/dev/termination-log``.
- ``FORESIGHT_PROMETHEUS_TOKEN``: bearer token for ``spec.source.url`` (the operator injects it
  from ``spec.source.bearerTokenSecret``); never logged.
- ``FORESIGHT_PVC_ROOT``: where ``pvc://<claim>/<path>`` artifact URIs are mounted in the pod
  (``<root>/<claim>/<path>``; default ``/var/lib/foresight/pvc``). In local mode they resolve
  under ``--state-dir``.
- ``FORESIGHT_S3_ENDPOINT`` / ``FORESIGHT_S3_SECURE`` / ``FORESIGHT_S3_REGION`` /
  ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` for ``s3://`` stores (as ``foresight train``).
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlparse

import yaml

from foresight.api.forecasttask import ForecastReason, ForecastTaskSpec
from foresight.artifacts import ArtifactStore, S3Options, open_store, s3_credentials_from_environ
from foresight.contract import env as pod_env
from foresight.contract.forecast import (
    BAD_INPUT_REASONS,
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_READY,
    EXIT_TEMPORARY,
    ForecastRunResult,
)
from foresight.contract.s3 import AWS_ENDPOINT, S3Environment
from foresight.contract.termination import termination_log_path, write_termination_log
from foresight.forecast.pipeline import Publisher, RemoteWriter, RunMode, run_forecast_task
from foresight.forecast.result import RunEvent, RunResult
from foresight.prometheus.client import PrometheusClient

__all__ = [
    "DEFAULT_STATE_DIR",
    "TaskClients",
    "TaskFile",
    "TaskFileError",
    "apply_overrides",
    "exit_code",
    "json_lines",
    "load_task",
    "main_run",
    "printer",
    "report_result",
    "resolve_store",
    "run_task",
    "task_clients",
]

log = logging.getLogger(__name__)

DEFAULT_STATE_DIR = ".cache/foresight"
SUPPORTED_KINDS = ("ForecastTask",)


class TaskFileError(Exception):
    """The file cannot be run: unreadable, invalid, or a kind ``foresight run`` does not run yet."""

    def __init__(self, path: str, message: str, reason: str = "InvalidSpec") -> None:
        super().__init__(f"{path}: {message}")
        self.reason = reason


@dataclass(frozen=True)
class TaskFile:
    kind: str
    name: str
    namespace: str
    spec: ForecastTaskSpec


def apply_overrides(
    doc: dict[str, Any], sets: Sequence[str], *, text_maps: Sequence[str] = ("hyperparameters",)
) -> dict[str, Any]:
    """``--set spec.path=value`` (or ``path=value``, relative to ``spec``) on a resource document.

    A value replacing a string (and any entry of a map named in ``text_maps``: a TrainingJob's
    hyperparameters, which its API keeps as strings) stays a string; otherwise it is read as YAML
    (``2``, ``true``, ``[a, b]``).
    """
    out = json.loads(json.dumps(doc))
    for item in sets:
        path, sep, raw = item.partition("=")
        if not sep or not path.strip():
            raise ValueError(f"--set {item!r}: write it as path=value, e.g. --set epochs=2")
        keys = path.strip().split(".")
        if keys[0] != "spec":
            keys = ["spec", *keys]
        node: Any = out
        for key in keys[:-1]:
            if not isinstance(node, dict):
                raise ValueError(f"--set {item!r}: {key!r} is inside a value that is not a mapping")
            node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise ValueError(f"--set {item!r}: the parent of {keys[-1]!r} is not a mapping")
        keep_text = isinstance(node.get(keys[-1]), str) or keys[-2] in text_maps
        node[keys[-1]] = raw if keep_text else yaml.safe_load(raw)
    return out


def load_task(path: str, *, default_namespace: str = "default", sets: Sequence[str] = ()) -> TaskFile:
    """The first ``foresight.dev`` resource of a YAML file, with ``--set`` overrides (numbers stay
    numbers: a ForecastTask's hyperparameters are typed), validated like the API server would."""
    from foresight.api.documents import DocumentError, load_documents
    from foresight.api.validation import validate_object

    try:
        docs = load_documents(path)
    except DocumentError as exc:
        raise TaskFileError(path, str(exc)) from exc
    ours = [
        d for d in docs if isinstance(d, dict) and str(d.get("apiVersion", "")).startswith("foresight.dev/")
    ]
    if not ours:
        raise TaskFileError(path, "no foresight.dev resource in the file (apiVersion foresight.dev/v1alpha1)")
    doc = ours[0]
    kind = str(doc.get("kind"))
    if kind not in SUPPORTED_KINDS:
        raise TaskFileError(
            path,
            f"kind {kind!r} is not supported by `foresight run` yet (supported: "
            f"{', '.join(SUPPORTED_KINDS)}); "
            "TrainingJobs run with `foresight train --config`, ClassifierServices with `foresight serve`",
            reason=ForecastReason.UNSUPPORTED_KIND,
        )
    try:
        doc = apply_overrides(doc, sets, text_maps=())
    except ValueError as exc:
        raise TaskFileError(path, str(exc)) from exc
    errors = validate_object(doc)
    if errors:
        with_sets = " (after --set)" if sets else ""
        raise TaskFileError(path, f"invalid{with_sets}: " + "; ".join(str(e) for e in errors))
    meta = doc.get("metadata") or {}
    return TaskFile(
        kind=kind,
        name=str(meta["name"]),
        namespace=str(meta.get("namespace") or default_namespace),
        spec=ForecastTaskSpec.model_validate(doc["spec"]),
    )


def s3_options(environ: Mapping[str, str], endpoint: str | None, region: str, insecure: bool) -> S3Options:
    """S3 options from the spec's StoreRef, with the endpoint / credentials the pod's env provides."""
    s3env = S3Environment.from_environ(environ)
    return S3Options(
        endpoint=endpoint or s3env.endpoint or AWS_ENDPOINT,
        region=s3env.region or region,
        secure=not insecure and s3env.secure is not False,
        credentials=s3_credentials_from_environ(environ),
    )


def resolve_store(uri: str, *, pvc_root: Path, s3: Callable[[], S3Options] | None = None) -> ArtifactStore:
    """The artifact store of a spec's ``artifacts.uri``: ``pvc://claim/path`` is a directory under
    ``pvc_root`` (where the claim is mounted), ``file://`` a local directory, ``s3://`` a bucket."""
    parsed = urlparse(uri)
    if parsed.scheme == "s3":
        return open_store(uri, s3=s3() if s3 is not None else None)
    return open_store(uri, pvc_root=pvc_root)


def exit_code(result: RunResult) -> int:
    """0 Ready; 2 bad input (fix the spec or the query); 3 temporary (retry later); 1 anything else."""
    if result.ok:
        return EXIT_READY
    if result.retryable:
        return EXIT_TEMPORARY
    return EXIT_BAD_INPUT if result.reason in BAD_INPUT_REASONS else EXIT_FAILED


@dataclass(frozen=True)
class TaskClients:
    """The real clients of one task's run: what it reads, where it pushes, where it keeps state."""

    prometheus: PrometheusClient
    publisher: Publisher | None
    """Pushes a registry as a group, when ``output.mode`` is ``pushgateway``."""
    gateway: str
    """The Pushgateway's URL (``--pushgateway-url`` or ``spec.output.pushgatewayUrl``)."""
    remote_writer: RemoteWriter | None
    store: ArtifactStore


def task_clients(
    task: TaskFile,
    *,
    environ: Mapping[str, str],
    prometheus_url: str | None,
    pushgateway_url: str | None,
    pvc_root: Path,
) -> TaskClients:
    """The clients for ``task`` from its spec, the command line overrides and the pod's env."""
    from foresight.prometheus.pushgateway import push

    spec = task.spec
    prometheus = PrometheusClient(
        prometheus_url or spec.source.url, bearer_token=environ.get(pod_env.PROMETHEUS_TOKEN) or None,
        samples_per_query=spec.source.read_budget.samples_per_query,
    )  # fmt: skip
    gateway = pushgateway_url or spec.output.pushgateway_url
    publisher = None
    if spec.output.mode == "pushgateway":
        publisher = lambda registry, key: push(gateway, registry, grouping_key=key)  # noqa: E731
    remote_writer = None
    if spec.output.remote_write_url:
        from foresight.prometheus.remote_write import remote_write

        remote_writer = functools.partial(
            remote_write, spec.output.remote_write_url, task=task.name, namespace=task.namespace
        )
    art = spec.artifacts
    store = resolve_store(
        art.uri, pvc_root=pvc_root, s3=lambda: s3_options(environ, art.endpoint, art.region, art.insecure)
    )
    return TaskClients(prometheus, publisher, gateway, remote_writer, store)


def run_task(
    task: TaskFile,
    *,
    environ: Mapping[str, str],
    mode: RunMode,
    prometheus_url: str | None,
    pushgateway_url: str | None,
    pvc_root: Path,
    progress: Callable[[RunEvent], None] | None,
    clock: Callable[[], float] = time.time,
) -> RunResult:
    """Build the real clients for ``task`` and run it once."""
    clients = task_clients(
        task,
        environ=environ,
        prometheus_url=prometheus_url,
        pushgateway_url=pushgateway_url,
        pvc_root=pvc_root,
    )
    return run_forecast_task(
        task.spec,
        name=task.name,
        namespace=task.namespace,
        prometheus=clients.prometheus,
        pushgateway=clients.publisher,
        store=clients.store,
        clock=clock,
        progress=progress,
        mode=mode,
        remote_writer=clients.remote_writer,
    )


def printer(stream: TextIO) -> Callable[[RunEvent], None]:
    def show(event: RunEvent) -> None:
        if event.kind != "done":
            stream.write(event.message + "\n")
            stream.flush()

    return show


def main_run(
    args: argparse.Namespace, *, environ: Mapping[str, str] | None = None, stdout: TextIO | None = None
) -> int:
    """``foresight run``; returns the exit code."""
    env = dict(os.environ) if environ is None else dict(environ)
    out = stdout or sys.stdout
    logging.basicConfig(level=logging.INFO if not args.local else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")  # fmt: skip
    term = termination_log_path(env)
    try:
        task = load_task(args.filename, default_namespace=args.namespace or "default", sets=args.set or ())
    except TaskFileError as exc:
        refused = ForecastRunResult(phase="Failed", reason=exc.reason, message=str(exc), retryable=False)
        shown = json.dumps(refused.to_wire(), sort_keys=True)
        print(shown, file=sys.stderr if args.local else out, flush=True)
        if not args.local:
            write_termination_log(term, refused.termination_message())
        return EXIT_BAD_INPUT
    if args.local:
        state = Path(args.state_dir or DEFAULT_STATE_DIR).resolve()
        pvc_root = state / "pvc"
        mode: RunMode = args.mode or "train"
    else:
        pvc_root = Path(env.get(pod_env.PVC_ROOT, pod_env.DEFAULT_PVC_ROOT))
        mode = args.mode or "auto"
    plan_stage = getattr(args, "stage", None) == "plan"
    if plan_stage or env.get(pod_env.SHARD_PLAN) or (args.local and task.spec.parallelism > 1):
        return _main_sharded(args, task, env=env, mode=mode, pvc_root=pvc_root, out=out, term=term)
    if args.local:
        print(
            f"running ForecastTask {task.namespace}/{task.name} locally (mode {mode})", file=out, flush=True
        )
    result = run_task(
        task,
        environ=env,
        mode=mode,
        prometheus_url=args.prometheus_url,
        pushgateway_url=args.pushgateway_url,
        pvc_root=pvc_root,
        progress=printer(out) if args.local else json_lines(out),
    )
    code = exit_code(result)
    if args.local:
        _print_local(out, task, result)
    else:
        report_result(result, code, out, term)
    return code


def _print_local(out: TextIO, task: TaskFile, result: RunResult) -> None:
    """``--local``: the kubectl-like status, the backtest and the forecasts, values in ``source.unit``."""
    from .report import format_backtest, format_forecasts, format_status

    spec = task.spec
    out.write("\n" + format_status(result, name=task.name, namespace=task.namespace, now=time.time()) + "\n")
    if result.ok:
        folds = f"{spec.model.backtest_folds} rolling origins, horizon {spec.horizon}"
        out.write(f"\nBacktest ({folds}):\n" + format_backtest(result, unit=spec.source.unit) + "\n")
        ratio = spec.threshold.ratio if spec.threshold is not None else None
        table = format_forecasts(result, horizons=spec.output.horizons, unit=spec.source.unit, ratio=ratio)
        out.write("\nForecasts:\n" + table + "\n")
    out.flush()


def _main_sharded(
    args: argparse.Namespace, task: TaskFile, *, env: Mapping[str, str], mode: RunMode, pvc_root: Path,
    out: TextIO, term: Path,
) -> int:  # fmt: skip
    """A sharded run's plan pod or shard pod (:mod:`.sharded`), or the whole run on this machine."""
    from foresight.contract.shard_results import merge_alerts, merge_bands

    from .report import table, uncertainty_lines
    from .sharded import ShardedTask, run_locally, run_stage

    c = task_clients(task, environ=env, prometheus_url=args.prometheus_url,
                     pushgateway_url=args.pushgateway_url, pvc_root=pvc_root)  # fmt: skip
    sharded = ShardedTask(task.spec, task.name, task.namespace, c.prometheus, c.store, c.publisher, c.gateway,
                          c.remote_writer)  # fmt: skip
    if not args.local:
        result = run_stage(sharded, plan_stage=getattr(args, "stage", None) == "plan",
                           run_id=getattr(args, "run_id", None), environ=env, mode=mode,
                           progress=json_lines(out))  # fmt: skip
        code = exit_code(result)
        report_result(result, code, out, term)
        return code
    print(f"running ForecastTask {task.namespace}/{task.name} locally in {task.spec.parallelism} shards "
          f"(mode {mode})", file=out, flush=True)  # fmt: skip
    plan, shards = run_locally(sharded, mode=mode, progress=printer(out),
                               announce=lambda line: print("\n" + line, file=out, flush=True))  # fmt: skip
    if not plan.ok:
        out.write(f"\nplan failed: {plan.reason}: {plan.message}\n")
        return exit_code(plan)
    rows = [[i, r.phase, r.series_count, r.model or "-", r.sharding.get("readQueries", 0),
             "" if r.ok else r.reason] for i, r in enumerate(shards)]  # fmt: skip
    out.write(f"\nplan {plan.sharding.get('planId')}: {plan.series_count} series in {len(shards)} shards\n"
              + table(["SHARD", "PHASE", "SERIES", "MODEL", "QUERIES", "REASON"], rows) + "\n")  # fmt: skip
    # What the operator's status would show for the whole run: the shards' evidence merged.
    done = [(i, r.as_message()) for i, r in enumerate(shards) if r.ok]
    for line in uncertainty_lines(merge_bands(done), merge_alerts(done)):
        out.write(line + "\n")
    out.flush()
    codes = [exit_code(r) for r in shards]
    failed = [c for c in codes if c != EXIT_READY]
    return EXIT_READY if not failed else (failed[0] if len(failed) == len(codes) else EXIT_FAILED)


def report_result(result: RunResult, code: int, out: TextIO, term: Path) -> None:
    """A pod's last words: the result as a JSON line on stdout and as its termination message."""
    text = result.as_message().termination_message()
    out.write(json.dumps({"event": "result", "exitCode": code, **json.loads(text)}, sort_keys=True) + "\n")
    out.flush()
    write_termination_log(term, text)


def json_lines(stream: TextIO) -> Callable[[RunEvent], None]:
    """One JSON object per progress event on stdout: what ``kubectl logs`` shows for a Job pod."""

    def show(event: RunEvent) -> None:
        if event.kind == "done":
            return
        data = {k: _json_scalar(v) for k, v in event.data.items() if isinstance(v, str | int | float | bool)}
        stream.write(json.dumps({"event": event.kind, "message": event.message, **data}, default=str) + "\n")
        stream.flush()

    return show


def _json_scalar(v: str | int | float | bool) -> str | int | float | bool | None:
    # JSON has no NaN / Infinity: a reader gets null.
    return None if isinstance(v, float) and not math.isfinite(v) else v
