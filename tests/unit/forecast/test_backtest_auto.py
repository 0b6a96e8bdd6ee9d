"""Rolling-origin backtests, metrics and the auto model."""

from __future__ import annotations

import numpy as np
import pytest
from foresight.forecast import accuracy
from foresight.forecast.auto import AutoModel
from foresight.forecast.backtest import backtest, backtest_origins
from foresight.forecast.models import get_model
from foresight.forecast.selection import choose, combine
from foresight.timeseries import Panel

from .conftest import START, seasonal_panel


def test_metrics_on_a_known_case() -> None:
    actual = np.array([[1.0, 2.0, 3.0, np.nan]])
    point = np.array([[2.0, 2.0, 1.0, 100.0]])
    assert accuracy.mae(actual, point).tolist() == [1.0]  # (1 + 0 + 2) / 3, the NaN skipped
    assert accuracy.rmse(actual, point)[0] == pytest.approx(np.sqrt(5 / 3))
    history = np.array([[0.0, 1.0, 0.0, 3.0]])  # |1-0| lag 2: |0-0|, |3-1| -> mean 1
    assert accuracy.seasonal_naive_scale(history, 2).tolist() == [1.0]
    assert accuracy.mase(actual, point, np.array([0.5])).tolist() == [2.0]
    assert accuracy.coverage(actual, point - 1, point + 0.5).tolist() == [pytest.approx(2 / 3)]


def test_backtest_of_naive_on_a_ramp_is_exactly_known() -> None:
    # y = t: naive from origin o predicts o for steps o+1..o+h, so errors are 1..h, MAE (h+1)/2.
    values = np.arange(40, dtype=float)[None, :]
    panel = Panel(start=START, step=3600, keys=[{}], values=values)
    res = backtest(panel, lambda: get_model("naive"), horizon=4, folds=3, season=2)
    assert res.origins == backtest_origins(40, 4, 3) == [27, 31, 35]
    assert res.mae.tolist() == [2.5]
    assert res.scale.tolist() == [2.0]  # seasonal naive with season 2 on a unit ramp errs by 2
    assert res.mase.tolist() == [1.25]
    assert res.summary()["mase"] == 1.25
    with pytest.raises(ValueError, match="too short"):
        backtest_origins(10, 4, 3)


def test_neural_models_are_fitted_once_per_backtest() -> None:
    calls: list[int] = []
    model = get_model("gru", input_window=24, hidden_size=8, layers=1, epochs=1, windows_per_epoch=64)
    original_fit = model.fit

    def counting_fit(panel: Panel, horizon: int, **kw: object) -> None:
        calls.append(panel.n_steps)
        original_fit(panel, horizon, **kw)  # type: ignore[arg-type]

    model.fit = counting_fit  # type: ignore[method-assign]
    res = backtest(seasonal_panel(n_series=2, days=8), lambda: model, horizon=6, folds=3)
    assert calls == [8 * 24 - 18] and np.isfinite(res.point).all()


def test_auto_picks_seasonal_naive_on_a_pure_seasonal_series() -> None:
    panel = seasonal_panel(n_series=3, days=8, noise=0.0)
    auto = AutoModel(candidates=["naive", "seasonal_naive", "linear"], folds=3)
    auto.fit(panel, 12)
    assert [c["model"] for c in auto.series_choices()] == ["seasonal_naive"] * 3
    fc = auto.predict(panel, 12)
    np.testing.assert_allclose(fc.point, get_model("seasonal_naive").predict(panel, 12).point)
    assert fc.model == ["seasonal_naive"] * 3


def test_auto_blends_the_best_two_and_reports_the_error_of_folds_it_did_not_choose_on() -> None:
    # Issue 16: the choice is judged on folds it was not made on (the old test asserted that auto's
    # in-sample backtest beats every candidate per series: the winner's curse the issue removes).
    rng = np.random.default_rng(5)
    t = np.arange(24 * 8)
    rows = [
        50 + 10 * np.sin(2 * np.pi * t / 24) + rng.standard_normal(t.size),  # seasonal
        np.cumsum(rng.standard_normal(t.size)),  # random walk
        0.5 * t + rng.standard_normal(t.size),  # trend
        20 + rng.standard_normal(t.size) * 3,  # noise
    ]
    values = np.array(rows)
    values[1, 50:55] = np.nan
    panel = Panel(start=START, step=3600, keys=[{"s": str(i)} for i in range(4)], values=values)
    candidates = ["naive", "seasonal_naive", "linear", "theta"]
    auto = AutoModel(candidates=candidates, folds=3)
    auto.fit(panel, 6)
    for choice in auto.choices:
        assert set(choice.models) <= set(candidates) and abs(sum(choice.weights) - 1) < 1e-9
        assert all(w >= 0.1 for w in choice.weights)
    honest = auto.honest_result
    assert honest is not None and auto.auto_result is not None
    assert np.isnan(honest.point[:, 0]).all() and np.isfinite(honest.point[:, 1:]).all()
    # Fold 2 is forecast with the choice made on fold 1 alone, fold 3 with folds 1-2.
    first_choices, _ = choose(
        honest.actual[:, :1], {n: auto.results[n].point[:, :1] for n in candidates}, honest.scale
    )
    stack = np.stack([auto.results[n].point for n in candidates])
    np.testing.assert_allclose(honest.point[:, 1], combine(first_choices, candidates, stack[:, :, 1]))
    assert auto.backtest_errors()["auto"]["mase"] == pytest.approx(honest.summary()["mase"])
    fc = auto.predict(panel, 6)
    assert fc.point.shape == (4, 6) and np.isfinite(fc.point).all()
    assert np.all(fc.lower <= fc.point) and np.all(fc.point <= fc.upper)
    assert fc.model == [c["model"] for c in auto.series_choices()]


def test_auto_follows_a_candidate_that_wins_on_every_series() -> None:
    panel = seasonal_panel(n_series=4, days=8, noise=0.5)
    auto = AutoModel(candidates=["naive", "seasonal_naive", "linear"], folds=4)
    auto.fit(panel, 12)
    assert all(c.models[0] == "seasonal_naive" for c in auto.choices)
    errors = auto.backtest_errors()
    assert errors["auto"]["mase"] < min(errors["naive"]["mase"], errors["linear"]["mase"])


def test_auto_drops_a_failing_candidate_and_reports_it() -> None:
    panel = seasonal_panel(n_series=2, days=3)
    auto = AutoModel(candidates=["seasonal_naive", "lstm"], folds=2,
                     model_params={"lstm": {"input_window": 48, "epochs": 1}})  # fmt: skip
    auto.fit(panel, 24)  # 72 steps: too short for the LSTM's train/validation split
    assert "lstm" in auto.failures and "too short" in auto.failures["lstm"]
    assert set(auto.backtest_errors()) == {"seasonal_naive", "auto"}


def test_auto_ranks_by_absolute_error_when_no_series_has_a_mase_scale() -> None:
    # A constant history (a counter's rate that never moved) has no seasonal-naive scale, so every
    # candidate's MASE is NaN; auto still picks, on the absolute error, instead of failing the run.
    actual = np.full((2, 3, 4), 5.0)
    points = {"naive": np.full((2, 3, 4), 5.0), "linear": np.full((2, 3, 4), 7.0)}
    choices, default = choose(actual, points, np.array([np.nan, np.nan]))
    assert default.models[0] == "naive"
    assert all(c.models[0] == "naive" for c in choices)
