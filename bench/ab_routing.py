"""Benchmark: sticky weighted routing (``foresight.experiment.routing.VariantRouter``).

1. **Stickiness**: the same client on two pods (two routers, different caches) and on a repeat
   request gets the same variant. Target: 100%.
2. **Shares**: the share of clients per variant against the weights (2, 3 and 5 variants).
3. **Movement** when the weights change: clients that change variant against the minimum possible
   (half the L1 distance between the weight vectors), for rendezvous hashing (what the router
   does) and, for comparison, cumulative intervals on one hash. Target: within 1 point of the
   minimum for the issue's case (candidate 10% -> 25%), and only towards variants that gained.
   No stateless scheme is minimal for every change of three or more weights (see the routing
   module); the other rows show how close each comes.
4. **Overhead** per request: ``choose()`` timed call by call (p50 / p99, µs), uncached (every
   client new) and cached (returning clients), with 2 and 5 variants. The timer's own cost is
   measured and reported, not subtracted.

Run: ``nice python bench/ab_routing.py [--clients 200000]``; prints tables and writes
``bench/results/ab_routing.json``.
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from foresight.experiment.routing import VariantRouter
from scipy import stats

RESULTS = Path(__file__).resolve().parent / "results"
SALT = "bench-experiment"

TRANSITIONS: list[tuple[str, dict[str, int], dict[str, int]]] = [
    (
        "candidate 10% -> 25% (the issue's case)",
        {"control": 90, "candidate": 10},
        {"control": 75, "candidate": 25},
    ),
    ("candidate 25% -> 50%", {"control": 75, "candidate": 25}, {"control": 50, "candidate": 50}),
    ("candidate 50% -> 100%", {"control": 50, "candidate": 50}, {"control": 0, "candidate": 100}),
    ("3 variants: one gains, one loses", {"a": 50, "b": 25, "c": 25}, {"a": 40, "b": 25, "c": 35}),
    ("3 variants: one gains, two lose evenly", {"a": 34, "b": 33, "c": 33}, {"a": 80, "b": 10, "c": 10}),
    ("3 variants: one gains, two lose unevenly", {"a": 50, "b": 25, "c": 25}, {"a": 70, "b": 20, "c": 10}),
    ("3 variants: two gain, one loses", {"a": 60, "b": 20, "c": 20}, {"a": 20, "b": 40, "c": 40}),
    ("3 variants: one removed", {"a": 40, "b": 30, "c": 30}, {"a": 40, "b": 30, "c": 0}),
    ("3 variants: one added", {"a": 50, "b": 50, "c": 0}, {"a": 40, "b": 40, "c": 20}),
    (
        "5 variants: bandit shift",
        {"a": 20, "b": 20, "c": 20, "d": 20, "e": 20},
        {"a": 5, "b": 60, "c": 5, "d": 25, "e": 5},
    ),
]


def table(rows: list[dict[str, Any]], cols: list[str]) -> str:
    def fmt(v: Any) -> str:
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    cells = [[fmt(r.get(c, "")) for c in cols] for r in rows]
    widths = [max(len(c), *(len(x[i]) for x in cells)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))]
    lines += ["  ".join(x.ljust(w) for x, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def interval_router(weights: Mapping[str, int], salt: str = SALT) -> Callable[[str], str]:
    """The alternative: one hash per client, cumulative intervals in the variants' order."""
    names = [v for v, w in weights.items() if w > 0]
    total = sum(weights[v] for v in names)
    edges = list(np.cumsum([weights[v] / total for v in names]))
    key = hashlib.blake2b(salt.encode(), digest_size=32).digest()

    def choose(client: str) -> str:
        h = int.from_bytes(hashlib.blake2b(client.encode(), digest_size=8, key=key).digest(), "big")
        return names[min(bisect.bisect_right(edges, h / 2**64), len(names) - 1)]

    return choose


def stickiness(clients: list[str]) -> dict[str, Any]:
    weights = {"control": 90, "candidate": 10}
    pod_a, pod_b = VariantRouter(weights, salt=SALT), VariantRouter(weights, salt=SALT, cache_size=1)
    first = [pod_a.choose(c) for c in clients]
    again = [pod_a.choose(c) for c in clients]  # repeat requests (from the cache where it holds them)
    other = [pod_b.choose(c) for c in clients]  # another pod, no useful cache
    same = sum(x == y == z for x, y, z in zip(first, again, other, strict=True))
    return {"clients": len(clients), "sticky_share": same / len(clients)}


def shares(clients: list[str]) -> list[dict[str, Any]]:
    rows = []
    for weights in (
        {"control": 90, "candidate": 10},
        {"a": 50, "b": 30, "c": 20},
        {"a": 40, "b": 20, "c": 20, "d": 10, "e": 10},
    ):
        router = VariantRouter(weights, salt=SALT)
        got = [router.choose(c) for c in clients]
        observed = np.array([got.count(v) for v in weights], float)
        expected = np.array([len(clients) * w / 100 for w in weights.values()])
        rows.append(
            {
                "weights": "/".join(str(w) for w in weights.values()),
                "observed_pct": "/".join(f"{100 * o / len(clients):.2f}" for o in observed),
                "max_abs_error_pts": float(np.max(np.abs(observed - expected)) / len(clients) * 100),
                "chi2_p": float(stats.chisquare(observed, expected).pvalue),
            }
        )
    return rows


