"""Entry point of ``foresight train --config FILE``: one training run (or a search), start to finish.

Reads the environment once (rank, world size, termination-log path, progress file), builds the
task and stores, runs the trainer (or a Ray Tune search), and always ends with a termination
message: a JSON summary on success, ``{"reason", "message"}`` on failure, with an exit code per
failure kind (see :mod:`foresight.training.errors`).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from foresight.contract import env as pod_env
from foresight.contract.s3 import S3Environment
from foresight.contract.termination import termination_log_path
from foresight.contract.training import PUSHGATEWAY_JOB

from .checkpoint import open_store
from .config import DistEnv, TrainConfig, load_config
from .distributed import process_group
from .errors import BadCredentialsError, TrainingError
from .progress import ProgressReporter, Pusher, write_termination_message
from .publish import ModelPublisher, open_publisher
from .trainer import EpochHook, Trainer, TrainTask

__all__ = ["main", "run_training", "s3_options_from_environ", "train_once", "training_error"]

log = logging.getLogger(__name__)


def _reporter(
    config: TrainConfig, environ: Mapping[str, str], stdout: TextIO, enabled: bool, pusher: Pusher | None
) -> ProgressReporter:
    pg = config.pushgateway
    kwargs: dict[str, Any] = {}
    if pusher is not None:
        kwargs["pusher"] = pusher
    return ProgressReporter(
        stdout=stdout,
        progress_file=config.progress_file or environ.get(pod_env.PROGRESS_FILE),
        pushgateway_url=pg.url if pg else None,
        pushgateway_job=pg.job if pg else PUSHGATEWAY_JOB,
        grouping=pg.grouping if pg else None,
        enabled=enabled,
        **kwargs,
    )


def s3_options_from_environ(environ: Mapping[str, str]) -> Any | None:
    """``foresight.artifacts.S3Options`` from the pod's environment, or ``None`` without an endpoint.

    The variables the operator sets (:func:`foresight.contract.s3.s3_pod_env`): endpoint
    (``host:port``), TLS, region; credentials from ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``
    (injected from the Secret the resource names). Values are never logged.
    """
    s3env = S3Environment.from_environ(environ)
    if s3env.endpoint is None:
        return None
    from foresight.artifacts import S3Options
    from foresight.artifacts.s3 import S3Credentials

    creds = S3Credentials.from_env(environ) if s3env.has_credentials else None
    return S3Options(
        endpoint=s3env.endpoint,
        secure=s3env.secure is not False,
        region=s3env.region or "us-east-1",
        credentials=creds,
    )


def training_error(exc: BaseException, environ: Mapping[str, str]) -> TrainingError | None:
    """``exc`` as the training error it stands for, or ``None`` for an unexpected failure.

    A :class:`TrainingError` is itself. An artifact store's access-denied or rejected-credentials
    error (raised by the dataset download, the checkpoint store or the model upload, possibly as
    the cause of another error) becomes :class:`BadCredentialsError`, naming the endpoint, the
    bucket and the Secret the pod's S3 environment names.
    """
    if isinstance(exc, TrainingError):
        return exc
    try:
        from foresight.artifacts import AccessDeniedError, InvalidCredentialsError
    except ImportError:  # no artifacts package: no S3 store could have failed
        return None
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, AccessDeniedError):
            return BadCredentialsError(
                cur.endpoint,
                cur.bucket,
                cur.code,
                rejected=isinstance(cur, InvalidCredentialsError),
                secret=S3Environment.from_environ(environ).credentials_secret,
            )
        cur = cur.__cause__ or cur.__context__
    return None


def build_trainer_for_trial(
    config: TrainConfig, workdir: Path, s3: Any, output: ModelPublisher | None, on_epoch_end: EpochHook
) -> Trainer:
    """A single-process trainer for one search trial (no checkpoints, no progress output)."""
    from .tasks import build_task

    return Trainer(
        config,
        build_task(config, workdir, s3),
        reporter=ProgressReporter(stdout=sys.stdout, enabled=False),
        output=output,
        on_epoch_end=on_epoch_end,
    )


def train_once(
    config: TrainConfig,
    *,
    environ: Mapping[str, str],
    stdout: TextIO,
    workdir: Path,
    task: TrainTask | None = None,
    on_epoch_end: EpochHook | None = None,
    pusher: Pusher | None = None,
) -> dict[str, Any]:
    """One (possibly distributed) training run; returns the success summary or raises TrainingError."""
    from .tasks import build_task

    env = DistEnv.from_environ(environ)
    s3 = s3_options_from_environ(environ)
    with process_group(
        env, backend=config.distributed.backend, timeout_s=config.distributed.join_timeout_seconds
    ) as ctx:
        if task is not None:
            the_task = task
        else:
            # Every rank reads a PromQL dataset over the same range: rank 0's clock decides.
            uses_prometheus = config.dataset is not None and config.dataset.promql is not None
            now = ctx.broadcast_from_main(time.time()) if uses_prometheus else None
            the_task = build_task(config, workdir, s3, now=now)
        trainer = Trainer(
            config,
            the_task,
            reporter=_reporter(config, environ, stdout, env.is_main, pusher),
            dist=ctx,
            checkpoints=open_store(config.checkpoint.uri, s3) if config.checkpoint else None,
            output=open_publisher(config.output.uri, s3) if config.output and env.is_main else None,
            on_epoch_end=on_epoch_end,
        )
        result = trainer.run()
    doc = result.summary()
    doc["rank"] = env.rank
    doc["worldSize"] = env.world_size
    return doc


def run_training(
    config: TrainConfig,
    *,
    environ: Mapping[str, str],
    stdout: TextIO,
    workdir: Path | None = None,
    task: TrainTask | None = None,
    on_epoch_end: EpochHook | None = None,
    pusher: Pusher | None = None,
) -> tuple[int, dict[str, Any]]:
    """Train (or search), write the termination message, and return ``(exit code, message)``.

    Never raises for training failures: they become a reason, a message and an exit code, which
    is what a Kubernetes Job can act on.
    """
    term = termination_log_path(environ)
    try:
        with tempfile.TemporaryDirectory(prefix="foresight-train-") as tmp:
            wd = workdir or Path(tmp)
            if config.search is not None:
                from .ray_backend import run_search

                doc = run_search(
                    config, environ=environ, stdout=stdout, workdir=wd, s3=s3_options_from_environ(environ)
                )
            else:
                doc = train_once(
                    config, environ=environ, stdout=stdout, workdir=wd, task=task,
                    on_epoch_end=on_epoch_end, pusher=pusher,
                )  # fmt: skip
        code = 0
    except Exception as exc:
        err = training_error(exc, environ)
        if err is not None:
            log.error("training failed (%s): %s", err.reason, err)
            doc = {"reason": err.reason, "message": str(err), "retryable": err.retryable}
            code = err.exit_code
        else:
            # Anything else is a bug or an environment problem: keep the traceback in the log, and
            # still tell the operator something readable.
            traceback.print_exc()
            doc = {"reason": "TrainingFailed", "message": f"{type(exc).__name__}: {exc}", "retryable": False}
            code = 1
    stdout.write(json.dumps({"event": "result", "exitCode": code, **doc}, sort_keys=True, default=str) + "\n")
    stdout.flush()
    write_termination_message(term, doc)
    return code, doc


def main(argv: Sequence[str] | None = None) -> int:
    """``foresight train --config FILE``; returns the process exit code."""
    parser = argparse.ArgumentParser(prog="foresight train", description="Run one training job.")
    parser.add_argument("--config", required=True, help="TrainConfig as JSON or YAML")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    environ = dict(os.environ)
    try:
        config = load_config(args.config)
    except TrainingError as exc:
        doc = {"reason": exc.reason, "message": str(exc), "retryable": False}
        print(json.dumps({"event": "result", "exitCode": exc.exit_code, **doc}), flush=True)
        write_termination_message(termination_log_path(environ), doc)
        return exc.exit_code
    code, _ = run_training(config, environ=environ, stdout=sys.stdout)
    return code


if __name__ == "__main__":
    sys.exit(main())
