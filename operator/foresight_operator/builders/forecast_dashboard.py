"""Pure builder of a ForecastTask's Grafana dashboard, shipped as a ConfigMap that the Grafana
sidecar of kube-prometheus-stack loads (label ``grafana_dashboard: "1"`` by default, see
:class:`~foresight_operator.settings.MonitoringSettings`), owned by the task.

Built with ``grafana-foundation-sdk`` (Grafana's typed dashboard builders, generated for Grafana
11.6), not hand-written JSON. Panels, top to bottom:

- **Actual vs forecast**: the task's source query as Foresight reads it (``spec.source.query``
  aggregated by ``groupBy`` as the run does) against ``foresight_forecast{horizon}`` *offset by the
  same horizon* (what was predicted for each moment), with ``foresight_forecast_lower`` / ``_upper``
  and, with a threshold, the threshold line;
- with a threshold: **time to threshold** (``foresight_time_to_threshold_seconds``, point and upper
  bound, finite values only) and **exhaustion probability** within the chosen horizon
  (``foresight_exhaustion_probability``) with the alert verdict (``foresight_exhaustion_alert``);
- **backtest error by model** (``foresight_backtest_error``, MASE) and **band coverage**
  (``foresight_band_coverage`` against ``intervalLevel``).

Template variables: ``datasource`` (any Prometheus), one per ``groupBy`` label (under the name the
runtime writes it, from the task's own ``foresight_forecast`` series, multi-select), and ``horizon``
(the task's output horizons, every step with ``output.everyStep``; its text is the ``horizon``
label as the runtime writes it, its value the PromQL offset).

The user's query is put into a panel verbatim; Grafana replaces only ``$name`` of variables that
exist, and a query never meets one of these by accident unless it uses a ``groupBy`` label's name
after a ``$``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from foresight.api.durations import duration_seconds, format_compound, format_duration
from foresight.api.forecasttask import ForecastTaskSpec, output_horizons
from grafana_foundation_sdk.builders import bargauge, common, dashboard, prometheus, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as common_models
from grafana_foundation_sdk.models import dashboard as models

from ..reconcile.names import child_name
from ..settings import MonitoringSettings
from .configmap import build_configmap
from .forecast_monitoring import (
    child_metadata,
    promql_string,
    selector,
    series_label_names,
    written_label,
)

__all__ = [
    "DATASOURCE_VARIABLE",
    "GRAFANA_UNITS",
    "HORIZON_VARIABLE",
    "build_dashboard_configmap",
    "dashboard_file_key",
    "dashboard_json",
    "dashboard_model",
    "dashboard_name",
    "dashboard_uid",
    "grafana_unit",
]

Obj = dict[str, Any]
DATASOURCE_VARIABLE = "datasource"
HORIZON_VARIABLE = "horizon"
UID_MAX = 40  # Grafana's limit on a dashboard uid
_AGGREGATE = {"sum": "sum", "max": "max", "mean": "avg"}  # spec.source.aggregation -> PromQL


def dashboard_name(name: str) -> str:
    """The dashboard ConfigMap's name: ``<task>-dashboard``."""
    return child_name(name, "dashboard")


def dashboard_uid(name: str, namespace: str) -> str:
    """A stable uid (at most 40 characters), so Grafana keeps links and stars across updates."""
    return child_name(f"foresight-{namespace}-{name}", "forecast", limit=UID_MAX)


def dashboard_file_key(name: str, namespace: str) -> str:
    """The ConfigMap key, the file name the sidecar writes: one per task across namespaces."""
    return child_name(f"foresight-{namespace}-{name}", "dashboard", limit=253 - len(".json")) + ".json"


def _datasource() -> models.DataSourceRef:
    return models.DataSourceRef(type_val="prometheus", uid=f"${{{DATASOURCE_VARIABLE}}}")


