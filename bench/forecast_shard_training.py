"""Training across shards: one network on a sample drawn across the shards vs one network per shard.

A sharded ForecastTask run trains its neural model once, in its plan pod, on
``model.trainingSampleSeries`` series drawn evenly across the shards
(:func:`foresight.forecast.shard_models.sample_series`, the unknown-label embedding set to the mean
of the learnt ones), and every shard predicts with it. The alternative is each shard training its
own network on its own series. This benchmark compares them on the same series and the same
training budget per network (epochs x windows per epoch), with two references: one network on
every series (what a single pod does) and seasonal naive.

Data: SYNTHETIC storage quotas (``foresight.forecast.synthetic``; 30 days hourly), assigned to
shards by the runtime's own hash (:func:`foresight.forecast.shard_plan.shard_of`). Protocol: fit
on everything but the last 24 h, forecast those 24 h, MASE per series (season 24, scale from the
fitted part), averaged; per seed, then the mean over seeds. Time: seconds of training per
network; per shard both the sum (the cluster's CPU) and the longest (the wall time with the
shards in parallel).

    nice .venv/bin/python bench/forecast_shard_training.py [--series 400 --shards 4 --sample 100]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from forecast_common import table, write_result
from foresight.forecast import accuracy
from foresight.forecast.models.base import get_model
from foresight.forecast.shard_models import average_unknown_embedding, sample_series
from foresight.forecast.shard_plan import PlannedSeries, shard_of
from foresight.forecast.synthetic import make_storage_dataset
from foresight.timeseries import Panel

HORIZON = 24
SEASON = 24


def fit_predict(
    train: Panel, predict_on: Panel, params: dict[str, Any], seed: int, mean_unknown: bool
) -> tuple[np.ndarray, float]:
    """Fit an LSTM on ``train``; its 24-step forecast of ``predict_on``; the fit's seconds."""
    model = get_model("lstm", **params)
    t0 = time.perf_counter()
    model.fit(train, HORIZON, seed=seed)
    seconds = time.perf_counter() - t0
    if mean_unknown:
        average_unknown_embedding(model)  # type: ignore[arg-type]
    return model.predict(predict_on, HORIZON).point, seconds


def mase(point: np.ndarray, actual: np.ndarray, history: np.ndarray) -> float:
    scale = accuracy.seasonal_naive_scale(history, SEASON)
    values = accuracy.mase(actual, point, scale)
    return float(np.nanmean(values))


def run_seed(panel: Panel, shards: list[list[int]], sample: list[int], params: dict[str, Any], seed: int
             ) -> dict[str, dict[str, float]]:  # fmt: skip
    n = panel.n_steps - HORIZON
    history = panel.head(n)
    actual = panel.values[:, n : n + HORIZON]
    out: dict[str, dict[str, float]] = {}
    snaive = np.stack([history.values[:, n - SEASON + (h % SEASON)] for h in range(HORIZON)], axis=1)
    out["seasonal naive"] = {"mase": mase(snaive, actual, history.values), "seconds": 0.0, "networks": 0}
    for name, rows, mean_unknown in (
        ("one network, all series (single pod)", list(range(panel.n_series)), False),
        ("one network, sample across shards", sample, True),
        ("  same, unknown labels untrained", sample, False),
    ):
        point, secs = fit_predict(history.select(rows), history, params, seed, mean_unknown)
        out[name] = {"mase": mase(point, actual, history.values), "seconds": secs, "networks": 1}
    point = np.full_like(actual, np.nan)
    times = []
    for rows in shards:
        part, secs = fit_predict(history.select(rows), history.select(rows), params, seed, False)
        point[rows] = part
        times.append(secs)
    out["one network per shard"] = {"mase": mase(point, actual, history.values), "seconds": sum(times),
                                    "longest_shard_s": max(times), "networks": len(shards)}  # fmt: skip
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--series", type=int, default=400)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--sample", type=int, default=100, help="series the sampled network trains on")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--windows", type=int, default=2000, help="windows per epoch, every network")
    args = parser.parse_args()
    params = {"input_window": 72, "hidden_size": 32, "layers": 1, "epochs": args.epochs,
              "windows_per_epoch": args.windows, "batch_size": 128, "patience": 3}  # fmt: skip
    t_start = time.perf_counter()
    data = make_storage_dataset(n_series=args.series, days=30, seed=0, gap_fraction=0.0)
    panel = data.panel
    shards: list[list[int]] = [[] for _ in range(args.shards)]
    for i, key in enumerate(panel.keys):
        shards[shard_of(key, args.shards)].append(i)
    planned = [[PlannedSeries(panel.keys[i]) for i in rows] for rows in shards]
    index = {tuple(sorted(k.items())): i for i, k in enumerate(panel.keys)}
    sample = sorted(index[tuple(sorted(p.labels.items()))] for p in sample_series(planned, args.sample))
    fit_predict(panel.select([0, 1]), panel.select([0, 1]), {**params, "epochs": 1, "windows_per_epoch": 100},
                0, False)  # warm-up: torch's first call is not any contender's time  # fmt: skip
    runs = [run_seed(panel, shards, sample, params, seed) for seed in range(args.seeds)]
    rows = []
    for name in runs[0]:
        row: dict[str, Any] = {"contender": name}
        for field in runs[0][name]:
            mean = float(np.mean([r[name][field] for r in runs]))
            row[field] = int(mean) if field == "networks" else round(mean, 3)
        rows.append(row)
    cols = ["contender", "mase", "networks", "seconds", "longest_shard_s"]
    print(
        f"{args.series} SYNTHETIC quotas in {args.shards} shards ({[len(s) for s in shards]} series), sample "
        f"{len(sample)}, {args.epochs} epochs x {args.windows} windows per network, {args.seeds} seeds"
    )
    print(table(rows, cols))
    path = write_result("shard_training", {
        "benchmark": "forecast_shard_training", "data": "SYNTHETIC storage quotas, 30 days hourly",
        "series": args.series, "shards": [len(s) for s in shards], "sample": len(sample),
        "params": params, "seeds": args.seeds, "horizon": HORIZON, "rows": rows,
        "per_seed": runs, "seconds": round(time.perf_counter() - t_start, 1),
        "machine": {"cpus": os.cpu_count(), "load_avg_1m": os.getloadavg()[0]},
    })  # fmt: skip
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
