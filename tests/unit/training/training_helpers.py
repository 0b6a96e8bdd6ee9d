"""Helpers shared by the training runtime's tests: tiny configs, JSON-line parsing, free ports."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

from foresight.training import TrainConfig


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def toy_config(tmp: Path, **overrides: Any) -> TrainConfig:
    doc: dict[str, Any] = {
        "task": "toy",
        "epochs": 3,
        "batchSize": 32,
        "seed": 7,
        "hyperparameters": {"learningRate": "0.01", "hidden": "16", "samples": "256"},
        "checkpoint": {"uri": str(tmp / "ckpt"), "everyEpochs": 1, "keep": 5},
        "output": {"uri": (tmp / "out").as_uri()},
        "progressFile": str(tmp / "progress.json"),
    }
    doc.update(overrides)
    return TrainConfig.model_validate(doc)


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]
