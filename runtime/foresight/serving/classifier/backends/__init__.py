"""Classifier backends: who turns an image into a category (an LLM API or a local ONNX model)."""

from .base import BackendResult, ClassifierBackend

__all__ = ["BackendResult", "ClassifierBackend"]
