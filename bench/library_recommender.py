"""Benchmark: the nearest-case recommender's quality on the built-in libraries, and its latency.

Quality (issue 15's target: beat a baseline that always answers the most common architecture):

- leave-one-out on each built-in library (each case recommended from the 299 others, as
  ``status.quality`` reports it), at the default k = 5 and, to show the default was not picked
  for the table, at k = 1, 3, 7;
- fresh workloads: 1,000 new workloads drawn from the same rules with another seed, recommended
  from the 300 shipped cases and compared with what the rules size for them (a held-out test set
  the library never saw).

Speed (target: recommend p99 under 10 ms on a 10,000-case library): a 10,000-case library made by
the same generator (another seed), its verification time (read + every case against the schema),
the recommender's build time, and the latency of ``Recommender.recommend`` over 2,000 queries
after a warm-up (one thread, this process).

Run: ``nice .venv/bin/python bench/library_recommender.py``. Writes
``bench/results/library_recommender.json``. The cases are rule-derived (see
foresight/library/builtin/generate.py): these figures say how well nearest cases reproduce
documented sizing rules, not how good the rules are.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from foresight.library.builtin import BUILTINS, builtin_path
from foresight.library.builtin.generate import LIBRARIES, build, draw_workload, dumps
from foresight.library.recommend import Recommender, leave_one_out
from foresight.library.records import Library
from foresight.library.verify import verify_path

RESULTS = Path(__file__).resolve().parent / "results"
TARGET_P99_MS = 10.0
LARGE_CASES = 10_000


def _load(path: Path) -> tuple[Library, float]:
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        report = verify_path(path, Path(tmp))
        elapsed = time.perf_counter() - started
    assert report.ok and report.library is not None, report.message
    return report.library, elapsed


def _fresh(name: str, library: Library, n: int, seed: int) -> dict[str, Any]:
    """Recommend for new workloads from the same rules; compare with the rules' own answer."""
    spec = LIBRARIES[name]
    rng = random.Random(seed)
    rec = Recommender(library)
    covered = correct = 0
    node_err: list[float] = []
    majority = Counter(c.output.architecture_type for c in library.cases).most_common(1)[0][0]
    base_correct = 0
    for _ in range(n):
        w = draw_workload(rng, spec.ranges)
        truth = spec.size(w)
        base_correct += truth.architecture == majority
        answer = rec.recommend(w.to_json())
        if not answer.covered:
            continue
        covered += 1
        correct += answer.architecture_type == truth.architecture
        node_err.append(abs((answer.node_count or 0) - truth.nodes))
    return {
        "workloads": n,
        "covered": covered,
        "architecture_accuracy": correct / n,
        "architecture_accuracy_when_covered": correct / covered if covered else None,
        "baseline_accuracy": base_correct / n,
        "node_count_mae_when_covered": statistics.fmean(node_err) if node_err else None,
    }


