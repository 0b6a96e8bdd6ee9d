"""Accuracy benchmark: rolling-origin backtests (3 folds) at 6 h and 24 h on real and synthetic groups.

For every group and horizon: mean / median MASE (season 24) and MAE per model, the ratio of each
model's mean MASE to the best baseline's, the median per-series ratio, and the win rate (share of
series where the model beats the best baseline). Baselines: naive, seasonal naive, predict_linear,
AutoETS, AutoTheta. Targets: auto at or below the best baseline on every group; neural models >= 5%
below the best statistical baseline on dense seasonal series at 24 h.

A full run is long on 2 cores (each neural model takes about two minutes per group and horizon,
``auto`` with its inner backtests longer);
``--groups`` runs a subset (its JSON is ``forecast_accuracy-<groups>.json``, so a full run's file
is never overwritten by part of one).

Usage: python bench/forecast_accuracy.py [--quick] [--groups vic_elec,taylor]
"""

from __future__ import annotations

import argparse
import logging
import time
from typing import Any

import numpy as np
from forecast_common import load_groups, table, write_result
from foresight.forecast.auto import AutoModel
from foresight.forecast.backtest import BacktestResult, backtest
from foresight.forecast.models import Model, get_model, neural_model_names


def _div(a: float, b: float) -> float:
    return a / b if b > 0 else float("nan")


BASELINES = ["naive", "seasonal_naive", "linear", "ets", "theta"]
NEURAL = list(neural_model_names())


def neural_params(quick: bool, epochs: int = 20, windows: int = 4096) -> dict[str, Any]:
    if quick:
        return {"input_window": 72, "hidden_size": 16, "epochs": 2, "windows_per_epoch": 512}
    return {"input_window": 168, "epochs": epochs, "windows_per_epoch": windows, "patience": 4}


def factory(name: str, nparams: dict[str, Any]) -> Model:
    if name in NEURAL:
        return get_model(name, **nparams)
    if name == "auto":
        return AutoModel(candidates=["seasonal_naive", "linear", "ets", "theta", "gru"],
                         model_params={"gru": nparams})  # fmt: skip
    return get_model(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short smoke run (tiny groups, 2 epochs)")
    parser.add_argument("--epochs", type=int, default=20, help="neural models' maximum epochs")
    parser.add_argument("--windows", type=int, default=4096, help="neural models' windows per epoch")
    parser.add_argument("--groups", default="", help="comma-separated subset of the groups (default: all)")
    args = parser.parse_args()
    nparams = neural_params(args.quick, args.epochs, args.windows)
    logging.basicConfig(level=logging.WARNING)
    groups = load_groups(args.quick)
    wanted = [g for g in args.groups.split(",") if g]
    unknown = sorted(set(wanted) - set(groups))
    if unknown:
        parser.error(f"unknown group(s) {', '.join(unknown)}; the groups are {', '.join(groups)}")
    if wanted:
        groups = {g: groups[g] for g in wanted}
    models = [*BASELINES, *NEURAL, "auto"]
    rows: list[dict[str, Any]] = []
    for gname, panel in groups.items():
        for horizon in (6, 24):
            results: dict[str, BacktestResult] = {}
            seconds: dict[str, float] = {}
            for name in models:
                t0 = time.perf_counter()
                results[name] = backtest(
                    panel, lambda n=name: factory(n, nparams), horizon, folds=3, season=24
                )
                seconds[name] = time.perf_counter() - t0
                print(f"  {gname} h={horizon} {name}: {seconds[name]:.0f}s", flush=True)
            mean_mase = {n: results[n].summary()["mase"] for n in models}
            best_base = min(BASELINES, key=lambda n: mean_mase[n])
            best_stat = min(["ets", "theta"], key=lambda n: mean_mase[n])
            base_series = results[best_base].mase
            for name in models:
                r = results[name]
                s = r.summary()
                with np.errstate(all="ignore"):
                    ratio_series = r.mase / base_series
                ok = np.isfinite(ratio_series)
                rows.append({
                    "group": gname, "h": horizon, "model": name, "series": panel.n_series,
                    "mase": s["mase"], "median_mase": s["median_mase"], "mae": s["mae"],
                    "coverage": s["coverage"], "ratio_best_base": _div(s["mase"], mean_mase[best_base]),
                    "median_ratio": float(np.median(ratio_series[ok])) if ok.any() else float("nan"),
                    "win_rate": float(np.mean(r.mase[ok] < base_series[ok])) if ok.any() else float("nan"),
                    "ratio_best_stat": _div(s["mase"], mean_mase[best_stat]), "best_base": best_base,
                    "seconds": seconds[name],
                })  # fmt: skip
            print(f"done {gname} h={horizon} best baseline {best_base}", flush=True)
    cols = ["group", "h", "model", "mase", "median_mase", "mae", "coverage", "ratio_best_base"]
    cols += ["median_ratio", "win_rate", "ratio_best_stat", "seconds"]
    print(table(rows, cols))
    auto_ok = all(not r["ratio_best_base"] > 1.0 + 1e-9 for r in rows if r["model"] == "auto")
    dense = ["pedestrian", "vic_elec", "taylor"]
    neural_24 = {
        f"{r['group']}/{r['model']}": r["ratio_best_stat"]
        for r in rows
        if r["model"] in NEURAL and r["h"] == 24 and r["group"] in dense
    }
    summary = {"auto_at_or_below_best_baseline_everywhere": auto_ok,
               "neural_ratio_to_best_statistical_dense_24h": neural_24}  # fmt: skip
    print(summary)
    doc = {"quick": args.quick, "groups": list(groups), "neural": nparams, "rows": rows, "targets": summary}
    path = write_result("accuracy" + (f"-{'-'.join(wanted)}" if wanted else ""), doc)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
