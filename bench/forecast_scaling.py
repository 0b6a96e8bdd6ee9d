"""Scaling curve of a ForecastTask run: wall, CPU and peak RSS for 1k-30k series, 1, 2 and 4 shards.

Each size's SYNTHETIC storage series (:func:`foresight.forecast.synthetic.make_storage_dataset`,
31 days hourly ending at the current hour; the task reads 30 days = 720 points and forecasts 24 h)
is backfilled with promtool into a real Prometheus (Debian package) on 127.0.0.1, and the task
runs exactly as its pods would, each pod a separate ``foresight run`` process on this machine:

- **1 shard**: what a user with ``parallelism: 1`` (the default) gets: one pod,
  ``foresight run -f task.yaml --mode train`` (:func:`foresight.forecast.pipeline.run_forecast_task`).
- **2 / 4 shards** (``parallelism: 2`` / ``4``): the plan pod (``--stage plan --run-id ID``:
  lists the series through the series API and stores the plan in the artifact store), then
  every shard of the Indexed Job at once (``FORESIGHT_SHARD_PLAN`` and ``JOB_COMPLETION_INDEX`` in
  the environment, ``--mode train``), in parallel, as the operator starts them.

The artifact store is the pods' own ``pvc://`` store (``FORESIGHT_PVC_ROOT`` = a fresh temporary
directory per run); ``output.mode: none``, so no Pushgateway is in the measurement.

Model config: ``model: {type: auto, candidates: [naive, seasonal_naive, linear], backtestFolds: 2}``
(``MODEL`` below; the default ``auto`` over six candidates with an LSTM and 3 folds cost 407 s
for 48 series, far too slow for 132,000 series-runs on 2 cores). The curve is about the runtime's
per-series overhead (reading, panel, backtest bookkeeping, selection, results); a heavier model
adds its own per-series fit time on top (theta ~50 ms, ets ~650 ms CPU per series here).

Measured per run: wall (plan + the slowest shard, as the operator sequences them), CPU seconds
(user + system) summed over the run's processes (``os.wait4``'s rusage of each), the CPU seconds
Prometheus spent answering (from ``/proc/<pid>/stat``, not in the run's CPU), the peak RSS of
each process (its ``VmHWM`` at exit), and the seconds each shard spent reading (its ``ingest`` ->
``ingested`` events). Per-series cost: CPU seconds / series and wall seconds / series.

Targets (issue 17): CPU per series flat within 20% from the smallest to the largest size, per
layout; peak RSS per shard under 1 GiB at 10,000 series per shard (the 1-shard 10k run is
exactly that; the RSS-per-series slope fitted over every run is also given).

    nice python bench/forecast_scaling.py                 # 1k, 3k, 10k, 30k x 1, 2, 4 shards
    nice python bench/forecast_scaling.py --sizes 200 --shards 1 --no-write   # a probe
    python bench/forecast_scaling.py --quick              # 50 and 150 series, < 1 min; writes nothing

Writes ``bench/results/forecast_scaling.json`` (not with ``--quick`` or ``--no-write``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from forecast_common import table, write_result
from foresight.contract import env as pod_env
from foresight.forecast.synthetic import make_storage_dataset
from foresight.run import localprom

STEP = 3600
DAYS = 30
METRIC = "storage_used_bytes"
GROUP_BY = ["cluster", "storage_type", "group", "user"]
SIZES = (1_000, 3_000, 10_000, 30_000)
QUICK_SIZES = (50, 150)
SHARDS = (1, 2, 4)
MODEL: dict[str, Any] = {
    "type": "auto",
    "candidates": ["naive", "seasonal_naive", "linear"],
    "backtestFolds": 2,
}
"""The model config of every run: ``auto`` over the three closed-form baselines with 2 backtest
folds (per-series backtest, selection and empirical intervals). Probed on 200 and 600 series in
one pod on this machine: theta (1 fold) cost ~50 ms CPU per series and ets (1 fold) ~650 ms, so
the whole curve (132,000 series-runs) would take 2 to 24 hours of CPU; these baselines cost a
few ms per series."""
RSS_TARGET_MIB = 1024.0
RSS_AT_SERIES = 10_000
FLAT_WITHIN = 0.20


# ---- data -----------------------------------------------------------------------------------------


def write_history(path: Path, n_series: int, end: int) -> tuple[int, int]:
    """``n_series`` SYNTHETIC series of 31 days hourly ending at ``end``, as OpenMetrics streamed to
    ``path`` (promtool's backfill input); returns (samples, the first timestamp)."""
    days = DAYS + 1  # a day more than the task's lookback, so the grid is full whenever it runs
    start = end - (days * 24 - 1) * STEP
    ds = make_storage_dataset(n_series=n_series, days=days, step=STEP, seed=0, start=start)
    panel = ds.panel
    stamps = [str(int(t)) for t in panel.timestamps()]
    samples = 0
    with open(path, "w") as fh:
        fh.write(f"# TYPE {METRIC} gauge\n")
        for key, row in zip(panel.keys, panel.values, strict=True):
            lab = "{" + ",".join(f'{k}="{v}"' for k, v in sorted(key.items())) + "}"
            vals = row.tolist()
            lines = [f"{METRIC}{lab} {v!r} {t}\n" for v, t in zip(vals, stamps, strict=True) if v == v]
            samples += len(lines)
            fh.write("".join(lines))
        fh.write("# EOF\n")
    return samples, int(panel.timestamps()[0])


def task_yaml(prometheus_url: str, parallelism: int) -> dict[str, Any]:
    return {
        "apiVersion": "foresight.dev/v1alpha1",
        "kind": "ForecastTask",
        "metadata": {"name": "scaling", "namespace": "bench"},
        "spec": {
            "parallelism": parallelism,
            "source": {
                "url": prometheus_url,
                "query": METRIC,
                "groupBy": GROUP_BY,
                "lookback": f"{DAYS * 24}h",
                "step": "1h",
            },
            "model": MODEL,
            "horizon": "24h",
            "output": {"mode": "none"},
            "limits": {"maxSeries": 1_000_000},
        },
    }


# ---- one process ----------------------------------------------------------------------------------

_HWM_ENV = "BENCH_SCALING_HWM_FILE"
POD = f"""
import atexit, os, runpy, sys
def _hwm():
    with open("/proc/self/status") as st, open(os.environ["{_HWM_ENV}"], "w") as out:
        out.write(next(line.split()[1] for line in st if line.startswith("VmHWM:")))
atexit.register(_hwm)
runpy.run_module("foresight.cli", run_name="__main__", alter_sys=True)
"""
"""``python -m foresight.cli`` that writes its peak RSS (VmHWM, KiB) to a file at exit. Not the
rusage's ``ru_maxrss``: exec carries the forking process's high-water mark into the child's, so
every pod would show at least this benchmark's own RSS."""


class Pod:
    """One ``foresight run`` process; its events are timestamped as they arrive on its stdout."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.hwm_file = log.with_suffix(".hwm")
        env = {**env, _HWM_ENV: str(self.hwm_file)}
        self.t0 = time.perf_counter()
        with open(log, "wb") as err:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=err, text=True)
        self.events: list[tuple[float, dict[str, Any]]] = []
        self.reader = threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True)
        self.reader.start()
        self.wall = 0.0
        self.cpu = 0.0
        self.rss_mib = 0.0
        self.code = -1

    def _read(self, stream: TextIO) -> None:
        for line in stream:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                self.events.append((time.perf_counter(), event))

    def wait(self) -> Pod:
        """Reap the process with its own rusage (CPU of this process alone) and its peak RSS."""
        _, status, usage = os.wait4(self.proc.pid, 0)
        self.wall = time.perf_counter() - self.t0
        self.proc.returncode = self.code = os.waitstatus_to_exitcode(status)
        self.reader.join(timeout=30)
        self.cpu = usage.ru_utime + usage.ru_stime
        self.rss_mib = int(self.hwm_file.read_text()) / 1024  # KiB
        return self

    def event(self, kind: str) -> dict[str, Any] | None:
        return next((e for _, e in self.events if e.get("event") == kind), None)

    def read_seconds(self) -> float:
        """Seconds between the ``ingest`` and ``ingested`` events: reading from Prometheus."""
        times = {e.get("event"): t for t, e in self.events}
        return times["ingested"] - times["ingest"] if {"ingest", "ingested"} <= times.keys() else float("nan")


def _cpu_of(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (from ``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_layout(prom: localprom.LocalPrometheus, n_series: int, shards: int, work: Path) -> dict[str, Any]:
    """One run of the task with ``parallelism: shards`` over the ``n_series`` in ``prom``."""
    work.mkdir(parents=True)
    task = work / "task.yaml"
    task.write_text(yaml.safe_dump(task_yaml(prom.url, shards), sort_keys=False))
    base = {**os.environ, "OMP_NUM_THREADS": "1", pod_env.PVC_ROOT: str(work / "pvc")}
    argv = [sys.executable, "-c", POD, "run", "-f", str(task), "--mode", "train"]
    assert prom.proc is not None
    prom_cpu0, t0 = _cpu_of(prom.proc.pid), time.perf_counter()
    plan: Pod | None = None
    if shards == 1:
        pods = [Pod(argv, {**base, pod_env.TERMINATION_LOG: str(work / "term")}, work / "pod.log").wait()]
    else:
        run_id = f"scaling-{n_series}-{shards}"
        plan = Pod(
            [*argv, "--stage", "plan", "--run-id", run_id],
            {**base, pod_env.TERMINATION_LOG: str(work / "term-plan")},
            work / "plan.log",
        ).wait()
        result = plan.event("result") or {}
        prefix = result.get("planPrefix")
        if plan.code != 0 or not prefix:
            raise SystemExit(
                f"plan failed ({plan.code}): {result or (work / 'plan.log').read_text()[-2000:]}"
            )
        started = [
            Pod(
                argv,
                {
                    **base,
                    pod_env.SHARD_PLAN: str(prefix),
                    pod_env.JOB_COMPLETION_INDEX: str(i),
                    pod_env.TERMINATION_LOG: str(work / f"term-{i}"),
                },
                work / f"shard-{i}.log",
            )
            for i in range(shards)
        ]
        pods = [p.wait() for p in started]
    wall = time.perf_counter() - t0
    prom_cpu = _cpu_of(prom.proc.pid) - prom_cpu0
    results = [p.event("result") or {} for p in pods]
    failed = [
        f"{i}: {r.get('reason')}: {r.get('message')}"
        for i, (p, r) in enumerate(zip(pods, results, strict=True))
        if p.code != 0
    ]
    if failed:
        raise SystemExit(f"{n_series} series, {shards} shard(s): failed pods {failed}; logs in {work}")
    forecast = sum(int(r.get("seriesCount") or 0) for r in results)
    everyone = pods + ([plan] if plan else [])
    cpu = sum(p.cpu for p in everyone)
    row = {
        "series": n_series,
        "shards": shards,
        "forecast_series": forecast,
        "series_per_shard_max": max(int(r.get("seriesCount") or 0) for r in results),
        "wall_s": round(wall, 2),
        "plan_s": round(plan.wall, 2) if plan else 0.0,
        "cpu_s": round(cpu, 2),
        "cpu_ms_per_series": round(1000 * cpu / n_series, 3),
        "wall_ms_per_series": round(1000 * wall / n_series, 3),
        "peak_rss_mib_per_shard": round(max(p.rss_mib for p in pods), 1),
        "plan_rss_mib": round(plan.rss_mib, 1) if plan else None,
        "read_s_max": round(max(p.read_seconds() for p in pods), 2),
        "read_share_of_wall": round(max(p.read_seconds() for p in pods) / wall, 3),
        "prometheus_cpu_s": round(prom_cpu, 2),
        "model": ",".join(sorted({str(r.get("model")) for r in results})),
        "pods": [
            {
                "role": "shard" if shards > 1 else "single",
                "series": int(r.get("seriesCount") or 0),
                "wall_s": round(p.wall, 2),
                "cpu_s": round(p.cpu, 2),
                "peak_rss_mib": round(p.rss_mib, 1),
                "read_s": round(p.read_seconds(), 2),
                "read_queries": r.get("readQueries"),
            }
            for p, r in zip(pods, results, strict=True)
        ],
    }
    if forecast != n_series:
        raise SystemExit(f"{n_series} series, {shards} shard(s): forecast {forecast} series; logs in {work}")
    return row


def run_size(n_series: int, shards: list[int], tmp: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Backfill ``n_series`` into a fresh Prometheus and run every layout against it."""
    root = tmp / f"n{n_series}"
    root.mkdir()
    end = int(time.time()) // STEP * STEP
    t0 = time.perf_counter()
    samples, _ = write_history(root / "history.om", n_series, end)
    generate_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    localprom.backfill_file(root / "history.om", root / "data", timeout=1800)
    backfill_s = time.perf_counter() - t0
    (root / "history.om").unlink()
    data = {
        "series": n_series,
        "samples": samples,
        "generate_s": round(generate_s, 1),
        "backfill_s": round(backfill_s, 1),
    }
    print(
        f"{n_series} series: {samples:,} samples generated in {generate_s:.0f} s, "
        f"backfilled in {backfill_s:.0f} s",
        flush=True,
    )
    rows = []
    with localprom.LocalPrometheus(root / "data") as prom:
        for k in shards:
            row = run_layout(prom, n_series, k, root / f"run-{k}")
            rows.append(row)
            print(
                f"  {k} shard(s): {row['wall_s']:.1f} s wall, {row['cpu_s']:.1f} s CPU "
                f"({row['cpu_ms_per_series']:.2f} ms/series), peak RSS {row['peak_rss_mib_per_shard']:.0f} "
                f"MiB per shard, reads {row['read_s_max']:.1f} s, Prometheus {row['prometheus_cpu_s']:.1f} "
                "s CPU",
                flush=True,
            )
    return rows, data


# ---- verdicts ---------------------------------------------------------------------------------------


def verdicts(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The two targets of issue 17 from the rows."""
    flat = {}
    for k in sorted({r["shards"] for r in rows}):
        mine = sorted((r for r in rows if r["shards"] == k), key=lambda r: r["series"])
        costs = [r["cpu_ms_per_series"] for r in mine]
        walls = [r["wall_ms_per_series"] for r in mine]
        # Between consecutive sizes: the cost of the added series alone, the pods' fixed start-up
        # (imports, plan, store) cancelled out.
        marginal = [
            round(1000 * (b["cpu_s"] - a["cpu_s"]) / (b["series"] - a["series"]), 3)
            for a, b in itertools.pairwise(mine)
        ]
        flat[str(k)] = {
            "sizes": [r["series"] for r in mine],
            "cpu_ms_per_series": costs,
            "cpu_max_over_min": round(max(costs) / min(costs), 3),
            "cpu_largest_over_smallest": round(costs[-1] / costs[0], 3),
            "wall_max_over_min": round(max(walls) / min(walls), 3),
            "flat_within_20pct": max(costs) / min(costs) <= 1 + FLAT_WITHIN,
            "marginal_cpu_ms_per_series": marginal,
            "marginal_max_over_min": round(max(marginal) / min(marginal), 3) if marginal else None,
            "marginal_flat_within_20pct": bool(marginal) and max(marginal) / min(marginal) <= 1 + FLAT_WITHIN,
        }
    points = [(p["series"], p["peak_rss_mib"]) for r in rows for p in r["pods"]]
    xs = np.array([x for x, _ in points], dtype=np.float64)
    ys = np.array([y for _, y in points], dtype=np.float64)
    slope, intercept = np.polyfit(xs, ys, 1) if len(set(xs)) > 1 else (float("nan"), float("nan"))
    at = [r for r in rows if r["shards"] == 1 and r["series"] == RSS_AT_SERIES]
    measured: float | None = at[0]["peak_rss_mib_per_shard"] if at else None
    fitted = round(float(intercept + slope * RSS_AT_SERIES), 1)
    rss: dict[str, Any] = {
        "fit_mib": {
            "intercept": round(float(intercept), 1),
            "per_1000_series": round(1000 * float(slope), 1),
        },
        "fit_at_10k_per_shard_mib": fitted,
        "measured_10k_one_process_mib": measured,
        "target_mib": RSS_TARGET_MIB,
        "under_target": (measured if measured is not None else fitted) < RSS_TARGET_MIB,
    }
    return {"per_series_cost": flat, "peak_rss": rss}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", help=f"series counts, comma-separated (default {','.join(map(str, SIZES))})"
    )
    parser.add_argument("--shards", default=",".join(map(str, SHARDS)), help="layouts (default 1,2,4)")
    parser.add_argument("--quick", action="store_true", help="50 and 150 series (< 1 min); writes nothing")
    parser.add_argument("--model", help="the model config as JSON (default: MODEL)")
    parser.add_argument("--no-write", action="store_true", help="print only (probes)")
    args = parser.parse_args(argv)
    if args.model:
        MODEL.clear()
        MODEL.update(json.loads(args.model))
    sizes = (
        [int(s) for s in args.sizes.split(",")] if args.sizes else list(QUICK_SIZES if args.quick else SIZES)
    )
    shards = [int(s) for s in args.shards.split(",")]
    reason = localprom.install()
    if reason is not None:
        raise SystemExit(f"Prometheus is not available: {reason}")
    print(
        f"model {json.dumps(MODEL)}; {DAYS} days hourly, 24 h horizon; sizes {sizes}; shards {shards}; "
        f"{os.cpu_count()} CPUs",
        flush=True,
    )
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    data = []
    with tempfile.TemporaryDirectory(prefix="bench-scaling-") as tmp:
        for n in sizes:
            got, d = run_size(n, shards, Path(tmp))
            rows += got
            data.append(d)
    cols = [
        "series",
        "shards",
        "series_per_shard_max",
        "wall_s",
        "plan_s",
        "cpu_s",
        "cpu_ms_per_series",
        "wall_ms_per_series",
        "peak_rss_mib_per_shard",
        "read_s_max",
        "read_share_of_wall",
        "prometheus_cpu_s",
    ]
    print()
    print(table(rows, cols))
    v = verdicts(rows)
    for k, f in v["per_series_cost"].items():
        print(
            f"{k} shard(s): CPU per series {f['cpu_ms_per_series']} ms over sizes {f['sizes']}: max/min "
            f"{f['cpu_max_over_min']} -> flat within 20%: {f['flat_within_20pct']}; marginal (between sizes) "
            f"{f['marginal_cpu_ms_per_series']} ms: flat within 20%: {f['marginal_flat_within_20pct']}"
        )
    r = v["peak_rss"]
    print(
        f"peak RSS: {r['fit_mib']['intercept']} MiB + {r['fit_mib']['per_1000_series']} MiB per 1,000 series "
        f"(fit); at 10k series per shard {r['measured_10k_one_process_mib']} MiB measured, "
        f"{r['fit_at_10k_per_shard_mib']} MiB fitted -> under 1 GiB: {r['under_target']}"
    )
    elapsed = time.perf_counter() - started
    if args.quick or args.no_write:
        print(f"\n{elapsed:.0f} s; nothing written ({'--quick' if args.quick else '--no-write'})")
        return 0
    path = write_result(
        "scaling",
        {
            "benchmark": "forecast_scaling",
            "date": datetime.now(tz=UTC).isoformat(timespec="seconds"),
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "load_avg_1m_at_end": round(os.getloadavg()[0], 2),
            },
            "config": {
                "model": MODEL,
                "data": "SYNTHETIC make_storage_dataset(seed=0)",
                "lookback": f"{DAYS * 24}h",
                "step": "1h",
                "horizon": "24h",
                "groupBy": GROUP_BY,
                "output": "none",
                "mode": "train",
                "prometheus": "real (Debian package), history backfilled with promtool",
                "pods": "one `python -m foresight.cli run` process per pod (VmHWM written at exit); "
                "shards in parallel after the plan",
            },
            "data": data,
            "seconds": round(elapsed, 1),
            "rows": rows,
            "targets": v,
        },
    )
    print(f"\n{elapsed:.0f} s; wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
