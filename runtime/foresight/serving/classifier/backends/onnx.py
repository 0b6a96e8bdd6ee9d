"""The ONNX backend: a local image-classifier artifact run with ONNX Runtime (no network, no cost)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from foresight.contract.classifier import OnnxConfig

from ..errors import ConfigError, UpstreamError
from ..images import CheckedImage, decode_rgb
from .base import BackendResult, ClassifierBackend, OnCall

__all__ = ["OnnxBackend"]


class OnnxBackend(ClassifierBackend[np.ndarray]):
    name = "onnx"

    def __init__(self, settings: OnnxConfig, *, category_keys: Sequence[str]) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = settings.threads
        try:
            self._session = ort.InferenceSession(
                settings.model_path, sess_options=opts, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ConfigError(f"cannot load ONNX model {settings.model_path}: {exc}") from exc
        inp = self._session.get_inputs()[0]
        self._input = inp.name
        shape = list(inp.shape)
        size = settings.input_size
        if size is None:
            h, w = shape[-2], shape[-1]
            if not (isinstance(h, int) and isinstance(w, int) and h == w):
                raise ConfigError(
                    f"ONNX model input shape {shape} has no static square size: set backend.onnx.inputSize"
                )
            size = h
        self._size = size
        self._labels = list(settings.labels or category_keys)
        unknown = sorted(set(self._labels) - set(category_keys))
        if unknown:
            raise ConfigError(f"backend.onnx.labels {unknown} are not category keys {list(category_keys)}")
        self._mean = np.asarray(settings.mean, dtype=np.float32).reshape(3, 1, 1)
        self._std = np.asarray(settings.std, dtype=np.float32).reshape(3, 1, 1)

    def prepare(self, image: CheckedImage) -> np.ndarray:
        """NCHW float32, resized to the model's size and normalised with mean / std."""
        rgb = decode_rgb(image, draft=(self._size, self._size))
        rgb = rgb.resize((self._size, self._size), Image.Resampling.BILINEAR)
        chw = np.asarray(rgb, dtype=np.float32).transpose(2, 0, 1) / 255.0
        return ((chw - self._mean) / self._std)[None].astype(np.float32)

    def preprocess(self, image: CheckedImage) -> np.ndarray:
        return self.prepare(image)

    def classify(self, prepared: np.ndarray, *, deadline: float, on_call: OnCall) -> BackendResult:
        # A local model answers in milliseconds: the deadline is not checked between its steps.
        try:
            (logits,) = self._session.run(None, {self._input: prepared})[:1]
        except Exception as exc:
            on_call(False)
            raise UpstreamError(f"ONNX model failed on this image: {exc}", backend=self.name) from exc
        on_call(True)
        row = np.asarray(logits, dtype=np.float64).reshape(-1)
        if row.size != len(self._labels):
            raise UpstreamError(
                f"ONNX model returned {row.size} scores for {len(self._labels)} labels: fix "
                "backend.onnx.labels",
                backend=self.name,
            )
        probs = np.exp(row - row.max())
        probs /= probs.sum()
        best = int(probs.argmax())
        return BackendResult(self._labels[best], float(probs[best]))
