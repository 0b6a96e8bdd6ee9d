"""Loading the classifier config file: what ``foresight serve classifier --config FILE`` reads first.

The file's schema is the operator-runtime contract's :class:`~foresight.contract.classifier.ClassifierConfig`
(the operator renders it into a ConfigMap; a laptop user writes it by hand); this module reads it
and turns every problem into a :class:`~foresight.serving.classifier.errors.ConfigError` that
names the file and the field.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from pydantic import ValidationError

from foresight.contract.classifier import ClassifierConfig

from .errors import ConfigError

__all__ = ["load_config"]


def load_config(path: str | Path) -> ClassifierConfig:
    """Load a ClassifierConfig from a YAML or JSON file; raises ConfigError naming the file and field."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read classifier config {p}: {exc}") from exc
    try:
        data = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"classifier config {p} is not valid YAML/JSON: {exc}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"classifier config {p} must be a mapping, got {type(data).__name__}")
    try:
        return ClassifierConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"classifier config {p} is invalid: fix these fields:\n{exc}") from exc
