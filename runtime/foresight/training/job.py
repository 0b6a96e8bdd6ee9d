"""What a TrainingJob's pods run: ``foresight train --config FILE``, one training run (or a search).

Reads the environment once (rank, world size, termination-log path, progress file), runs the
trainer in this process (:mod:`foresight.training.launch`) or a Ray Tune search
(:mod:`foresight.training.ray_backend`), and always ends with a termination message: a JSON
summary on success, ``{"reason", "message"}`` on failure, with an exit code per failure kind (see
:mod:`foresight.training.errors`).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from foresight.contract.s3 import S3Environment
from foresight.contract.termination import termination_log_path

from .config import TrainConfig, load_config
from .errors import BadCredentialsError, TrainingError
from .launch import s3_options_from_environ, train_once
from .progress import Pusher, write_termination_message
from .ray_backend import run_search
from .trainer import EpochHook, TrainTask

__all__ = ["main", "run_training", "training_error"]

log = logging.getLogger(__name__)


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
            doc = {"reason": err.reason, "message": str(err), "retryable": err.retryable, **err.details()}
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
