"""statsforecast baselines on tiny panels."""

from __future__ import annotations

import numpy as np
from foresight.forecast.models import get_model

from .conftest import seasonal_panel


def test_ets_and_theta_follow_a_daily_cycle_with_gaps() -> None:
    panel = seasonal_panel(n_series=2, days=6)
    panel.values[0, 30:35] = np.nan
    train, actual = panel.head(panel.n_steps - 24), panel.values[:, -24:]
    for name in ("ets", "theta"):
        fc = get_model(name).predict(train, 24)
        assert fc.point.shape == (2, 24) and np.isfinite(fc.point).all()
        assert np.all(fc.lower <= fc.point) and np.all(fc.point <= fc.upper)
        naive_err = np.abs(actual - train.values[:, -1:]).mean()
        assert np.abs(actual - fc.point).mean() < 0.5 * naive_err, name
