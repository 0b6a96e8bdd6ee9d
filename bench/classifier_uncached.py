"""Benchmark: the classifier's uncached path against a stand-in LLM, and what a failing upstream costs.

Throughput: with 64 connections and a 0.3 s upstream, the ideal is 64 / 0.3 = 213 requests/s: the
service must not be the bottleneck (backend calls run in a pool of ``backend.concurrency``
threads). Each wrk request carries a distinct 8x8 BMP (thread id + counter in its pixels), so
nothing is a cache hit.

Failure cost (issue 18): N identical requests sent at once against an upstream that answers every
call with 500 must make at most ``retries + 1`` upstream calls in total (one worker, and two
worker processes sharing the sqlite store); against an upstream that never answers, every
request must get its 502 within the deadline.
Prints tables and writes ``bench/results/classifier_uncached.json``.
"""

from __future__ import annotations

import argparse
import io
import struct
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from classifier_common import load_average, lua_string, report, service, standin, standin_calls, wrk

DELAY = 0.3


def _bmp_header(width: int = 8, height: int = 8) -> bytes:
    pixels = width * height * 3  # 24-bit rows of 8 pixels are already 4-byte aligned
    return (
        b"BM"
        + struct.pack("<IHHI", 54 + pixels, 0, 0, 54)
        + struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, pixels, 2835, 2835, 0, 0)
    )


LUA = """
local counter = 0
local id = 0
local boundary = "foresightbenchboundary"
local header = %s
function setup(thread)
  thread:set("tid", math.random(1, 1000000))
end
function init(args)
  id = tid or 0
end
local function be32(n)
  return string.char(math.floor(n / 16777216) %% 256, math.floor(n / 65536) %% 256,
                     math.floor(n / 256) %% 256, n %% 256)
end
function request()
  counter = counter + 1
  local pixels = be32(id) .. be32(counter) .. string.rep("\\0", 184)
  local body = "--" .. boundary ..
    "\\r\\nContent-Disposition: form-data; name=\\"file\\"; filename=\\"x.bmp\\"\\r\\n" ..
    "Content-Type: image/bmp\\r\\n\\r\\n" .. header .. pixels .. "\\r\\n--" .. boundary .. "--\\r\\n"
  local headers = {["Content-Type"] = "multipart/form-data; boundary=" .. boundary}
  return wrk.format("POST", "/api/v1/classify", headers, body)
end
"""


def _image(seed: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (seed % 256, 80, 160)).save(out, format="PNG")
    return out.getvalue()


def _together(url: str, n: int, image: bytes) -> list[tuple[int, str, float]]:
    """``n`` identical classify requests released at once: (status, error code, seconds) each."""
    gate = threading.Barrier(n)

    def one(_: int) -> tuple[int, str, float]:
        gate.wait()
        start = time.monotonic()
        files = {"file": ("a.png", image, "image/png")}
        r = requests.post(f"{url}/api/v1/classify", files=files, timeout=120)
        code = "" if r.status_code == 200 else r.json().get("error", "")
        return r.status_code, code, time.monotonic() - start

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def failure_cost(n: int, retries: int, workers: int) -> dict[str, Any]:
    # 0.5 s per failing call: the attempt sequence lasts over a second, so "at once" means at once.
    with standin(delay=0.5, fail=500) as base, service(base, retries=retries, workers=workers,
                                                       cpu=None if workers > 1 else 0) as url:  # fmt: skip
        results = _together(url, n, _image(1))
        calls = standin_calls(base)
    return {
        "case": f"{n} identical requests, upstream always 500, {workers} worker(s)",
        "requests": n,
        "retries": retries,
        "upstream_calls": calls,
        "bound": retries + 1,
        "met": calls <= retries + 1,
        "statuses": dict(Counter(f"{s} {c}" for s, c, _ in results)),
        "max_latency_s": max(t for _, _, t in results),
    }


def hanging(n: int, deadline: float) -> dict[str, Any]:
    with standin(delay=3600) as base, service(base, retries=3, deadline=deadline, timeout=30) as url:
        results = _together(url, n, _image(2))
        calls = standin_calls(base)
    worst = max(t for _, _, t in results)
    return {
        "case": f"{n} identical requests, upstream never answers, deadline {deadline:g} s",
        "requests": n,
        "deadline_s": deadline,
        "upstream_calls": calls,
        "statuses": dict(Counter(f"{s} {c}" for s, c, _ in results)),
        "max_latency_s": worst,
        "met": worst <= deadline + 0.5 and all(s == 502 for s, _, _ in results),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--identical", type=int, default=64, help="N of the failure-cost cases")
    args = parser.parse_args()
    load_before = load_average()
    with standin(delay=DELAY) as base, service(base, concurrency=max(64, args.connections)) as url:
        row = wrk(url, LUA % lua_string(_bmp_header()), connections=args.connections, seconds=args.seconds)
        stats = requests.get(f"{url}/api/v1/stats/today", timeout=60).json()
    ideal = args.connections / DELAY
    row = {"case": f"classify uncached ({DELAY * 1000:.0f} ms LLM)", **row}
    failures = [
        failure_cost(args.identical, retries=2, workers=1),
        failure_cost(args.identical, retries=2, workers=2),
        hanging(args.identical, deadline=3.0),
    ]
    report(
        "classifier_uncached",
        [row],
        {
            "upstream_delay_s": DELAY,
            "ideal_rps": ideal,
            "efficiency": row["rps"] / ideal,
            "llm_calls": stats["llm_calls"],
            "cache_hits": stats["cache_hits"],
            "failure_cost": failures,
            "load_before": load_before,
        },
    )
    print(
        f"ideal {ideal:.0f} rps -> {100 * row['rps'] / ideal:.0f}% of ideal; LLM calls {stats['llm_calls']}, "
        f"cache hits {stats['cache_hits']} (expected 0)"
    )
    for f in failures:
        bound = f" (at most {f['bound']})" if "bound" in f else ""
        print(
            f"{f['case']}: {f['upstream_calls']} upstream calls{bound}, {f['statuses']}, "
            f"slowest {f['max_latency_s']:.2f} s, {'met' if f['met'] else 'MISSED'}"
        )


if __name__ == "__main__":
    main()
