"""Pure builders of a ForecastTask's alerting rules: one rule group per task, as a
``monitoring.coreos.com/v1`` PrometheusRule where the Prometheus Operator is installed, or as the
same rules file in a ConfigMap (key ``<task>-rules.yaml``) that a Prometheus loading rule files
mounts. Both are owned by the task, so they go when it goes.

A task gets only the rules it can feed (``output.mode: none`` writes no gauges, so it keeps only
the last one; ``suspend: true`` drops the two staleness rules, as nothing is due):

========================================  ===================================================
alert                                     fires when
========================================  ===================================================
``ForesightExhaustionPredicted``          ``foresight_exhaustion_alert == 1`` (the verdict of the
                                          rule the task chose by backtest); only with a threshold
``ForesightForecastAnomaly``              ``foresight_anomaly == 1`` for ``ANOMALY_RUNS``
                                          predictions in a row
``ForesightSourceDataStale``              ``foresight_data_stale == 1``: a series' newest sample is
                                          old, so no forecast "from now" is pushed for it
``ForesightForecastsStale``               the newest ``foresight_last_run_timestamp_seconds
                                          {kind="predict"}`` is older than ``STALE_RUNS`` predict
                                          intervals
``ForesightForecastsMissing``             no ``foresight_last_run_timestamp_seconds`` at all
``ForesightTaskFailing``                  the operator's ``foresight_resource_ready`` of the task is
                                          0 and ``foresight_forecasttask_consecutive_failures`` > 0
========================================  ===================================================

Timing. The gauges change only when a predict run writes (every ``predictEvery``, or the longest
gap of ``cron``). A ``for:`` of one predict interval plus :data:`RUN_GRACE` (the time a run takes
to land) lets the *next* run confirm a verdict before anyone is paged: a one-run blip of the
exhaustion verdict, of a failure or of stale source data stays quiet. It is capped at
:data:`CONFIRM_CAP` so that a daily schedule does not eat the hours of lead time the exhaustion
rule was chosen for. An anomaly flag is expected in ``1 - intervalLevel`` of the runs by
construction (20% at the default 80% band), so that alert waits for ``ANOMALY_RUNS`` in a row
(0.8% by chance if runs were independent): then the model no longer describes the series.

Selection. Forecast gauges are matched by ``task`` and ``namespace`` (written by the runtime, kept
by a Prometheus that scrapes the Pushgateway or the forecast server with ``honor_labels: true``);
the operator's metrics by ``namespace`` and ``name``. Staleness is judged per task (``max by``), so
a second scrape of the same target does not double the alert. Annotation templates read the
exhaustion probability and the time to threshold of the alerting series with ``query``, matching
every label of the alert except ``rule`` / ``within``, so they work whatever the series labels are.
No user-written text (queries, names of labels' values) enters a template.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import yaml
from foresight.api.forecasttask import ForecastTaskSpec

from ..reconcile.names import child_name
from ..settings import MonitoringSettings
from .configmap import build_configmap
from .forecast_monitoring import (
    child_metadata,
    predict_interval,
    prom_duration,
    promql_string,
    selector,
    series_label_names,
)
from .forecasttask import forecasts_name

__all__ = [
    "ALERT_ANOMALY",
    "ALERT_DATA_STALE",
    "ALERT_EXHAUSTION",
    "ALERT_FAILING",
    "ALERT_MISSING",
    "ALERT_STALE",
    "ANOMALY_RUNS",
    "CONFIRM_CAP",
    "PROMETHEUS_RULE_API_VERSION",
    "PROMETHEUS_RULE_CRD",
    "RUN_GRACE",
    "STALE_RUNS",
    "build_prometheus_rule",
    "build_rules_configmap",
    "rule_group",
    "rules_document",
    "rules_file_key",
    "rules_name",
]

Obj = dict[str, Any]

PROMETHEUS_RULE_API_VERSION = "monitoring.coreos.com/v1"
PROMETHEUS_RULE_CRD = "prometheusrules.monitoring.coreos.com"
"""The CustomResourceDefinition whose presence means "make a PrometheusRule, not a ConfigMap"."""

ALERT_EXHAUSTION = "ForesightExhaustionPredicted"
ALERT_ANOMALY = "ForesightForecastAnomaly"
ALERT_DATA_STALE = "ForesightSourceDataStale"
ALERT_STALE = "ForesightForecastsStale"
ALERT_MISSING = "ForesightForecastsMissing"
ALERT_FAILING = "ForesightTaskFailing"

RUN_GRACE = timedelta(minutes=10)
"""Time a predict run needs to query, predict and push once its slot is due."""
CONFIRM_CAP = timedelta(hours=1)
"""Longest ``for:`` of the exhaustion, failing and stale-data alerts, whatever the schedule."""
ANOMALY_RUNS = 3
"""Predictions in a row outside the band before the anomaly alert fires."""
STALE_RUNS = 3
"""Predict intervals without a new forecast before the forecasts count as stale (two missed runs)."""
MISSING_MIN = timedelta(hours=1)
"""Shortest wait before "no forecasts at all": a new task's first run also trains."""

