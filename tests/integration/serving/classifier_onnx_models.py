"""Tiny real ONNX image classifiers (built with ``onnx.helper``, no torch): logits from mean colours.

``colour_model(path, order)`` answers, for an image, the label of its strongest colour channel:
``order`` names the label for red, green and blue in turn. Two models with different orders are
two variants that disagree on every solid-colour image, which is what a cache kept per variant
and per-variant accuracy need to be seen.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

__all__ = ["colour_model", "solid"]


def colour_model(path: Path, order: tuple[int, int, int], labels: int = 3) -> Path:
    """A model over ``labels`` outputs; channel ``c`` (R, G, B) votes for output ``order[c]``."""
    weights = np.zeros((3, labels), dtype=np.float32)
    for channel, label in enumerate(order):
        weights[channel, label] = 20.0
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["input"], ["mean"], axes=[2, 3], keepdims=0),
            helper.make_node("MatMul", ["mean", "w"], ["logits"]),
        ],
        "colour",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, labels])],
        initializer=[numpy_helper.from_array(weights, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def solid(colour: tuple[int, int, int], size: tuple[int, int] = (40, 30), noise: int = 0) -> bytes:
    """A PNG of one colour (``noise`` varies one pixel so images of a colour differ in their hash)."""
    img = Image.new("RGB", size, colour)
    img.putpixel((0, 0), (noise % 256, noise // 256 % 256, 0))
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()