def movement(clients: list[str]) -> list[dict[str, Any]]:
    rows = []
    for name, before, after in TRANSITIONS:
        # Shares, not raw weights: removing a variant grows the others' shares.
        b_share = {v: w / sum(before.values()) for v, w in before.items()}
        a_share = {v: w / sum(after.values()) for v, w in after.items()}
        minimum = 100 * sum(abs(a_share[v] - b_share[v]) for v in before) / 2
        gained = {v for v in before if a_share[v] > b_share[v] + 1e-12}
        lost = {v for v in before if a_share[v] < b_share[v] - 1e-12}
        row: dict[str, Any] = {"change": name, "min_pct": minimum}
        for label, build in (
            ("rendezvous", lambda w: VariantRouter(w, salt=SALT).choose),
            ("intervals", interval_router),
        ):
            x, y = build(before), build(after)
            pairs = [(x(c), y(c)) for c in clients]
            moved = [(a, b) for a, b in pairs if a != b]
            pct = 100 * len(moved) / len(clients)
            row[f"{label}_pct"] = pct
            row[f"{label}_excess_pts"] = pct - minimum
            row[f"{label}_loser_to_gainer_only"] = all(a in lost and b in gained for a, b in moved)
        rows.append(row)
    return rows


def overhead(n_calls: int) -> list[dict[str, Any]]:
    timer = time.perf_counter_ns
    rows = []
    # What a timer pair costs on this machine: the floor under every p50 below.
    empty = np.empty(n_calls)
    for i in range(n_calls):
        t0 = timer()
        empty[i] = timer() - t0
    floor = float(np.median(empty)) / 1000
    for k in (2, 5):
        weights = {f"v{i}": 100 // k for i in range(k)}
        for mode in ("uncached (new client)", "cached (returning client)"):
            router = VariantRouter(weights, salt=SALT, cache_size=1 if mode.startswith("uncached") else 65536)
            keys = (
                [f"client-{i}" for i in range(n_calls)]
                if mode.startswith("uncached")
                else [f"client-{i % 10_000}" for i in range(n_calls)]
            )
            for key in keys[:10_000]:  # warm up (and fill the cache in the cached mode)
                router.choose(key)
            spent = np.empty(n_calls)
            for i, key in enumerate(keys):
                t0 = timer()
                router.choose(key)
                spent[i] = timer() - t0
            rows.append(
                {
                    "variants": k,
                    "mode": mode,
                    "calls": n_calls,
                    "p50_us": float(np.percentile(spent, 50)) / 1000,
                    "p99_us": float(np.percentile(spent, 99)) / 1000,
                    "mean_us": float(spent.mean()) / 1000,
                    "timer_floor_us": floor,
                }
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200_000, help="distinct stickiness keys")
    parser.add_argument("--calls", type=int, default=200_000, help="timed choose() calls per row")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    clients = [f"client-{i}" for i in range(args.clients)]

    st = stickiness(clients)
    print(
        f"Stickiness: {st['sticky_share']:.2%} of {st['clients']} clients get the same variant on two pods "
        f"and on a repeat request; target 100%: {'MET' if st['sticky_share'] == 1.0 else 'NOT MET'}\n"
    )

    sh = shares(clients)
    print("Shares of clients per variant")
    print(table(sh, ["weights", "observed_pct", "max_abs_error_pts", "chi2_p"]) + "\n")

    mv = movement(clients)
    print("Clients moved when the weights change (percent of all clients)")
    print(
        table(
            mv,
            [
                "change",
                "min_pct",
                "rendezvous_pct",
                "rendezvous_excess_pts",
                "rendezvous_loser_to_gainer_only",
                "intervals_pct",
                "intervals_excess_pts",
            ],
        )
    )
    case = mv[0]
    movement_met = abs(case["rendezvous_excess_pts"]) <= 1 and case["rendezvous_loser_to_gainer_only"]
    print(
        f"target (10% -> 25%: within 1 point of {case['min_pct']:.0f}%, control -> candidate only): "
        f"{case['rendezvous_pct']:.2f}% {'MET' if movement_met else 'NOT MET'}\n"
    )

    ov = overhead(args.calls)
    print("Routing overhead per request (choose(), µs)")
    print(table(ov, ["variants", "mode", "calls", "p50_us", "p99_us", "mean_us", "timer_floor_us"]))

    elapsed = time.perf_counter() - started
    print(f"\n{elapsed:.0f} s")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = {
        "benchmark": "ab_routing",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_avg_1m": os.getloadavg()[0],
        },
        "seconds": elapsed,
        "stickiness": st,
        "shares": sh,
        "movement": mv,
        "overhead": ov,
        "targets": {
            "sticky_share_100pct": st["sticky_share"] == 1.0,
            "movement_within_1pt_of_minimum": movement_met,
        },
    }
    path = RESULTS / "ab_routing.json"
    path.write_text(json.dumps(out, indent=2))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
