"""Accuracy and coverage benchmark: rolling-origin backtests (3 folds) at 6 h and 24 h.

For every group and horizon: mean / median MASE (season 24) and MAE per model, the ratio of each
model's mean (and median) MASE to the best baseline's, the win rate (share of series where the
model beats the best baseline), and the coverage of the bands per horizon step. Baselines: naive,
seasonal naive, predict_linear, AutoETS, AutoTheta. ``auto`` runs as a ForecastTask runs it: the
API's default candidates, its choice and its calibration learned on its own backtest of the
history before the first outer origin (:mod:`foresight.forecast.uncertainty`), its bands the
calibrated ones; its row also shows the MASE status would report for it (the nested estimate of
its training run) next to what the held-out folds gave.

Targets: ``auto`` at or below the best baseline on every group in mean AND median MASE; neural
models >= 5% below the best statistical baseline on dense seasonal series at 24 h; the 80% band
of ``auto`` covering 75-85% of the held-out actuals on every group, per horizon.

Real groups come from data inside PyPI packages (see forecast_common); ``--nab DIR`` adds the
Numenta Anomaly Benchmark's real infrastructure series (AWS CloudWatch, tweets, known-cause
incidents; a checkout of github.com/numenta/NAB, which is not shipped here) resampled hourly.
A full run is long on 2 cores; ``--groups`` runs a subset into its own JSON.

``--statistical`` leaves the neural models out (their rows, and lstm from ``auto``'s candidates):
the selection, the calibrated bands' coverage and the status's estimate, in minutes.

Usage: python bench/forecast_accuracy.py [--quick] [--statistical] [--groups vic_elec,taylor] [--nab DIR]
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
from forecast_common import load_groups, load_nab, table, write_result
from foresight.api.forecasttask import ForecastTaskSpec
from foresight.forecast.auto import DEFAULT_CANDIDATES, AutoModel
from foresight.forecast.backtest import BacktestResult, backtest
from foresight.forecast.models import Model, get_model
from foresight.forecast.uncertainty import Uncertainty, apply, learn
from foresight.timeseries import Forecast, Panel

BASELINES = ["naive", "seasonal_naive", "linear", "ets", "theta"]
NEURAL = ["lstm", "gru", "transformer"]


def neural_params(quick: bool, epochs: int) -> dict[str, Any]:
    if quick:
        return {"input_window": 72, "hidden_size": 16, "epochs": 2, "windows_per_epoch": 512}
    return {"input_window": 168, "epochs": epochs, "patience": 4}


class TaskAuto(Model):
    """``auto`` with the calibration a ForecastTask's training run learns and applies."""

    name = "auto"
    cheap_refit = False

    def __init__(self, nparams: dict[str, Any], horizon: int, candidates: list[str]) -> None:
        self.auto = AutoModel(candidates=candidates, model_params={"lstm": nparams})
        self.spec = ForecastTaskSpec.model_validate(
            {"source": {"query": "bench"}, "horizon": f"{horizon}h", "output": {"horizons": [f"{horizon}h"]}}
        )
        self.uncertainty = Uncertainty()
        self.reported_mase = float("nan")

    def fit(self, panel: Panel, horizon: int, *, seed: int = 0, progress: Any = None) -> None:
        self.auto.fit(panel, horizon, seed=seed)
        assert self.auto.auto_result is not None
        self.uncertainty = learn(self.spec, panel, self.auto.auto_result, horizon)
        self.reported_mase = self.auto.backtest_errors()["auto"]["mase"]

    def predict(self, panel: Panel, horizon: int) -> Forecast:
        return apply(self.spec, panel, self.auto.predict(panel, horizon), self.uncertainty, []).forecast


def factory(name: str, nparams: dict[str, Any]) -> Model:
    return get_model(name, **nparams) if name in NEURAL else get_model(name)


def ratio(value: float, best: float) -> float:
    """``value / best``; a perfect best (0: every held-out actual forecast exactly, as bank_calls'
    nights of zeros at 6 h) gives 1 to another perfect forecast and infinity to any other."""
    if best == 0:
        return 1.0 if value == 0 else float("inf")
    return value / best


def coverage_by_step(r: BacktestResult) -> list[float]:
    inside = np.where(np.isfinite(r.actual), (r.actual >= r.lower) & (r.actual <= r.upper), np.nan)
    return [float(np.nanmean(inside[:, :, h])) for h in range(r.horizon)]


