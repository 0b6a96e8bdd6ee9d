"""``toy``: a seeded synthetic regression with a small MLP.

A smoke-test task: it needs no dataset, runs in a second on a CPU, and still exercises every
part of the runtime (seeding, dropout RNG, DDP, checkpoints, search). Use it to check a cluster's
training setup before pointing a real task at it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset, TensorDataset

__all__ = ["ToyRegressionTask"]


class ToyRegressionTask:
    """``y = sin(x @ w) + noise``; hyperparameters ``hidden`` (32), ``dropout`` (0.1), ``samples`` (512)."""

    name = "toy"

    def __init__(self, hparams: Mapping[str, Any], seed: int = 0) -> None:
        self.hparams = dict(hparams)
        self.seed = seed
        self.features = 8

    def architecture(self, hparams: Mapping[str, Any]) -> dict[str, Any]:
        return {"features": self.features, "hidden": int(hparams.get("hidden", 32))}

    def build_model(self, hparams: Mapping[str, Any]) -> nn.Module:
        hidden = int(hparams.get("hidden", 32))
        return nn.Sequential(
            nn.Linear(self.features, hidden),
            nn.ReLU(),
            nn.Dropout(float(hparams.get("dropout", 0.1))),
            nn.Linear(hidden, 1),
        )

    def datasets(self) -> tuple[Dataset[Any], Dataset[Any]]:
        # Own generator: the data do not depend on (or disturb) the training RNG.
        g = torch.Generator().manual_seed(10_000 + self.seed)
        n = int(self.hparams.get("samples", 512))
        x = torch.randn(n, self.features, generator=g)
        w = torch.randn(self.features, 1, generator=g)
        y = torch.sin(x @ w) + 0.05 * torch.randn(n, 1, generator=g)
        cut = int(n * 0.8)
        return TensorDataset(x[:cut], y[:cut]), TensorDataset(x[cut:], y[cut:])

    def loss(self, model: nn.Module, batch: Any) -> torch.Tensor:
        x, y = batch
        return nn.functional.mse_loss(model(x), y)

    def evaluate(self, model: nn.Module, val: Dataset[Any]) -> dict[str, float]:
        assert isinstance(val, TensorDataset)
        x, y = val.tensors
        device = next(model.parameters()).device
        pred = model(x.to(device))
        mse = float(nn.functional.mse_loss(pred, y.to(device)))
        return {"val_loss": mse, "rmse": mse**0.5}

    def export(self, model: nn.Module, directory: Path) -> str:
        torch.save(model.state_dict(), directory / "model.pt")
        (directory / "model.json").write_text(
            json.dumps({"task": self.name, **self.architecture(self.hparams)})
        )
        return "model.pt"
