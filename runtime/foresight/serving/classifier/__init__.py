"""The image classifier service (seed 003): an LLM- or ONNX-backed classifier with a SHA-256 result cache.

``create_app(config)`` builds the FastAPI application; ``run(config)`` serves it with uvicorn;
``load_config(path)`` reads a ClassifierConfig from YAML or JSON.
"""

from .app import create_app
from .config import ClassifierConfig, load_config
from .errors import UpstreamError
from .server import run

__all__ = ["ClassifierConfig", "UpstreamError", "create_app", "load_config", "run"]
