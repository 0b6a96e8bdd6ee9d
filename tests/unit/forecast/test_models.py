"""Conformance of every registered model (shapes, bounds, determinism, save/load) plus neural behaviour.

The models under test are the registry's (``MODEL_NAMES``), with what each class says of itself
(``neural``, ``saveable``): a model added to the registry is checked here without editing this
file. Only constructor parameters that keep a model small enough for a unit test are given per
model: every neural one gets ``TINY_NEURAL``; ``auto`` compares a cheap baseline with a tiny LSTM.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from foresight.forecast.models import (
    MODEL_NAMES,
    EpochReport,
    Model,
    get_model,
    is_neural,
    load_model,
    model_class,
    neural_model_names,
)
from foresight.timeseries import Panel

from .conftest import seasonal_panel

TINY_NEURAL = {"input_window": 48, "hidden_size": 16, "layers": 1, "epochs": 3, "windows_per_epoch": 256,
               "batch_size": 64, "learning_rate": 1e-2}  # fmt: skip
AUTO_CANDIDATES = ("seasonal_naive", "lstm")
SMALL: dict[str, dict[str, Any]] = {
    "auto": {"candidates": AUTO_CANDIDATES, "model_params": {"lstm": TINY_NEURAL}, "folds": 2},
}
"""Constructor parameters that keep a (non-neural) model small; the rest use their defaults."""


def _make(name: str) -> Model:
    return get_model(name, **(TINY_NEURAL if model_class(name).neural else SMALL.get(name, {})))


def _made_by(name: str) -> set[str]:
    """The names a forecast of model ``name`` may carry per series: its own, or for ``auto`` the
    candidate (or the ensemble of two) each series got."""
    if name != "auto":
        return {name}
    pairs = {f"ensemble:{a}+{b}" for a in AUTO_CANDIDATES for b in AUTO_CANDIDATES if a != b}
    return {*AUTO_CANDIDATES} | pairs


def _gappy_panel() -> Panel:
    panel = seasonal_panel(n_series=3, days=8)
    panel.values[1, 40:46] = np.nan  # a scrape gap inside the history
    panel.values[2, -2:] = np.nan  # and one at the very end
    panel.covariates["write_rate"] = np.abs(np.gradient(np.nan_to_num(panel.values), axis=1))
    return panel


def test_the_small_parameters_name_registered_models() -> None:
    assert set(SMALL) <= set(MODEL_NAMES), "SMALL names a model the registry does not have"
    assert set(AUTO_CANDIDATES) <= set(MODEL_NAMES)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_model_conforms(name: str, tmp_path: Path) -> None:
    panel = _gappy_panel()
    train = panel.head(panel.n_steps - 24)
    model = _make(name)
    assert model.name == name
    reports: list[EpochReport] = []
    model.fit(train, 12, seed=1, progress=reports.append)
    fc = model.predict(panel, 12)
    assert fc.point.shape == fc.lower.shape == fc.upper.shape == (3, 12)
    assert fc.origin == panel.end and fc.keys == panel.keys
    assert set(fc.model) <= _made_by(name), fc.model
    assert np.isfinite(fc.point).all()
    assert np.all(fc.lower <= fc.point + 1e-9) and np.all(fc.point <= fc.upper + 1e-9)
    again = _make(name)
    again.fit(train, 12, seed=1)
    np.testing.assert_array_equal(again.predict(panel, 12).point, fc.point)
    if model.neural:
        assert [r.epoch for r in reports] == [1, 2, 3] and all(np.isfinite(r.train_loss) for r in reports)
    if model.saveable:
        model.save(tmp_path / "m")
        loaded = load_model(tmp_path / "m")
        assert type(loaded) is type(model)
        np.testing.assert_array_equal(loaded.predict(panel, 12).point, fc.point)
        np.testing.assert_array_equal(loaded.predict(panel, 12).upper, fc.upper)
    else:
        with pytest.raises(NotImplementedError, match="get_model"):
            model.save(tmp_path / "m")


def test_neural_learns_a_seasonal_pattern_better_than_naive() -> None:
    panel = seasonal_panel(n_series=4, days=12, noise=0.05)
    train, actual = panel.head(panel.n_steps - 24), panel.values[:, -24:]
    model = get_model("gru", **{**TINY_NEURAL, "epochs": 10, "windows_per_epoch": 512})
    model.fit(train, 24, seed=0)
    err = np.abs(model.predict(train, 24).point - actual).mean()
    naive_err = np.abs(train.values[:, -1:] - actual).mean()
    assert err < 0.6 * naive_err


def test_neural_rejects_missing_covariates_and_short_history() -> None:
    panel = _gappy_panel()
    model = get_model("lstm", **TINY_NEURAL)
    model.fit(panel, 6, seed=0)
    bare = Panel(start=panel.start, step=panel.step, keys=panel.keys, values=panel.values)
    with pytest.raises(ValueError, match="write_rate"):
        model.predict(bare, 6)
    with pytest.raises(ValueError, match="too short"):
        get_model("lstm", **TINY_NEURAL).fit(panel.head(12), 6)


def test_unknown_model_name_lists_the_choices() -> None:
    with pytest.raises(ValueError, match="seasonal_naive"):
        get_model("prophet")


def test_the_neural_capability_is_each_model_classs_own_flag() -> None:
    assert neural_model_names() == ("lstm", "gru", "transformer")
    for name in MODEL_NAMES:
        assert is_neural(name) is model_class(name).neural, name
    assert not is_neural("auto") and not is_neural("no-such-model")
