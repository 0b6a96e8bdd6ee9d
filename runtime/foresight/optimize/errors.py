"""Errors of the optimisation toolkit, each saying what to do next."""

from __future__ import annotations


class OptimizationError(Exception):
    """Base class of optimisation errors."""


class ExportError(OptimizationError):
    """Neither ONNX exporter could produce a model that ONNX Runtime runs."""

    def __init__(self, model: str, reasons: dict[str, str]) -> None:
        self.model = model
        self.reasons = reasons
        detail = "; ".join(f"{name}: {why}" for name, why in reasons.items())
        super().__init__(
            f"could not export {model} to ONNX ({detail}); set optimize.onnx=false on the ModelVersion "
            "or make the model's forward traceable (no data-dependent Python control flow)"
        )
