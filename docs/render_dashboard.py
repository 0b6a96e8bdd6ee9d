"""Render a ForecastTask's Grafana dashboard as a PNG with matplotlib (docs/dashboard.png).

Grafana is not installable here, so this draws what the dashboard would show, from the same
queries: the dashboard the operator builds for ``examples/forecasttask-storage.yaml``
(:func:`foresight_operator.builders.forecast_dashboard.dashboard_model`), each panel's PromQL sent
to a real local Prometheus (Debian's package, as ``make run`` uses) with the template variables
filled in as Grafana would, and the results drawn in the panels' layout, titles and line styles.

The data are the demo's SYNTHETIC storage quotas (:mod:`foresight.forecast.synthetic`; generated,
not real measurements) and, as a task would have written them every hour over the last days, the
gauges of the runtime's own write-back (:func:`foresight.forecast.writeback.forecast_metrics`) for
forecasts of AutoTheta refitted at every hour. Panels whose gauges this runtime does not write yet
say so instead of drawing made-up numbers.

    python docs/render_dashboard.py [-o docs/dashboard.png] [--days 3]
"""

from __future__ import annotations

import argparse
import functools
import re
import tempfile
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from foresight.api.durations import duration_seconds
from foresight.api.forecasttask import ForecastTaskSpec
from foresight.forecast import accuracy
from foresight.forecast.backtest import backtest
from foresight.forecast.models.base import get_model
from foresight.forecast.synthetic import make_storage_dataset
from foresight.forecast.writeback import BacktestError, forecast_metrics
from foresight.prometheus.client import PrometheusClient
from foresight.run import localprom
from foresight.run.demo import demo_openmetrics
from foresight_operator.builders.forecast_dashboard import dashboard_model

REPO = Path(__file__).resolve().parents[1]
NAME, NAMESPACE = "storage-quota", "sre"
END = int(datetime(2026, 2, 3, tzinfo=UTC).timestamp())  # fixed: the same picture on every run
STEP = 3600
HISTORY_DAYS = 29
MODEL = "theta"
BASELINES = ("theta", "seasonal_naive", "linear")


def _spec() -> ForecastTaskSpec:
    doc = yaml.safe_load((REPO / "examples/forecasttask-storage.yaml").read_text())
    return ForecastTaskSpec.model_validate(doc["spec"])


def _rows(scenario: list[str]) -> list[int]:
    """The series the picture follows (as if picked in the dashboard's variables): the first quota
    that really crosses 95%."""
    return [scenario.index("crosser")]


def _gauges_openmetrics(spec: ForecastTaskSpec, days: int) -> tuple[str, list[dict[str, str]]]:
    """The source history and, for every hour of the last ``days``, the gauges a predict run writes."""
    n_steps = HISTORY_DAYS * 24
    dataset = make_storage_dataset(days=HISTORY_DAYS, step=STEP, seed=0, start=END - (n_steps - 1) * STEP)
    rows = _rows(dataset.scenario)
    panel = dataset.panel.select(rows)
    assert spec.threshold is not None and panel.capacity is not None
    threshold = panel.capacity * spec.threshold.ratio
    horizon = duration_seconds(spec.horizon) // STEP
    horizons = list(spec.output.horizons)
    first_origin = n_steps - 1 - days * 24
    bt_errors = _backtest_errors(panel.head(first_origin + 1), horizon, horizons)
    samples: dict[str, dict[tuple[tuple[str, str], ...], list[tuple[int, float]]]] = defaultdict(dict)
    previous = None
    for origin in range(first_origin, n_steps):
        history = panel.head(origin + 1)
        model = get_model(MODEL)
        model.fit(history, horizon)
        forecast = model.predict(history, horizon)
        t = int(history.timestamps()[-1])
        families = forecast_metrics(
            forecast, task=NAME, namespace=NAMESPACE, horizons=horizons, threshold=threshold,
            actual_latest=history.values[:, -1], previous=previous, backtest_errors=bt_errors,
            last_run={"train": float(t), "predict": float(t)},
        )  # fmt: skip
        for family in families:
            for s in family.samples:
                key = tuple(sorted((k, v) for k, v in s.labels.items() if v != ""))
                samples[s.name].setdefault(key, []).append((t, float(s.value)))
        previous = forecast
    text = demo_openmetrics(dataset, n_steps - 1)
    lines = [text[: text.rindex("# EOF")].rstrip("\n")]
    for name, by_series in samples.items():
        lines += [f"# TYPE {name} gauge"]
        for key, points in by_series.items():
            labels = ",".join(f'{k}="{v}"' for k, v in key)
            lines += [f"{name}{{{labels}}} {_om(v)} {t}" for t, v in points]
    return "\n".join(lines) + "\n# EOF\n", panel.keys


def _om(v: float) -> str:
    return "+Inf" if v == np.inf else "-Inf" if v == -np.inf else "NaN" if np.isnan(v) else repr(v)


def _backtest_errors(panel: Any, horizon: int, horizons: list[str]) -> list[BacktestError]:
    """MASE per model and horizon, as a training run's backtest reports them."""
    out = []
    for name in BASELINES:
        result = backtest(panel, functools.partial(get_model, name), horizon, folds=3)
        for text in horizons:
            h = duration_seconds(text) // STEP
            mase = accuracy.mase(result.actual[:, :, h - 1], result.point[:, :, h - 1], result.scale)
            out.append(BacktestError(name, "mase", text, float(np.nanmean(mase))))
    return out


