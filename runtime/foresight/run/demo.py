"""``foresight demo`` (what ``make run`` calls): the main job on the built-in SYNTHETIC data set.

1. Generate the semi-synthetic storage-quota data set (:mod:`foresight.forecast.synthetic`,
   clearly labelled: no real quota series is public): quotas per cluster / storage type / group /
   user at 85-95% of quota, day/night rhythm, growth, write/delete bursts. It ends at the current
   hour; one more day is generated as hidden ground truth (does a series really cross 95% in the
   next 24 h?) and never shown to the models.
2. Load it into a real local Prometheus (backfilled with promtool) plus a Pushgateway that
   Prometheus scrapes, when the binaries are installed or can be (apt, as root); otherwise keep
   it in memory (:class:`foresight.run.memory.MemoryPrometheus`) and say so.
3. Run the storage ForecastTask (``examples/forecasttask-storage.yaml`` when present, else the
   built-in task with the same values) through the same pipeline a cluster Job runs, printing
   progress (backtest folds, epochs).
4. Print a kubectl-like status, the backtest against predict_linear and seasonal naive, the
   forecasts with time-to-threshold (with the hidden ground truth next to them), where the plot
   and files went, the metric names written and an alert rule to start from; when Prometheus is
   real, query it to show the forecasts arrived.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import shlex
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import numpy.typing as npt

from foresight.api.forecasttask import ForecastTaskSpec
from foresight.console import table
from foresight.forecast.pipeline import Publisher, run_forecast_task
from foresight.forecast.result import RunResult
from foresight.forecast.synthetic import (
    StorageDataset,
    make_storage_dataset,
    to_openmetrics,
)
from foresight.prometheus.client import PrometheusClient
from foresight.timeseries import FloatArray

from .report import format_backtest, format_forecasts, format_seconds, format_status

__all__ = [
    "DEMO_NAME",
    "DEMO_NAMESPACE",
    "EXAMPLE_PATH",
    "demo_budget",
    "demo_spec",
    "main_demo",
    "run_demo",
    "set_options",
    "spec_changes",
]

DEMO_NAME = "storage-quota"
DEMO_NAMESPACE = "sre"
EXAMPLE_PATH = Path("examples/forecasttask-storage.yaml")
STEP = 3600
HISTORY_DAYS = 29
CROSS_WINDOW = (0.85, 1.0)
"""Where the SYNTHETIC crossers reach 95%, as fractions of the generated days (the last ~4.5 days)."""
ALERT = (
    "foresight_exhaustion_alert == 1\n"
    "  # the verdict of the rule the task chose by backtest (status.alert); or by hand:\n"
    'foresight_exhaustion_probability{within="6h"} >= 0.5'
)


USED = "storage_used_bytes"
QUOTA = "storage_quota_bytes"
WRITTEN = "storage_written_bytes"
"""A counter: samples are ``storage_written_bytes_total``."""
WRITE_RATE_QUERY = "sum by (group, user, storage_type, cluster) (rate(storage_written_bytes_total[1h]))"


def demo_spec(*, artifacts_uri: str | None = None) -> ForecastTaskSpec:
    """The built-in storage task: the same values as ``examples/forecasttask-storage.yaml``
    (``artifacts_uri``: where its models go; default the API's)."""
    spec = ForecastTaskSpec.model_validate(
        {
            "source": {
                "query": USED,
                "lookback": "672h",
                "step": "1h",
                "groupBy": ["group", "user", "storage_type", "cluster"],
                "aggregation": "sum",
                "unit": "bytes",
                "valueRange": {"min": 0},
                "covariates": [{"name": "write_rate", "query": WRITE_RATE_QUERY}],
            },
            "calendar": {
                "hourOfDay": True,
                "dayOfWeek": True,
                "dayNight": {"dayStartHour": 8, "dayEndHour": 20},
                "timeZone": "Asia/Shanghai",
            },
            "model": {
                "type": "auto",
                "candidates": ["seasonal_naive", "linear", "ets", "theta", "lstm"],
                "backtestFolds": 3,
                "intervalLevel": 0.8,
            },
            "horizon": "24h",
            "threshold": {"capacity": {"query": QUOTA}, "ratio": 0.95},
            "output": {"mode": "pushgateway", "horizons": ["1h", "6h", "24h"]},
        }
    )
    if artifacts_uri is not None:
        spec.artifacts.uri = artifacts_uri
    return spec


def demo_budget(spec: ForecastTaskSpec, *, quick: bool = False) -> tuple[ForecastTaskSpec, str]:
    """The task with the neural training budget capped so the demo ends in minutes on 2 CPU cores.

    The API defaults (168-step window, 64 x 2 LSTM, 30 epochs of 20,000 windows) are sized for a
    GPU or a long nightly run; on 2 shared cores one such epoch takes about a minute. ``quick``
    (a smoke test) also drops AutoETS, the slowest statistical candidate. Returns the new spec
    and a line saying what changed.
    """
    out = spec.model_copy(deep=True)
    hp = out.model.hyperparameters
    caps = (16, 1, 3, 1000, 2) if quick else (32, 1, 10, 4000, 3)
    hp.input_window = min(hp.input_window, 72)
    hp.hidden_size, hp.layers = min(hp.hidden_size, caps[0]), min(hp.layers, caps[1])
    hp.epochs, hp.patience = min(hp.epochs, caps[2]), min(hp.patience, caps[4])
    hp.windows_per_epoch = min(hp.windows_per_epoch, caps[3])
    note = (
        f"demo budget: neural inputWindow {hp.input_window}, hiddenSize {hp.hidden_size}, layers "
        f"{hp.layers}, epochs {hp.epochs}, windowsPerEpoch {hp.windows_per_epoch} (the spec's values are "
        "sized for a GPU / nightly run)"
    )
    if quick:
        out.model.candidates = [c for c in out.model.candidates if str(c) != "ets"]
        note += "; --quick: no AutoETS"
    return out, note


def _say(out: TextIO, text: str = "") -> None:
    out.write(text + "\n")
    out.flush()


BUILT_IN = "built-in storage task"


def _load_spec(task_file: str | None, out: TextIO) -> tuple[ForecastTaskSpec, str, str, str]:
    """(spec as written, where it came from, name, namespace)."""
    # From a checkout the example sits at the repository root; from an installed wheel it may not exist.
    candidates = [EXAMPLE_PATH, Path(__file__).resolve().parents[3] / EXAMPLE_PATH]
    path = Path(task_file) if task_file else next((c for c in candidates if c.exists()), EXAMPLE_PATH)
    built_in = demo_spec()
    if not path.exists():
        if task_file:
            raise FileNotFoundError(f"{path} not found")
        return built_in, BUILT_IN, DEMO_NAME, DEMO_NAMESPACE
    from .local import load_task

    task = load_task(str(path), default_namespace=DEMO_NAMESPACE)
    if task.spec.source.query.strip() != USED:
        _say(out, f"      note: {path} queries {task.spec.source.query!r}, not the demo data's {USED!r}: "
                  "running the built-in task with the demo's values instead")  # fmt: skip
        return built_in, BUILT_IN, DEMO_NAME, DEMO_NAMESPACE
    return task.spec, str(path), task.name, task.namespace


def spec_changes(before: ForecastTaskSpec, after: ForecastTaskSpec) -> list[tuple[str, Any, Any]]:
    """The fields ``after`` changes in ``before``: ``(path as in YAML, old, new)``, in path order."""
    old = _flatten(before.model_dump(by_alias=True, mode="json"))
    new = _flatten(after.model_dump(by_alias=True, mode="json"))
    return [(k, old.get(k), new.get(k)) for k in sorted(old.keys() | new.keys()) if old.get(k) != new.get(k)]


def _flatten(doc: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(doc, dict):
        return {prefix: doc}
    out: dict[str, Any] = {}
    for key, value in doc.items():
        out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _say_differences(out: TextIO, source: str, written: ForecastTaskSpec, ran: ForecastTaskSpec) -> None:
    """What makes this demo's numbers differ from ``foresight run`` of the same spec, and how to get
    the same ones (only the spec changes count: the store, and the clock within the hour, do not)."""
    command = (
        f"`foresight run -f {source} --local`" if source != BUILT_IN else "`foresight run --local` of it"
    )
    changes = [(k, a, b) for k, a, b in spec_changes(written, ran) if k != "artifacts.uri"]
    if not changes:
        _say(out, f"      the same spec as {command} (the same data gives the same result)")
        return
    _say(out, f"      differences from {command} (its result differs by these):")
    for key, a, b in changes:
        _say(out, f"        {key}: {json.dumps(a)} -> {json.dumps(b)}")
    sets = " ".join("--set " + shlex.quote(item) for item in set_options(changes))
    _say(out, f"      {command} gives this demo's result on the same data with: {sets}")


def set_options(changes: list[tuple[str, Any, Any]]) -> list[str]:
    """``foresight run --set`` values that make a spec into the changed one (values as JSON, which
    ``--set`` reads as YAML)."""
    return [f"{key}={json.dumps(new, separators=(',', ':'))}" for key, _, new in changes]


def demo_openmetrics(dataset: StorageDataset, last_col: int) -> str:
    """The visible history as OpenMetrics: usage and quota gauges, the write counter (SYNTHETIC)."""
    visible = dataset.panel.head(last_col + 1)
    text = to_openmetrics(
        visible, USED, help_text="SYNTHETIC demo storage usage in bytes (generated, not real data)",
        capacity_metric=QUOTA,
    )  # fmt: skip
    text = text[: text.rindex("# EOF")]
    lines = [
        f"# HELP {WRITTEN} SYNTHETIC demo bytes written (generated, not real data)",
        f"# TYPE {WRITTEN} counter",
    ]
    ts = visible.timestamps()
    counters = _write_counters(visible.covariates["write_rate"], visible.step)
    for key, row in zip(visible.keys, counters, strict=True):
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(key.items()))
        pairs = zip(ts.tolist(), row.tolist(), strict=True)
        lines += [f"{WRITTEN}_total{{{labels}}} {v!r} {t}" for t, v in pairs if math.isfinite(v)]
    return text + "\n".join(lines) + "\n# EOF\n"


def _write_counters(rate: FloatArray, step: int) -> FloatArray:
    """Cumulative bytes written from a per-step rate (bytes/s); NaN where the rate is missing (no
    sample then, as in a scrape gap), while the counter keeps counting underneath."""
    filled = np.where(np.isfinite(rate), rate, 0.0) * step
    counters = np.cumsum(filled, axis=1)
    return np.where(np.isfinite(rate), counters, np.nan)


def _start_servers(
    out_dir: Path, dataset: StorageDataset, last_col: int, out: TextIO
) -> tuple[Any, Any, str]:
    """Prometheus (backfilled) + Pushgateway, or (None, None, why not)."""
    from . import localprom

    why = localprom.install()
    if why is not None:
        return None, None, why
    run_dir = Path(tempfile.mkdtemp(prefix="prom-", dir=out_dir))
    t0 = time.perf_counter()
    blocks = localprom.backfill(demo_openmetrics(dataset, last_col), run_dir / "data")
    _say(
        out, f"      backfilled {len(blocks)} TSDB block(s) with promtool in {time.perf_counter() - t0:.1f}s"
    )
    gateway = localprom.LocalPushgateway(run_dir / "pushgateway")
    gateway.start()
    try:
        prom = localprom.LocalPrometheus(run_dir / "data", pushgateway=gateway)
        prom.start()
    except Exception:
        gateway.stop()
        raise
    return prom, gateway, ""


def run_demo(
    out_dir: Path,
    *,
    use_prometheus: bool = True,
    series: int = 48,
    task_file: str | None = None,
    quick: bool = False,
    stdout: TextIO | None = None,
    clock: Callable[[], float] = time.time,
) -> int:
    """The demo; returns an exit code (0 when the task ran and forecasts were written)."""
    out = stdout or sys.stdout
    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    end = int(clock()) // STEP * STEP
    last_col = HISTORY_DAYS * 24 - 1
    dataset = _generate(out, series, start=end - last_col * STEP)
    _say(out, "[2/4] loading the history into Prometheus")
    prom_server = gateway = None
    if use_prometheus:
        try:
            prom_server, gateway, why = _start_servers(out_dir, dataset, last_col, out)
        except Exception as exc:  # a broken local install must not stop the demo: fall back, say why
            why = f"{type(exc).__name__}: {exc}"
    else:
        why = "--no-prometheus given"
    try:
        if prom_server is not None and gateway is not None:
            prometheus, publisher = _real_prometheus(out, prom_server, gateway)
        else:
            prometheus, publisher = _memory_prometheus(out, dataset, last_col, why), None
        spec, name, namespace = _demo_task(out, out_dir, task_file, quick)
        result = run_forecast_task(
            spec,
            name=name,
            namespace=namespace,
            prometheus=prometheus,
            pushgateway=publisher,
            store=_store(out_dir),
            clock=lambda: float(end) + 60.0,
            progress=lambda event: _say(out, "      " + event.message) if event.kind != "done" else None,
            mode="train",
        )
        _say(out, "[4/4] results")
        _say(out)
        _say(out, format_status(result, name=name, namespace=namespace, now=float(end) + 60.0))
        if not result.ok:
            return 1
        _report(out, out_dir, result, dataset, last_col, prom_server, spec, name)
    finally:
        if prom_server is not None:
            prom_server.stop()
        if gateway is not None:
            gateway.stop()
    _say(out)
    _say(out, f"demo finished in {time.perf_counter() - t_start:.0f}s (SYNTHETIC data)")
    return 0


def _generate(out: TextIO, series: int, *, start: int) -> StorageDataset:
    """Step 1: the SYNTHETIC data set, HISTORY_DAYS visible from ``start`` plus the hidden next day."""
    _say(out, "=" * 100)
    _say(out, "Foresight demo on SYNTHETIC data: semi-synthetic storage-quota usage generated by")
    _say(
        out, "foresight.forecast.synthetic (NOT real measurements; no real per-user quota series is public)."
    )
    _say(out, "=" * 100)
    _say(
        out,
        f"[1/4] generating {series} quotas x {HISTORY_DAYS} days hourly up to now "
        "(clusters x storage types x groups/users; day/night, growth, write/delete bursts, 85-95% of quota)",
    )
    # The crossers reach 95% in the last days, so the backtest holds some and the hidden next day
    # has at least one to check the warnings against.
    dataset = make_storage_dataset(
        n_series=series, days=HISTORY_DAYS + 1, step=STEP, seed=0, start=start, cross_window=CROSS_WINDOW
    )
    keys = dataset.panel.keys
    _say(
        out,
        f"      {len(keys)} series: clusters {sorted({k['cluster'] for k in keys})}, storage types "
        f"{sorted({k['storage_type'] for k in keys})}, groups {sorted({k['group'] for k in keys})}, "
        f"{len({k['user'] for k in keys})} users",
    )
    return dataset


def _real_prometheus(out: TextIO, prom_server: Any, gateway: Any) -> tuple[PrometheusClient, Publisher]:
    """Step 2, real: read from the local Prometheus, push to its Pushgateway."""
    from foresight.prometheus.pushgateway import push

    gw_url = gateway.url

    def publisher(registry: Any, key: Any) -> None:
        push(gw_url, registry, grouping_key=key)

    _say(out, f"      real Prometheus at {prom_server.url}, Pushgateway at {gw_url} (scraped every 2s)")
    return PrometheusClient(prom_server.url), publisher


def _memory_prometheus(out: TextIO, dataset: StorageDataset, last_col: int, why: str) -> PrometheusClient:
    """Step 2, fallback: the visible history served from memory, and why."""
    from .memory import MemoryPrometheus

    mem = MemoryPrometheus()
    visible = dataset.panel.head(last_col + 1)
    mem.add_panel(visible, USED, capacity_metric=QUOTA)
    # The stand-in evaluates no functions: it is given what rate() of the counter gives.
    for key, row in zip(visible.keys, visible.covariates["write_rate"], strict=True):
        mem.add_expression(WRITE_RATE_QUERY, key, visible.timestamps(), row)
    _say(out, f"      NO real Prometheus ({why}): the history is served FROM MEMORY instead and the")
    _say(out, "      metrics are written to a file rather than pushed to a Pushgateway")
    return mem


def _demo_task(
    out: TextIO, out_dir: Path, task_file: str | None, quick: bool
) -> tuple[ForecastTaskSpec, str, str]:
    """Step 3's task: ``(spec within the demo's budget, name, namespace)``, announced."""
    written, source, name, namespace = _load_spec(task_file, out)
    spec, note = demo_budget(written, quick=quick)
    spec.artifacts.uri = (out_dir / "artifacts").as_uri()
    _say(out, "      " + note)
    _say_differences(out, source, written, spec)
    _say(
        out,
        f"[3/4] running ForecastTask {namespace}/{name} locally ({source}; model "
        f"{spec.model.type}: {', '.join(str(c) for c in spec.model.candidates)})",
    )
    return spec, name, namespace


def _store(out_dir: Path) -> Any:
    from foresight.artifacts import LocalArtifactStore

    return LocalArtifactStore(out_dir / "artifacts")


def _report(
    out: TextIO,
    out_dir: Path,
    result: RunResult,
    dataset: StorageDataset,
    last_col: int,
    prom_server: Any,
    spec: ForecastTaskSpec,
    name: str,
) -> None:
    """Step 4: the backtest, the forecasts against the hidden next day, the files, what was written."""
    _say(out)
    _say(
        out,
        f"Backtest ({spec.model.backtest_folds} rolling origins x {spec.horizon}, mean over series; "
        "MASE season = 1 day; lower is better; ratios < 1 beat the baseline):",
    )
    unit = spec.source.unit
    _say(out, format_backtest(result, unit=unit))
    _say(out)
    ratio = spec.threshold.ratio if spec.threshold is not None else None
    _say(out, f"Forecasts, soonest time-to-threshold ({100 * (ratio or 1):g}% of quota) first:")
    _say(out, format_forecasts(result, limit=12, horizons=spec.output.horizons, unit=unit, ratio=ratio))
    _truth_check(out, result, dataset, last_col)
    png, plotted = _plot(out_dir, result, dataset, last_col, spec)
    csv_path = _write_csv(out_dir / "forecasts.csv", result)
    (out_dir / "metrics.prom").write_bytes(result.exposition)
    (out_dir / "status.json").write_text(json.dumps(result.summary(), indent=2, default=str))
    _say(out)
    _say(out, f"Plot (forecast vs actual, {plotted} series):  {png}")
    _say(out, f"Forecasts (CSV, every series):                {csv_path}")
    _say(out, f"Metrics as pushed (Prometheus text format):   {out_dir / 'metrics.prom'}")
    _say(
        out, f"Status (JSON) and trained model:              {out_dir / 'status.json'}, {result.artifact_uri}"
    )
    where = (
        "pushed to the Pushgateway (job=foresight, group namespace/task)"
        if result.pushed
        else "NOT pushed (no Pushgateway)"
    )
    _say(out)
    _say(out, f"Metric families written, {where}:")
    for family in result.metric_names:
        _say(out, f"  {family}")
    if prom_server is not None and result.pushed:
        _show_scraped(out, prom_server, result, name)
    _say(out)
    _say(out, "Alert on predicted exhaustion within 6 hours (PromQL for a Prometheus alerting rule):")
    _say(out, "  " + ALERT.replace("\n", "\n  "))


def _truth_rows(result: RunResult, dataset: StorageDataset) -> list[int]:
    """The data set's row of each forecast series."""
    assert result.forecast is not None
    index = {tuple(sorted(k.items())): i for i, k in enumerate(dataset.panel.keys)}
    return [index[tuple(sorted(k.items()))] for k in result.forecast.keys]


def _truth_check(out: TextIO, result: RunResult, dataset: StorageDataset, last_col: int) -> None:
    """Warned or not against the hidden ground truth: the SYNTHETIC generator's next day, never
    shown to the models."""
    assert result.forecast is not None
    rows = _truth_rows(result, dataset)
    truth_cross = dataset.will_cross(last_col, result.forecast.horizon, 0.95)[rows]
    thr = result.threshold
    warned_point = np.isfinite(thr.seconds) if thr is not None else np.zeros(len(rows), bool)
    warned_upper = np.isfinite(thr.seconds_upper) if thr is not None else np.zeros(len(rows), bool)
    _say(out)
    _say(
        out, "Check against the hidden next day of the SYNTHETIC data (which series really reach 95% in 24h):"
    )

    def counts(label: str, warned: npt.NDArray[np.bool_]) -> list[Any]:
        return [label, int((warned & truth_cross).sum()), int((warned & ~truth_cross).sum())]

    _say(
        out,
        table(
            ["", "really crosses", "does not"],
            [
                counts("warned (point forecast)", warned_point),
                counts("warned (upper bound)", warned_upper),
                counts("not warned (point)", ~warned_point),
            ],
        ),
    )


def _plot(
    out_dir: Path, result: RunResult, dataset: StorageDataset, last_col: int, spec: ForecastTaskSpec
) -> tuple[Path, int]:
    """The four soonest crossings, forecast vs what really followed; ``(png, series drawn)``."""
    from foresight.forecast.plot import plot_forecasts

    assert result.forecast is not None and result.panel is not None
    fc, thr = result.forecast, result.threshold
    rows = _truth_rows(result, dataset)
    order = sorted(
        range(len(rows)),
        key=lambda i: (
            math.inf if thr is None else float(thr.seconds[i]),
            math.inf if thr is None else float(thr.seconds_upper[i]),
        ),
    )
    plot_rows = order[:4]
    png = plot_forecasts(
        result.panel,
        fc,
        out_dir / "forecast-vs-actual.png",
        rows=plot_rows,
        threshold=thr.threshold if thr is not None else None,
        backtest=result.backtest_results.get(str(spec.model.type)),
        future_actual=dataset.panel.values[rows, last_col + 1 : last_col + 1 + fc.horizon],
        history_steps=96,
        unit=("TiB", 2.0**40),
        title="Foresight demo on SYNTHETIC storage-quota data: forecast vs actual",
    )
    return png, len(plot_rows)


def _write_csv(path: Path, result: RunResult) -> Path:
    """Every series' forecast, threshold and time to it, as CSV (marked SYNTHETIC)."""
    assert result.forecast is not None and result.panel is not None
    fc, panel, thr = result.forecast, result.panel, result.threshold
    with open(path, "w", newline="") as fh:
        fh.write("# SYNTHETIC data (foresight.forecast.synthetic), not real measurements\n")
        w = csv.writer(fh)
        label_names = list(fc.keys[0])
        w.writerow(
            [
                *label_names,
                "model",
                "last",
                "threshold",
                *[f"forecast_{h}h" for h in range(1, fc.horizon + 1)],
                "time_to_threshold_s",
                "time_to_threshold_upper_s",
            ]
        )
        for i, k in enumerate(fc.keys):
            last = panel.values[i, np.flatnonzero(np.isfinite(panel.values[i]))[-1]]
            w.writerow(
                [
                    *[k[n] for n in label_names],
                    fc.model[i],
                    f"{last:.6g}",
                    f"{thr.threshold[i]:.6g}" if thr is not None else "",
                    *[f"{v:.6g}" for v in fc.point[i]],
                    thr.seconds[i] if thr is not None else "",
                    thr.seconds_upper[i] if thr is not None else "",
                ]
            )
    return path


def _show_scraped(out: TextIO, prom_server: Any, result: RunResult, name: str) -> None:
    """What the real Prometheus scraped from the Pushgateway: the three soonest crossings."""
    assert result.forecast is not None
    found = _wait_scraped(prom_server, f'foresight_time_to_threshold_seconds{{task="{name}",bound="point"}}')
    _say(out)
    _say(
        out,
        f"Prometheus at {prom_server.url} scraped {len(found)} foresight_time_to_threshold_seconds "
        "series from the Pushgateway; the soonest:",
    )
    soon = sorted(found, key=lambda r: float(r["value"][1]))[:3]
    for r in soon:
        labels = {k: v for k, v in r["metric"].items() if k in result.forecast.keys[0]}
        _say(out, f"  {labels} -> {format_seconds(float(r['value'][1]))}")


def _wait_scraped(prom_server: Any, expr: str, timeout: float = 20.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        found: list[dict[str, Any]] = prom_server.query(expr)
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def main_demo(args: argparse.Namespace) -> int:
    """``foresight demo``; returns the exit code."""
    import logging

    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    return run_demo(
        Path(args.out),
        use_prometheus=not args.no_prometheus,
        series=args.series,
        task_file=args.filename,
        quick=args.quick,
    )