def _variables(name: str, namespace: str, spec: ForecastTaskSpec) -> list[Any]:
    out: list[Any] = [
        dashboard.DatasourceVariable(DATASOURCE_VARIABLE).label("Prometheus").type("prometheus")
    ]
    for label in series_label_names(spec):
        out.append(
            dashboard.QueryVariable(label)
            .label(label)
            .datasource(_datasource())
            .query(f"label_values(foresight_forecast{selector(name, namespace)}, {label})")
            .refresh(models.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(models.VariableSort.ALPHABETICAL_ASC)
            .multi(True)
            .include_all(True)
            .all_value(".*")
        )
    # The labels as the runtime writes them (``360m`` is written ``6h``), every step with everyStep.
    horizons = [(h, format_compound(duration_seconds(h))) for h in output_horizons(spec)]
    listed = [format_duration(duration_seconds(h)) for h in spec.output.horizons]
    text = listed[len(listed) // 2]  # the middle one of output.horizons: 6h of the default 1h, 6h, 24h
    value = format_compound(duration_seconds(text))
    out.append(
        dashboard.CustomVariable(HORIZON_VARIABLE)
        .label("horizon")
        .values(",".join(f"{h} : {offset}" for h, offset in horizons))
        .current(models.VariableOption(selected=True, text=text, value=value))
    )
    return out


def _series_selector(name: str, namespace: str, spec: ForecastTaskSpec, **extra: str) -> str:
    """The task's gauges of the series picked in the variables, plus ``extra`` equality matchers."""
    base = selector(name, namespace, **extra)
    filters = "".join(f",{label}=~{promql_string('$' + label)}" for label in series_label_names(spec))
    return base[:-1] + filters + "}"


def _picked(name: str, namespace: str, spec: ForecastTaskSpec, expr: str) -> str:
    """``expr`` (labelled by the source's own ``groupBy`` names) kept to the series the task
    forecasts and the variables pick, matched through the runtime's written label names."""
    labels = list(spec.source.group_by)
    if not labels:
        return expr
    forecasts = f"foresight_forecast{_series_selector(name, namespace, spec)}"
    known = f"group by ({', '.join(series_label_names(spec))}) ({forecasts})"
    for label in labels:
        if written_label(label) != label:  # e.g. namespace -> series_namespace
            known = f'label_replace({known}, "{label}", "$1", "{written_label(label)}", "(.*)")'
    return f"{expr}\n  and on ({', '.join(labels)})\n{known}"


def _aggregated(spec: ForecastTaskSpec, query: str, aggregation: str) -> str:
    agg = _AGGREGATE.get(aggregation)
    if agg is None:
        return query
    by = f" by ({', '.join(spec.source.group_by)})" if spec.source.group_by else ""
    return f"{agg}{by} ({query})"


def actual_query(name: str, namespace: str, spec: ForecastTaskSpec) -> str:
    """The source as a run reads it: a counter turned into per-step increases, then aggregated."""
    query = spec.source.query.strip()
    if spec.source.counter:
        query = f"increase(({query})[{format_compound(duration_seconds(spec.source.step))}:])"
    return _picked(name, namespace, spec, _aggregated(spec, query, spec.source.aggregation))


def threshold_query(name: str, namespace: str, spec: ForecastTaskSpec) -> str | None:
    """The threshold as a run computes it (capacity x ratio), or ``None`` without a threshold."""
    threshold = spec.threshold
    if threshold is None:
        return None
    if threshold.capacity.value is not None:
        return f"vector({threshold.capacity.value * threshold.ratio!r})"
    assert threshold.capacity.query is not None
    # A run aggregates capacity samples of one series as the source (max when it keeps them apart).
    aggregation = "max" if spec.source.aggregation == "none" else spec.source.aggregation
    capacity = _aggregated(spec, threshold.capacity.query.strip(), aggregation)
    if not spec.source.group_by:
        capacity = f"max ({capacity})"
    return _picked(name, namespace, spec, f"{capacity} * {threshold.ratio!r}")


def _legend(spec: ForecastTaskSpec, what: str, *, written: bool = True) -> str:
    labels = series_label_names(spec) if written else list(spec.source.group_by)
    return " ".join([*(f"{{{{{label}}}}}" for label in labels), what])


def _target(expr: str, legend: str, ref: str, *, instant: bool = False) -> prometheus.Dataquery:
    query = prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref).datasource(_datasource())
    return query.instant() if instant else query.range()


def _style(
    ref: str, *, fill: str, width: int, color: str | None = None
) -> dashboard.DashboardFieldConfigSourceOverrides:
    props = [
        models.DynamicConfigValue(
            id_val="custom.lineStyle",
            value={"fill": fill, "dash": [10, 10]} if fill == "dash" else {"fill": fill},
        ),
        models.DynamicConfigValue(id_val="custom.lineWidth", value=width),
    ]
    if color:
        props.append(models.DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": color}))
    return (
        dashboard.DashboardFieldConfigSourceOverrides()
        .matcher(models.MatcherConfig(id_val="byFrameRefID", options=ref))
        .properties(props)
    )


GRAFANA_UNITS = {"bytes": "bytes", "seconds": "s", "percent": "percent", "ratio": "percentunit"}
"""``source.unit`` -> Grafana's unit id; any other unit is shown as a suffix (``suffix:<unit>``)."""


def grafana_unit(unit: str) -> str:
    """The Grafana axis unit for a task's ``source.unit``."""
    return GRAFANA_UNITS.get(unit, f"suffix: {unit}")


def _actual_vs_forecast(name: str, namespace: str, spec: ForecastTaskSpec) -> timeseries.Panel:
    h = f"${{{HORIZON_VARIABLE}:text}}"
    offset = f"${{{HORIZON_VARIABLE}}}"
    sel = _series_selector(name, namespace, spec, horizon=h)
    panel = (
        timeseries.Panel()
        .title(f"Actual vs forecast made {h} earlier")
        .description(
            "The source query as a run reads it (spec.source.query, aggregated by groupBy) against "
            "foresight_forecast{horizon} offset by the same horizon: what was predicted for each "
            "moment, with the band (foresight_forecast_lower / foresight_forecast_upper)"
            + (" and the threshold (capacity x ratio)." if spec.threshold else ".")
        )
        .datasource(_datasource())
        .span(24)
        .height(10)
        .line_width(1)
        .fill_opacity(0)
        .legend(
            common.VizLegendOptions()
            .show_legend(True)
            .display_mode(common_models.LegendDisplayMode.TABLE)
            .placement(common_models.LegendPlacement.RIGHT)
        )
        .with_target(
            _target(actual_query(name, namespace, spec), _legend(spec, "actual", written=False), "A")
        )
        .with_target(_target(f"foresight_forecast{sel} offset {offset}", _legend(spec, "forecast"), "B"))
        .with_target(_target(f"foresight_forecast_lower{sel} offset {offset}", _legend(spec, "lower"), "C"))
        .with_target(_target(f"foresight_forecast_upper{sel} offset {offset}", _legend(spec, "upper"), "D"))
        .overrides(
            [
                _style("A", fill="solid", width=2),
                _style("B", fill="dash", width=2),
                _style("C", fill="dot", width=1),
                _style("D", fill="dot", width=1),
            ]
        )
    )
    if spec.source.unit:
        panel = panel.unit(grafana_unit(spec.source.unit))
    threshold = threshold_query(name, namespace, spec)
    if threshold is not None:
        panel = panel.with_target(_target(threshold, _legend(spec, "threshold", written=False), "E"))
        panel = panel.with_override(
            models.MatcherConfig(id_val="byFrameRefID", options="E"),
            _style("E", fill="dash", width=1, color="red").build().properties,
        )
    return panel


def _time_to_threshold(name: str, namespace: str, spec: ForecastTaskSpec) -> timeseries.Panel:
    def finite(bound: str) -> str:  # +Inf (not within the horizon) would flatten every other line
        sel = _series_selector(name, namespace, spec, bound=bound)
        return f"foresight_time_to_threshold_seconds{sel} < +Inf"

    return (
        timeseries.Panel()
        .title("Time to threshold")
        .description(
            "foresight_time_to_threshold_seconds: when the point forecast (or the band's upper edge, "
            "the earliest plausible time) reaches the threshold; series that do not reach it within "
            "the forecast horizon are left out."
        )
        .datasource(_datasource())
        .span(12)
        .height(8)
        .unit("s")
        .min(0)
        .line_width(1)
        .with_target(
            _target(
                finite("point"),
                _legend(spec, "point"),
                "A",
            )
        )
        .with_target(
            _target(
                finite("upper"),
                _legend(spec, "upper bound"),
                "B",
            )
        )
        .overrides([_style("B", fill="dot", width=1)])
    )


def _exhaustion(name: str, namespace: str, spec: ForecastTaskSpec) -> timeseries.Panel:
    h = f"${{{HORIZON_VARIABLE}:text}}"
    return (
        timeseries.Panel()
        .title(f"Probability of crossing the threshold within {h}")
        .description(
            "foresight_exhaustion_probability{within}: the probability that the threshold is crossed "
            "within the horizon, from the calibrated forecast distribution; foresight_exhaustion_alert "
            "(0 / 1) is the verdict of the alert rule the task chose by backtest (its rule label)."
        )
        .datasource(_datasource())
        .span(12)
        .height(8)
        .unit("percentunit")
        .min(0)
        .max(1)
        .line_width(1)
        .with_target(
            _target(
                f"foresight_exhaustion_probability{_series_selector(name, namespace, spec, within=h)}",
                _legend(spec, "probability"),
                "A",
            )
        )
        .with_target(
            _target(
                f"foresight_exhaustion_alert{_series_selector(name, namespace, spec)}",
                _legend(spec, "alert ({{rule}})"),
                "B",
            )
        )
        .overrides([_style("B", fill="dash", width=1, color="red")])
    )


def _backtest(name: str, namespace: str) -> bargauge.Panel:
    return (
        bargauge.Panel()
        .title("Backtest error by model (MASE)")
        .description(
            'foresight_backtest_error{metric="mase"} of the last training run, per model and horizon '
            "(baselines included); lower is better, the task uses the best."
        )
        .datasource(_datasource())
        .span(12)
        .height(8)
        .min(0)
        .orientation(common_models.VizOrientation.HORIZONTAL)
        .display_mode(common_models.BarGaugeDisplayMode.GRADIENT)
        .with_target(
            _target(
                f"foresight_backtest_error{selector(name, namespace, metric='mase')}",
                "{{model}} {{horizon}}",
                "A",
                instant=True,
            )
        )
    )


def _coverage(name: str, namespace: str, spec: ForecastTaskSpec) -> timeseries.Panel:
    level = spec.model.interval_level
    return (
        timeseries.Panel()
        .title(f"Band coverage (target {level:.0%})")
        .description(
            "foresight_band_coverage{horizon}: the share of held-out actuals the band covered in the "
            "last backtest, per horizon, against the intervalLevel the band is made for."
        )
        .datasource(_datasource())
        .span(12)
        .height(8)
        .unit("percentunit")
        .min(0)
        .max(1)
        .line_width(1)
        .with_target(_target(f"foresight_band_coverage{selector(name, namespace)}", "{{horizon}}", "A"))
        .with_target(_target(f"vector({level!r})", "intervalLevel", "B"))
        .overrides([_style("B", fill="dash", width=1, color="red")])
    )


def dashboard_model(name: str, namespace: str, spec: ForecastTaskSpec) -> Obj:
    """The dashboard's JSON model (a dict): what Grafana imports."""
    board = (
        dashboard.Dashboard(f"Foresight / {namespace} / {name}")
        .uid(dashboard_uid(name, namespace))
        .description(
            f"ForecastTask {namespace}/{name}, made by the Foresight operator: edits in Grafana are "
            "replaced at the next reconcile; change the task (or copy the dashboard) instead."
        )
        .tags(["foresight", "forecast"])
        .time("now-7d", "now")
        .refresh("5m")
        .timezone(common_models.TimeZoneBrowser)
        .readonly()
    )
    for variable in _variables(name, namespace, spec):
        board = board.with_variable(variable)
    board = board.with_panel(_actual_vs_forecast(name, namespace, spec))
    if spec.threshold is not None:
        board = board.with_panel(_time_to_threshold(name, namespace, spec))
        board = board.with_panel(_exhaustion(name, namespace, spec))
    board = board.with_panel(_backtest(name, namespace)).with_panel(_coverage(name, namespace, spec))
    loaded: Obj = json.loads(JSONEncoder(sort_keys=True).encode(board.build()))
    return loaded


def dashboard_json(name: str, namespace: str, spec: ForecastTaskSpec) -> str:
    """The dashboard as the file the Grafana sidecar loads (stable key order, indented)."""
    return json.dumps(dashboard_model(name, namespace, spec), sort_keys=True, indent=2)


def build_dashboard_configmap(
    name: str,
    namespace: str,
    spec: ForecastTaskSpec,
    owner: Mapping[str, Any],
    *,
    settings: MonitoringSettings | None = None,
) -> Obj:
    """The dashboard ConfigMap, labelled for the Grafana sidecar and owned by the task."""
    settings = settings or MonitoringSettings()
    key, value = settings.dashboard_label
    cm = build_configmap(
        name=dashboard_name(name),
        namespace=namespace,
        labels={},
        data={dashboard_file_key(name, namespace): dashboard_json(name, namespace, spec)},
    )
    cm["metadata"] = child_metadata(
        name, namespace, child=dashboard_name(name), owner=owner, labels={key: value}
    )
    return cm