def run_group(
    gname: str, panel: Panel, horizon: int, nparams: dict[str, Any], *, statistical: bool = False
) -> list[dict[str, Any]]:
    results: dict[str, BacktestResult] = {}
    seconds: dict[str, float] = {}
    auto: dict[str, TaskAuto] = {}
    candidates = [c for c in DEFAULT_CANDIDATES if not (statistical and c in NEURAL)]
    for name in [*BASELINES, *([] if statistical else NEURAL), "auto"]:
        t0 = time.perf_counter()

        def make(n: str = name) -> Model:
            if n == "auto":
                auto["m"] = TaskAuto(nparams, horizon, candidates)
                return auto["m"]
            return factory(n, nparams)

        results[name] = backtest(panel, make, horizon, folds=3, season=24)
        seconds[name] = time.perf_counter() - t0
        print(f"  {gname} h={horizon} {name}: {seconds[name]:.0f}s", flush=True)
    mean = {n: r.summary()["mase"] for n, r in results.items()}
    median = {n: r.summary()["median_mase"] for n, r in results.items()}
    best_base = min(BASELINES, key=lambda n: mean[n])
    best_base_median = min(BASELINES, key=lambda n: median[n])
    best_stat = min(["ets", "theta"], key=lambda n: mean[n])
    base_series = results[best_base].mase
    rows = []
    for name, r in results.items():
        s = r.summary()
        with np.errstate(all="ignore"):
            ok = np.isfinite(r.mase / base_series)
        row = {
            "group": gname, "h": horizon, "model": name, "series": panel.n_series,
            "mase": s["mase"], "median_mase": s["median_mase"], "mae": s["mae"],
            "ratio_best_base": ratio(s["mase"], mean[best_base]),
            "median_ratio_best_base": ratio(s["median_mase"], median[best_base_median]),
            "win_rate": float(np.mean(r.mase[ok] < base_series[ok])) if ok.any() else float("nan"),
            "ratio_best_stat": ratio(s["mase"], mean[best_stat]), "best_base": best_base,
            "coverage": s["coverage"], "coverage_by_step": coverage_by_step(r), "seconds": seconds[name],
        }  # fmt: skip
        if name == "auto":
            row["reported_mase"] = auto["m"].reported_mase  # what the training run's status said
        rows.append(row)
    return rows


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    autos = [r for r in rows if r["model"] == "auto"]
    dense = ["pedestrian", "vic_elec", "taylor"]
    return {
        "auto_at_or_below_best_baseline_mean_everywhere": all(
            r["ratio_best_base"] <= 1 + 1e-9 for r in autos
        ),
        "auto_at_or_below_best_baseline_median_everywhere": all(
            r["median_ratio_best_base"] <= 1 + 1e-9 for r in autos
        ),
        "auto_coverage_75_85_every_step": {
            f"{r['group']}/{r['h']}": bool(all(0.75 <= c <= 0.85 for c in r["coverage_by_step"]))
            for r in autos
        },
        "neural_ratio_to_best_statistical_dense_24h": {
            f"{r['group']}/{r['model']}": r["ratio_best_stat"]
            for r in rows
            if r["model"] in NEURAL and r["h"] == 24 and r["group"] in dense
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short smoke run (tiny groups, 2 epochs)")
    parser.add_argument("--epochs", type=int, default=20, help="neural models' maximum epochs")
    parser.add_argument("--groups", default="", help="comma-separated subset of the groups (default: all)")
    parser.add_argument("--nab", type=Path, help="a checkout of numenta/NAB: adds its real hourly groups")
    parser.add_argument(
        "--statistical",
        action="store_true",
        help="no neural model: the baselines and `auto` over the default candidates without lstm (minutes, "
        "not hours; writes accuracy-statistical*.json)",
    )
    args = parser.parse_args()
    nparams = neural_params(args.quick, args.epochs)
    logging.basicConfig(level=logging.WARNING)
    groups = load_groups(args.quick)
    if args.nab:
        groups.update(load_nab(args.nab))
    wanted = [g for g in args.groups.split(",") if g]
    unknown = sorted(set(wanted) - set(groups))
    if unknown:
        parser.error(f"unknown group(s) {', '.join(unknown)}; the groups are {', '.join(groups)}")
    if wanted:
        groups = {g: groups[g] for g in wanted}
    rows: list[dict[str, Any]] = []
    for gname, panel in groups.items():
        for horizon in (6, 24):
            rows += run_group(gname, panel, horizon, nparams, statistical=args.statistical)
    cols = ["group", "h", "model", "mase", "median_mase", "ratio_best_base", "median_ratio_best_base"]
    cols += ["win_rate", "coverage", "reported_mase", "seconds"]
    print(table(rows, cols))
    summary = summarise(rows)
    print(summary)
    doc = {"quick": args.quick, "statistical": args.statistical, "groups": list(groups),
           "neural": None if args.statistical else nparams, "rows": rows, "targets": summary}  # fmt: skip
    name = "accuracy" + ("-statistical" if args.statistical else "") + ("-quick" if args.quick else "")
    name += f"-{'-'.join(wanted)}" if wanted else ""
    print(f"wrote {write_result(name, doc)}")


if __name__ == "__main__":
    main()