# Labels the runtime or the scrape adds to a series; not part of what identifies it for a human.
_PLUMBING = "__name__|task|namespace|job|instance|rule|within|horizon|bound"
# A PromQL selector body of the alert's own labels, minus those that differ between the alert gauge
# and the gauges the annotations read (rule, within) and the metric name.
_ALERT_SELECTOR = (
    '{{- $sel := "" -}}{{- range $k, $v := $labels -}}'
    '{{- if not (match "^(__name__|rule|within)$" $k) -}}{{- $sel = printf "%s%s=%q," $sel $k $v -}}'
    "{{- end -}}{{- end -}}"
)
_PROBABILITY = (
    "{{ with query (printf `foresight_exhaustion_probability{%swithin=%q}` $sel $labels.within) }}"
    "{{ . | first | value | humanizePercentage }}{{ else }}not exported{{ end }}"
)


def _time_to_threshold(bound: str) -> str:
    return (
        f"{{{{ with query (printf `foresight_time_to_threshold_seconds{{%sbound={promql_string(bound)}}}` "
        "$sel) }}{{ $v := . | first | value }}{{ if lt $v 1e300 }}{{ humanizeDuration $v }}"
        "{{ else }}beyond the horizon{{ end }}{{ else }}unknown{{ end }}"
    )


def rules_name(name: str) -> str:
    """The PrometheusRule's (or the rules ConfigMap's) name: ``<task>-rules``."""
    return child_name(name, "rules")


def rules_file_key(name: str) -> str:
    """The rules ConfigMap's key: ``<task>-rules.yaml`` (cut and hashed like a child's name when long)."""
    return child_name(name, "rules", limit=253 - len(".yaml")) + ".yaml"


def _confirm_for(interval: timedelta) -> timedelta:
    return min(interval + RUN_GRACE, CONFIRM_CAP)


def _series_text(spec: ForecastTaskSpec) -> str:
    """How an alert names its series, as a template: ``user={{ $labels.user }} ...``."""
    names = series_label_names(spec)
    if names:
        return " ".join(f"{n}={{{{ $labels.{n} }}}}" for n in names)
    if spec.source.aggregation == "none":  # every label of the query identifies the series
        return (
            "{{ range $k, $v := $labels }}"
            f'{{{{ if not (match "^({_PLUMBING})$" $k) }}}}{{{{ $k }}}}={{{{ $v }}}} {{{{ end }}}}'
            "{{ end }}"
        ).strip()
    return "the series"


def _alert(name: str, expr: str, for_: timedelta, severity: str, **annotations: str) -> Obj:
    rule: Obj = {"alert": name, "expr": expr}
    if for_ > timedelta(0):
        rule["for"] = prom_duration(for_)
    rule["labels"] = {"severity": severity}
    rule["annotations"] = annotations
    return rule


