"""Training throughput: samples/s of the forecast models under the trainer, and DDP 2 workers vs 1.

Every run is ``foresight train --config`` in child processes, exactly as a TrainingJob pod runs it,
on the SYNTHETIC storage panel (``--series`` series x 30 days hourly) with ``windowsPerEpoch``
training windows per epoch. Throughput = training windows of an epoch / that epoch's wall time
(validation included), averaged over the epochs after the first (warm-up). DDP runs two ranks
with gloo on 127.0.0.1; each rank trains half the windows, so the job's throughput is the full
epoch's windows over rank 0's epoch time. On a GPU machine (CUDA visible) the single-worker runs
are repeated on the GPU.

Usage: python bench/training_throughput.py [--quick] [--series N] [--epochs N]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from forecast_common import RESULTS, table
from foresight.forecast.models import neural_model_names
from foresight.forecast.synthetic import make_storage_dataset
from foresight.training.tasks.forecast import save_panel_npz

MODELS = neural_model_names()  # what a TrainingJob's built-in forecast task can train


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(tmp: Path, data: Path, model: str, epochs: int, windows: int, backend: str) -> Path:
    doc = {
        "task": "forecast",
        "model": model,
        "dataset": {"uri": str(data)},
        "epochs": epochs,
        "batchSize": 256,
        "seed": 0,
        "hyperparameters": {"horizon": 24, "inputWindow": 168, "windowsPerEpoch": windows},
        "distributed": {"backend": "gloo" if backend == "torch" else "auto"},
    }
    path = tmp / f"{model}-{backend}-{time.monotonic_ns()}.json"
    path.write_text(json.dumps(doc))
    return path


def _epoch_seconds(stdout: str) -> list[float]:
    events = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    return [float(e["seconds"]) for e in events if e.get("event") == "epoch"]


def _run(cfg: Path, tmp: Path, *, world: int, threads: int, device: str) -> list[float]:
    """Epoch wall times of rank 0 for one run of ``world`` ranks with ``threads`` torch threads each."""
    port = _free_port()
    procs = []
    for rank in range(world):
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), FORESIGHT_TERMINATION_LOG=str(tmp / f"t{rank}"))
        if world > 1:
            env.update(RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        if device == "cpu":
            env["CUDA_VISIBLE_DEVICES"] = ""
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "foresight.cli", "train", "--config", str(cfg)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outs = [p.communicate() for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        if p.returncode != 0:
            raise SystemExit(f"training run failed ({p.returncode}):\n{(err + out)[-3000:]}")
    return _epoch_seconds(outs[0][0])


def _throughput(seconds: list[float], windows: int) -> float:
    steady = seconds[1:] or seconds
    return windows / (sum(steady) / len(steady))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--series", type=int, default=200)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--windows", type=int, default=8192, help="training windows per epoch")
    p.add_argument("--quick", action="store_true", help="a smoke run (40 series, 2 epochs, 1024 windows)")
    args = p.parse_args()
    if args.quick:
        args.series, args.epochs, args.windows = 40, 2, 1024
    import torch

    cuda = torch.cuda.is_available()
    cores = os.cpu_count() or 1
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="foresight-bench-") as d:
        tmp = Path(d)
        data = tmp / "panel.npz"
        save_panel_npz(make_storage_dataset(n_series=args.series, days=30, seed=0).panel, data)
        runs: list[tuple[str, str, int, int, str]] = [
            (m, "none", 1, cores, "cpu") for m in MODELS
        ]  # model, backend, workers, threads per worker, device
        runs += [("lstm", "none", 1, 1, "cpu"), ("lstm", "torch", 2, max(1, cores // 2), "cpu")]
        if cuda:
            runs += [(m, "none", 1, cores, "cuda") for m in MODELS]
        for model, backend, world, threads, device in runs:
            print(f"training {model} on {device}, {world} worker(s) x {threads} thread(s) ...", flush=True)
            cfg = _config(tmp, data, model, args.epochs, args.windows, backend)
            secs = _run(cfg, tmp, world=world, threads=threads, device=device)
            rows.append({
                "model": model, "device": device, "workers": world, "threads_per_worker": threads,
                "windows_per_epoch": args.windows, "epoch_s": sum(secs[1:] or secs) / len(secs[1:] or secs),
                "samples_per_s": _throughput(secs, args.windows),
            })  # fmt: skip
    print(table(rows, ["model", "device", "workers", "threads_per_worker", "epoch_s", "samples_per_s"]))
    one = next(r for r in rows if r["model"] == "lstm" and r["workers"] == 1 and r["threads_per_worker"] == 1)
    two = next(r for r in rows if r["workers"] == 2)
    speedup = two["samples_per_s"] / one["samples_per_s"]
    print(f"DDP 2 workers vs 1 (lstm, 1 thread each): {speedup:.2f}x on {cores} cores")
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "training_throughput.json"
    path.write_text(json.dumps({
        "synthetic": True, "series": args.series, "epochs": args.epochs, "cores": cores, "cuda": cuda,
        "rows": rows, "ddp_speedup_2_vs_1": speedup,
    }, indent=2))  # fmt: skip
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
