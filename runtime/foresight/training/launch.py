"""Build a :class:`Trainer` from a :class:`TrainConfig` and run it in this process.

What one process of a training run does, whoever asked for it: :func:`train_once` (one rank of a
run, plain or DDP: the process group, the task, checkpoints, the model publisher and progress
output) and :func:`build_trainer_for_trial` (one Ray Tune trial: no checkpoints, no output). The
entry point that ends every run with a termination message is :mod:`foresight.training.job`;
the search that calls both for its trials and its final refit is :mod:`foresight.training.ray_backend`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from foresight.contract import env as pod_env
from foresight.contract.s3 import S3Environment
from foresight.contract.training import PUSHGATEWAY_JOB

from .checkpoint import open_store
from .config import DistEnv, TrainConfig
from .distributed import process_group
from .progress import ProgressReporter, Pusher
from .publish import ModelPublisher, open_publisher
from .quality import check_quality
from .trainer import EpochHook, Trainer, TrainTask

__all__ = ["build_trainer_for_trial", "s3_options_from_environ", "train_once"]


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
    from foresight.artifacts import S3Options, s3_credentials_from_environ

    return S3Options(
        endpoint=s3env.endpoint,
        secure=s3env.secure is not False,
        region=s3env.region or "us-east-1",
        credentials=s3_credentials_from_environ(environ),
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
        if task is not None:
            the_task = task
        else:
            # Every rank reads a PromQL dataset over the same range: rank 0's clock decides.
            uses_prometheus = config.dataset is not None and config.dataset.promql is not None
            now = ctx.broadcast_from_main(time.time()) if uses_prometheus else None
            the_task = build_task(config, workdir, s3, now=now)
        reporter = _reporter(config, environ, stdout, env.is_main, pusher)
        # Before the first epoch, on every rank (the same data gives the same verdict, so all ranks
        # stop together): DataQualityError when over a spec.dataset.quality threshold.
        quality = check_quality(the_task, config.dataset.quality if config.dataset else None)
        if quality is not None:
            reporter.event("quality", summary=quality.summary(), **quality.to_status())
        trainer = Trainer(
            config,
            the_task,
            reporter=reporter,
            dist=ctx,
            checkpoints=open_store(config.checkpoint.uri, s3) if config.checkpoint else None,
            output=open_publisher(config.output.uri, s3) if config.output and env.is_main else None,
            on_epoch_end=on_epoch_end,
        )
        result = trainer.run()
    doc = result.summary()
    if quality is not None:
        doc["dataQuality"] = quality.to_status()
    doc["rank"] = env.rank
    doc["worldSize"] = env.world_size
    return doc
