"""Human-readable output of a TrainingJob run outside Kubernetes: progress lines and a kubectl-like status.

Pure formatting (documents in, strings out), shared by ``foresight run -f trainingjob.yaml
--local`` and ``--hosts``. The status is built as the API's
:class:`~foresight.api.trainingjob.TrainingJobStatus`, so it has the same fields (and shape)
as ``kubectl get tj -o yaml`` shows for a TrainingJob in a cluster.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from foresight.api.trainingjob import TrainingJobStatus
from foresight.console import table

from .report import format_seconds

__all__ = ["build_status", "format_event", "format_status"]


def _num(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return "-"
    return f"{value:.4g}"


def format_event(doc: Mapping[str, Any]) -> str | None:
    """One progress line for a ``foresight train`` JSON event, or ``None`` for events not worth a line."""
    event = doc.get("event")
    if event == "epoch":
        metrics = "  ".join(f"{k} {_num(v)}" for k, v in sorted((doc.get("metrics") or {}).items()))
        eta = doc.get("eta_seconds")
        eta_text = format_seconds(float(eta)).replace("now", "0s") if isinstance(eta, int | float) else "-"
        return (
            f"epoch {doc.get('epoch')}/{doc.get('epochs')}  loss {_num(doc.get('loss'))}  "
            f"val_loss {_num(doc.get('val_loss'))}"
            + (f"  {metrics}" if metrics else "")
            + f"  ({_num(doc.get('seconds'))}s, eta {eta_text})"
        )
    if event == "start":
        return (
            f"training {doc.get('task')}: epochs {doc.get('startEpoch')}..{doc.get('epochs')}, "
            f"{doc.get('worldSize')} rank(s), device {doc.get('device')}"
        )
    if event == "resumed":
        return f"resumed from the checkpoint of epoch {doc.get('epoch')} in {doc.get('checkpoint')}"
    if event == "checkpoint":
        return f"checkpoint of epoch {doc.get('epoch')}: {doc.get('uri')}"
    if event == "quality":
        return f"data quality: {doc.get('summary')}"
    if event == "done":
        return f"done: {doc.get('epochs')} epochs" + (
            f", model at {doc['artifactUri']}" if doc.get("artifactUri") else ""
        )
    return None


def build_status(
    *,
    ok: bool,
    reason: str,
    message: str,
    epochs: int,
    result: Mapping[str, Any] | None,
    last_epoch: Mapping[str, Any] | None,
    restarts: int,
    started: datetime,
    finished: datetime,
    model_version: str | None,
) -> TrainingJobStatus:
    """The TrainingJob status a cluster would show for this run."""
    doc: Mapping[str, Any] = result or {}
    metrics = {k: float(v) for k, v in (doc.get("metrics") or {}).items() if isinstance(v, int | float)}
    progress: dict[str, Any] = {"epoch": int(doc.get("epochs") or 0), "epochs": epochs, "metrics": metrics}
    if not ok and last_epoch is not None:
        named = {"loss": last_epoch.get("loss"), "val_loss": last_epoch.get("val_loss"),
                 **(last_epoch.get("metrics") or {})}  # fmt: skip
        progress = {
            "epoch": int(last_epoch.get("epoch") or 0),
            "epochs": epochs,
            "metrics": {
                k: float(v) for k, v in named.items() if isinstance(v, int | float) and math.isfinite(v)
            },
        }
    status: dict[str, Any] = {
        "phase": "Succeeded" if ok else "Failed",
        "progress": progress,
        "restarts": restarts,
        "startTime": started,
        "completionTime": finished,
        "conditions": [
            {
                "type": "Ready",
                "status": "True" if ok else "False",
                "reason": reason,
                "message": message,
                "lastTransitionTime": finished,
            },
        ],
    }
    if ok:
        status["bestMetrics"] = metrics
    if doc.get("resumedFromEpoch") is not None:
        status["resumedFromEpoch"] = int(doc["resumedFromEpoch"])
    if isinstance(doc.get("dataQuality"), dict):
        status["dataQuality"] = doc["dataQuality"]
    if doc.get("artifactUri"):
        status["artifactUri"] = str(doc["artifactUri"])
    if model_version:
        status["modelVersion"] = model_version
    return TrainingJobStatus.model_validate(status)


def format_status(status: TrainingJobStatus, *, name: str, namespace: str, where: str) -> str:
    """``kubectl get tj -o wide`` plus the interesting part of ``kubectl describe``."""
    ready = next((c for c in status.conditions if c.type == "Ready"), None)
    head = table(
        ["NAMESPACE", "NAME", "READY", "PHASE", "EPOCH", "MODEL-VERSION", "RESTARTS", "WHERE"],
        [[namespace, name, ready.status if ready else "-", status.phase or "-", status.progress.epoch,
          status.model_version or "-", status.restarts, where]],
    )  # fmt: skip
    lines = [head, "", "Status:", f"  Phase:               {status.phase}"]
    lines.append(f"  Progress:            epoch {status.progress.epoch}/{status.progress.epochs}")
    metrics = status.best_metrics or status.progress.metrics
    if metrics:
        lines.append(
            "  Metrics:             " + ", ".join(f"{k}={_num(v)}" for k, v in sorted(metrics.items()))
        )
    if status.resumed_from_epoch is not None:
        lines.append(f"  Resumed From Epoch:  {status.resumed_from_epoch}")
    lines.append(f"  Restarts:            {status.restarts}")
    lines.append(f"  Artifact URI:        {status.artifact_uri or '-'}")
    lines.append(f"  Model Version:       {status.model_version or '-'}")
    q = status.data_quality
    if q is not None:
        lines.append(
            f"  Data Quality:        {'passed' if q.passed else 'FAILED'}: {q.total} values/files, missing "
            f"{q.missing}, duplicates {q.duplicates} of {q.rows} rows, out of range {q.out_of_range}, "
            f"outliers {q.outliers}"
            + (f", classes {dict(sorted(q.class_counts.items()))}" if q.class_counts else "")
        )
        lines += [f"    - {f}" for f in q.failures]
    lines.append("  Conditions:")
    if ready is not None:
        lines.append(f"    Type: Ready   Status: {ready.status}   Reason: {ready.reason}")
        lines.append(f"    Message: {ready.message}")
    return "\n".join(lines)