def _exhaustion(name: str, ns: str, spec: ForecastTaskSpec, interval: timedelta, series: str) -> Obj:
    assert spec.threshold is not None
    ratio = f"{spec.threshold.ratio * 100:g}%"
    return _alert(
        ALERT_EXHAUSTION,
        f"foresight_exhaustion_alert{selector(name, ns)} == 1",
        _confirm_for(interval),
        "warning",
        summary=f"{series} is predicted to reach {ratio} of its capacity within {{{{ $labels.within }}}}",
        description=(
            f"{_ALERT_SELECTOR}ForecastTask {ns}/{name} predicts that {series} reaches its threshold "
            f"({ratio} of capacity) within {{{{ $labels.within }}}}, by the alert rule the task chose "
            "from its own backtest ({{ $labels.rule }}). Probability of crossing within "
            f"{{{{ $labels.within }}}}: {_PROBABILITY}. Time to threshold: {_time_to_threshold('point')} "
            f"by the point forecast, {_time_to_threshold('upper')} by the upper bound."
        ),
        runbook=(
            f"Open the dashboard 'Foresight / {ns} / {name}' for the forecast, its band and the threshold. "
            "Free space or raise the quota before the crossing. The rule's backtested precision and "
            f"recall are in the task's status (kubectl get ft {name} -n {ns} -o yaml). The alert clears "
            "at the first prediction that no longer crosses."
        ),
    )


def _anomaly(name: str, ns: str, spec: ForecastTaskSpec, interval: timedelta, series: str) -> Obj:
    level = f"{spec.model.interval_level * 100:g}%"
    return _alert(
        ALERT_ANOMALY,
        f"foresight_anomaly{selector(name, ns)} == 1",
        (ANOMALY_RUNS - 1) * interval + RUN_GRACE,
        "info",
        summary=f"{series} left its forecast band {ANOMALY_RUNS} predictions in a row",
        description=(
            f"The latest value of {series} (ForecastTask {ns}/{name}) has been outside the {level} band "
            f"of its forecast for {ANOMALY_RUNS} predictions in a row: the model no longer describes "
            "this series (a level shift, a new workload, or a data problem)."
        ),
        runbook=(
            f"Compare actual and forecast on the dashboard 'Foresight / {ns} / {name}'. A real change of "
            f"behaviour is learnt at the next retrain (every {spec.schedule.retrain_every}); a change "
            "of the spec retrains at once. A data problem (a renamed or broken exporter) needs fixing at "
            "the source."
        ),
    )


def _data_stale(name: str, ns: str, interval: timedelta, series: str) -> Obj:
    return _alert(
        ALERT_DATA_STALE,
        f"foresight_data_stale{selector(name, ns)} == 1",
        _confirm_for(interval),
        "warning",
        summary=f"the source data of {series} stopped",
        description=(
            f"The newest sample of {series} in the source query of ForecastTask {ns}/{name} is several "
            "steps old, so no forecast from now is pushed for it (an old forecast would pass for current)."
        ),
        runbook=(
            "Check the exporter or scrape target behind the task's source query (spec.source.query), "
            f"and the StaleData condition of the task (kubectl describe ft {name} -n {ns}), which names "
            "the series and since when."
        ),
    )


def _stale(name: str, ns: str, spec: ForecastTaskSpec, interval: timedelta) -> list[Obj]:
    last = f"foresight_last_run_timestamp_seconds{selector(name, ns, kind='predict')}"
    after = STALE_RUNS * interval
    path = (
        "the Pushgateway (spec.output.pushgatewayUrl)"
        if spec.output.mode == "pushgateway"
        else f"the {forecasts_name(name)} Deployment and Service that serve them"
    )
    runbook = (
        f"kubectl describe ft {name} -n {ns}: the Ready and Degraded conditions and the last run's Job say "
        f"whether runs fail. If they succeed, the path to Prometheus is broken: {path}, or the scrape "
        "job that reads it (honor_labels: true keeps the task and namespace labels). If no run starts, "
        "check the Foresight operator's log."
    )
    stale = _alert(
        ALERT_STALE,
        f"time() - max by (namespace, task) ({last}) > {int(after.total_seconds())}",
        RUN_GRACE,
        "warning",
        summary=f"the forecasts of ForecastTask {ns}/{name} are stale",
        description=(
            f"The newest forecasts of ForecastTask {ns}/{name} are {{{{ $value | humanizeDuration }}}} "
            f"old; a prediction is due every {prom_duration(interval)}. Alerts on them see old numbers."
        ),
        runbook=runbook,
    )
    missing = _alert(
        ALERT_MISSING,
        f"absent({last})",
        max(after + RUN_GRACE, MISSING_MIN),
        "warning",
        summary=f"no forecasts of ForecastTask {ns}/{name} reach Prometheus",
        description=(
            f"Prometheus has no foresight_last_run_timestamp_seconds of ForecastTask {ns}/{name}: no run "
            "has written forecasts, or they are not scraped (a new task's first run also trains)."
        ),
        runbook=runbook,
    )
    return [stale, missing]


