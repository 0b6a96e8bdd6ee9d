"""Benchmark: ONNX Runtime vs eager torch latency, and int8 vs fp32 size and latency.

Model: the FACTS.md reference LSTM (1 -> 64, 2 layers, Linear 64 -> 6), a 48-step window.
Batch 1 (what a serving pod answering one request sees; 1 thread) and batch 1000 (batch
scoring; up to 4 threads). Target: ONNX >= 3x faster than eager at batch 1 with parity < 1e-4
(FACTS.md measured 3.9x). Prints a table and writes ``bench/results/onnx_latency.json``.

Run: ``nice .venv/bin/python bench/onnx_latency.py [--repeats 200] [--window 48]``.
The machines are shared: numbers are medians over repeats and still noisy; compare runs taken on
the same machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

import torch
from foresight.optimize import optimize_model
from foresight.optimize.reference import ReferenceLSTM, example_input

RESULTS = Path(__file__).resolve().parent / "results"
TARGET_SPEEDUP_BATCH1 = 3.0
TARGET_PARITY = 1e-4


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200, help="timed runs per (runtime, batch)")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--window", type=int, default=48, help="time steps per input window")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 1000])
    parser.add_argument("--exporter", choices=["auto", "dynamo", "torchscript"], default="auto")
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    model = ReferenceLSTM().eval()
    with tempfile.TemporaryDirectory() as tmp:
        report = optimize_model(
            model,
            example_input(batch=4, window=args.window),
            tmp,
            batch_sizes=tuple(args.batch),
            exporter=args.exporter,
            latency_repeats=args.repeats,
            latency_warmup=args.warmup,
        )
    assert report.latency is not None and report.parity is not None and report.quantization is not None
    latency = report.latency

    rows = []
    header = ("runtime", "batch", "threads", "p50 ms", "p99 ms", "rows/s", "vs eager")
    print("{:<10} {:>6} {:>7} {:>9} {:>9} {:>11} {:>8}".format(*header))
    for r in latency.results:
        speed = latency.speedup(r.runtime, r.batch_size)
        rows.append({**r.to_dict(), "speedup_vs_eager": speed})
        print(
            f"{r.runtime:<10} {r.batch_size:>6} {r.threads:>7} {r.p50_ms:>9.3f} {r.p99_ms:>9.3f} "
            f"{r.rows_per_s:>11.0f} {speed:>7.2f}x"
        )
    sizes = {a.name: a.size_bytes for a in report.artifacts}
    q_parity = report.quantization.parity
    print()
    print(f"exporter: {report.export.exporter if report.export else '-'}")
    print(
        f"sizes: weights {sizes['weights']} B, onnx {sizes['onnx']} B, int8 {sizes['onnx-int8']} B "
        f"(int8/fp32 = {report.quantization.size_ratio:.2f})"
    )
    print(
        f"parity fp32 max |diff| {report.parity.max_abs_diff:.2e}; "
        f"int8 max |diff| {q_parity.max_abs_diff if q_parity else float('nan'):.2e}"
    )
    speed1 = latency.speedup("onnx", 1) if 1 in args.batch else float("nan")
    met = speed1 >= TARGET_SPEEDUP_BATCH1 and report.parity.max_abs_diff < TARGET_PARITY
    print(
        f"target (onnx >= {TARGET_SPEEDUP_BATCH1}x eager at batch 1, parity < {TARGET_PARITY}): "
        f"{'MET' if met else 'NOT MET'} ({speed1:.2f}x)"
    )

    RESULTS.mkdir(parents=True, exist_ok=True)
    out = {
        "benchmark": "onnx_latency",
        "model": "ReferenceLSTM(1->64, 2 layers) + Linear(64->6)",
        "window": args.window,
        "repeats": args.repeats,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "load_avg_1m": os.getloadavg()[0],
        },
        "latency": rows,
        "sizes_bytes": sizes,
        "int8_size_ratio": report.quantization.size_ratio,
        "parity_fp32": report.parity.to_dict(),
        "parity_int8": q_parity.to_dict() if q_parity else None,
        "exporter": report.export.to_dict() if report.export else None,
        "target": {
            "speedup_batch1": TARGET_SPEEDUP_BATCH1,
            "parity": TARGET_PARITY,
            "met": met,
            "speedup_batch1_measured": speed1,
        },
    }
    (RESULTS / "onnx_latency.json").write_text(json.dumps(out, indent=2))
    print(f"wrote {RESULTS / 'onnx_latency.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
