"""``forecast``: train a neural forecaster (``lstm``, ``gru``, ``transformer``) under the generic trainer.

The network, inputs, scaling and quantile loss are the forecast package's
(:class:`foresight.forecast.models.neural.NeuralModel`); this task only feeds its windows
through the trainer so that forecasting models get DDP, checkpoints, resume and Ray Tune like
any other task. The exported directory is the forecast package's own ``save()`` format, so
``foresight.forecast.models.load_model(dir)`` loads the result.

Dataset: a :class:`~foresight.timeseries.Panel` saved as ``.npz`` (:func:`save_panel_npz`).
Training examples are ``(series, origin)`` windows: all of them when there are at most
``windowsPerEpoch`` (20000), otherwise a fixed seeded sample of that many, so an epoch's cost
does not grow with history. Validation holds out the tail of every series, as ``fit`` does.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from foresight.api.trainingjob import DatasetQuality
from foresight.timeseries import Panel

from ..errors import DatasetError, TrainingConfigError
from ..quality import QualityReport, panel_quality

__all__ = ["ForecastTrainingTask", "load_panel_npz", "save_panel_npz"]

# camelCase hyperparameter (as in the CRD) -> NeuralModel argument. Only shape-and-data ones:
# the optimiser's settings belong to the trainer (learningRate, weightDecay, gradClip).
_PARAMS = {
    "inputWindow": ("input_window", int),
    "hiddenSize": ("hidden_size", int),
    "layers": ("layers", int),
    "windowsPerEpoch": ("windows_per_epoch", int),
    "valFraction": ("val_fraction", float),
    "maxValWindows": ("max_val_windows", int),
}


def save_panel_npz(panel: Panel, path: str | Path) -> None:
    """Write a panel as a pickle-free ``.npz`` (keys as JSON, covariates as ``cov:<name>``)."""
    arrays: dict[str, Any] = {
        "start": np.int64(panel.start),
        "step": np.int64(panel.step),
        "keys": np.array(json.dumps(panel.keys)),
        "values": panel.values,
    }
    for name, cov in panel.covariates.items():
        arrays[f"cov:{name}"] = cov
    if panel.capacity is not None:
        arrays["capacity"] = panel.capacity
    with open(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)


def load_panel_npz(path: str | Path) -> Panel:
    """Read :func:`save_panel_npz` output; never unpickles (``allow_pickle=False``)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return Panel(
                start=int(z["start"]),
                step=int(z["step"]),
                keys=list(json.loads(str(z["keys"]))),
                values=np.asarray(z["values"], dtype=np.float64),
                covariates={
                    k[4:]: np.asarray(z[k], dtype=np.float64) for k in z.files if k.startswith("cov:")
                },
                capacity=np.asarray(z["capacity"], dtype=np.float64) if "capacity" in z.files else None,
            )
    except (OSError, KeyError, ValueError) as exc:
        raise DatasetError(
            f"{path} is not a panel .npz (arrays start, step, keys, values[, cov:<name>, capacity]): {exc}"
        ) from exc


