"""Resources and predicates the end-to-end tests share: TrainingJob samples, phase and condition checks."""

from __future__ import annotations

from typing import Any

__all__ = ["SELECTOR", "TJ", "condition", "phase_is", "toy_trainingjob"]

TJ = "foresight.dev/v1alpha1/trainingjobs"
SELECTOR = "app.kubernetes.io/managed-by=foresight,foresight.dev/kind=TrainingJob,foresight.dev/name={}"


def toy_trainingjob(name: str, **spec: Any) -> dict[str, Any]:
    """A TrainingJob running the runtime's seconds-long ``toy`` task (selected by annotation)."""
    body: dict[str, Any] = {
        "apiVersion": "foresight.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": name, "annotations": {"foresight.dev/builtin-task": "toy"}},
        "spec": {
            "task": "forecast",
            "dataset": {"uri": "pvc://foresight-artifacts/datasets/unused.npz"},
            "epochs": 2,
            "hyperparameters": {"samples": "256", "hidden": "8"},
            "resources": {"cpu": "250m", "memory": "512Mi", "gpu": 1},
            "placement": {"nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-H100"}},
            "runPolicy": {"backoffLimit": 1},
            **spec,
        },
    }
    return body


def phase_is(*phases: str) -> Any:
    return lambda o: ((o or {}).get("status") or {}).get("phase") in phases


def condition(obj: dict[str, Any], ctype: str) -> dict[str, Any]:
    return next(c for c in obj["status"]["conditions"] if c["type"] == ctype)
