"""ONNX export of any ``torch.nn.Module`` with a dynamic batch axis, and the parity check against eager.

Exporter choice: torch 2.13's default is the dynamo exporter (``torch.export`` + onnxscript). It
handles LSTM / GRU / Transformer encoders but is slow (seconds to tens of seconds) and still
rejects some models, so ``exporter="auto"`` tries it first and falls back to the TorchScript
exporter (``dynamo=False``), logging and recording why. Either result is accepted only after
ONNX Runtime has loaded it and run it at two batch sizes, so a graph that exports but does not
run (or froze the batch size) is caught here rather than in serving.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from foresight.optimize.errors import ExportError

log = logging.getLogger(__name__)

Exporter = Literal["auto", "dynamo", "torchscript"]
Inputs = torch.Tensor | Sequence[torch.Tensor]

__all__ = ["ExportResult", "ParityReport", "check_parity", "export_onnx", "make_session", "resize_batch"]


@dataclass(frozen=True)
class ExportResult:
    """Where the ONNX model went and how it was produced."""

    path: str
    exporter: str
    opset: int
    input_names: list[str]
    output_names: list[str]
    dynamic_batch: bool
    #: Why the dynamo exporter was not used (``None`` when it was, or was not asked for).
    fallback_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ParityReport:
    """Largest and mean absolute difference between eager and ONNX outputs over the checked batches."""

    max_abs_diff: float
    mean_abs_diff: float
    threshold: float
    passed: bool
    #: Largest |eager output|, to judge the differences against.
    reference_max_abs: float
    batch_sizes: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _as_tuple(inputs: Inputs) -> tuple[torch.Tensor, ...]:
    return (inputs,) if isinstance(inputs, torch.Tensor) else tuple(inputs)


def resize_batch(inputs: Inputs, batch: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Inputs shaped like ``inputs`` but with ``batch`` rows (random normal floats, deterministic)."""
    generator = torch.Generator().manual_seed(seed)
    out = []
    for t in _as_tuple(inputs):
        shape = (batch, *t.shape[1:])
        if t.is_floating_point():
            out.append(torch.randn(shape, generator=generator, dtype=t.dtype))
        else:
            idx = torch.randint(0, t.shape[0], (batch,), generator=generator)
            out.append(t[idx])
    return tuple(out)


