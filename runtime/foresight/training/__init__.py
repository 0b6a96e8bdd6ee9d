"""The training runtime behind ``TrainingJob``: one process, torch DDP or a Ray Tune search.

Entry point: :func:`main` (``foresight train --config FILE``) or :func:`run_training` with a
parsed :class:`TrainConfig`. Tasks implement :class:`TrainTask`; the :class:`Trainer` runs them
with checkpoints, resume, progress reporting and DDP.
"""

from .checkpoint import CheckpointStore, LocalDirStore, open_store, state_dict_sha256
from .config import DistEnv, SearchConfig, SearchParameter, TrainConfig, load_config
from .errors import (
    BadCredentialsError,
    CheckpointMismatchError,
    DatasetError,
    NonFiniteLossError,
    PrometheusUnavailableError,
    PromQLDatasetError,
    TrainingConfigError,
    TrainingError,
    WorkerJoinTimeoutError,
)
from .job import main, run_training
from .launch import train_once
from .progress import EpochStats, ProgressReporter
from .trainer import Trainer, TrainResult, TrainTask

__all__ = [
    "BadCredentialsError",
    "CheckpointMismatchError",
    "CheckpointStore",
    "DatasetError",
    "DistEnv",
    "EpochStats",
    "LocalDirStore",
    "NonFiniteLossError",
    "ProgressReporter",
    "PromQLDatasetError",
    "PrometheusUnavailableError",
    "SearchConfig",
    "SearchParameter",
    "TrainConfig",
    "TrainResult",
    "TrainTask",
    "Trainer",
    "TrainingConfigError",
    "TrainingError",
    "WorkerJoinTimeoutError",
    "load_config",
    "main",
    "open_store",
    "run_training",
    "state_dict_sha256",
    "train_once",
]
