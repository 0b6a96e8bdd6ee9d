"""Threshold benchmark: "crosses 95% of quota within 6 h" on the SYNTHETIC storage set.

Each model is fitted once on the history before the evaluation window (the last 10 days), then
predicts from every evaluation origin (every 2 h) as it would in production (AutoTheta refits on
the history it is given, as in a ForecastTask run). An alert fires when the time to threshold
of the point forecast is <= 6 h (``upper`` variant: of the upper bound).
Truth: the noise-free usage reaches 95% within 6 h while below it at the origin (origins already
over the threshold are excluded: that is a current alert, not a forecast). Reports precision,
recall and the median lead time (first alert before each crossing). Targets: recall >= 0.9,
precision >= 0.8.

Usage: python bench/forecast_threshold.py [--quick]
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

import numpy as np
from forecast_common import table, write_result
from foresight.forecast.auto import AutoModel
from foresight.forecast.models import Model, get_model
from foresight.forecast.synthetic import make_storage_dataset
from foresight.forecast.threshold import time_to_threshold

HORIZON = 6


def make(name: str, quick: bool) -> Model:
    nparams: dict[str, Any] = (
        {"input_window": 72, "hidden_size": 16, "epochs": 2, "windows_per_epoch": 512}
        if quick
        else {"input_window": 168, "epochs": 20, "windows_per_epoch": 4096, "patience": 4}
    )
    if name == "gru":
        return get_model("gru", **nparams)
    if name == "auto":
        # The API's default candidates but AutoETS (refitting it at 117 origins x 48 quotas takes
        # about half an hour on 2 cores: FACTS.md's ~0.26 s per series), with gru for lstm (same
        # family, faster on CPU). AutoTheta refits at every origin (fitting is forecasting for it).
        return AutoModel(
            candidates=["seasonal_naive", "linear", "theta", "gru"], model_params={"gru": nparams}
        )
    return get_model(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    ds = make_storage_dataset(n_series=16 if args.quick else 48, days=30, seed=0)
    panel = ds.panel
    assert panel.capacity is not None
    thr = panel.capacity * 0.95
    n = panel.n_steps
    eval_start = n - 10 * 24
    origins = list(range(eval_start, n - HORIZON, 2))
    rows: list[dict[str, Any]] = []
    for name in ["linear", "seasonal_naive", "theta", "gru", "auto"]:
        model = make(name, args.quick)
        model.fit(panel.head(eval_start), HORIZON, seed=0)
        for bound in ("point", "upper"):
            rows.append({"model": name, "bound": bound, "tp": 0, "fp": 0, "fn": 0, "leads": []})
        alerts_point, alerts_upper = [], []
        for o in origins:
            hist = panel.head(o + 1)
            fc = model.predict(hist, HORIZON)
            last = ds.truth[:, o]
            alerts_point.append(time_to_threshold(fc.point, last, thr, panel.step) <= HORIZON * panel.step)
            alerts_upper.append(time_to_threshold(fc.upper, last, thr, panel.step) <= HORIZON * panel.step)
        for row, alerts in zip(rows[-2:], (alerts_point, alerts_upper), strict=True):
            first_alert: dict[int, int] = {}
            for o, alert in zip(origins, alerts, strict=True):
                truth = ds.will_cross(o, HORIZON)
                below = ds.truth[:, o] < thr
                row["tp"] += int(np.sum(alert & truth & below))
                row["fp"] += int(np.sum(alert & ~truth & below))
                row["fn"] += int(np.sum(~alert & truth & below))
                for i in np.flatnonzero(alert & truth & below):
                    first_alert.setdefault(int(i) * 100000 + int(np.argmax(ds.truth[i, o:] >= thr[i])) + o, o)
            leads = [(key % 100000 - o) * panel.step / 3600 for key, o in first_alert.items()]
            tp, fp, fn = row["tp"], row["fp"], row["fn"]
            row["precision"] = tp / (tp + fp) if tp + fp else float("nan")
            row["recall"] = tp / (tp + fn) if tp + fn else float("nan")
            row["median_lead_h"] = float(np.median(leads)) if leads else float("nan")
            del row["leads"]
        print(f"done {name}", flush=True)
    print(table(rows, ["model", "bound", "tp", "fp", "fn", "precision", "recall", "median_lead_h"]))
    path = write_result("threshold", {"quick": args.quick, "synthetic": True, "rows": rows,
                                      "targets": {"recall": 0.9, "precision": 0.8}})  # fmt: skip
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
