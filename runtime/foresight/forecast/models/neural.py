"""Shared machinery of the neural models: windows, scaling, embeddings, quantile loss, training.

One global network learns from every series at once. Each training example is a window of
``input_window`` past steps (scaled value, missing flag, scaled covariates, calendar features)
plus the calendar of the ``horizon`` future steps and the series' label ids; the network outputs
the quantiles (0.1, 0.5, 0.9) of every future step directly (no recursion). The median is the
point forecast, the outer quantiles the 80% interval.

Cost does not grow with history: each epoch samples a fixed number of windows uniformly over
(series, origin). Validation uses the last part of every series (time-ordered, never shuffled
into training); early stopping keeps the best weights. Gaps: inputs are filled with the last value
and flagged; missing targets are masked out of the loss.

Architectures (``lstm.py``, ``gru.py``, ``transformer.py``) only define an encoder mapping the
input window ``(batch, window, features)`` to a vector ``(batch, hidden)``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from foresight.timeseries import FloatArray, Forecast, Panel

from ..errors import TrainingDiverged
from ..features import CalendarConfig, LabelVocabulary, calendar_features, robust_scale
from ._baseline import ffill
from .base import EpochReport, Model, ProgressCallback

__all__ = ["NeuralModel", "QuantileNet", "pinball_loss"]

log = logging.getLogger(__name__)

QUANTILES = (0.1, 0.5, 0.9)


def pinball_loss(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, quantiles: torch.Tensor
) -> torch.Tensor:
    """Mean quantile loss over observed targets. ``pred`` (B, H, Q), ``target`` / ``mask`` (B, H)."""
    diff = target.unsqueeze(-1) - pred
    loss = torch.maximum(quantiles * diff, (quantiles - 1) * diff)
    m = mask.unsqueeze(-1).to(loss.dtype)
    return (loss * m).sum() / (m.sum() * len(quantiles)).clamp_min(1.0)


class QuantileNet(nn.Module):
    """Encoder + label embeddings + future calendar -> quantiles of every horizon step."""

    def __init__(
        self,
        encoder: nn.Module,
        hidden_size: int,
        horizon: int,
        n_future: int,
        cardinalities: list[int],
        n_quantiles: int = len(QUANTILES),
        embedding_dim: int = 4,
    ) -> None:
        """
        Args:
            encoder: maps ``(B, L, F)`` to ``(B, hidden_size)``.
            hidden_size: width of the encoder output and of the head.
            horizon: steps predicted at once.
            n_future: calendar features per future step.
            cardinalities: embedding table size per label name.
            n_quantiles: outputs per step.
            embedding_dim: width of each label embedding.
        """
        super().__init__()
        self.encoder = encoder
        self.horizon = horizon
        self.n_quantiles = n_quantiles
        self.embeddings = nn.ModuleList(nn.Embedding(c, embedding_dim) for c in cardinalities)
        head_in = hidden_size + embedding_dim * len(cardinalities) + n_future * horizon
        self.head = nn.Sequential(
            nn.Linear(head_in, hidden_size), nn.GELU(), nn.Linear(hidden_size, horizon * n_quantiles)
        )

    def forward(self, x: torch.Tensor, ids: torch.Tensor, future: torch.Tensor) -> torch.Tensor:
        """``x`` (B, L, F), ``ids`` (B, n_labels) int, ``future`` (B, H, C) -> (B, H, Q)."""
        parts = [self.encoder(x)]
        parts += [emb(ids[:, j]) for j, emb in enumerate(self.embeddings)]
        parts.append(future.flatten(1))
        out = self.head(torch.cat(parts, dim=1))
        # Predict the last input value plus an offset: a strong prior for level-like series.
        return out.view(-1, self.horizon, self.n_quantiles) + x[:, -1:, :1]


@contextlib.contextmanager
def _deterministic() -> Iterator[None]:
    prev = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(prev)


MIN_GAIN = 0.005
"""A validation loss must beat the best by this share to count as a gain: early stopping stops on a
plateau instead of crawling on by noise."""
EXPLODING = 100.0
"""A training loss this many times its first epoch's means the optimisation diverged."""


