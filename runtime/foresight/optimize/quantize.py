"""Dynamic int8 quantisation of an ONNX model with ONNX Runtime.

Weights become int8; activations are quantised at run time.

Why ONNX Runtime and not ``torch.ao`` dynamic quantisation: FACTS.md measured torch's int8 LSTM
1.5-2.3x *slower* than fp32 on these CPUs; ORT's quantised kernels are the deployable path.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from torch import nn

from foresight.optimize.onnx_export import Inputs, ParityReport, check_parity

log = logging.getLogger(__name__)

__all__ = ["QuantizationResult", "quantize_int8"]


@dataclass(frozen=True)
class QuantizationResult:
    path: str
    fp32_size_bytes: int
    int8_size_bytes: int
    #: int8 size / fp32 size (below 1 means smaller).
    size_ratio: float
    parity: ParityReport | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def quantize_int8(
    onnx_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    model: nn.Module | None = None,
    inputs: Inputs | None = None,
    parity_threshold: float = 5e-2,
    batch_sizes: tuple[int, ...] = (1, 7),
) -> QuantizationResult:
    """Quantise ``onnx_path`` to ``out_path``; with ``model`` and ``inputs`` also check parity vs eager.

    The parity bound is looser than fp32's: int8 weights move outputs by about 1% of their scale.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    src, dst = Path(onnx_path), Path(out_path)
    dst.parent.mkdir(parents=True, exist_ok=True)
    # ORT's recommended pre-processing: constant folding turns transposed weights into constant
    # MatMul inputs (otherwise "non constant B" MatMuls stay fp32) and shape inference lets more
    # nodes quantise. It only needs a temporary file next to the output.
    prepared = dst.with_name(dst.stem + ".prep.onnx")
    try:
        source = src
        # Symbolic shape inference fails on some graphs (a Reshape whose target rank is computed,
        # as in attention): then pre-process without it, and as a last resort quantise as exported.
        for skip_symbolic in (False, True):
            try:
                quant_pre_process(src, prepared, skip_symbolic_shape=skip_symbolic)
            except Exception as exc:
                reason = f"{type(exc).__name__} {exc}".strip()
                log.info(
                    "quantisation pre-processing (skip_symbolic_shape=%s) failed: %s", skip_symbolic, reason
                )
                continue
            source = prepared
            break
        else:
            log.warning("ONNX quantisation pre-processing failed; quantising %s as exported", src)
        quantize_dynamic(source, dst, weight_type=QuantType.QInt8)
    finally:
        prepared.unlink(missing_ok=True)
    parity = None
    if model is not None and inputs is not None:
        parity = check_parity(model, dst, inputs, threshold=parity_threshold, batch_sizes=batch_sizes)
        if not parity.passed:
            log.warning(
                "int8 model %s differs from eager by up to %.3g (threshold %.3g)",
                dst,
                parity.max_abs_diff,
                parity_threshold,
            )
    fp32, int8 = src.stat().st_size, dst.stat().st_size
    return QuantizationResult(
        path=str(dst), fp32_size_bytes=fp32, int8_size_bytes=int8, size_ratio=int8 / fp32, parity=parity
    )
