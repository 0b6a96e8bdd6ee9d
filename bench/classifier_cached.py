"""Benchmark: the classifier's cached hot paths (check-cache, repeated classify) under wrk at 64 connections.

Target on 2 cores: check-cache >= 2000 requests/s with p99 < 20 ms. Prints a table and writes
``bench/results/classifier_cached.json``. Usage: ``python bench/classifier_cached.py [--seconds 10]
[--case check-cache|classify]`` (one case alone writes ``classifier_cached-<case>.json``).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
from pathlib import Path

import requests
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from classifier_common import lua_string, report, service, standin, wrk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument(
        "--case", choices=["all", "check-cache", "classify"], default="all", help="run one case only"
    )
    args = parser.parse_args()
    buf = io.BytesIO()
    Image.new("RGB", (640, 480), (30, 120, 200)).save(buf, format="JPEG", quality=85)
    image = buf.getvalue()
    sha = hashlib.sha256(image).hexdigest()
    boundary = "foresightbenchboundary"
    multipart = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + image
        + f"\r\n--{boundary}--\r\n".encode()
    )
    rows = []
    with standin(delay=0.0) as base, service(base) as url:
        first = requests.post(
            f"{url}/api/v1/classify", files={"file": ("a.jpg", image, "image/jpeg")}, timeout=30
        )
        first.raise_for_status()
        assert first.json()["cached"] is False
        check_lua = (
            f'wrk.method = "POST"\nwrk.path = "/api/v1/classify/check-cache"\n'
            f'wrk.headers["Content-Type"] = "application/json"\n'
            f"wrk.body = {lua_string(json.dumps({'sha256': sha}).encode())}\n"
        )
        if args.case in ("all", "check-cache"):
            rows.append(
                {
                    "case": "check-cache (hit)",
                    **wrk(url, check_lua, connections=args.connections, seconds=args.seconds),
                }
            )
        classify_lua = (
            f'wrk.method = "POST"\nwrk.path = "/api/v1/classify"\n'
            f'wrk.headers["Content-Type"] = "multipart/form-data; boundary={boundary}"\n'
            f"wrk.body = {lua_string(multipart)}\n"
        )
        if args.case in ("all", "classify"):
            rows.append(
                {
                    "case": f"classify (cached, {len(image)} B)",
                    **wrk(url, classify_lua, connections=args.connections, seconds=args.seconds),
                }
            )
        stats = requests.get(f"{url}/api/v1/stats/today", timeout=60).json()
    report(
        "classifier_cached" + ("" if args.case == "all" else f"-{args.case}"),  # never overwrite a full run
        rows,
        {
            "target": {"check_cache_rps": 2000, "check_cache_p99_ms": 20},
            "llm_calls": stats["llm_calls"],
            "cache_hits": stats["cache_hits"],
        },
    )
    print(f"LLM calls during the run: {stats['llm_calls']} (expected 1), cache hits: {stats['cache_hits']}")


if __name__ == "__main__":
    main()
