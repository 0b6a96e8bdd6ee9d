"""``foresight serve forecasts``: find a scrape-mode ForecastTask's store and serve its exposition.

The server itself (poll the store, answer ``/metrics`` and ``/healthz``) is
:mod:`foresight.forecast.scrape`; this module is its entry point, and like ``foresight run``
(:mod:`foresight.run.local`) it reads the environment once and resolves the task's artifact store
the same way: ``pvc://`` stores under ``FORESIGHT_PVC_ROOT`` (``--state-dir``/pvc in local mode),
``s3://`` stores with ``FORESIGHT_S3_ENDPOINT`` / ``FORESIGHT_S3_SECURE`` / ``FORESIGHT_S3_REGION`` /
``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from types import FrameType

from foresight.api.forecasttask import MAX_PARALLELISM
from foresight.artifacts import ArtifactError
from foresight.contract import env as pod_env
from foresight.forecast.persistence import exposition_key
from foresight.forecast.scrape import StoredExposition, serve_forecasts

from .local import TaskFileError, load_task, resolve_store, s3_options

__all__ = ["main_serve_forecasts", "shard_index"]

log = logging.getLogger(__name__)


def shard_index(value: str | None) -> int | None:
    """``--shard``: an index, or a StatefulSet pod's name ending in its ordinal; ``None`` when not given.

    Raises ``ValueError`` with what to give instead."""
    if value is None or value == "":
        return None
    tail = value.rsplit("-", 1)[-1]
    if not tail.isdigit() or int(tail) >= MAX_PARALLELISM:
        raise ValueError(
            f"--shard {value!r}: give the shard's index (0-{MAX_PARALLELISM - 1}) or a StatefulSet pod name "
            "ending in its ordinal, e.g. quota-forecasts-2"
        )
    return int(tail)


def _fail(message: str) -> int:
    print(f"foresight serve forecasts: {message}", file=sys.stderr, flush=True)
    return 2


def main_serve_forecasts(
    args: argparse.Namespace,
    *,
    environ: Mapping[str, str] | None = None,
    stop: threading.Event | None = None,
) -> int:
    """``foresight serve forecasts``; returns the exit code (2: bad arguments or task file)."""
    env = dict(os.environ) if environ is None else dict(environ)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")  # fmt: skip
    if args.filename:
        if args.store:
            return _fail("give either -f FILE or --store URI --namespace NS --name NAME, not both")
        try:
            task = load_task(args.filename, default_namespace=args.namespace or "default")
        except TaskFileError as exc:
            return _fail(str(exc))
        if task.spec.output.mode != "scrape":
            return _fail(
                f"ForecastTask {task.namespace}/{task.name} has output.mode {task.spec.output.mode}, so its "
                "runs write nothing to serve: set output.mode: scrape"
            )
        art = task.spec.artifacts
        uri, namespace, name = art.uri, task.namespace, task.name
        endpoint, region, insecure = art.endpoint, art.region, art.insecure
    elif args.store:
        if not (args.namespace and args.name):
            return _fail("--store needs --namespace and --name (the ForecastTask's identity)")
        uri, namespace, name = args.store, args.namespace, args.name
        endpoint, region, insecure = None, "us-east-1", False  # FORESIGHT_S3_* in the env override these
    else:
        return _fail("say which task: -f FILE (its YAML), or --store URI --namespace NS --name NAME")
    if args.state_dir:
        pvc_root = Path(args.state_dir).resolve() / "pvc"
    else:
        pvc_root = Path(env.get(pod_env.PVC_ROOT, pod_env.DEFAULT_PVC_ROOT))
    try:
        store = resolve_store(uri, pvc_root=pvc_root, s3=lambda: s3_options(env, endpoint, region, insecure))
    except ArtifactError as exc:
        return _fail(str(exc))
    try:
        shard = shard_index(getattr(args, "shard", None))
    except ValueError as exc:
        return _fail(str(exc))
    what = f"{namespace}/{name}" + (f" shard {shard}" if shard is not None else "")
    source = StoredExposition(store, exposition_key(namespace, name, shard=shard), task=what)
    done = stop or threading.Event()
    if stop is None:

        def on_signal(signum: int, frame: FrameType | None) -> None:
            log.info("signal %d: stopping", signum)
            done.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    try:
        serve_forecasts(source, host=args.host, port=args.port, refresh=args.refresh, stop=done)
    except OSError as exc:
        print(f"foresight serve forecasts: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0
