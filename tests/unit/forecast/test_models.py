"""Conformance of every model (shapes, bounds, determinism, save/load) plus neural behaviour."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from foresight.forecast.models import (
    MODEL_NAMES,
    EpochReport,
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
NAMES = ["naive", "seasonal_naive", "linear", "ets", "theta", "lstm", "gru", "transformer"]


def _make(name: str) -> object:
    return get_model(name, **TINY_NEURAL) if name in ("lstm", "gru", "transformer") else get_model(name)


def _gappy_panel() -> Panel:
    panel = seasonal_panel(n_series=3, days=8)
    panel.values[1, 40:46] = np.nan  # a scrape gap inside the history
    panel.values[2, -2:] = np.nan  # and one at the very end
    panel.covariates["write_rate"] = np.abs(np.gradient(np.nan_to_num(panel.values), axis=1))
    return panel


@pytest.mark.parametrize("name", NAMES)
def test_model_conforms(name: str, tmp_path: Path) -> None:
    panel = _gappy_panel()
    train = panel.head(panel.n_steps - 24)
    model = _make(name)
    reports: list[EpochReport] = []
    model.fit(train, 12, seed=1, progress=reports.append)  # type: ignore[attr-defined]
    fc = model.predict(panel, 12)  # type: ignore[attr-defined]
    assert fc.point.shape == fc.lower.shape == fc.upper.shape == (3, 12)
    assert fc.origin == panel.end and fc.keys == panel.keys and fc.model == [name] * 3
    assert np.isfinite(fc.point).all()
    assert np.all(fc.lower <= fc.point + 1e-9) and np.all(fc.point <= fc.upper + 1e-9)
    again = _make(name)
    again.fit(train, 12, seed=1)  # type: ignore[attr-defined]
    np.testing.assert_array_equal(again.predict(panel, 12).point, fc.point)  # type: ignore[attr-defined]
    if model.neural:  # type: ignore[attr-defined]
        assert [r.epoch for r in reports] == [1, 2, 3] and all(np.isfinite(r.train_loss) for r in reports)
        model.save(tmp_path / "m")  # type: ignore[attr-defined]
        loaded = load_model(tmp_path / "m")
        np.testing.assert_array_equal(loaded.predict(panel, 12).point, fc.point)
        np.testing.assert_array_equal(loaded.predict(panel, 12).upper, fc.upper)


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
