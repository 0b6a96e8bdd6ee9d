"""Model optimisation for the ModelVersion ``optimize`` step: ONNX export with parity checks,
ONNX Runtime int8 quantisation, magnitude pruning and latency measurement, for any
``torch.nn.Module`` plus an example input. ``optimize_model`` runs them all and returns a
JSON-serialisable ``OptimizationReport``.
"""

from __future__ import annotations

from foresight.optimize.errors import ExportError, OptimizationError
from foresight.optimize.latency import LatencyReport, LatencyStats, compare_latency, measure
from foresight.optimize.onnx_export import ExportResult, ParityReport, check_parity, export_onnx, make_session
from foresight.optimize.prune import PruneResult, prune_model
from foresight.optimize.quantize import QuantizationResult, quantize_int8
from foresight.optimize.report import ArtifactRecord, OptimizationReport, optimize_model

__all__ = [
    "ArtifactRecord",
    "ExportError",
    "ExportResult",
    "LatencyReport",
    "LatencyStats",
    "OptimizationError",
    "OptimizationReport",
    "ParityReport",
    "PruneResult",
    "QuantizationResult",
    "check_parity",
    "compare_latency",
    "export_onnx",
    "make_session",
    "measure",
    "optimize_model",
    "prune_model",
    "quantize_int8",
]
