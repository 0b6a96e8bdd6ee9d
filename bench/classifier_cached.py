"""Benchmark: the classifier's cached hot paths against the floor of the stack, at 64 connections.

The floor is a minimal ASGI app answering a constant JSON body under the same server on the same
pinned core (``classifier_common.floor``). In every round the phases run back to back, as users
do: the floor, check-cache hits, repeated ``classify`` of a cached 5.4 kB multipart upload, then
check-cache again right after that burst (a tail that grows after a burst shows there). Medians
over the rounds are reported; every round is in the JSON.

Targets (issue 18): check-cache hits at least 70% of the floor's requests/s with p99 at most 1.5x
the floor's p99; cached classify at least 50% of the floor's requests/s.
Prints a table and writes ``bench/results/classifier_cached.json``. Usage: ``python
bench/classifier_cached.py [--seconds 10] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import statistics
import sys
from pathlib import Path
from typing import Any

import requests
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from classifier_common import floor, load_average, lua_string, report, service, standin, wrk

PHASES = ("floor", "check-cache", "classify", "check-cache after the burst")


def _scripts(image: bytes, sha: str) -> dict[str, str]:
    boundary = "foresightbenchboundary"
    multipart = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + image
        + f"\r\n--{boundary}--\r\n".encode()
    )
    check = (
        f'wrk.method = "POST"\nwrk.path = "/api/v1/classify/check-cache"\n'
        f'wrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {lua_string(json.dumps({'sha256': sha}).encode())}\n"
    )
    classify = (
        f'wrk.method = "POST"\nwrk.path = "/api/v1/classify"\n'
        f'wrk.headers["Content-Type"] = "multipart/form-data; boundary={boundary}"\n'
        f"wrk.body = {lua_string(multipart)}\n"
    )
    return {"floor": check, "check-cache": check, "classify": classify, "check-cache after the burst": check}


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    buf = io.BytesIO()
    Image.new("RGB", (640, 480), (30, 120, 200)).save(buf, format="JPEG", quality=85)
    image = buf.getvalue()
    sha = hashlib.sha256(image).hexdigest()
    scripts = _scripts(image, sha)
    load_before = load_average()
    runs: dict[str, list[dict[str, Any]]] = {phase: [] for phase in PHASES}
    with standin(delay=0.0) as base, service(base) as url, floor() as floor_url:
        first = requests.post(
            f"{url}/api/v1/classify", files={"file": ("a.jpg", image, "image/jpeg")}, timeout=30
        )
        first.raise_for_status()
        assert first.json()["cached"] is False
        for _ in range(args.rounds):
            for phase in PHASES:
                target = floor_url if phase == "floor" else url
                result = wrk(target, scripts[phase], connections=args.connections, seconds=args.seconds)
                runs[phase].append(result)
        stats = requests.get(f"{url}/api/v1/stats/today", timeout=60).json()
    rows = []
    for phase in PHASES:
        label = f"classify (cached, {len(image)} B)" if phase == "classify" else phase
        rows.append(
            {
                "case": label,
                **{k: _median(runs[phase], k) for k in ("rps", "p50_ms", "p90_ms", "p99_ms")},
                "non_2xx": sum(r["non_2xx"] for r in runs[phase]),
                "socket_errors": sum(r["socket_errors"] for r in runs[phase]),
                "rounds": runs[phase],
            }
        )
    f, check, classify, after = rows
    versus = {
        "check_cache_rps_vs_floor": check["rps"] / f["rps"],
        "check_cache_p99_vs_floor": check["p99_ms"] / f["p99_ms"],
        "classify_rps_vs_floor": classify["rps"] / f["rps"],
        "classify_p99_vs_floor": classify["p99_ms"] / f["p99_ms"],
        "check_cache_after_burst_p99_vs_floor": after["p99_ms"] / f["p99_ms"],
    }
    report(
        "classifier_cached",
        rows,
        {
            "target": {
                "check_cache_rps_vs_floor": 0.7,
                "check_cache_p99_vs_floor": 1.5,
                "classify_rps_vs_floor": 0.5,
            },
            "versus_floor": versus,
            "rounds": args.rounds,
            "load_before": load_before,
            "llm_calls": stats["llm_calls"],
            "cache_hits": stats["cache_hits"],
        },
    )
    for name, value in versus.items():
        print(f"{name}: {value:.2f}")
    print(f"LLM calls during the run: {stats['llm_calls']} (expected 1), cache hits: {stats['cache_hits']}")


if __name__ == "__main__":
    main()
