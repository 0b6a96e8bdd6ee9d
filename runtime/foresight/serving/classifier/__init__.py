"""The image classifier service (seed 003): an LLM- or ONNX-backed classifier with a SHA-256 result cache.

``create_app(config)`` builds the FastAPI application; ``run(config)`` serves it with uvicorn;
``load_config(path)`` reads the config file (its schema,
:class:`~foresight.contract.classifier.ClassifierConfig`, is part of the operator-runtime contract).
"""

from .app import create_app
from .config import load_config
from .errors import UpstreamError
from .server import run

__all__ = ["UpstreamError", "create_app", "load_config", "run"]
