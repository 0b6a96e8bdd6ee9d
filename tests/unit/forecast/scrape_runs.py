"""A scrape-mode ForecastTask and its runs against the in-memory Prometheus stand-in, shared by the
tests of the scrape server (:mod:`foresight.forecast.scrape`) and of its command
(:mod:`foresight.run.serve_forecasts`)."""

from __future__ import annotations

from typing import Any

import numpy as np
from foresight.api.forecasttask import ForecastTaskSpec
from foresight.artifacts import LocalArtifactStore
from foresight.forecast.persistence import exposition_key
from foresight.forecast.pipeline import run_forecast_task
from foresight.forecast.result import RunEvent, RunResult
from foresight.run.memory import MemoryPrometheus
from prometheus_client.parser import text_string_to_metric_families

STEP = 3600
NOW = 1_770_000_000 // STEP * STEP
KEY = exposition_key("team-a", "quota")


def history() -> MemoryPrometheus:
    """Two users over 8 days: a daily cycle around 80 of a 100 quota, and a ramp to 95 ~5 h out."""
    ts = NOW - STEP * np.arange(8 * 24)[::-1]
    hours = np.arange(ts.size)
    prom = MemoryPrometheus()
    prom.add("used_bytes", {"user": "alice"}, ts, 80 + 2 * np.sin(2 * np.pi * hours / 24))
    prom.add("used_bytes", {"user": "dave"}, ts, 94.0 - 0.2 * (ts[-1] - ts) / STEP)
    for user in ("alice", "dave"):
        prom.add("quota_bytes", {"user": user}, ts, np.full(ts.size, 100.0))
    return prom


SPEC: dict[str, Any] = {
    "source": {"query": "used_bytes", "lookback": "168h", "step": "1h", "groupBy": ["user"]},
    "model": {"type": "auto", "candidates": ["seasonal_naive", "linear"], "backtestFolds": 2},
    "horizon": "12h",
    "threshold": {"capacity": {"query": "quota_bytes"}, "ratio": 0.95},
    "output": {"mode": "scrape", "horizons": ["1h", "6h"]},
}


def run(store: LocalArtifactStore | None, *, now: float, events: list[RunEvent] | None = None,
        **output: Any) -> RunResult:  # fmt: skip
    pushed: list[object] = []
    spec = ForecastTaskSpec.model_validate({**SPEC, "output": {**SPEC["output"], **output}})
    result = run_forecast_task(
        spec, name="quota", namespace="team-a", prometheus=history(),
        pushgateway=lambda registry, key: pushed.append(key), store=store, clock=lambda: now,
        progress=events.append if events is not None else None,
    )  # fmt: skip
    assert pushed == [] or spec.output.mode == "pushgateway"
    return result


def families(text: bytes) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for fam in text_string_to_metric_families(text.decode()):
        for s in fam.samples:
            out.setdefault(s.name, []).append((dict(s.labels), s.value))
    return out
