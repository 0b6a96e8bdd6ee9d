"""Benchmark: the Prometheus load of a sharded ForecastTask run, against a real Prometheus.

A real Prometheus (Debian package) holds SYNTHETIC history backfilled with promtool: by default
10,000 series x 30 days hourly (7.2M samples) of ``storage_used_bytes{user, group, storage_type,
cluster}``, integer values so sums are exact. For two task queries (the plain selector, listed
through the series API, one forecast series per raw series; and ``sum by (user, cluster)``, listed
through the grid-exact subquery count) and for 1, 2 and 4 shards:

- the plan: listing time and queries (never a sample of history);
- each shard reads its series with ``foresight.forecast.shard_read.ShardReader`` under the sample
  budget: queries, samples, the most samples in one query and the most points per series in one
  query (both must stay under the budget and Prometheus' 11,000), wall time;
- correctness against Prometheus' own arithmetic: per forecast series, the number of grid points
  and their sum read by the shards equal ``count_over_time`` / ``sum_over_time`` (or their
  ``sum by``) evaluated by the server over the same grid: no series missing, none read twice, no
  sample lost or doubled at a chunk edge.

Run: ``nice python bench/forecast_prometheus_load.py [--series 10000 --days 30 --budget 200000]``;
prints a table and writes ``bench/results/forecast_prometheus_load.json``.
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
from forecast_common import table, write_result
from foresight.forecast.shard_plan import list_series, make_plan
from foresight.forecast.shard_read import ShardReader
from foresight.prometheus.client import MAX_POINTS_PER_SERIES, PrometheusClient, RetryPolicy
from foresight.prometheus.read_budget import ReadBudget
from foresight.run import localprom

STEP = 3600
METRIC = "storage_used_bytes"
GPU_METRIC = "gpu_utilization"
GPU_STEP = 60
QUERIES: list[tuple[str, str, list[str], int]] = [
    ("selector", METRIC, ["user", "storage_type", "cluster"], STEP),
    ("sum by (user, cluster)", f"sum by (user, cluster) ({METRIC})", ["user", "cluster"], STEP),
    # Per-minute data: 43,200 points per series over 30 days, so reads are cut in time too.
    ("per-minute GPUs", f"max_over_time({GPU_METRIC}[2m])", ["node", "gpu"], GPU_STEP),
]


def write_history(path: Path, n_series: int, gpus: int, start: int, end: int, seed: int = 0) -> int:
    """OpenMetrics streamed to ``path``; integer values, so sums are exact. Returns the samples.

    ``n_series`` hourly storage series (12 per user: 3 storage types x 4 clusters; a daily cycle,
    a trend, noise) and ``gpus`` per-minute GPU series (4 per node) over ``start..end``.
    """
    rng = np.random.default_rng(seed)

    def family(fh: Any, name: str, step: int, labels: list[str], cycle: int) -> int:
        t = np.arange((end - start) // step + 1)
        stamps = [str(start + i * step) for i in t]
        fh.write(f"# TYPE {name} gauge\n")
        for lab in labels:
            values = (
                rng.integers(0, 1000) + t * rng.integers(0, 3) + np.rint(100 * np.sin(2 * np.pi * t / cycle))
            )
            values = values + rng.integers(0, 50, t.size)
            fh.write("".join(f"{name}{lab} {int(v)} {ts}\n" for v, ts in zip(values, stamps, strict=True)))
        return len(labels) * t.size

    types = ("ssd", "hdd", "nvme")
    storage = [
        f'{{cluster="gpu-{i % 12 // 3}",group="g{i // 12 % 17}",storage_type="{types[i % 3]}",'
        f'user="u{i // 12:05d}"}}'
        for i in range(n_series)
    ]
    gpu = [f'{{gpu="{i % 4}",node="node-{i // 4:03d}"}}' for i in range(gpus)]
    with open(path, "w") as fh:
        samples = family(fh, METRIC, STEP, storage, 24) + family(fh, GPU_METRIC, GPU_STEP, gpu, 1440)
        fh.write("# EOF\n")
    return samples


def truth(
    client: PrometheusClient, query: str, group_by: list[str], start: int, end: int, step: int
) -> dict[Any, tuple[int, float]]:
    """Per forecast series, (grid points, their sum) as Prometheus itself computes them."""
    rng = f"{end - start + step - 1}s:{step}s"  # the subquery's grid is exactly start..end
    by = ", ".join(group_by)
    counts = client.query(f"sum by ({by}) (count_over_time(({query})[{rng}]))", time=end)
    sums = client.query(f"sum by ({by}) (sum_over_time(({query})[{rng}]))", time=end)
    total = {tuple(x.labels.get(g, "") for g in group_by): x.value for x in sums}
    return {
        tuple(x.labels.get(g, "") for g in group_by): (
            int(x.value),
            total[tuple(x.labels.get(g, "") for g in group_by)],
        )
        for x in counts
    }


def compare_listings(
    client: PrometheusClient,
    name: str,
    query: str,
    group_by: list[str],
    step: int,
    start: int,
    end: int,
    budget: ReadBudget,
    expected: dict[Any, tuple[int, float]],
) -> dict[str, Any]:
    """The planner's cheap listing against the exact (grid-evaluated) one: cost and keys."""
    kw: dict[str, Any] = {"start": start, "end": end, "step": step, "group_by": group_by, "budget": budget}
    t0 = time.perf_counter()
    auto = list_series(client, query, **kw)
    auto_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    exact = list_series(client, query, exact=True, **kw)
    exact_s = time.perf_counter() - t0
    keys = {tuple(p.labels.get(g, "") for g in group_by) for p in auto.series}
    exact_keys = {tuple(p.labels.get(g, "") for g in group_by) for p in exact.series}
    return {
        "query": name,
        "method": auto.method,
        "queries": auto.queries,
        "seconds": round(auto_s, 2),
        "exact_queries": exact.queries,
        "exact_seconds": round(exact_s, 2),
        "keys": len(keys),
        "exact_keys": len(exact_keys),
        "exact_is_forecast_set": exact_keys == set(expected),
        "cheap_covers_forecast_set": keys >= set(expected),
    }


