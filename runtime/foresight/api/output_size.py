"""How big a ForecastTask's output is, and when the Pushgateway is the wrong sink for it.

Every forecast series becomes several gauges (:func:`gauges_per_series`, the families of
``foresight.forecast.writeback``), and a Pushgateway holds a task's whole group in memory,
re-checks the consistency of *everything it holds* on each push, and serves it all on every
scrape. Measured against the Pushgateway 1.5.1 of Debian on a shared 2-core machine
(``bench/forecast_pushgateway_size.py``, ``bench/results/forecast_pushgateway_size.json``),
18 gauges per series:

==========  ========  ==========  ============  ===========  ======================
series      samples   push (s)    gateway RSS   scrape (s)   scrape mode, 4 shards
==========  ========  ==========  ============  ===========  ======================
1,000       18,000    0.9         66 MiB        0.4          0.01 s per endpoint
10,000      180,000   15          450 MiB       3.5          0.04 s per endpoint
50,000      900,000   52 (79)     2.6 GiB       44           0.23 s per endpoint
==========  ========  ==========  ============  ===========  ======================

(push: the first push, in brackets a replacing one, both including building the exposition;
scrape: one GET of the gateway's ``/metrics``, what every Prometheus scrape costs, against a
default scrape timeout of 10 s.) Memory and scrape time grow at least linearly, 2.5-3 KiB and
20-50 µs per sample, so a group of ~500,000 samples no longer scrapes within the timeout, and a
failed scrape loses every forecast of every task on that gateway at once.

Above :data:`PUSHGATEWAY_WARN_SAMPLES` a task should use ``output.mode: scrape`` (each shard
serves its own gauges, one endpoint per shard); above :data:`PUSHGATEWAY_MAX_SAMPLES` the
operator refuses the Pushgateway outright.

Pure and torch-free: the operator calls :func:`check_output_size` on a spec and an estimate of
the series (``status.seriesCount`` of the last run, or the plan's total, or ``limits.maxSeries``
before any run) and turns the verdict into a condition.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .forecasttask import ForecastTaskSpec, output_horizons

__all__ = [
    "PUSHGATEWAY_MAX_SAMPLES",
    "PUSHGATEWAY_WARN_SAMPLES",
    "OutputSizeVerdict",
    "check_output_size",
    "gauges_per_series",
]

PUSHGATEWAY_WARN_SAMPLES = 100_000
"""Above this many samples in one push group, warn: one scrape of the gateway takes seconds and
the gateway holds a few hundred MiB for the group (measured at 180,000 samples: 3.5 s, 450 MiB)."""
PUSHGATEWAY_MAX_SAMPLES = 500_000
"""Above this, refuse: a scrape of the gateway no longer fits the default 10 s scrape timeout
(measured at 900,000 samples: 44 s and 2.6 GiB; 20-50 µs and 2.5-3 KiB per sample)."""


def gauges_per_series(spec: ForecastTaskSpec) -> int:
    """Gauges one forecast series gets once the task has run twice (the steady state).

    ``foresight_forecast`` / ``_lower`` / ``_upper`` and ``foresight_forecast_error`` (``mae``,
    ``mape``) per output horizon (``output.horizons``, or every step with ``output.everyStep``),
    ``foresight_anomaly`` and ``foresight_data_stale``, and with a threshold
    ``foresight_time_to_threshold_seconds`` (``point``, ``upper``), ``foresight_exhaustion_probability``
    per output horizon, ``foresight_exhaustion_alert`` and its ``_lead_seconds``.
    """
    horizons = len(output_horizons(spec))
    with_threshold = 2 + horizons + 2 if spec.threshold is not None else 0
    return 3 * horizons + 2 * horizons + with_threshold + 1 + 1


@dataclass(frozen=True)
class OutputSizeVerdict:
    """What the operator does about a task's output size."""

    level: Literal["ok", "warn", "refuse"]
    samples: int
    """Estimated samples per run: series x :func:`gauges_per_series`."""
    message: str
    """Empty when ``ok``; otherwise what is wrong and what to do, for a condition or an event."""


def check_output_size(spec: ForecastTaskSpec, series: int) -> OutputSizeVerdict:
    """Whether ``spec``'s output mode suits ``series`` forecast series.

    Only ``output.mode: pushgateway`` has a size limit here: a scrape endpoint per shard serves a
    shard's gauges only, so its size falls with ``parallelism``.
    """
    gauges = gauges_per_series(spec)
    samples = max(0, series) * gauges
    if spec.output.mode != "pushgateway" or samples <= PUSHGATEWAY_WARN_SAMPLES:
        return OutputSizeVerdict("ok", samples, "")
    what = f"about {series:,} series x {gauges} gauges = {samples:,} samples per run in one Pushgateway group"
    advice = (
        "set output.mode: scrape, so each shard of the run serves its own gauges on /metrics (one "
        "endpoint per shard, found by the Service's prometheus.io/scrape annotations), or write fewer "
        "output.horizons or fewer series (groupBy)"
    )
    if samples > PUSHGATEWAY_MAX_SAMPLES:
        return OutputSizeVerdict(
            "refuse",
            samples,
            f"output.mode pushgateway refused: {what}, over the {PUSHGATEWAY_MAX_SAMPLES:,} a Pushgateway "
            f"serves within a scrape timeout; {advice}",
        )
    return OutputSizeVerdict(
        "warn",
        samples,
        f"output.mode pushgateway is slow at this size: {what}, over {PUSHGATEWAY_WARN_SAMPLES:,}; {advice}",
    )
