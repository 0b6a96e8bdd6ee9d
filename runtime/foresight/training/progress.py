"""How a training process tells the world how far it got, without API write access.

Three channels, all optional except stdout: one JSON line per epoch on stdout (``kubectl logs``
and the local executor read it), a JSON progress file rewritten atomically after every epoch (the
operator's kubelet stand-in and a sidecar read it), and Prometheus gauges pushed to a Pushgateway.
At the end, a termination message (Kubernetes shows a container's ``/dev/termination-log`` in
the pod status, capped at 4096 bytes) carries the result or the failure reason to the operator.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from foresight.contract.termination import write_termination_log
from foresight.contract.training import TrainingResult
from foresight.timeseries import finite_or_none

__all__ = [
    "EpochStats",
    "ProgressReporter",
    "write_termination_message",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EpochStats:
    """One finished epoch, as reported on every channel."""

    epoch: int
    epochs: int
    loss: float
    val_loss: float
    metrics: Mapping[str, float]
    seconds: float
    eta_seconds: float
    resumed_from_epoch: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "event": "epoch",
            "epoch": self.epoch,
            "epochs": self.epochs,
            "loss": finite_or_none(self.loss),
            "val_loss": finite_or_none(self.val_loss),
            "metrics": {k: finite_or_none(v) for k, v in self.metrics.items()},
            "seconds": round(self.seconds, 3),
            "eta_seconds": round(self.eta_seconds, 1),
            "resumedFromEpoch": self.resumed_from_epoch,
        }


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


Pusher = Callable[[str, str, Any, Mapping[str, str]], None]


def _default_pusher(url: str, job: str, registry: Any, grouping: Mapping[str, str]) -> None:
    from prometheus_client import push_to_gateway

    push_to_gateway(url, job=job, registry=registry, grouping_key=dict(grouping), timeout=5)


class ProgressReporter:
    """Writes epoch progress to stdout, a progress file and (optionally) a Pushgateway."""

    def __init__(
        self,
        *,
        stdout: TextIO,
        progress_file: str | Path | None = None,
        pushgateway_url: str | None = None,
        pushgateway_job: str = "foresight-training",
        grouping: Mapping[str, str] | None = None,
        pusher: Pusher = _default_pusher,
        enabled: bool = True,
    ) -> None:
        """
        Args:
            stdout: where JSON lines go.
            progress_file: path of the JSON progress file; ``None`` = no file.
            pushgateway_url: Pushgateway base URL; ``None`` = no push.
            pushgateway_job: the ``job`` label of pushed metrics.
            grouping: extra grouping labels (e.g. ``trainingjob``, ``namespace``).
            pusher: the push function (tests and offline runs pass their own).
            enabled: ``False`` on non-zero DDP ranks, so one job reports once.
        """
        self.stdout = stdout
        self.progress_file = Path(progress_file) if progress_file else None
        self.pushgateway_url = pushgateway_url
        self.pushgateway_job = pushgateway_job
        self.grouping = dict(grouping or {})
        self.pusher = pusher
        self.enabled = enabled

    def event(self, name: str, **fields: Any) -> None:
        """A non-epoch event line (``start``, ``resumed``, ``checkpoint``, ``done``)."""
        if self.enabled:
            self._line({"event": name, **fields})

    def epoch(self, stats: EpochStats) -> None:
        if not self.enabled:
            return
        doc = stats.to_json()
        self._line(doc)
        if self.progress_file is not None:
            _atomic_write(self.progress_file, json.dumps(doc, sort_keys=True))
        if self.pushgateway_url:
            self._push(stats)

    def _line(self, doc: Mapping[str, Any]) -> None:
        self.stdout.write(json.dumps(doc, sort_keys=True) + "\n")
        self.stdout.flush()

    def _push(self, stats: EpochStats) -> None:
        from prometheus_client import CollectorRegistry, Gauge

        # A fresh registry per push: only this job's gauges, nothing from the process's default.
        registry = CollectorRegistry()
        Gauge("foresight_training_epoch", "Epochs completed.", registry=registry).set(stats.epoch)
        Gauge("foresight_training_epochs", "Epochs in all.", registry=registry).set(stats.epochs)
        Gauge("foresight_training_loss", "Mean training loss of the last epoch.", registry=registry).set(
            stats.loss
        )
        Gauge("foresight_training_val_loss", "Validation loss of the last epoch.", registry=registry).set(
            stats.val_loss
        )
        Gauge("foresight_training_eta_seconds", "Estimated seconds left.", registry=registry).set(
            stats.eta_seconds
        )
        Gauge("foresight_training_epoch_seconds", "Wall time of the last epoch.", registry=registry).set(
            stats.seconds
        )
        metric = Gauge(
            "foresight_training_metric", "Validation metrics by name.", ["name"], registry=registry
        )
        for name, value in stats.metrics.items():
            metric.labels(name=name).set(value)
        assert self.pushgateway_url is not None
        try:
            self.pusher(self.pushgateway_url, self.pushgateway_job, registry, self.grouping)
        except OSError as exc:
            # Monitoring must not kill a training run: log and carry on.
            log.warning("push to Pushgateway %s failed: %s", self.pushgateway_url, exc)


def write_termination_message(path: Path, doc: Mapping[str, Any]) -> bool:
    """Write a training result (:class:`~foresight.contract.training.TrainingResult`, camelCase
    ``doc``) as the termination message; ``False`` if the path is not writable.

    The contract shrinks it under the 4096-byte limit, keeping it parseable: trials go first (the
    best trial is kept), then the message is cut.
    """
    return write_termination_log(path, TrainingResult.of(doc).termination_message())