def _failing(name: str, ns: str, interval: timedelta) -> Obj:
    match = f"namespace={promql_string(ns)},name={promql_string(name)}"
    failures = f"max by (namespace, name) (foresight_forecasttask_consecutive_failures{{{match}}}) > 0"
    not_ready = f'max by (namespace, name) (foresight_resource_ready{{kind="ForecastTask",{match}}}) == 0'
    rule = _alert(
        ALERT_FAILING,
        f"{failures}\nand on (namespace, name)\n{not_ready}",
        _confirm_for(interval),
        "warning",
        summary=f"the runs of ForecastTask {ns}/{name} fail",
        description=(
            f"ForecastTask {ns}/{name} is not Ready after {{{{ $value }}}} failed runs in a row; its "
            "forecasts are not being refreshed."
        ),
        runbook=(
            f"kubectl describe ft {name} -n {ns}: the Ready condition's reason and message say what failed "
            "(a PromQL error, no series, too little history, an unreachable Prometheus or Pushgateway); "
            "the run's Job and its pod log have the details. Bad input blocks the task until the spec "
            "changes; temporary failures are retried with a backoff."
        ),
    )
    rule["labels"]["task"] = name  # the operator's metrics say name=, the forecast gauges task=
    return rule


def rule_group(name: str, namespace: str, spec: ForecastTaskSpec) -> Obj:
    """The task's one rule group (``foresight-<namespace>-<task>``), alerts in a fixed order."""
    interval = predict_interval(spec)
    series = _series_text(spec)
    rules: list[Obj] = []
    if spec.output.mode != "none":
        if spec.threshold is not None:
            rules.append(_exhaustion(name, namespace, spec, interval, series))
        rules.append(_anomaly(name, namespace, spec, interval, series))
        rules.append(_data_stale(name, namespace, interval, series))
        if not spec.suspend:
            rules.extend(_stale(name, namespace, spec, interval))
    rules.append(_failing(name, namespace, interval))
    return {"name": f"foresight-{namespace}-{name}", "rules": rules}


class _Dumper(yaml.SafeDumper):
    """Block scalars (``|``) for multi-line expressions, no folding: the file stays readable."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _str)


def rules_document(name: str, namespace: str, spec: ForecastTaskSpec) -> str:
    """The rules file (``groups: [...]``), as ``promtool check rules`` and Prometheus read it."""
    doc = {"groups": [rule_group(name, namespace, spec)]}
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, width=1_000_000, allow_unicode=True)


def build_prometheus_rule(
    name: str,
    namespace: str,
    spec: ForecastTaskSpec,
    owner: Mapping[str, Any],
    *,
    settings: MonitoringSettings | None = None,
) -> Obj:
    """The task's PrometheusRule, owned by the task and labelled for the ``ruleSelector``."""
    settings = settings or MonitoringSettings()
    return {
        "apiVersion": PROMETHEUS_RULE_API_VERSION,
        "kind": "PrometheusRule",
        "metadata": child_metadata(
            name, namespace, child=rules_name(name), owner=owner, labels=dict(settings.rule_labels)
        ),
        "spec": {"groups": [rule_group(name, namespace, spec)]},
    }


def build_rules_configmap(
    name: str,
    namespace: str,
    spec: ForecastTaskSpec,
    owner: Mapping[str, Any],
    *,
    settings: MonitoringSettings | None = None,
) -> Obj:
    """The same rules as a file in a ConfigMap (for a Prometheus without the Prometheus Operator)."""
    settings = settings or MonitoringSettings()
    cm = build_configmap(
        name=rules_name(name),
        namespace=namespace,
        labels={},
        data={rules_file_key(name): rules_document(name, namespace, spec)},
    )
    cm["metadata"] = child_metadata(
        name, namespace, child=rules_name(name), owner=owner, labels=dict(settings.rule_labels)
    )
    return cm
