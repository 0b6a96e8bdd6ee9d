"""Speed benchmark: one ForecastTask run on N series x 30 days hourly (SYNTHETIC storage data).

Each contender runs in its own child process (so peak RSS is its own, read from
``getrusage``) on the same data and the same cores:

- ``lstm``: the whole pipeline of a Job (:func:`foresight.forecast.pipeline.run_forecast_task`
  with the in-memory Prometheus stand-in): ingest, a 1-fold backtest (one training), the
  comparison baselines, training on the full history, predict, write-back rendering. Default
  hyperparameters of the API except ``epochs`` (``--epochs``, default 10).
- ``ets``: statsforecast AutoETS (season 24) doing the same work: a 1-fold backtest and the final
  forecast (for ETS, fitting is forecasting), with ``n_jobs`` = the cores given.

Target (issue 4): the neural run at most a quarter of AutoETS' wall time, under 2 GiB.

Usage: python bench/forecast_speed.py [--series 1000] [--epochs 10] [--jobs 2] [--quick]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from typing import Any

from forecast_common import table, write_result

DAYS = 30
HORIZON = 24


def _panel(series: int) -> Any:
    from foresight.forecast.synthetic import make_storage_dataset

    return make_storage_dataset(n_series=series, days=DAYS, seed=0).panel


def child_lstm(series: int, epochs: int) -> dict[str, Any]:
    from foresight.api.forecasttask import ForecastTaskSpec
    from foresight.forecast.pipeline import run_forecast_task
    from foresight.run.memory import MemoryPrometheus

    panel = _panel(series)
    prom = MemoryPrometheus()
    prom.add_panel(panel, "used", capacity_metric="quota")
    spec = ForecastTaskSpec.model_validate({
        "source": {"query": "used", "lookback": f"{DAYS * 24 - 1}h", "step": "1h",
                   "groupBy": ["group", "user", "storage_type", "cluster"]},
        "model": {"type": "lstm", "backtestFolds": 1, "hyperparameters": {"epochs": epochs}},
        "horizon": f"{HORIZON}h", "threshold": {"capacity": {"query": "quota"}},
        "limits": {"maxSeries": max(2000, series)}, "output": {"mode": "none"},
    })  # fmt: skip
    t0 = time.perf_counter()
    result = run_forecast_task(
        spec, name="speed", namespace="bench", prometheus=prom, clock=lambda: float(panel.end)
    )
    wall = time.perf_counter() - t0
    if not result.ok:
        raise SystemExit(f"run failed: {result.reason}: {result.message}")
    mase = {s.model: s.mase for s in result.backtest}
    return {"wall_s": wall, "series": result.series_count, "backtest_mase": mase.get("lstm")}


def child_ets(series: int, jobs: int) -> dict[str, Any]:
    from foresight.forecast.backtest import backtest
    from foresight.forecast.models import get_model

    panel = _panel(series)
    t0 = time.perf_counter()
    result = backtest(panel, lambda: get_model("ets", n_jobs=jobs), HORIZON, 1)
    get_model("ets", n_jobs=jobs).predict(panel, HORIZON)
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "series": panel.n_series, "backtest_mase": result.summary()["mase"]}


def run_child(args: list[str]) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"child {args} failed:\n{proc.stderr[-3000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--series", type=int, default=1000)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--jobs", type=int, default=2, help="statsforecast n_jobs (the cores both get)")
    p.add_argument("--quick", action="store_true", help="100 series, 3 epochs (a smoke test)")
    p.add_argument("--child", choices=("lstm", "ets"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.quick:
        args.series, args.epochs = 100, 3
    if args.child:
        doc = (
            child_lstm(args.series, args.epochs)
            if args.child == "lstm"
            else child_ets(args.series, args.jobs)
        )
        # ru_maxrss is KiB on Linux; children of this child (statsforecast workers) counted too.
        rss = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)  # fmt: skip
        print(json.dumps({**doc, "peak_rss_mib": rss / 1024}))
        return
    common = ["--series", str(args.series)]
    rows = []
    for name, extra in (("lstm", ["--epochs", str(args.epochs)]), ("ets", ["--jobs", str(args.jobs)])):
        print(f"running {name} on {args.series} series x {DAYS} days ...", flush=True)
        rows.append({"model": name, **run_child(["--child", name, *common, *extra])})
    ratio = rows[0]["wall_s"] / rows[1]["wall_s"]
    for r in rows:
        r["wall_vs_ets"] = r["wall_s"] / rows[1]["wall_s"]
    print(table(rows, ["model", "series", "wall_s", "wall_vs_ets", "peak_rss_mib", "backtest_mase"]))
    print(f"target: lstm wall <= 0.25 x AutoETS (now {ratio:.2f}), peak RSS < 2048 MiB "
          f"(now {rows[0]['peak_rss_mib']:.0f})")  # fmt: skip
    path = write_result("speed" + ("-quick" if args.quick else ""), {
        "synthetic": True, "quick": args.quick, "series": args.series, "days": DAYS, "horizon": HORIZON,
        "epochs": args.epochs, "jobs": args.jobs, "rows": rows,
        "targets": {"wall_vs_ets": 0.25, "peak_rss_mib": 2048},
        "note": "wall times on shared cores are noisy; compare ratios from the same run",
    })  # fmt: skip
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
