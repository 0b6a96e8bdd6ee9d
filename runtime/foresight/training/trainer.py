"""The generic epoch loop every built-in task runs under: seeds, AdamW, DDP, checkpoints, progress.

A task (:class:`TrainTask`) says what the model and data are; the :class:`Trainer` owns how
training runs, so single-process, DDP and Ray Tune trials share one loop and one checkpoint
format. Determinism: the model is initialised right after ``torch.manual_seed(seed)``, each
epoch's shuffle comes from a generator seeded by ``(seed, epoch)`` (so a resumed run sees the
same batches as an uninterrupted one), and the global RNG state is saved in every checkpoint.
"""

from __future__ import annotations

import json
import logging
import math
import random
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler

from .checkpoint import (
    Checkpoint,
    CheckpointStore,
    architecture_fingerprint,
    latest_checkpoint,
    prune_checkpoints,
    save_checkpoint,
    state_dict_sha256,
)
from .config import DistEnv, TrainConfig
from .distributed import DistContext
from .errors import NonFiniteLossError
from .plot import plot_training_curves
from .progress import EpochStats, ProgressReporter
from .publish import ModelPublisher

__all__ = ["CURVES_FILE", "TRAINER_HYPERPARAMETERS", "TrainResult", "TrainTask", "Trainer"]

log = logging.getLogger(__name__)

TRAINER_HYPERPARAMETERS = ("learningRate", "weightDecay", "gradClip")
CURVES_FILE = "training-curves.png"
"""The training curves published next to the model (:mod:`foresight.training.plot`)."""
"""Hyperparameters the trainer itself uses; every other one is the task's."""


class TrainTask(Protocol):
    """What a built-in task provides; the trainer does the rest."""

    name: str

    def architecture(self, hparams: Mapping[str, Any]) -> dict[str, Any]:
        """The hyperparameters that shape the network (hashed into the checkpoint fingerprint)."""
        ...

    def build_model(self, hparams: Mapping[str, Any]) -> nn.Module:
        """A freshly initialised model (the trainer seeds the RNG first)."""
        ...

    def datasets(self) -> tuple[Dataset[Any], Dataset[Any]]:
        """``(train, val)``; items are tensors or tuples of tensors, collated by a DataLoader."""
        ...

    def loss(self, model: nn.Module, batch: Any) -> torch.Tensor:
        """Scalar training loss of one batch (already on the model's device)."""
        ...

    def evaluate(self, model: nn.Module, val: Dataset[Any]) -> dict[str, float]:
        """Validation metrics; must include ``val_loss``."""
        ...

    def export(self, model: nn.Module, directory: Path) -> str:
        """Write the trained model's files into ``directory``; return the main file's name."""
        ...


@dataclass
class TrainResult:
    """What a finished run produced (the termination message is built from this)."""

    epochs: int
    metrics: dict[str, float]
    history: list[dict[str, float]]
    fingerprint: str
    state_sha256: str
    resumed_from_epoch: int | None = None
    artifact_uri: str | None = None
    sha256: str | None = None
    files: dict[str, str] = field(default_factory=dict)
    """Artifact file name -> sha256."""
    manifest_sha256: str | None = None

    def summary(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "reason": "Succeeded",
            "epochs": self.epochs,
            "metrics": {k: v for k, v in self.metrics.items() if math.isfinite(v)},
            "fingerprint": self.fingerprint,
            "stateSha256": self.state_sha256,
            "resumedFromEpoch": self.resumed_from_epoch,
        }
        if self.artifact_uri is not None:
            doc.update(
                artifactUri=self.artifact_uri,
                sha256=self.sha256,
                manifestSha256=self.manifest_sha256,
                files=self.files,
            )
        return doc