class ForecastTrainingTask:
    """A TrainingJob's built-in task ``forecast`` (a ForecastTask trains its models in its own run).

    Hyperparameters: ``horizon`` (24), ``inputWindow``, ``hiddenSize``, ``layers``, ``windowsPerEpoch``.
    """

    name = "forecast"

    def __init__(self, panel: Panel, model: str, hparams: Mapping[str, Any], seed: int = 0) -> None:
        from foresight.forecast.features import LabelVocabulary
        from foresight.forecast.models import get_model, is_neural, neural_model_names
        from foresight.forecast.models.neural import QUANTILES, NeuralModel

        if not is_neural(model):
            raise TrainingConfigError(
                f"forecast training needs a neural model ({', '.join(neural_model_names())}), got {model!r}; "
                "baselines (naive, ets, theta, ...) have nothing to train: use a ForecastTask"
            )
        self.horizon = int(hparams.get("horizon", 24))
        params = {arg: conv(hparams[k]) for k, (arg, conv) in _PARAMS.items() if k in hparams}
        net_model = get_model(model, **params)
        assert isinstance(net_model, NeuralModel)
        self.model = net_model
        self.model_name = model
        self.hparams = dict(hparams)
        self.panel = panel
        n = panel.n_steps
        val_steps = max(2 * self.horizon, int(self.model.val_fraction * n))
        train_end = n - val_steps
        min_origin = min(self.model.input_window, max(1, train_end // 4)) - 1
        if train_end - self.horizon - 1 < min_origin:
            raise DatasetError(
                f"panel has {n} steps: too short for horizon {self.horizon} with {val_steps} validation "
                f"steps; give at least {3 * self.horizon + min_origin + 2} steps"
            )
        self.model.covariates = sorted(panel.covariates)
        self.model.vocab = LabelVocabulary.fit(panel.keys)
        self.model.horizon = self.horizon
        self.x, self.y, self.cal = self.model._inputs(panel, self.horizon, stats_upto=train_end)
        self.ids = self.model.vocab.encode(panel.keys)
        # Per step: the per-series inputs and the calendar (kept once, joined to each window).
        self.model._n_features = int(self.x.shape[2] + self.cal.shape[1])
        self.quantiles = torch.tensor(QUANTILES)
        rng = np.random.default_rng(seed)
        origins = np.arange(min_origin, train_end - self.horizon, dtype=np.int64)
        rows = np.repeat(np.arange(panel.n_series, dtype=np.int64), len(origins))
        cols = np.tile(origins, panel.n_series)
        cap = self.model.windows_per_epoch
        if len(rows) > cap:
            pick = np.sort(rng.choice(len(rows), cap, replace=False))
            rows, cols = rows[pick], cols[pick]
        self._train = TensorDataset(torch.from_numpy(rows), torch.from_numpy(cols))
        vo_all = np.arange(train_end - 1, n - self.horizon, dtype=np.int64)
        vr = np.repeat(np.arange(panel.n_series, dtype=np.int64), len(vo_all))
        vo = np.tile(vo_all, panel.n_series)
        if len(vr) > self.model.max_val_windows:
            pick = np.sort(rng.choice(len(vr), self.model.max_val_windows, replace=False))
            vr, vo = vr[pick], vo[pick]
        self._val = TensorDataset(torch.from_numpy(vr), torch.from_numpy(vo))

    def quality_report(self, quality: DatasetQuality | None) -> QualityReport:
        """The panel's quality report (:mod:`foresight.training.quality`)."""
        return panel_quality(self.panel, quality)

    def architecture(self, hparams: Mapping[str, Any]) -> dict[str, Any]:
        return {"model": self.model_name, **self.model.params(), "horizon": self.horizon,
                "nFeatures": self.model._n_features}  # fmt: skip

    def build_model(self, hparams: Mapping[str, Any]) -> nn.Module:
        from foresight.forecast.models.neural import QuantileNet

        assert self.model.vocab is not None
        return QuantileNet(
            self.model.make_encoder(self.model._n_features),
            self.model.hidden_size,
            self.horizon,
            self.cal.shape[1],
            self.model.vocab.cardinalities,
        )

    def datasets(self) -> tuple[Dataset[Any], Dataset[Any]]:
        return self._train, self._val

    def _windows(
        self, rows: torch.Tensor, origins: torch.Tensor, device: torch.device
    ) -> tuple[torch.Tensor, ...]:
        self.model.device = str(device)
        return self.model._batch(
            self.x, self.y, self.cal, self.ids, rows.cpu().numpy(), origins.cpu().numpy(), self.horizon
        )

    def loss(self, model: nn.Module, batch: Any) -> torch.Tensor:
        from foresight.forecast.models.neural import pinball_loss

        rows, origins = batch
        xb, ib, fb, tb, mb = self._windows(rows, origins, rows.device)
        return pinball_loss(model(xb, ib, fb), tb, mb, self.quantiles.to(rows.device))

    def evaluate(self, model: nn.Module, val: Dataset[Any]) -> dict[str, float]:
        from foresight.forecast.models.neural import pinball_loss

        assert isinstance(val, TensorDataset)
        device = next(model.parameters()).device
        rows, origins = val.tensors
        q = self.quantiles.to(device)
        total = abs_err = weight = 0.0
        for b in range(0, len(rows), 1024):
            xb, ib, fb, tb, mb = self._windows(rows[b : b + 1024], origins[b : b + 1024], device)
            pred = model(xb, ib, fb)
            w = float(mb.sum())
            total += float(pinball_loss(pred, tb, mb, q)) * w
            abs_err += float(((pred[:, :, 1] - tb).abs() * mb).sum())
            weight += w
        if weight == 0:
            return {"val_loss": math.nan, "mae_scaled": math.nan}
        return {"val_loss": total / weight, "mae_scaled": abs_err / weight}

    def export(self, model: nn.Module, directory: Path) -> str:
        from foresight.forecast.models.neural import QuantileNet

        assert isinstance(model, QuantileNet)
        self.model.net = model
        self.model.save(directory)
        return "model.pt"