def make_session(path: str | os.PathLike[str], intra_op_threads: int = 1) -> ort.InferenceSession:
    """A CPU ONNX Runtime session. ``intra_op_threads=1`` suits batch-1 serving (no thread hand-off)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(os.fspath(path), options, providers=["CPUExecutionProvider"])


def _feed(session: ort.InferenceSession, inputs: tuple[torch.Tensor, ...]) -> dict[str, np.ndarray]:
    return {meta.name: t.detach().cpu().numpy() for meta, t in zip(session.get_inputs(), inputs, strict=True)}


def _eager(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> np.ndarray:
    with torch.inference_mode():
        out = model(*inputs)
    if isinstance(out, tuple | list):
        out = out[0]
    return np.asarray(out.detach().cpu().numpy())


def export_onnx(
    model: nn.Module,
    example_inputs: Inputs,
    path: str | os.PathLike[str],
    *,
    dynamic_batch: bool = True,
    opset: int = 17,
    exporter: Exporter = "auto",
) -> ExportResult:
    """Export ``model`` (put in eval mode) to ``path``; dim 0 of every input and output is the batch.

    Raises ``ExportError`` with each exporter's reason when none produced a runnable model.
    """
    model.eval()
    inputs = _as_tuple(example_inputs)
    if dynamic_batch and inputs[0].shape[0] < 2:
        # torch.export specialises a dimension whose example size is 1; export with 2 rows instead.
        inputs = resize_batch(inputs, 2)
    input_names = ["input"] if len(inputs) == 1 else [f"input_{i}" for i in range(len(inputs))]
    output_names = ["output"]
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    order: list[str] = ["dynamo", "torchscript"] if exporter == "auto" else [exporter]
    reasons: dict[str, str] = {}
    for name in order:
        try:
            _run_exporter(name, model, inputs, target, input_names, output_names, dynamic_batch, opset)
            _smoke_test(target, inputs, dynamic_batch)
        except Exception as exc:  # any exporter failure is a reason to try the next one
            reasons[name] = (
                f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:300] if str(exc) else ''}"
            )
            if exporter == "auto" and name == "dynamo":
                log.warning(
                    "dynamo ONNX export failed, falling back to the TorchScript exporter: %s", reasons[name]
                )
            continue
        return ExportResult(
            path=str(target),
            exporter=name,
            opset=opset,
            input_names=input_names,
            output_names=output_names,
            dynamic_batch=dynamic_batch,
            fallback_reason=reasons.get("dynamo") if name != "dynamo" and exporter == "auto" else None,
        )
    with contextlib.suppress(FileNotFoundError):
        target.unlink()
    raise ExportError(type(model).__name__, reasons)


def _run_exporter(
    name: str,
    model: nn.Module,
    inputs: tuple[torch.Tensor, ...],
    target: Path,
    input_names: list[str],
    output_names: list[str],
    dynamic_batch: bool,
    opset: int,
) -> None:
    kwargs: dict[str, Any] = {
        "input_names": input_names,
        "output_names": output_names,
        "opset_version": opset,
    }
    if name == "dynamo":
        if dynamic_batch:
            batch = torch.export.Dim("batch", min=1)
            kwargs["dynamic_shapes"] = tuple({0: batch} for _ in inputs)
        # The dynamo exporter prints progress to stdout and warns about opset conversion: keep
        # job logs readable; failures still raise.
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            # external_data=False: one self-contained file. The default writes the weights to a
            # separate ``<name>.data`` that an artifact store would not carry along with the graph.
            torch.onnx.export(
                model, inputs, str(target), dynamo=True, verbose=False, external_data=False, **kwargs
            )
    else:
        if dynamic_batch:
            kwargs["dynamic_axes"] = {n: {0: "batch"} for n in [*input_names, *output_names]}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, inputs, str(target), dynamo=False, **kwargs)


def _smoke_test(path: Path, inputs: tuple[torch.Tensor, ...], dynamic_batch: bool) -> None:
    session = make_session(path)
    batches = [1, 3] if dynamic_batch else [inputs[0].shape[0]]
    for batch in batches:
        feed = resize_batch(inputs, batch) if dynamic_batch else inputs
        out = session.run(None, _feed(session, feed))[0]
        if out.shape[0] != batch:
            raise ValueError(
                f"ONNX output has batch {out.shape[0]} for input batch {batch}: batch axis frozen"
            )


def check_parity(
    model: nn.Module,
    onnx_path: str | os.PathLike[str],
    inputs: Inputs,
    *,
    threshold: float = 1e-4,
    batch_sizes: Sequence[int] | None = None,
) -> ParityReport:
    """Compare eager and ONNX Runtime outputs on ``inputs`` (and on random inputs of ``batch_sizes``)."""
    model.eval()
    session = make_session(onnx_path)
    base = _as_tuple(inputs)
    cases = [base] + [resize_batch(base, b, seed=b) for b in (batch_sizes or [])]
    max_diff = 0.0
    total = 0.0
    count = 0
    ref_max = 0.0
    for case in cases:
        expected = _eager(model, case)
        got = session.run(None, _feed(session, case))[0]
        if got.shape != expected.shape:
            raise ValueError(f"ONNX output shape {got.shape} differs from eager {expected.shape}")
        diff = np.abs(got.astype(np.float64) - expected.astype(np.float64))
        max_diff = max(max_diff, float(diff.max(initial=0.0)))
        total += float(diff.sum())
        count += diff.size
        ref_max = max(ref_max, float(np.abs(expected).max(initial=0.0)))
    mean = total / count if count else 0.0
    return ParityReport(
        max_abs_diff=max_diff,
        mean_abs_diff=mean,
        threshold=threshold,
        passed=bool(max_diff <= threshold and np.isfinite(max_diff)),
        reference_max_abs=ref_max,
        batch_sizes=[c[0].shape[0] for c in cases],
    )