EpochHook = Callable[[EpochStats], None]


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, tuple | list):
        return type(batch)(_to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    return batch


def _float(hparams: Mapping[str, Any], name: str, default: float | None) -> float | None:
    value = hparams.get(name, default)
    return None if value is None else float(value)


class Trainer:
    """Runs ``config.epochs`` epochs of ``task``, resuming from the newest checkpoint if any."""

    def __init__(
        self,
        config: TrainConfig,
        task: TrainTask,
        *,
        reporter: ProgressReporter,
        dist: DistContext | None = None,
        checkpoints: CheckpointStore | None = None,
        output: ModelPublisher | None = None,
        on_epoch_end: EpochHook | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """
        Args:
            config: epochs, batch size, seed, hyperparameters, checkpoint interval.
            task: the model and data.
            reporter: progress channels (disabled on non-zero ranks by the caller).
            dist: the process group; ``None`` = one process on CUDA if available, else CPU.
            checkpoints: where checkpoints go; ``None`` = no checkpoints, no resume.
            output: where the trained model's files go (rank 0 only); ``None`` = not exported.
            on_epoch_end: called after each epoch's checkpoint (Ray Tune reports through it).
            clock: seconds, for epoch times and the ETA.
        """
        self.config = config
        self.task = task
        self.reporter = reporter
        self.dist = dist or DistContext(
            env=DistEnv(), backend=None, device=torch.device("cuda" if torch.cuda.is_available() else "cpu")
        )
        self.checkpoints = checkpoints
        self.output = output
        self.on_epoch_end = on_epoch_end
        self.clock = clock
        self.model: nn.Module | None = None
        """The model being trained (set by :meth:`run`; hooks may inspect it)."""
        self.optimizer: torch.optim.Optimizer | None = None

    def _seed(self) -> None:
        seed = self.config.seed
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)

    def _loader(self, train: Dataset[Any], epoch: int) -> DataLoader[Any]:
        # A generator per epoch: a run resumed at epoch k shuffles exactly like one that never stopped,
        # and the DataLoader's base seed does not draw from (and shift) the global RNG.
        gen = torch.Generator().manual_seed(self.config.seed * 1_000_003 + epoch)
        env = self.dist.env
        if self.dist.active:
            sampler: DistributedSampler[Any] = DistributedSampler(
                train, num_replicas=env.world_size, rank=env.rank, shuffle=True, seed=self.config.seed
            )
            sampler.set_epoch(epoch)
            return DataLoader(train, batch_size=self.config.batch_size, sampler=sampler, generator=gen)
        return DataLoader(train, batch_size=self.config.batch_size, shuffle=True, generator=gen)

    def run(self) -> TrainResult:
        cfg = self.config
        prev_det = torch.are_deterministic_algorithms_enabled()
        torch.use_deterministic_algorithms(True, warn_only=True)
        try:
            self._seed()
            model, opt, fingerprint = self._build()
            clip = _float(cfg.hyperparameters, "gradClip", None)
            start, resumed, history = self._resume(model, opt, fingerprint)
            self.reporter.event(
                "start", task=self.task.name, epochs=cfg.epochs, startEpoch=start + 1,
                worldSize=self.dist.env.world_size, device=str(self.dist.device), fingerprint=fingerprint,
            )  # fmt: skip
            train_ds, val_ds = self.task.datasets()
            net: nn.Module = model
            if self.dist.active:
                device = self.dist.device
                net = DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)
            metrics: dict[str, float] = dict(history[-1]) if history else {}
            epoch_times: list[float] = []
            for epoch in range(start + 1, cfg.epochs + 1):
                t0 = self.clock()
                train_loss = self._train_epoch(net, opt, train_ds, epoch, clip)
                model.eval()
                with torch.no_grad():
                    metrics = {k: float(v) for k, v in self.task.evaluate(model, val_ds).items()}
                metrics["loss"] = train_loss
                history.append({"epoch": float(epoch), **metrics})
                epoch_times.append(self.clock() - t0)
                stats = EpochStats(
                    epoch=epoch,
                    epochs=cfg.epochs,
                    loss=train_loss,
                    val_loss=metrics.get("val_loss", math.nan),
                    metrics={k: v for k, v in metrics.items() if k not in ("loss", "val_loss")},
                    seconds=epoch_times[-1],
                    eta_seconds=float(np.mean(epoch_times)) * (cfg.epochs - epoch),
                    resumed_from_epoch=resumed,
                )
                self._checkpoint(model, opt, fingerprint, epoch, history)
                self.reporter.epoch(stats)
                if self.on_epoch_end is not None:
                    self.on_epoch_end(stats)
            return self._finish(model, metrics, history, fingerprint, resumed)
        finally:
            torch.use_deterministic_algorithms(prev_det)

    def _build(self) -> tuple[nn.Module, torch.optim.Optimizer, str]:
        """A fresh model on the device, its AdamW optimiser and its architecture fingerprint."""
        hp = self.config.hyperparameters
        model = self.task.build_model(hp)
        fingerprint = architecture_fingerprint({"task": self.task.name, **self.task.architecture(hp)}, model)
        model.to(self.dist.device)
        lr = _float(hp, "learningRate", 1e-3)
        wd = _float(hp, "weightDecay", 1e-2)
        assert lr is not None and wd is not None
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd)
        self.model, self.optimizer = model, opt
        return model, opt, fingerprint

    def _resume(
        self, model: nn.Module, opt: torch.optim.Optimizer, fingerprint: str
    ) -> tuple[int, int | None, list[dict[str, float]]]:
        """``(epochs done, resumed-from epoch, history)`` after loading the newest matching checkpoint."""
        if self.checkpoints is None:
            return 0, None, []
        ckpt = latest_checkpoint(self.checkpoints, fingerprint)
        if ckpt is None:
            return 0, None, []
        model.load_state_dict(ckpt.model)
        opt.load_state_dict(ckpt.optimizer)
        torch.set_rng_state(ckpt.rng_torch)
        if ckpt.rng_cuda and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(ckpt.rng_cuda)
        self.reporter.event("resumed", epoch=ckpt.epoch, checkpoint=self.checkpoints.uri)
        return ckpt.epoch, ckpt.epoch, list(ckpt.history)

    def _train_epoch(
        self, net: nn.Module, opt: torch.optim.Optimizer, train: Dataset[Any], epoch: int, clip: float | None
    ) -> float:
        """One pass over ``train``, gradients clipped to ``clip``; returns the mean training loss (the
        same on every rank)."""
        net.train()
        total, steps = 0.0, 0
        for step, raw in enumerate(self._loader(train, epoch)):
            batch = _to_device(raw, self.dist.device)
            loss = self.task.loss(net, batch)
            # Reduced across ranks so every rank sees a NaN at the same step and all stop
            # together (a lone rank raising would leave the others hanging in a collective).
            seen = float(self.dist.all_reduce_mean(loss.detach()))
            if not math.isfinite(seen):
                raise NonFiniteLossError(epoch, step, seen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if clip is not None:
                nn.utils.clip_grad_norm_(net.parameters(), clip)
            opt.step()
            total += seen
            steps += 1
        return total / max(steps, 1)

    def _checkpoint(
        self, model: nn.Module, opt: torch.optim.Optimizer, fingerprint: str, epoch: int,
        history: list[dict[str, float]],
    ) -> None:  # fmt: skip
        """Save a checkpoint every ``checkpoint.everyEpochs`` and after the last epoch (rank 0)."""
        cfg = self.config
        # A store given without checkpoint settings (a caller's own): every epoch, the last two kept.
        every = cfg.checkpoint.every_epochs if cfg.checkpoint else 1
        keep = cfg.checkpoint.keep if cfg.checkpoint else 2
        if self.checkpoints is None or (epoch % every != 0 and epoch != cfg.epochs):
            return
        if self.dist.env.is_main:
            cuda = torch.cuda.is_available()
            uri = save_checkpoint(
                self.checkpoints,
                Checkpoint(
                    epoch=epoch,
                    fingerprint=fingerprint,
                    model=model.state_dict(),
                    optimizer=opt.state_dict(),
                    rng_torch=torch.get_rng_state(),
                    rng_cuda=list(torch.cuda.get_rng_state_all()) if cuda else [],
                    history=history,
                ),
            )
            prune_checkpoints(self.checkpoints, keep)
            self.reporter.event("checkpoint", epoch=epoch, uri=uri)
        # Nobody races ahead of a checkpoint that a restart would need.
        self.dist.barrier()

    def _finish(
        self, model: nn.Module, metrics: dict[str, float], history: list[dict[str, float]], fingerprint: str,
        resumed: int | None,
    ) -> TrainResult:  # fmt: skip
        result = TrainResult(
            epochs=self.config.epochs,
            metrics=metrics,
            history=history,
            fingerprint=fingerprint,
            state_sha256=state_dict_sha256(model),
            resumed_from_epoch=resumed,
        )
        if self.dist.env.is_main and self.output is not None:
            self._export(model, result)
        self.dist.barrier()
        self.reporter.event("done", **result.summary())
        return result

    def _export(self, model: nn.Module, result: TrainResult) -> None:
        assert self.output is not None
        with tempfile.TemporaryDirectory(prefix="foresight-export-") as tmp:
            out = Path(tmp)
            main_file = self.task.export(model, out)
            if result.history:
                plot_training_curves(
                    result.history,
                    out / CURVES_FILE,
                    title=f"{self.task.name} / {self.config.model}: {result.epochs} epochs",
                    resumed_from_epoch=result.resumed_from_epoch,
                )
            (out / "training.json").write_text(
                json.dumps(
                    {
                        "task": self.task.name,
                        "model": self.config.model,
                        "hyperparameters": self.config.hyperparameters,
                        "epochs": result.epochs,
                        "seed": self.config.seed,
                        "metrics": result.metrics,
                        "history": result.history,
                        "fingerprint": result.fingerprint,
                        "resumedFromEpoch": result.resumed_from_epoch,
                    },
                    indent=2,
                    sort_keys=True,
                    default=str,
                )
            )
            published = self.output.publish(out)
        result.artifact_uri = published.uri
        result.files = published.files
        result.sha256 = published.files.get(main_file)
        result.manifest_sha256 = published.manifest_sha256