class _EarlyStopping:
    """Keeps the best weights by validation loss; says stop after ``patience`` epochs without a gain
    of :data:`MIN_GAIN`; raises :class:`TrainingDiverged` on a non-finite or exploding loss."""

    def __init__(self, patience: int, name: str) -> None:
        self.patience = patience
        self.name = name
        self.best = math.inf
        self.best_state: dict[str, torch.Tensor] | None = None
        self.first_train: float | None = None
        self._stale = 0

    def stop_after(self, report: EpochReport, net: nn.Module) -> bool:
        train, val = report.train_loss, report.val_loss
        if self.first_train is None:
            self.first_train = train
        if not math.isfinite(train) or train > EXPLODING * max(self.first_train, 1e-12):
            raise TrainingDiverged(
                f"{self.name} diverged at epoch {report.epoch} (training loss {train:.4g}, first epoch "
                f"{self.first_train:.4g}): lower hyperparameters.learningRate, or use another model"
            )
        if math.isfinite(val) and val < self.best * (1 - MIN_GAIN):
            self.best, self._stale = val, 0
            self.best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            return False
        self._stale += 1
        return self._stale >= self.patience


class NeuralModel(Model):
    """Base of the neural models: subclasses only build the encoder (``make_encoder``)."""

    neural: ClassVar[bool] = True
    cheap_refit: ClassVar[bool] = False
    uses_covariates: ClassVar[bool] = True
    global_model: ClassVar[bool] = True
    saveable: ClassVar[bool] = True

    def __init__(
        self,
        *,
        input_window: int = 168,
        hidden_size: int = 64,
        layers: int = 2,
        epochs: int = 30,
        windows_per_epoch: int = 20000,
        batch_size: int = 256,
        learning_rate: float = 1e-3,
        patience: int = 5,
        weight_decay: float = 1e-4,
        grad_clip: float = 1.0,
        val_fraction: float = 0.1,
        max_val_windows: int = 4096,
        calendar: dict[str, Any] | None = None,
        covariates: list[str] | None = None,
        device: str | None = None,
    ) -> None:
        """
        Args:
            input_window: past steps one prediction sees.
            hidden_size: width of encoder and head.
            layers: encoder depth.
            epochs: most epochs; early stopping may end sooner.
            windows_per_epoch: windows sampled per epoch, at most the distinct windows the history holds
                (the cost of an epoch is bounded on a long history and follows a short one).
            batch_size: windows per optimiser step.
            learning_rate: AdamW learning rate.
            patience: epochs without validation improvement before stopping.
            weight_decay: AdamW weight decay.
            grad_clip: max gradient norm.
            val_fraction: share of each series' end held out for validation (at least 2 horizons).
            max_val_windows: cap on validation windows per epoch.
            calendar: :class:`CalendarConfig` fields (hour, weekday, day/night, time zone).
            covariates: names of ``panel.covariates`` used as inputs; ``None`` = all at fit time.
            device: ``cuda`` / ``cpu``; ``None`` = CUDA when available.
        """
        self.input_window = input_window
        self.hidden_size = hidden_size
        self.layers = layers
        self.epochs = epochs
        self.windows_per_epoch = windows_per_epoch
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.patience = patience
        self.weight_decay = weight_decay
        self.grad_clip = grad_clip
        self.val_fraction = val_fraction
        self.max_val_windows = max_val_windows
        self.calendar = CalendarConfig(**(calendar or {}))
        self.covariates = covariates
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.net: QuantileNet | None = None
        self.vocab: LabelVocabulary | None = None
        self.horizon: int | None = None
        self.history: list[EpochReport] = []

    def make_encoder(self, n_features: int) -> nn.Module:
        raise NotImplementedError

    def params(self) -> dict[str, Any]:
        return {
            "input_window": self.input_window,
            "hidden_size": self.hidden_size,
            "layers": self.layers,
            "epochs": self.epochs,
            "windows_per_epoch": self.windows_per_epoch,
            "batch_size": self.batch_size,
            "learning_rate": self.learning_rate,
            "patience": self.patience,
            "weight_decay": self.weight_decay,
            "grad_clip": self.grad_clip,
            "val_fraction": self.val_fraction,
            "max_val_windows": self.max_val_windows,
            "calendar": self.calendar.to_dict(),
            "covariates": self.covariates,
        }

    # ---- data ---------------------------------------------------------------------------------

    def _inputs(
        self, panel: Panel, horizon: int, stats_upto: int
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Per-series inputs (N, T + L - 1, F0) left-padded, scaled targets (N, T), calendar (T + H, C).

        The calendar is shared by every series, so it is kept once and joined to each window in
        :meth:`_batch` (materialising it per series would cost N x T x C floats). Scaling statistics
        come from the first ``stats_upto`` columns (no peeking at validation).
        """
        assert self.covariates is not None
        missing = [c for c in self.covariates if c not in panel.covariates]
        if missing:
            raise ValueError(
                f"panel lacks covariates {missing} the model was trained with; query them too or retrain"
            )
        scaling = robust_scale(panel.values[:, :stats_upto])
        y = scaling.apply(panel.values)
        filled = ffill(y)
        is_missing = ~np.isfinite(filled)
        feats = [np.where(is_missing, 0.0, filled), (~np.isfinite(y)).astype(np.float64)]
        for name in self.covariates:
            cov = panel.covariates[name]
            cs = robust_scale(cov[:, :stats_upto]).apply(cov)
            cf = ffill(cs)
            feats.append(np.clip(np.where(np.isfinite(cf), cf, 0.0), -20, 20))
        ts = panel.start + panel.step * np.arange(panel.n_steps + horizon, dtype=np.int64)
        cal = calendar_features(ts, self.calendar)
        per_step = np.stack(feats, axis=2).astype(np.float32)  # (N, T, F0)
        pad = np.zeros((panel.n_series, self.input_window - 1, per_step.shape[2]), dtype=np.float32)
        pad[:, :, 1] = 1.0  # padded steps count as missing
        pad[:, :, 0] = per_step[:, :1, 0]
        return np.concatenate([pad, per_step], axis=1), y, cal.astype(np.float32)

    def _batch(
        self,
        x: FloatArray,
        y: FloatArray | None,
        cal: FloatArray,
        ids: npt.NDArray[np.int64],
        rows: npt.NDArray[np.int64],
        origins: npt.NDArray[np.int64],
        horizon: int,
    ) -> tuple[torch.Tensor, ...]:
        win = origins[:, None] + np.arange(self.input_window)[None, :]  # padded index of origin = o + L - 1
        steps = win - (self.input_window - 1)  # the calendar's column of each padded position
        calendar = cal[np.clip(steps, 0, None)]
        calendar[steps < 0] = 0.0  # padding has no calendar
        xb = torch.from_numpy(np.concatenate([x[rows[:, None], win], calendar], axis=2))
        fut_idx = origins[:, None] + np.arange(1, horizon + 1)[None, :]
        fb = torch.from_numpy(cal[fut_idx])
        ib = torch.from_numpy(ids[rows])
        tensors = [xb, ib, fb]
        if y is not None:
            tgt = y[rows[:, None], np.clip(fut_idx, 0, y.shape[1] - 1)]
            mask = np.isfinite(tgt) & (fut_idx < y.shape[1])
            tensors += [torch.from_numpy(np.where(mask, tgt, 0.0).astype(np.float32)), torch.from_numpy(mask)]
        return tuple(t.to(self.device) for t in tensors)

    # ---- fit / predict --------------------------------------------------------------------------

    def fit(
        self, panel: Panel, horizon: int, *, seed: int = 0, progress: ProgressCallback | None = None
    ) -> None:
        train_end, min_origin = self._split(panel.n_steps, horizon)
        progress = progress if progress is not None else self.progress
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        if self.covariates is None:
            self.covariates = sorted(panel.covariates)
        self.vocab = LabelVocabulary.fit(panel.keys)
        self.horizon = horizon
        x, y, cal = self._inputs(panel, horizon, stats_upto=train_end)
        ids = self.vocab.encode(panel.keys)
        n_features = x.shape[2] + cal.shape[1]  # per-series inputs and the calendar, per step
        with _deterministic():
            self.net = QuantileNet(
                self.make_encoder(n_features),
                self.hidden_size,
                horizon,
                cal.shape[1],
                self.vocab.cardinalities,
            ).to(self.device)
        self._n_features = n_features
        opt = torch.optim.AdamW(self.net.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay)
        q = torch.tensor(QUANTILES, device=self.device)
        vr, vo = self._validation_windows(rng, panel.n_series, train_end, panel.n_steps, horizon)
        stopping = _EarlyStopping(self.patience, self.name)
        n_windows = min(self.windows_per_epoch, panel.n_series * (train_end - horizon - min_origin))
        self.history = []
        with _deterministic():
            for epoch in range(1, self.epochs + 1):
                t0 = time.perf_counter()
                rows, origins = self._training_windows(rng, panel.n_series, min_origin, train_end - horizon,
                                                       n_windows)  # fmt: skip
                train_loss = self._train_epoch(opt, q, (x, y, cal, ids), rows, origins, horizon)
                val = self._evaluate(x, y, cal, ids, vr, vo, horizon, q)
                report = EpochReport(epoch, train_loss, val, time.perf_counter() - t0)
                self.history.append(report)
                log.info(
                    "%s epoch %d train_loss=%.4f val_loss=%.4f seconds=%.1f",
                    self.name, epoch, report.train_loss, val, report.seconds,
                )  # fmt: skip
                if progress is not None:
                    progress(report)
                if stopping.stop_after(report, self.net):
                    log.info(
                        "%s early stop after epoch %d (best val_loss %.4f)", self.name, epoch, stopping.best
                    )
                    break
        if stopping.best_state is not None:
            self.net.load_state_dict(stopping.best_state)

    def _split(self, n: int, horizon: int) -> tuple[int, int]:
        """``(train_end, min_origin)`` for a history of ``n`` steps: training targets lie before
        column ``train_end`` (the tail after it validates), training windows start at ``min_origin``."""
        if horizon < 1:
            raise ValueError(f"horizon must be at least 1 step, got {horizon}")
        val_steps = max(2 * horizon, int(self.val_fraction * n))
        train_end = n - val_steps
        min_origin = min(self.input_window, max(1, train_end // 4)) - 1
        if train_end - horizon - 1 < min_origin:
            raise ValueError(
                f"history too short for neural training: {n} steps, horizon {horizon}, validation "
                f"{val_steps}; give at least {3 * horizon + min_origin + 2} steps or use a baseline"
            )
        return train_end, min_origin

    def _training_windows(
        self, rng: np.random.Generator, n_series: int, first: int, end: int, n: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """``n`` training windows ``(rows, origins)`` with origins in ``[first, end)``: every distinct
        window once (shuffled) when ``n`` covers them all, so a small history costs what it holds,
        else a random sample (the cost of an epoch stays bounded on a long history)."""
        distinct = n_series * (end - first)
        if n >= distinct:
            order = rng.permutation(distinct)
            return (order // (end - first)).astype(np.int64), (first + order % (end - first)).astype(np.int64)
        return rng.integers(0, n_series, n), rng.integers(first, end, n)

    def _validation_windows(
        self, rng: np.random.Generator, n_series: int, train_end: int, n: int, horizon: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """``(rows, origins)`` of the validation windows: origins whose whole target lies in the
        held-out tail, a fixed sample of at most ``max_val_windows``."""
        val_origins_all = np.arange(train_end - 1, n - horizon, dtype=np.int64)
        vr = np.repeat(np.arange(n_series), len(val_origins_all))
        vo = np.tile(val_origins_all, n_series)
        if len(vr) > self.max_val_windows:
            pick = rng.choice(len(vr), self.max_val_windows, replace=False)
            vr, vo = vr[pick], vo[pick]
        return vr, vo

    def _train_epoch(
        self,
        opt: torch.optim.Optimizer,
        q: torch.Tensor,
        data: tuple[FloatArray, FloatArray, FloatArray, npt.NDArray[np.int64]],
        rows: npt.NDArray[np.int64],
        origins: npt.NDArray[np.int64],
        horizon: int,
    ) -> float:
        """One pass over the sampled windows ``(rows, origins)``; the mean pinball loss."""
        assert self.net is not None
        x, y, cal, ids = data
        self.net.train()
        total, count = 0.0, 0
        for b in range(0, len(rows), self.batch_size):
            xb, ib, fb, tb, mb = self._batch(
                x, y, cal, ids, rows[b : b + self.batch_size], origins[b : b + self.batch_size], horizon
            )
            loss = pinball_loss(self.net(xb, ib, fb), tb, mb, q)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(self.net.parameters(), self.grad_clip)
            opt.step()
            total += float(loss.detach()) * len(xb)
            count += len(xb)
        return total / max(count, 1)

    def _evaluate(
        self,
        x: FloatArray,
        y: FloatArray,
        cal: FloatArray,
        ids: npt.NDArray[np.int64],
        rows: npt.NDArray[np.int64],
        origins: npt.NDArray[np.int64],
        horizon: int,
        q: torch.Tensor,
    ) -> float:
        assert self.net is not None
        self.net.eval()
        total, weight = 0.0, 0.0
        with torch.no_grad():
            for b in range(0, len(rows), 1024):
                xb, ib, fb, tb, mb = self._batch(
                    x, y, cal, ids, rows[b : b + 1024], origins[b : b + 1024], horizon
                )
                w = float(mb.sum())
                total += float(pinball_loss(self.net(xb, ib, fb), tb, mb, q)) * w
                weight += w
        return total / weight if weight > 0 else math.nan

    def predict(self, panel: Panel, horizon: int) -> Forecast:
        if self.net is None or self.vocab is None or self.horizon is None:
            raise RuntimeError(f"{self.name} model is not fitted: call fit() or load() first")
        if horizon > self.horizon:
            raise ValueError(f"model was trained for horizon {self.horizon}, asked for {horizon}; retrain")
        x, _, cal = self._inputs(panel, self.horizon, stats_upto=panel.n_steps)
        scaling = robust_scale(panel.values)
        ids = self.vocab.encode(panel.keys)
        rows = np.arange(panel.n_series, dtype=np.int64)
        origins = np.full(panel.n_series, panel.n_steps - 1, dtype=np.int64)
        outs = []
        self.net.eval()
        with torch.no_grad():
            for b in range(0, panel.n_series, 1024):
                xb, ib, fb = self._batch(
                    x, None, cal, ids, rows[b : b + 1024], origins[b : b + 1024], self.horizon
                )
                outs.append(self.net(xb, ib, fb).cpu().numpy().astype(np.float64))
        qs = np.sort(np.concatenate(outs, axis=0), axis=2)[:, :horizon, :]  # sorting: no crossed quantiles
        lower, point, upper = (scaling.invert(qs[:, :, k]) for k in range(3))
        return Forecast(
            origin=panel.end,
            step=panel.step,
            keys=panel.keys,
            point=point,
            lower=lower,
            upper=upper,
            model=[self.name] * panel.n_series,
            level=QUANTILES[2] - QUANTILES[0],
        )

    # ---- persistence ----------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """Write ``model.pt`` (state_dict) and ``config.json`` into the directory ``path``."""
        if self.net is None or self.vocab is None:
            raise RuntimeError(f"{self.name} model is not fitted: nothing to save")
        d = Path(path)
        d.mkdir(parents=True, exist_ok=True)
        torch.save(self.net.state_dict(), d / "model.pt")
        config = {
            "name": self.name,
            "format": 1,
            "params": self.params(),
            "horizon": self.horizon,
            "n_features": self._n_features,
            "vocabulary": self.vocab.to_dict(),
        }
        (d / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))

    @classmethod
    def load(cls, path: str | Path) -> NeuralModel:
        """Load a directory written by :meth:`save` (weights only: no pickled code is executed)."""
        d = Path(path)
        config = json.loads((d / "config.json").read_text())
        if config.get("name") != cls.name:
            raise ValueError(f"{d} holds a {config.get('name')!r} model, not {cls.name!r}; use load_model()")
        model = cls(**config["params"])
        model.device = "cuda" if torch.cuda.is_available() else "cpu"
        model.vocab = LabelVocabulary.from_dict(config["vocabulary"])
        model.horizon = int(config["horizon"])
        model._n_features = int(config["n_features"])
        model.net = QuantileNet(
            model.make_encoder(model._n_features),
            model.hidden_size,
            model.horizon,
            model.calendar.n_features,
            model.vocab.cardinalities,
        ).to(model.device)
        state = torch.load(d / "model.pt", map_location=model.device, weights_only=True)
        model.net.load_state_dict(state)
        return model
