"""Latency of eager torch and ONNX Runtime at several batch sizes (p50 / p99 over timed repeats).

Both runtimes get the same thread count so the comparison is about the engine, not the threads:
by default 1 at batch 1 (what a serving pod answering one request uses) and up to 4 for larger
batches. Warm-up runs are not timed (first calls allocate and pick kernels).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from foresight.optimize.onnx_export import Inputs, _feed, make_session, resize_batch

__all__ = ["LatencyReport", "LatencyStats", "compare_latency", "default_threads", "measure"]

Clock = Callable[[], float]


@dataclass(frozen=True)
class LatencyStats:
    runtime: str
    batch_size: int
    threads: int
    repeats: int
    p50_ms: float
    p99_ms: float
    mean_ms: float
    #: Rows per second at the median latency.
    rows_per_s: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LatencyReport:
    results: list[LatencyStats]
    #: Size in bytes of each measured artifact (``eager`` is the saved state_dict when known).
    sizes_bytes: dict[str, int] = field(default_factory=dict)

    def get(self, runtime: str, batch_size: int) -> LatencyStats:
        for stats in self.results:
            if stats.runtime == runtime and stats.batch_size == batch_size:
                return stats
        raise KeyError(f"no latency measured for runtime {runtime!r} at batch {batch_size}")

    def speedup(self, runtime: str, batch_size: int, baseline: str = "eager") -> float:
        """How many times faster ``runtime`` is than ``baseline`` at the median."""
        return self.get(baseline, batch_size).p50_ms / self.get(runtime, batch_size).p50_ms

    def to_dict(self) -> dict[str, Any]:
        return {"results": [r.to_dict() for r in self.results], "sizes_bytes": dict(self.sizes_bytes)}


def default_threads(batch_size: int) -> int:
    return 1 if batch_size == 1 else max(1, min(4, os.cpu_count() or 1))


def measure(
    fn: Callable[[], object], *, warmup: int = 5, repeats: int = 50, clock: Clock = time.perf_counter
) -> list[float]:
    """Milliseconds per call of ``fn`` over ``repeats`` calls after ``warmup`` untimed ones."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        start = clock()
        fn()
        samples.append((clock() - start) * 1000.0)
    return samples


def _stats(runtime: str, batch: int, threads: int, samples: list[float]) -> LatencyStats:
    arr = np.asarray(samples, dtype=np.float64)
    p50 = float(np.percentile(arr, 50))
    return LatencyStats(
        runtime=runtime,
        batch_size=batch,
        threads=threads,
        repeats=len(samples),
        p50_ms=p50,
        p99_ms=float(np.percentile(arr, 99)),
        mean_ms=float(arr.mean()),
        rows_per_s=batch / (p50 / 1000.0) if p50 > 0 else float("inf"),
    )


def _call(fn: Callable[..., object], *args: Any) -> Callable[[], object]:
    """A no-argument callable for ``measure`` (binds now, unlike a lambda in a loop)."""
    return lambda: fn(*args)


@contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def compare_latency(
    model: nn.Module,
    example_inputs: Inputs,
    onnx_models: Mapping[str, str | os.PathLike[str]],
    *,
    batch_sizes: Sequence[int] = (1, 1000),
    threads: int | None = None,
    warmup: int = 5,
    repeats: int = 50,
    clock: Clock = time.perf_counter,
) -> LatencyReport:
    """Eager ``model`` and every ONNX file in ``onnx_models`` (label -> path) at each batch size."""
    model.eval()
    results: list[LatencyStats] = []
    for batch in batch_sizes:
        n_threads = threads or default_threads(batch)
        inputs = resize_batch(example_inputs, batch, seed=batch)
        with _torch_threads(n_threads), torch.inference_mode():
            samples = measure(_call(model, *inputs), warmup=warmup, repeats=repeats, clock=clock)
        results.append(_stats("eager", batch, n_threads, samples))
        for label, path in onnx_models.items():
            session = make_session(path, intra_op_threads=n_threads)
            feed = _feed(session, inputs)
            samples = measure(_call(session.run, None, feed), warmup=warmup, repeats=repeats, clock=clock)
            results.append(_stats(label, batch, n_threads, samples))
    sizes = {label: Path(path).stat().st_size for label, path in onnx_models.items()}
    return LatencyReport(results=results, sizes_bytes=sizes)
