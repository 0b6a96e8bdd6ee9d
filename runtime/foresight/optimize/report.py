"""``optimize_model``: the ModelVersion ``optimize`` step as one call, and its JSON-ready report.

Steps, each optional: prune (a copy of) the model, save its weights, export to ONNX and check
parity against eager, quantise to int8 and check parity with a looser bound, then measure
latency of every artifact. The report lists every artifact with its SHA-256 and size so the
ModelVersion status can show them and the artifact store can verify them later.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from foresight.artifacts.base import sha256_file
from foresight.optimize.latency import LatencyReport, compare_latency
from foresight.optimize.onnx_export import (
    Exporter,
    ExportResult,
    Inputs,
    ParityReport,
    check_parity,
    export_onnx,
)
from foresight.optimize.prune import PruneResult, prune_model
from foresight.optimize.quantize import QuantizationResult, quantize_int8

__all__ = ["ArtifactRecord", "OptimizationReport", "optimize_model"]

REPORT_NAME = "optimization.json"


@dataclass(frozen=True)
class ArtifactRecord:
    name: str
    path: str
    sha256: str
    size_bytes: int

    @classmethod
    def of(cls, name: str, path: str | os.PathLike[str]) -> ArtifactRecord:
        return cls(name=name, path=str(path), sha256=sha256_file(path), size_bytes=Path(path).stat().st_size)


@dataclass
class OptimizationReport:
    """Everything the optimise step learned; ``to_dict()`` is plain JSON."""

    artifacts: list[ArtifactRecord] = field(default_factory=list)
    export: ExportResult | None = None
    parity: ParityReport | None = None
    quantization: QuantizationResult | None = None
    pruning: PruneResult | None = None
    latency: LatencyReport | None = None
    #: True when every parity check that ran passed.
    passed: bool = True

    def artifact(self, name: str) -> ArtifactRecord:
        for record in self.artifacts:
            if record.name == name:
                return record
        raise KeyError(f"no artifact {name!r}; have {[a.name for a in self.artifacts]}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "artifacts": [asdict(a) for a in self.artifacts],
            "export": self.export.to_dict() if self.export else None,
            "parity": self.parity.to_dict() if self.parity else None,
            "quantization": self.quantization.to_dict() if self.quantization else None,
            "pruning": self.pruning.to_dict() if self.pruning else None,
            "latency": self.latency.to_dict() if self.latency else None,
            "passed": self.passed,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


def optimize_model(
    model: nn.Module,
    example_input: Inputs,
    out_dir: str | os.PathLike[str],
    *,
    onnx: bool = True,
    quantize: bool = True,
    prune_sparsity: float | None = None,
    parity_threshold: float = 1e-4,
    quantized_parity_threshold: float = 5e-2,
    batch_sizes: tuple[int, ...] = (1, 1000),
    exporter: Exporter = "auto",
    opset: int = 17,
    latency_repeats: int = 50,
    latency_warmup: int = 5,
    threads: int | None = None,
) -> OptimizationReport:
    """Optimise ``model`` into ``out_dir`` (``model.pt``, ``model.onnx``, ``model.int8.onnx``,
    ``optimization.json``). The caller's model is not modified (pruning works on a copy).

    ``batch_sizes`` are the latency batch sizes; empty skips latency. Parity is checked at batch 1,
    7 and the example's own batch.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = OptimizationReport()
    work = copy.deepcopy(model).eval()
    if prune_sparsity:
        report.pruning = prune_model(work, prune_sparsity)
    weights = out / "model.pt"
    torch.save(work.state_dict(), weights)
    report.artifacts.append(ArtifactRecord.of("weights", weights))

    onnx_models: dict[str, Path] = {}
    if onnx:
        onnx_path = out / "model.onnx"
        report.export = export_onnx(work, example_input, onnx_path, exporter=exporter, opset=opset)
        report.parity = check_parity(
            work, onnx_path, example_input, threshold=parity_threshold, batch_sizes=(1, 7)
        )
        report.artifacts.append(ArtifactRecord.of("onnx", onnx_path))
        onnx_models["onnx"] = onnx_path
        report.passed = report.parity.passed
        if quantize:
            int8_path = out / "model.int8.onnx"
            report.quantization = quantize_int8(
                onnx_path,
                int8_path,
                model=work,
                inputs=example_input,
                parity_threshold=quantized_parity_threshold,
            )
            report.artifacts.append(ArtifactRecord.of("onnx-int8", int8_path))
            onnx_models["onnx-int8"] = int8_path
            q_parity = report.quantization.parity
            report.passed = report.passed and (q_parity is None or q_parity.passed)

    if batch_sizes:
        report.latency = compare_latency(
            work,
            example_input,
            onnx_models,
            batch_sizes=batch_sizes,
            threads=threads,
            warmup=latency_warmup,
            repeats=latency_repeats,
        )
        report.latency.sizes_bytes["eager"] = weights.stat().st_size
    (out / REPORT_NAME).write_text(report.to_json())
    return report
