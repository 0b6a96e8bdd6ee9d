"""Benchmark: how big a ForecastTask's output can get before the Pushgateway is the wrong sink.

For 1k, 10k and 50k forecast series (SYNTHETIC forecasts; the gauge families are the real ones of
``foresight.forecast.writeback``: 3 horizons, a threshold, the anomaly flag and realised errors,
18 gauges per series), against the real Pushgateway of the Debian package:

- building the exposition in the run (``generate_latest``), its size;
- the first push and a replacing push (the steady state: the gateway checks the consistency of
  everything it holds on every push), through ``foresight.prometheus.pushgateway.push``;
- the gateway's resident memory before and after;
- one GET of the gateway's ``/metrics`` (what every Prometheus scrape costs; the default scrape
  timeout is 10 s);
- for comparison, the same gauges served in scrape mode (``foresight serve forecasts``' app over
  the artifact store), whole and split into 4 shard endpoints.

The limits in ``foresight.api.output_size`` come from this table.

Run: ``nice python bench/forecast_pushgateway_size.py [--sizes 1000,10000,50000]``; prints a table
and writes ``bench/results/forecast_pushgateway_size.json``.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import requests
from forecast_common import table, write_result
from foresight.api.forecasttask import ForecastTaskSpec
from foresight.api.output_size import (
    PUSHGATEWAY_MAX_SAMPLES,
    PUSHGATEWAY_WARN_SAMPLES,
    check_output_size,
    gauges_per_series,
)
from foresight.artifacts import LocalArtifactStore
from foresight.forecast.scrape import StoredExposition, make_app
from foresight.forecast.writeback import forecast_metrics, to_registry
from foresight.prometheus.pushgateway import push, serve_app
from foresight.run import localprom
from foresight.timeseries import Forecast
from prometheus_client import generate_latest

STEP = 3600
HORIZON = 24
HORIZONS = ["1h", "6h", "24h"]
ORIGIN = 1_700_000_000 - 1_700_000_000 % STEP


def keys(n: int) -> list[dict[str, str]]:
    return [
        {
            "user": f"user-{i // 12:05d}",
            "group": f"g{i % 7}",
            "storage_type": ("ssd", "hdd", "nvme")[i % 3],
            "cluster": f"gpu-{i % 4}",
        }
        for i in range(n)
    ]


def families(n: int, seed: int = 0) -> list[Any]:
    """The real gauge families of a run over ``n`` series (SYNTHETIC numbers)."""
    rng = np.random.default_rng(seed)
    ks = keys(n)
    level = rng.uniform(100, 1000, size=(n, 1))
    point = level + np.cumsum(rng.normal(0, 5, size=(n, HORIZON)), axis=1)

    def fc(origin: int, p: np.ndarray) -> Forecast:
        return Forecast(
            origin=origin, step=STEP, keys=ks, point=p, lower=p - 20, upper=p + 20, model=["ets"] * n
        )

    previous = fc(ORIGIN - STEP, point - 1)
    errors = {h: {"mae": rng.uniform(0, 5, n), "mape": rng.uniform(0, 0.1, n)} for h in HORIZONS}
    return forecast_metrics(
        fc(ORIGIN, point),
        task="bench",
        namespace="default",
        horizons=HORIZONS,
        threshold=level[:, 0] * 1.5,
        actual_latest=level[:, 0],
        previous=previous,
        realised_errors=errors,
    )


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def timed_get(url: str) -> tuple[float, int]:
    t0 = time.perf_counter()
    resp = requests.get(url, timeout=120)
    resp.raise_for_status()
    return time.perf_counter() - t0, len(resp.content)


def scrape_mode(exposition: bytes, workdir: Path, shards: int) -> float:
    """Seconds for the slowest of ``shards`` scrape endpoints serving an equal part of the lines."""
    lines = exposition.decode().splitlines(keepends=True)
    samples = [ln for ln in lines if not ln.startswith("#")]
    slowest = 0.0
    for s in range(shards):
        part = "".join(samples[s::shards]).encode()
        store = LocalArtifactStore(workdir / f"store-{shards}-{s}")
        store.put_bytes(part, "metrics.txt")
        source = StoredExposition(store, "metrics.txt", task="bench")
        source.refresh()
        server = serve_app(make_app(source))
        try:
            seconds, _ = timed_get(f"http://127.0.0.1:{server.port}/metrics")
        finally:
            server.stop()
        slowest = max(slowest, seconds)
    return slowest


def measure(n: int, workdir: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    fams = families(n)
    exposition = generate_latest(to_registry(fams))
    build_s = time.perf_counter() - t0
    samples = sum(len(f.samples) for f in fams)
    with localprom.LocalPushgateway(workdir / f"pg-{n}") as pg:
        assert pg.proc is not None
        idle = rss_mib(pg.proc.pid)
        t0 = time.perf_counter()
        push(pg.url, to_registry(fams), grouping_key={"namespace": "default", "task": "bench"}, timeout=300)
        first_push_s = time.perf_counter() - t0
        after_push = rss_mib(pg.proc.pid)
        t0 = time.perf_counter()
        push(
            pg.url,
            to_registry(families(n, seed=1)),
            grouping_key={"namespace": "default", "task": "bench"},
            timeout=300,
        )
        replace_push_s = time.perf_counter() - t0
        scrape_s, scrape_bytes = timed_get(pg.url + "/metrics")
        after_scrape = rss_mib(pg.proc.pid)
    return {
        "series": n,
        "samples": samples,
        "exposition_mib": round(len(exposition) / 2**20, 2),
        "build_s": round(build_s, 2),
        "push_s": round(first_push_s, 2),
        "replace_push_s": round(replace_push_s, 2),
        "gateway_rss_mib": round(max(after_push, after_scrape), 1),
        "gateway_idle_rss_mib": round(idle, 1),
        "gateway_scrape_s": round(scrape_s, 2),
        "gateway_scrape_mib": round(scrape_bytes / 2**20, 2),
        "scrape_mode_1_endpoint_s": round(scrape_mode(exposition, workdir, 1), 3),
        "scrape_mode_4_shards_s": round(scrape_mode(exposition, workdir, 4), 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", default="1000,10000,50000", help="forecast series per run, comma-separated"
    )
    args = parser.parse_args(argv)
    reason = localprom.install()
    if reason is not None:
        raise SystemExit(f"the Pushgateway is not available: {reason}")
    started = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-pushgateway-") as tmp:
        for n in (int(x) for x in args.sizes.split(",")):
            row = measure(n, Path(tmp))
            spec = ForecastTaskSpec.model_validate(
                {
                    "source": {"query": "x"},
                    "threshold": {"capacity": {"value": 1}},
                    "output": {"horizons": HORIZONS},
                }
            )
            assert gauges_per_series(spec) * n == row["samples"], (
                "gauges_per_series no longer matches writeback"
            )
            row["verdict"] = check_output_size(spec, n).level
            rows.append(row)
            print(f"{n} series done", flush=True)
    cols = [
        "series",
        "samples",
        "exposition_mib",
        "build_s",
        "push_s",
        "replace_push_s",
        "gateway_rss_mib",
        "gateway_scrape_s",
        "scrape_mode_1_endpoint_s",
        "scrape_mode_4_shards_s",
        "verdict",
    ]
    print("\nPushgateway vs scrape mode, by forecast series (18 gauges each)")
    print(table(rows, cols))
    elapsed = time.perf_counter() - started
    path = write_result(
        "pushgateway_size",
        {
            "benchmark": "forecast_pushgateway_size",
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "load_avg_1m": os.getloadavg()[0],
            },
            "pushgateway": "Debian prometheus-pushgateway (see FACTS.md for the version)",
            "seconds": round(elapsed, 1),
            "rows": rows,
            "limits": {"warn_samples": PUSHGATEWAY_WARN_SAMPLES, "refuse_samples": PUSHGATEWAY_MAX_SAMPLES},
        },
    )
    print(f"\n{elapsed:.0f} s; wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
