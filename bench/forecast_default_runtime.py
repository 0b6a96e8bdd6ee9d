"""What a ForecastTask with default settings costs: wall and CPU time of one training run.

The task is the API's defaults (``auto`` over naive, seasonal naive, predict_linear, AutoETS,
AutoTheta and an LSTM; 3 backtest folds; 24 h horizon; a threshold) over SYNTHETIC storage quotas
of 30 days, hourly, read from an in-memory Prometheus: 8 series, and the 48 series of the demo
(``make run``). The same run as a Job pod makes (:func:`foresight.forecast.pipeline.run_forecast_task`),
with the time each candidate's backtest took, from the run's own progress events.

Usage: python bench/forecast_default_runtime.py [--series 8,48]
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from typing import Any

import numpy as np
from forecast_common import table, write_result
from foresight.api.forecasttask import ForecastTaskSpec
from foresight.forecast.pipeline import run_forecast_task
from foresight.forecast.result import RunEvent
from foresight.forecast.synthetic import make_storage_dataset
from foresight.run.memory import MemoryPrometheus

GROUP_BY = ["cluster", "storage_type", "group", "user"]


def prometheus(n_series: int) -> tuple[MemoryPrometheus, float]:
    ds = make_storage_dataset(n_series=n_series, days=30, seed=0)
    p = ds.panel
    assert p.capacity is not None
    prom = MemoryPrometheus()
    ts = p.timestamps()
    for i, key in enumerate(p.keys):
        ok = np.isfinite(p.values[i])
        prom.add("storage_used_bytes", key, ts[ok], p.values[i][ok])
        prom.add("storage_quota_bytes", key, ts, np.full(ts.size, p.capacity[i]))
    return prom, float(ts[-1]) + 60


def run(n_series: int) -> dict[str, Any]:
    prom, now = prometheus(n_series)
    spec = ForecastTaskSpec.model_validate({
        "source": {"query": "storage_used_bytes", "groupBy": GROUP_BY},
        "threshold": {"capacity": {"query": "storage_quota_bytes"}},
    })  # fmt: skip
    events: list[tuple[float, RunEvent]] = []
    t0, cpu0 = time.perf_counter(), _cpu()
    result = run_forecast_task(
        spec, name="defaults", namespace="bench", prometheus=prom, clock=lambda: now, mode="train",
        progress=lambda e: events.append((time.perf_counter(), e)),
    )  # fmt: skip
    wall, cpu = time.perf_counter() - t0, _cpu() - cpu0
    per_candidate = {e.data["model"]: round(float(e.data["seconds"]), 1) for _, e in events
                     if e.kind == "candidate_done"}  # fmt: skip
    print(
        f"  {n_series} series: {result.phase} in {wall:.0f}s wall, {cpu:.0f}s CPU; {result.model}", flush=True
    )
    return {"series": n_series, "phase": result.phase, "wall_s": wall, "cpu_s": cpu, "model": result.model,
            "backtest_seconds": per_candidate, "load_average": os.getloadavg()[0]}  # fmt: skip


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--series", default="8,48", help="comma-separated panel sizes")
    args = parser.parse_args()
    rows = [run(int(n)) for n in args.series.split(",")]
    print(table(rows, ["series", "phase", "wall_s", "cpu_s", "model", "load_average"]))
    print(f"wrote {write_result('default_runtime', {'synthetic': True, 'rows': rows})}")


if __name__ == "__main__":
    main()