def run_case(
    client: PrometheusClient,
    name: str,
    query: str,
    group_by: list[str],
    step: int,
    shards: int,
    start: int,
    end: int,
    budget: ReadBudget,
    expected: dict[Any, tuple[int, float]],
) -> dict[str, Any]:
    t0 = time.perf_counter()
    listing = list_series(client, query, start=start, end=end, step=step, group_by=group_by, budget=budget)
    plan = make_plan(
        listing,
        run_id=f"bench-{shards}",
        parallelism=shards,
        query=query,
        group_by=group_by,
        aggregate="sum",
        created_at=time.time(),
    )
    plan_s = time.perf_counter() - t0
    read: dict[Any, tuple[int, float]] = {}
    duplicates = 0
    per_shard = []
    for part in plan.shards:
        reader = ShardReader(client, part, group_by=group_by, aggregate="sum", budget=budget)
        t1 = time.perf_counter()
        for rs in reader.query_range(query, start, end, step):
            key = tuple(rs.labels.get(g, "") for g in group_by)
            duplicates += key in read
            read[key] = (len(rs.timestamps), float(np.sum(rs.values)))
        st = reader.stats
        per_shard.append(
            {
                "series": len(part),
                "queries": st.queries,
                "samples": st.samples,
                "max_samples_per_query": st.max_samples_per_query,
                "max_points_per_series": st.max_points_per_series,
                "over_budget": st.over_budget_queries,
                "seconds": round(time.perf_counter() - t1, 2),
            }
        )
    missing = len(set(expected) - set(read))
    extra = len(set(read) - set(expected))
    wrong = sum(1 for k, v in read.items() if k in expected and v != expected[k])
    return {
        "query": name,
        "step_s": step,
        "points": (end - start) // step + 1,
        "shards": shards,
        "series": plan.series_count,
        "listing": listing.method,
        "plan_queries": listing.queries,
        "plan_s": round(plan_s, 2),
        "queries_per_shard_max": max(s["queries"] for s in per_shard),
        "queries_total": sum(s["queries"] for s in per_shard),
        "samples_total": sum(s["samples"] for s in per_shard),
        "samples_expected": sum(c for c, _ in expected.values()),
        "max_samples_per_query": max(s["max_samples_per_query"] for s in per_shard),
        "max_points_per_series": max(s["max_points_per_series"] for s in per_shard),
        "over_budget": sum(s["over_budget"] for s in per_shard),
        "shard_s_max": max(s["seconds"] for s in per_shard),
        "shard_s_total": round(sum(s["seconds"] for s in per_shard), 2),
        "missing": missing,
        "duplicates": duplicates,
        "extra": extra,
        "wrong_values": wrong,
        "per_shard": per_shard,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--gpus", type=int, default=60, help="per-minute series")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--budget", type=int, default=200_000, help="samples per query")
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args(argv)
    reason = localprom.install()
    if reason is not None:
        raise SystemExit(f"Prometheus is not available: {reason}")
    started = time.perf_counter()
    hours = args.days * 24
    end = (int(time.time()) // STEP) * STEP - 2 * STEP
    start = end - hours * STEP
    budget = ReadBudget(samples_per_query=args.budget, concurrency=args.concurrency)
    rows: list[dict[str, Any]] = []
    listings: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-promload-") as tmp:
        om = Path(tmp) / "history.om"
        t0 = time.perf_counter()
        samples = write_history(om, args.series, args.gpus, start, end)
        generate_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        localprom.backfill_file(om, Path(tmp) / "data", timeout=900)
        backfill_s = time.perf_counter() - t0
        om.unlink()
        print(
            f"history: {args.series} hourly + {args.gpus} per-minute series over {args.days} days = "
            f"{samples:,} samples; generated in {generate_s:.0f} s, backfilled in {backfill_s:.0f} s",
            flush=True,
        )
        with localprom.LocalPrometheus(Path(tmp) / "data") as prom:
            client = PrometheusClient(prom.url, timeout=300, retry=RetryPolicy(attempts=3))
            for name, query, group_by, step in QUERIES:
                expected = truth(client, query, group_by, start, end, step)
                listings.append(
                    compare_listings(client, name, query, group_by, step, start, end, budget, expected)
                )
                for shards in (1, 2, 4):
                    row = run_case(client, name, query, group_by, step, shards, start, end, budget, expected)
                    rows.append(row)
                    print(f"{name}, {shards} shard(s): {row['shard_s_max']} s", flush=True)
    cols = [
        "query",
        "points",
        "shards",
        "series",
        "listing",
        "plan_queries",
        "plan_s",
        "queries_per_shard_max",
        "queries_total",
        "samples_total",
        "samples_expected",
        "max_samples_per_query",
        "max_points_per_series",
        "over_budget",
        "missing",
        "duplicates",
        "wrong_values",
        "shard_s_max",
        "shard_s_total",
    ]
    print("\nListing the series: the planner's way vs the exact grid evaluation")
    print(table(listings, list(listings[0])))
    print(
        f"\nSharded reads, budget {args.budget:,} samples per query, {args.concurrency} in flight per shard"
    )
    print(table(rows, cols))
    ok = all(x["exact_is_forecast_set"] and x["cheap_covers_forecast_set"] for x in listings) and all(
        r["missing"] == r["duplicates"] == r["extra"] == r["wrong_values"] == r["over_budget"] == 0
        and r["samples_total"] == r["samples_expected"]
        and r["max_samples_per_query"] <= args.budget
        and r["max_points_per_series"] <= MAX_POINTS_PER_SERIES
        for r in rows
    )
    elapsed = time.perf_counter() - started
    path = write_result(
        "prometheus_load",
        {
            "benchmark": "forecast_prometheus_load",
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "load_avg_1m": os.getloadavg()[0],
            },
            "data": {
                "series": args.series,
                "gpu_series": args.gpus,
                "days": args.days,
                "samples": samples,
                "synthetic": True,
                "generate_s": round(generate_s, 1),
                "backfill_s": round(backfill_s, 1),
            },
            "budget": {
                "samples_per_query": args.budget,
                "points_per_series": budget.points_per_series,
                "concurrency": args.concurrency,
            },
            "seconds": round(elapsed, 1),
            "listing": listings,
            "rows": rows,
            "targets": {"every_series_once_exact_values_under_budget": ok},
        },
    )
    print(f"\nall shards exact and under budget: {ok}; {elapsed:.0f} s; wrote {path}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
