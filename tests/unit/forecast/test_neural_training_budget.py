"""A network's training cost follows its data, early stopping stops, and divergence is refused."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from foresight.forecast.auto import AutoModel
from foresight.forecast.errors import TrainingDiverged
from foresight.forecast.models import get_model
from foresight.forecast.models.neural import NeuralModel

from .conftest import seasonal_panel


def test_an_epoch_trains_on_each_distinct_window_once_when_the_history_holds_fewer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[tuple[int, int]] = []
    original = NeuralModel._train_epoch

    def spy(self: NeuralModel, opt: Any, q: Any, data: Any, rows: Any, origins: Any, horizon: int) -> float:
        seen.append((len(rows), len(set(zip(rows.tolist(), origins.tolist(), strict=True)))))
        return original(self, opt, q, data, rows, origins, horizon)

    monkeypatch.setattr(NeuralModel, "_train_epoch", spy)
    panel = seasonal_panel(n_series=2, days=6)
    model = get_model("gru", input_window=24, hidden_size=8, layers=1, epochs=2, windows_per_epoch=20000)
    model.fit(panel, 6)
    assert seen and all(n == distinct < 20000 for n, distinct in seen)  # every window once, no repeats
    big = get_model("gru", input_window=24, hidden_size=8, layers=1, epochs=1, windows_per_epoch=64)
    seen.clear()
    big.fit(panel, 6)
    assert seen == [(64, seen[0][1])]  # a long history is sampled: the epoch's cost stays bounded


def test_early_stopping_stops_on_a_plateau_of_tiny_gains(monkeypatch: pytest.MonkeyPatch) -> None:
    losses = iter([1.0, 0.999, 0.998, 0.997, 0.996, 0.995, 0.994, 0.993, 0.992, 0.991])
    monkeypatch.setattr(NeuralModel, "_evaluate", lambda *a, **k: next(losses))
    model = get_model("gru", input_window=24, hidden_size=8, layers=1, epochs=10, patience=3,
                      windows_per_epoch=64)  # fmt: skip
    model.fit(seasonal_panel(n_series=2, days=6), 6)
    assert len(model.history) == 4  # epoch 1 sets the best; 0.1% gains are no gain: 3 stale epochs


@pytest.mark.parametrize("bad", [math.nan, math.inf, 1e6])
def test_a_diverging_network_is_refused_and_auto_drops_it(
    monkeypatch: pytest.MonkeyPatch, bad: float
) -> None:
    losses = iter([1.0, bad, 1.0, 1.0])
    monkeypatch.setattr(NeuralModel, "_train_epoch", lambda *a, **k: next(losses, 1.0))
    model = get_model("gru", input_window=24, hidden_size=8, layers=1, epochs=4, windows_per_epoch=64)
    with pytest.raises(TrainingDiverged, match=r"diverged at epoch 2.*learningRate"):
        model.fit(seasonal_panel(n_series=2, days=6), 6)
    losses = iter([1.0, bad, 1.0, 1.0])
    auto = AutoModel(candidates=["seasonal_naive", "gru"], folds=2,
                     model_params={"gru": {"input_window": 24, "hidden_size": 8, "layers": 1, "epochs": 4,
                                           "windows_per_epoch": 64}})  # fmt: skip
    auto.fit(seasonal_panel(n_series=2, days=8), 6)
    assert "TrainingDiverged" in auto.failures["gru"]
    assert all("gru" not in c.models for c in auto.choices)
    assert np.isfinite(auto.predict(seasonal_panel(n_series=2, days=8), 6).point).all()
