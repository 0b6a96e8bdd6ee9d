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
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from .checkpoint import open_store
from .config import DistEnv, TrainConfig, load_config
from .distributed import process_group
from .errors import TrainingError
from .progress import ProgressReporter, Pusher, termination_log_path, write_termination_message
from .publish import ModelPublisher, open_publisher
from .trainer import EpochHook, Trainer, TrainTask

__all__ = ["main", "run_training", "s3_options_from_environ", "train_once"]

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
        progress_file=config.progress_file or environ.get("FORESIGHT_PROGRESS_FILE"),
        pushgateway_url=pg.url if pg else None,
        pushgateway_job=pg.job if pg else "foresight-training",
        grouping=pg.grouping if pg else None,
        enabled=enabled,
        **kwargs,
    )


def s3_options_from_environ(environ: Mapping[str, str]) -> Any | None:
    """``foresight.artifacts.S3Options`` from the pod's environment, or ``None`` without an endpoint.

    ``FORESIGHT_S3_ENDPOINT`` (``host:port``), ``FORESIGHT_S3_SECURE`` (``false`` for plain HTTP),
    ``FORESIGHT_S3_REGION``; credentials from ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``
    (injected from the Secret the TrainingJob names). Values are never logged.
    """
    endpoint = environ.get("FORESIGHT_S3_ENDPOINT")
    if not endpoint:
        return None
    from foresight.artifacts import S3Options
    from foresight.artifacts.s3 import S3Credentials

    creds = S3Credentials.from_env(environ) if environ.get("AWS_ACCESS_KEY_ID") else None
    return S3Options(
        endpoint=endpoint,
        secure=environ.get("FORESIGHT_S3_SECURE", "true").lower() != "false",
        region=environ.get("FORESIGHT_S3_REGION", "us-east-1"),
        credentials=creds,
    )


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
        the_task = task if task is not None else build_task(config, workdir, s3)
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
    except TrainingError as exc:
        log.error("training failed (%s): %s", exc.reason, exc)
        doc = {"reason": exc.reason, "message": str(exc), "retryable": exc.retryable}
        code = exc.exit_code
    except Exception as exc:
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
