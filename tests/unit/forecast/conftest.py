"""Tiny panels shared by the forecasting tests."""

from __future__ import annotations

import numpy as np
import pytest
from foresight.timeseries import Panel

START = 1_700_000_000 - 1_700_000_000 % 86400  # a UTC midnight


def seasonal_panel(n_series: int = 3, days: int = 10, seed: int = 0, noise: float = 0.05) -> Panel:
    """Hourly series: a daily sine with a per-series level and amplitude, plus small noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(days * 24)
    rows = []
    for i in range(n_series):
        level = 100.0 * (i + 1)
        amp = 10.0 * (i + 1)
        rows.append(level + amp * np.sin(2 * np.pi * t / 24) + noise * amp * rng.standard_normal(t.size))
    keys = [{"user": f"u{i}", "cluster": "a" if i % 2 else "b"} for i in range(n_series)]
    return Panel(start=START, step=3600, keys=keys, values=np.array(rows))


@pytest.fixture
def seasonal() -> Panel:
    return seasonal_panel()