def _quality(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    for name in sorted(BUILTINS):
        library, _ = _load(builtin_path(name))
        q = leave_one_out(library)
        assert q is not None
        by_k = {}
        for k in (1, 3, 5, 7):
            qk = leave_one_out(library, recommender=Recommender(library, k=k))
            assert qk is not None
            by_k[str(k)] = {"accuracy": qk.architecture_accuracy, "node_count_mae": qk.node_count_mae}
        rows.append(
            {
                "library": name,
                "version": library.version,
                "cases": len(library.cases),
                "architectures": library.architecture_counts(),
                "loo": {**q.to_json(), "confusion": q.confusion},
                "loo_by_k": by_k,
                "fresh": _fresh(name, library, args.fresh, seed=7),
                "beats_baseline": q.architecture_accuracy > q.baseline_accuracy,
            }
        )
    return rows


def _speed(args: argparse.Namespace) -> dict[str, Any]:
    spec = LIBRARIES["postgresql-oltp"]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "large.json"
        path.write_text(dumps(build(spec, LARGE_CASES, seed=99)), encoding="utf-8")
        size = path.stat().st_size
        library, verify_s = _load(path)
    started = time.perf_counter()
    rec = Recommender(library)
    build_s = time.perf_counter() - started
    rng = random.Random(11)
    queries = [draw_workload(rng, spec.ranges).to_json() for _ in range(args.queries + args.warmup)]
    started = time.perf_counter()
    rec.recommend(queries[0])  # computes and caches the coverage radius
    first_ms = (time.perf_counter() - started) * 1000
    for q in queries[1 : args.warmup]:
        rec.recommend(q)
    times, cpu_times = [], []
    covered = 0
    for q in queries[args.warmup :]:
        started, cpu_started = time.perf_counter(), time.thread_time()
        answer = rec.recommend(q)
        times.append((time.perf_counter() - started) * 1000)
        # CPU time of this thread: what the call costs, without the waits of a shared, loaded machine.
        cpu_times.append((time.thread_time() - cpu_started) * 1000)
        covered += answer.covered
    arr, cpu = np.array(times), np.array(cpu_times)
    loo_started = time.perf_counter()
    q = leave_one_out(library, recommender=rec)
    loo_s = time.perf_counter() - loo_started
    return {
        "cases": LARGE_CASES,
        "file_bytes": size,
        "verify_s": round(verify_s, 3),
        "build_s": round(build_s, 4),
        "first_recommend_ms": round(first_ms, 3),
        "queries": len(times),
        "covered": covered,
        "p50_ms": round(float(np.percentile(arr, 50)), 4),
        "p99_ms": round(float(np.percentile(arr, 99)), 4),
        "mean_ms": round(float(arr.mean()), 4),
        "max_ms": round(float(arr.max()), 4),
        "cpu_p50_ms": round(float(np.percentile(cpu, 50)), 4),
        "cpu_p99_ms": round(float(np.percentile(cpu, 99)), 4),
        "load_avg_1m_after": os.getloadavg()[0],
        "loo_sampled": q.to_json() if q else None,
        "loo_s": round(loo_s, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fresh", type=int, default=1000, help="fresh workloads per library")
    parser.add_argument("--queries", type=int, default=2000, help="timed recommend calls")
    parser.add_argument("--warmup", type=int, default=100)
    args = parser.parse_args(argv)

    quality = _quality(args)
    print("leave-one-out (k=5) and fresh workloads from the same rules, per built-in library")
    header = (
        "library",
        "cases",
        "LOO acc",
        "baseline",
        "node MAE",
        "baseline MAE",
        "outside",
        "fresh acc",
        "fresh base",
        "fresh covered",
    )
    print("{:<16} {:>5} {:>8} {:>8} {:>8} {:>12} {:>7} {:>9} {:>10} {:>13}".format(*header))
    for row in quality:
        loo, fresh = row["loo"], row["fresh"]
        print(
            f"{row['library']:<16} {row['cases']:>5} {loo['architectureAccuracy']:>8.3f} "
            f"{loo['baselineAccuracy']:>8.3f} {loo['nodeCountMAE']:>8.2f} "
            f"{loo['baselineNodeCountMAE']:>12.2f} {loo['abstained']:>7} "
            f"{fresh['architecture_accuracy']:>9.3f} {fresh['baseline_accuracy']:>10.3f} "
            f"{fresh['covered']:>8}/{fresh['workloads']}"
        )
    print(
        "LOO accuracy by k: "
        + "; ".join(
            f"{r['library']}: " + ", ".join(f"k={k} {v['accuracy']:.3f}" for k, v in r["loo_by_k"].items())
            for r in quality
        )
    )

    speed = _speed(args)
    print(
        f"\n{speed['cases']:,}-case library ({speed['file_bytes'] / 1e6:.1f} MB): verify "
        f"{speed['verify_s']:.2f} s, build {speed['build_s'] * 1000:.1f} ms, first recommend "
        f"{speed['first_recommend_ms']:.1f} ms (computes the coverage radius)"
    )
    print(
        f"recommend over {speed['queries']} queries: p50 {speed['p50_ms']:.3f} ms, "
        f"p99 {speed['p99_ms']:.3f} ms, "
        f"max {speed['max_ms']:.3f} ms (CPU time p50 {speed['cpu_p50_ms']:.3f} ms, p99 "
        f"{speed['cpu_p99_ms']:.3f} ms); {speed['covered']} covered; load average {os.getloadavg()[0]:.1f}"
    )

    met = {
        "beats_baseline_everywhere": all(r["beats_baseline"] for r in quality),
        "p99_under_10ms": speed["p99_ms"] < TARGET_P99_MS,
    }
    print(
        f"\ntargets: recommender beats the most-common-architecture baseline on every built-in: "
        f"{met['beats_baseline_everywhere']}; p99 under {TARGET_P99_MS:g} ms: {met['p99_under_10ms']}"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = {
        "benchmark": "library_recommender",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "load_avg_1m": os.getloadavg()[0],
        },
        "quality": quality,
        "speed": speed,
        "target": {"p99_ms": TARGET_P99_MS, "met": met},
    }
    (RESULTS / "library_recommender.json").write_text(json.dumps(out, indent=2))
    print(f"wrote {RESULTS / 'library_recommender.json'}")
    return 0 if all(met.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
