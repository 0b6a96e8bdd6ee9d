"""Threshold benchmark: "crosses 95% of quota within 6 h" on the SYNTHETIC storage set.

The task is played as a ForecastTask would play it. A training run on the first 20 days (the
history) backtests its model, calibrates the bands and chooses the alert rule on that backtest
(:mod:`foresight.forecast.uncertainty`, the pipeline's own code); then, every 2 h over the last
10 days, a prediction run forecasts from the history up to that origin (the statistical models
refit on it, as they do in every run; a network predicts with the weights trained on the history)
and the calibrated bands, exhaustion probabilities and the chosen rule's verdict are computed.

Truth: the noise-free usage reaches 95% within 6 h while below it at the origin (an origin already
over the threshold is a current alert, not a forecast, and is left out). Reported per model: the
rule the task chose (and the evidence it had), then every fixed rule (the point forecast, the upper
band, the exhaustion probability at 0.1 .. 0.9), each with precision, recall and the median lead
of the first alert before each crossing; ``near_misses`` counts false alarms on origins whose true
peak in the window came within 0.5% of the threshold (the alerts no forecast could avoid).
Targets: the chosen rule at precision >= 0.8 AND recall >= 0.9 with a median lead >= 3 h.

Usage: python bench/forecast_threshold.py [--quick] [--models theta,auto]
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

import numpy as np
from forecast_common import table, write_result
from foresight.api.forecasttask import ForecastTaskSpec
from foresight.forecast.alerting import candidate_rules, fires
from foresight.forecast.auto import AutoModel
from foresight.forecast.backtest import backtest
from foresight.forecast.models import Model, get_model
from foresight.forecast.synthetic import StorageDataset, make_storage_dataset
from foresight.forecast.uncertainty import Uncertainty, apply, learn
from foresight.timeseries import Panel

WITHIN = 6
HORIZON = 24
EVAL_DAYS = 10
EVERY = 2
MODELS = ["linear", "seasonal_naive", "theta", "gru", "auto"]


def neural(quick: bool) -> dict[str, Any]:
    if quick:
        return {"input_window": 72, "hidden_size": 16, "epochs": 2, "windows_per_epoch": 512}
    return {"input_window": 168, "epochs": 20, "patience": 4}


def make(name: str, quick: bool) -> Model:
    if name == "gru":
        return get_model("gru", **neural(quick))
    if name == "auto":
        # The API's default candidates but AutoETS (refitting it at 117 origins x 48 quotas takes
        # about half an hour on 2 cores: FACTS.md's ~0.26 s per series), with gru for lstm (same
        # family, faster on CPU).
        return AutoModel(candidates=["naive", "seasonal_naive", "linear", "theta", "gru"],
                         model_params={"gru": neural(quick)})  # fmt: skip
    return get_model(name)


def task_spec(name: str) -> ForecastTaskSpec:
    return ForecastTaskSpec.model_validate({
        "source": {"query": "used", "step": "1h", "lookback": "720h"},
        "model": {"type": name, "backtestFolds": 3},
        "horizon": f"{HORIZON}h",
        "threshold": {"capacity": {"query": "quota"}, "ratio": 0.95, "alert": {"within": f"{WITHIN}h"}},
        "output": {"horizons": [f"{WITHIN}h"]},
    })  # fmt: skip


def train(name: str, history: Panel, quick: bool) -> tuple[Model, Uncertainty]:
    """Fit ``name`` on the history and learn its calibration and alert rule from its backtest."""
    model = make(name, quick)
    model.fit(history, HORIZON, seed=0)
    if isinstance(model, AutoModel):
        assert model.auto_result is not None
        bt = model.auto_result
    else:
        bt = backtest(history, lambda: make(name, quick), HORIZON, 3, seed=0)
    return model, learn(task_spec(name), history, bt, HORIZON)


def evaluate(name: str, ds: StorageDataset, quick: bool) -> list[dict[str, Any]]:
    panel = ds.panel
    assert panel.capacity is not None
    thr = panel.capacity * 0.95
    eval_start = panel.n_steps - EVAL_DAYS * 24
    model, uncertainty = train(name, panel.head(eval_start), quick)
    assert uncertainty.alert is not None
    spec = task_spec(name)
    chosen = uncertainty.alert.rule
    rules = [chosen, *(r for r in candidate_rules() if r != chosen)]
    counts = {r.label: {"tp": 0, "fp": 0, "fn": 0, "near": 0, "first": {}} for r in rules}
    for o in range(eval_start, panel.n_steps - WITHIN, EVERY):
        hist = panel.head(o + 1)
        applied = apply(spec, hist, model.predict(hist, HORIZON), uncertainty, [(f"{WITHIN}h", WITHIN)])
        ex = applied.assessment
        assert ex is not None
        below = ds.truth[:, o] < thr
        truth = ds.will_cross(o, WITHIN)
        near = (ds.truth[:, o + 1 : o + 1 + WITHIN].max(axis=1) >= 0.995 * thr) & ~truth
        last = hist.values[:, -1]
        for rule in rules:
            fired = fires(rule, point=applied.forecast.point, upper=applied.forecast.upper,
                          probability=ex.probability[f"{WITHIN}h"], last=last, threshold=thr,
                          within=WITHIN)  # fmt: skip
            c = counts[rule.label]
            c["tp"] += int(np.sum(fired & truth & below))
            c["fp"] += int(np.sum(fired & ~truth & below))
            c["fn"] += int(np.sum(~fired & truth & below))
            c["near"] += int(np.sum(fired & near & below))
            for i in np.flatnonzero(fired & truth & below):
                crossing = o + int(np.argmax(ds.truth[i, o:] >= thr[i]))
                c["first"].setdefault((int(i), crossing), o)
        if (o - eval_start) % 24 == 0:
            print(f"  {name}: day {(o - eval_start) // 24 + 1}/{EVAL_DAYS}", flush=True)
    return [_row(name, label, c, uncertainty, label == chosen.label) for label, c in counts.items()]


def _row(name: str, label: str, c: dict[str, Any], u: Uncertainty, chosen: bool) -> dict[str, Any]:
    tp, fp, fn = c["tp"], c["fp"], c["fn"]
    leads = [crossing - o for (_, crossing), o in c["first"].items()]
    row: dict[str, Any] = {
        "model": name, "rule": ("chosen: " if chosen else "") + label, "tp": tp, "fp": fp, "fn": fn,
        "near_misses": c["near"],
        "precision": tp / (tp + fp) if tp + fp else float("nan"),
        "recall": tp / (tp + fn) if tp + fn else float("nan"),
        "median_lead_h": float(np.median(leads)) if leads else float("nan"),
    }  # fmt: skip
    if chosen and u.alert is not None:
        row["evidence"] = u.alert.to_dict()
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated subset")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    ds = make_storage_dataset(n_series=16 if args.quick else 48, days=30, seed=0)
    rows: list[dict[str, Any]] = []
    for name in args.models.split(","):
        rows += evaluate(name, ds, args.quick)
        print(f"done {name}", flush=True)
    cols = ["model", "rule", "tp", "fp", "fn", "near_misses", "precision", "recall", "median_lead_h"]
    print(table(rows, cols))
    chosen = [r for r in rows if r["rule"].startswith("chosen")]
    met = {r["model"]: bool(r["precision"] >= 0.8 and r["recall"] >= 0.9 and r["median_lead_h"] >= 3)
           for r in chosen}  # fmt: skip
    print("targets met by the chosen rule:", met)
    path = write_result("threshold" + ("-quick" if args.quick else ""), {
        "quick": args.quick, "synthetic": True, "within_h": WITHIN, "every_h": EVERY, "rows": rows,
        "targets": {"recall": 0.9, "precision": 0.8, "median_lead_h": 3}, "chosen_rule_meets_targets": met,
    })  # fmt: skip
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
