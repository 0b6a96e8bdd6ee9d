"""Benchmark: the classifier's uncached path (every request a new image) against a stand-in LLM at 300 ms.

With 64 connections and a 0.3 s upstream, the ideal is 64 / 0.3 = 213 requests/s: the service must
not be the bottleneck (backend calls run in a pool of ``backend.concurrency`` threads). Each wrk
request carries a distinct 8x8 BMP (thread id + counter in its pixels), so nothing is a cache hit.
Prints a table and writes ``bench/results/classifier_uncached.json``.
"""

from __future__ import annotations

import argparse
import struct
import sys
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from classifier_common import lua_string, report, service, standin, wrk

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    with standin(delay=DELAY) as base, service(base, concurrency=max(64, args.connections)) as url:
        row = wrk(url, LUA % lua_string(_bmp_header()), connections=args.connections, seconds=args.seconds)
        stats = requests.get(f"{url}/api/v1/stats/today", timeout=60).json()
    ideal = args.connections / DELAY
    row = {"case": f"classify uncached ({DELAY * 1000:.0f} ms LLM)", **row}
    report(
        "classifier_uncached",
        [row],
        {
            "upstream_delay_s": DELAY,
            "ideal_rps": ideal,
            "efficiency": row["rps"] / ideal,
            "llm_calls": stats["llm_calls"],
            "cache_hits": stats["cache_hits"],
        },
    )
    print(
        f"ideal {ideal:.0f} rps -> {100 * row['rps'] / ideal:.0f}% of ideal; LLM calls {stats['llm_calls']}, "
        f"cache hits {stats['cache_hits']} (expected 0)"
    )


if __name__ == "__main__":
    main()