def _fill(expr: str, model: dict[str, Any], keys: list[dict[str, str]]) -> str:
    """The query Grafana sends: the default horizon, the drawn series picked in each variable."""
    for var in model["templating"]["list"]:
        if var["name"] == "horizon":
            expr = expr.replace("${horizon:text}", var["current"]["text"])
            expr = expr.replace("${horizon}", var["current"]["value"])
        elif var["type"] == "query":
            picked = "|".join(sorted({k[var["name"]] for k in keys}))
            expr = re.sub(rf"\$({var['name']}\b|\{{{var['name']}\}})", picked, expr)
    return expr


def _legend(fmt: str, labels: dict[str, str]) -> str:
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), fmt).strip()


def _style(panel: dict[str, Any], ref: str) -> dict[str, Any]:
    style: dict[str, Any] = {"lw": 1.2}
    for override in panel.get("fieldConfig", {}).get("overrides", []):
        if override["matcher"].get("options") != ref:
            continue
        for prop in override["properties"]:
            if prop["id"] == "custom.lineStyle":
                style["ls"] = {"dash": "--", "dot": ":"}.get(prop["value"]["fill"], "-")
            elif prop["id"] == "custom.lineWidth":
                style["lw"] = prop["value"]
            elif prop["id"] == "color":
                style["color"] = prop["value"]["fixedColor"]
    return style


def _draw(
    ax: Any, panel: dict[str, Any], results: list[tuple[dict[str, Any], list[Any]]], title: str
) -> None:
    ax.set_title(title, fontsize=9, loc="left")
    unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit")
    gauges = [(t, series) for t, series in results if "foresight_" in t["expr"]]
    if gauges and all(not series for _, series in gauges):
        names = sorted({m for t, _ in gauges for m in re.findall(r"foresight_\w+", t["expr"])})
        ax.text(0.5, 0.5, "no data yet: " + ", ".join(names) + "\nnot written by this runtime version",
                ha="center", va="center", fontsize=8, transform=ax.transAxes, color="grey")  # fmt: skip
        ax.set_xticks([])
        ax.set_yticks([])
        return
    if panel["type"] == "bargauge":
        bars = [(_legend(t["legendFormat"], s.labels), float(s.values[-1])) for t, ss in results for s in ss]
        bars.sort()
        ax.barh([b[0] for b in bars], [b[1] for b in bars], color="tab:green")
        ax.tick_params(axis="y", labelsize=7)
        return
    scale, suffix = (
        (2**40, " TiB") if unit is None and panel["targets"][0]["expr"].startswith("sum") else (1, "")
    )
    for target, series in results:
        style = _style(panel, target["refId"])
        for s in series:
            values = np.asarray(s.values, dtype=float)
            if unit == "s":
                values, suffix = values / 3600, " h"
            ax.plot([datetime.fromtimestamp(t, tz=UTC) for t in s.timestamps], values / scale,
                    label=_legend(target["legendFormat"], s.labels), **style)  # fmt: skip
    if unit == "percentunit":
        ax.set_ylim(0, 1)
    ax.set_ylabel(suffix.strip(), fontsize=8)
    ax.legend(fontsize=6, loc="upper left", ncol=2)
    ax.tick_params(labelsize=7)
    ax.tick_params(axis="x", labelrotation=20)


def render(out: Path, days: int) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    spec = _spec()
    model = dashboard_model(NAME, NAMESPACE, spec)
    text, keys = _gauges_openmetrics(spec, days)
    why = localprom.install()
    if why is not None:
        raise SystemExit(f"a real Prometheus is needed to run the dashboard's queries: {why}")
    with tempfile.TemporaryDirectory() as tmp:
        localprom.backfill(text, Path(tmp) / "data")
        with localprom.LocalPrometheus(Path(tmp) / "data") as prom:
            client = PrometheusClient(prom.url)
            start = END - days * 86400
            results = [
                [
                    (t, client.query_range(_fill(t["expr"], model, keys), start, END, STEP))
                    for t in p["targets"]
                ]
                for p in model["panels"]
            ]
    fig = plt.figure(figsize=(13, 10))
    grid = fig.add_gridspec(3, 2, height_ratios=[1.3, 1, 1])
    horizon = next(v for v in model["templating"]["list"] if v["name"] == "horizon")["current"]["text"]
    for panel, result in zip(model["panels"], results, strict=True):
        pos = panel["gridPos"]
        row = {0: 0, 10: 1, 18: 2}.get(pos["y"], 2)
        ax = fig.add_subplot(grid[row, :] if pos["w"] == 24 else grid[row, 0 if pos["x"] == 0 else 1])
        _draw(ax, panel, result, panel["title"].replace("${horizon:text}", horizon))
    fig.suptitle(f"{model['title']} (SYNTHETIC data; rendered with matplotlib from the dashboard's queries)",
                 fontsize=11)  # fmt: skip
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=70)
    plt.close(fig)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", type=Path, default=REPO / "docs/dashboard.png")
    parser.add_argument("--days", type=int, default=3, help="days of hourly predictions to simulate and show")
    args = parser.parse_args()
    path = render(args.output, args.days)
    print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
