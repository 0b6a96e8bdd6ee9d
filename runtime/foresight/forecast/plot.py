"""A PNG of forecast vs actual for a few series (matplotlib, headless ``Agg`` backend).

Per series: the recent history, the backtest forecast from the last rolling origin drawn over
what actually happened (out of sample: the model had not seen those steps), the live forecast
after the last observation with its band, what really followed when it is known (a replay,
synthetic data), and the threshold line. Pure output: it reads arrays
and writes one file.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from foresight.timeseries import FloatArray, Forecast, Panel

from .backtest import BacktestResult

__all__ = ["plot_forecasts"]


def _dates(ts: Sequence[int] | np.ndarray) -> list[datetime]:
    return [datetime.fromtimestamp(int(t), tz=UTC) for t in ts]


def plot_forecasts(
    panel: Panel,
    forecast: Forecast,
    path: str | Path,
    *,
    rows: Sequence[int],
    threshold: FloatArray | None = None,
    backtest: BacktestResult | None = None,
    future_actual: FloatArray | None = None,
    history_steps: int = 96,
    unit: tuple[str, float] = ("", 1.0),
    title: str = "Foresight: forecast vs actual",
) -> Path:
    """Write a PNG with one panel per series in ``rows`` (indices into ``panel`` / ``forecast``).

    Args:
        panel: the history the forecast was made from.
        forecast: the live forecast (after ``panel.end``).
        path: output file.
        rows: which series to draw (a handful).
        threshold: per-series threshold (drawn as a line) or ``None``.
        backtest: a backtest of the same panel; its last fold is drawn over the actuals.
        future_actual: what really happened after the origin, ``(n_series, horizon)`` aligned with
            ``forecast`` (known in a replay or on synthetic data), drawn over the forecast.
        history_steps: how much history to show.
        unit: ``(name, divisor)`` for the y axis, e.g. ``("TiB", 2**40)``.
        title: the figure title.
    """
    import matplotlib

    matplotlib.use("Agg")  # headless: no display on servers and CI
    import matplotlib.pyplot as plt

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    name, div = unit
    n = max(1, len(rows))
    fig, axes = plt.subplots(n, 1, figsize=(11, 2.8 * n), squeeze=False, sharex=True)
    first = max(0, panel.n_steps - history_steps)
    for ax, i in zip(axes[:, 0], rows, strict=False):
        _draw_series(ax, i, panel, forecast, first=first, div=div, backtest=backtest,
                     future_actual=future_actual, threshold=threshold)  # fmt: skip
        ax.set_ylabel(name)
    fig.suptitle(title, fontsize=11)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def _draw_series(
    ax: Any,  # a matplotlib Axes (its type stubs refuse the datetimes it plots fine)
    i: int,
    panel: Panel,
    forecast: Forecast,
    *,
    first: int,
    div: float,
    backtest: BacktestResult | None,
    future_actual: FloatArray | None,
    threshold: FloatArray | None,
) -> None:
    """Series ``i`` on ``ax``: history from column ``first``, the last backtest fold, the forecast
    with its band, what followed (when known) and the threshold; values divided by ``div``."""
    ts = panel.timestamps()
    ax.plot(_dates(ts[first:]), panel.values[i, first:] / div, color="black", lw=1.2, label="actual")
    if backtest is not None:
        o = backtest.origins[-1]
        bt_ts = ts[o] + panel.step * np.arange(1, backtest.horizon + 1)
        who = backtest.series_model[i] if backtest.series_model else backtest.model
        ax.plot(
            _dates(bt_ts),
            backtest.point[i, -1] / div,
            color="tab:orange",
            lw=1.2,
            ls="--",
            label=f"backtest, last origin ({who})",
        )
    last = (
        panel.values[i, np.flatnonzero(np.isfinite(panel.values[i]))[-1]]
        if np.isfinite(panel.values[i]).any()
        else np.nan
    )
    point = np.concatenate([[last], forecast.point[i]]) / div
    lower = np.concatenate([[last], forecast.lower[i]]) / div
    upper = np.concatenate([[last], forecast.upper[i]]) / div
    fd = _dates(forecast.origin + forecast.step * np.arange(0, forecast.horizon + 1))
    ax.plot(fd, point, color="tab:blue", lw=1.5, label=f"forecast ({forecast.model[i]})")
    if future_actual is not None:
        ax.plot(fd, np.concatenate([[last], future_actual[i]]) / div, color="black", lw=1.2, ls=":",
                label="actual after the forecast")  # fmt: skip
    ax.fill_between(
        fd, lower, upper, color="tab:blue", alpha=0.2, label=f"{round(forecast.level * 100)}% band"
    )
    if threshold is not None and np.isfinite(threshold[i]):
        ax.axhline(threshold[i] / div, color="tab:red", lw=1, ls=":", label="threshold")
    ax.axvline(_dates([forecast.origin])[0], color="grey", lw=0.8)
    ax.set_title(", ".join(f"{k}={v}" for k, v in forecast.keys[i].items()), fontsize=9)
    ax.legend(fontsize=7, loc="upper left", ncol=3)
