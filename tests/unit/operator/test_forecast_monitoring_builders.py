"""The pure builders of a ForecastTask's alerting rules and dashboard: what objects they make, which
rules a task gets, how series are selected, and that the dashboard is what the Grafana SDK reads.

``promtool`` checks of the same output are in tests/integration/prometheus/test_forecast_rules_promtool.py.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
import yaml
from foresight.api.forecasttask import ForecastTaskSpec
from foresight.prometheus.labels import RESERVED_LABELS, series_labels
from foresight_operator.builders import forecast_monitoring as mon
from foresight_operator.builders.forecast_dashboard import (
    DATASOURCE_VARIABLE,
    HORIZON_VARIABLE,
    build_dashboard_configmap,
    dashboard_model,
    dashboard_uid,
)
from foresight_operator.builders.forecast_rules import (
    ALERT_ANOMALY,
    ALERT_DATA_STALE,
    ALERT_EXHAUSTION,
    ALERT_FAILING,
    ALERT_MISSING,
    ALERT_STALE,
    build_prometheus_rule,
    build_rules_configmap,
    rule_group,
    rules_file_key,
)
from foresight_operator.reconcile.errors import SpecError
from foresight_operator.reconcile.names import NAME_LABEL
from foresight_operator.settings import MonitoringSettings, OperatorSettings, SettingsError

OWNER = {
    "apiVersion": "foresight.dev/v1alpha1",
    "kind": "ForecastTask",
    "name": "storage-quota",
    "uid": "0b5e7c52-1111-2222-3333-444455556666",
    "controller": True,
    "blockOwnerDeletion": True,
}
STORAGE = {
    "source": {"query": "storage_used_bytes", "groupBy": ["group", "user", "storage_type", "cluster"]},
    "threshold": {"capacity": {"query": "storage_quota_bytes"}, "ratio": 0.95},
    "output": {"horizons": ["1h", "6h", "24h"]},
}


def spec(**overrides: Any) -> ForecastTaskSpec:
    doc: dict[str, Any] = json.loads(json.dumps(STORAGE))
    for key, value in overrides.items():
        if value is None:
            doc.pop(key, None)
        elif isinstance(value, dict) and isinstance(doc.get(key), dict):
            doc[key] = {**doc[key], **value}
        else:
            doc[key] = value
    return ForecastTaskSpec.model_validate(doc)


def alerts(task_spec: ForecastTaskSpec, name: str = "storage-quota") -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for r in rule_group(name, "sre", task_spec)["rules"]}


# ---- which rules a task gets -------------------------------------------------------------------


def test_a_task_with_a_threshold_gets_every_rule_and_one_group_named_for_it() -> None:
    group = rule_group("storage-quota", "sre", spec())
    assert group["name"] == "foresight-sre-storage-quota"
    assert [r["alert"] for r in group["rules"]] == [
        ALERT_EXHAUSTION, ALERT_ANOMALY, ALERT_DATA_STALE, ALERT_STALE, ALERT_MISSING, ALERT_FAILING,
    ]  # fmt: skip
    exhaustion = group["rules"][0]
    assert exhaustion["expr"] == 'foresight_exhaustion_alert{namespace="sre",task="storage-quota"} == 1'
    assert exhaustion["labels"] == {"severity": "warning"}
    assert set(exhaustion["annotations"]) == {"summary", "description", "runbook"}
    assert "foresight_exhaustion_probability" in exhaustion["annotations"]["description"]
    assert "foresight_time_to_threshold_seconds" in exhaustion["annotations"]["description"]


def test_no_exhaustion_rule_without_a_threshold() -> None:
    rules = alerts(spec(threshold=None))
    assert ALERT_EXHAUSTION not in rules
    assert {ALERT_ANOMALY, ALERT_DATA_STALE, ALERT_STALE, ALERT_MISSING, ALERT_FAILING} == set(rules)


def test_output_none_writes_no_gauges_so_only_the_failing_runs_rule_is_left() -> None:
    assert list(alerts(spec(output={"mode": "none"}))) == [ALERT_FAILING]


def test_a_suspended_task_has_nothing_due_so_no_staleness_rules() -> None:
    rules = alerts(spec(suspend=True))
    assert ALERT_STALE not in rules and ALERT_MISSING not in rules
    assert ALERT_EXHAUSTION in rules and ALERT_FAILING in rules


def test_for_durations_follow_the_predict_interval() -> None:
    rules = alerts(spec())  # predictEvery 15m (default)
    assert rules[ALERT_EXHAUSTION]["for"] == "25m"  # one interval + the run's grace: the next run confirms
    assert rules[ALERT_ANOMALY]["for"] == "40m"  # 3 predictions in a row
    assert rules[ALERT_STALE]["expr"].endswith("> 2700")  # 3 intervals
    assert rules[ALERT_MISSING]["for"] == "1h"
    hourly = alerts(spec(schedule={"predictEvery": "1h"}))
    assert hourly[ALERT_EXHAUSTION]["for"] == "1h"  # capped: lead time matters more than confirmation
    assert hourly[ALERT_ANOMALY]["for"] == "2h10m"
    assert hourly[ALERT_STALE]["expr"].endswith("> 10800")
    assert hourly[ALERT_MISSING]["for"] == "3h10m"


def test_a_cron_schedule_is_timed_by_its_longest_gap() -> None:
    weekdays = spec(schedule={"cron": "0 9 * * 1-5"})
    assert mon.predict_interval(weekdays) == timedelta(days=3)  # Friday 9:00 -> Monday 9:00
    assert alerts(weekdays)[ALERT_STALE]["expr"].endswith(f"> {3 * 3 * 86400}")
    assert mon.predict_interval(spec(schedule={"cron": "*/30 * * * *"})) == timedelta(minutes=30)


def test_an_unusable_cron_is_a_spec_error_naming_the_field() -> None:
    # The API refuses such a cron at admission; the builder still guards a spec that skipped it.
    bad = spec()
    bad.schedule = bad.schedule.model_copy(update={"cron": "61 * * * *"})
    with pytest.raises(SpecError, match=r"spec\.schedule"):
        mon.predict_interval(bad)


def test_the_failing_runs_rule_reads_the_operators_metrics_of_this_task() -> None:
    rule = alerts(spec())[ALERT_FAILING]
    assert (
        'foresight_resource_ready{kind="ForecastTask",namespace="sre",name="storage-quota"}' in rule["expr"]
    )
    assert 'foresight_forecasttask_consecutive_failures{namespace="sre",name="storage-quota"}' in rule["expr"]
    assert rule["labels"] == {"severity": "warning", "task": "storage-quota"}


def test_alerts_name_series_by_the_labels_the_runtime_writes() -> None:
    renamed = spec(source={"query": "kube_quota", "groupBy": ["namespace", "user"]})
    summary = alerts(renamed)[ALERT_ANOMALY]["annotations"]["summary"]
    assert summary.startswith("series_namespace={{ $labels.series_namespace }} user={{ $labels.user }}")
    every_label = spec(source={"query": "x", "groupBy": [], "aggregation": "none"})
    assert "range $k, $v := $labels" in alerts(every_label)[ALERT_ANOMALY]["annotations"]["summary"]
    merged = spec(source={"query": "x", "groupBy": []})
    assert alerts(merged)[ALERT_ANOMALY]["annotations"]["summary"].startswith("the series ")


def test_no_user_text_enters_an_annotation_template() -> None:
    tricky = spec(
        source={"query": 'x{a="{{ evil }}"}', "groupBy": ["user"]},
        output={"mode": "pushgateway", "pushgatewayUrl": "http://{{evil}}:9091"},
    )
    for rule in rule_group("t", "sre", tricky)["rules"]:
        for text in rule["annotations"].values():
            assert "evil" not in text


@pytest.mark.parametrize("label", sorted(RESERVED_LABELS | {"__meta", "user", "_private"}))
def test_written_label_names_match_the_runtime_writer(label: str) -> None:
    assert mon.written_label(label) == next(iter(series_labels({label: "v"})))


# ---- the objects -------------------------------------------------------------------------------


def test_prometheus_rule_is_owned_by_the_task_and_labelled_for_the_rule_selector() -> None:
    obj = build_prometheus_rule("storage-quota", "sre", spec(), OWNER)
    assert obj["apiVersion"] == "monitoring.coreos.com/v1" and obj["kind"] == "PrometheusRule"
    meta = obj["metadata"]
    assert meta["name"] == "storage-quota-rules" and meta["namespace"] == "sre"
    assert meta["ownerReferences"] == [OWNER]
    assert meta["labels"]["release"] == "kube-prometheus-stack"
    assert meta["labels"][NAME_LABEL] == "storage-quota"
    assert obj["spec"] == {"groups": [rule_group("storage-quota", "sre", spec())]}
    custom = MonitoringSettings(rule_labels=(("prometheus", "main"),))
    relabelled = build_prometheus_rule("storage-quota", "sre", spec(), OWNER, settings=custom)
    assert "release" not in relabelled["metadata"]["labels"]
    assert relabelled["metadata"]["labels"]["prometheus"] == "main"


def test_rules_configmap_holds_the_same_rules_file() -> None:
    cm = build_rules_configmap("storage-quota", "sre", spec(), OWNER)
    assert cm["kind"] == "ConfigMap" and cm["metadata"]["ownerReferences"] == [OWNER]
    assert list(cm["data"]) == ["storage-quota-rules.yaml"]
    rule = build_prometheus_rule("storage-quota", "sre", spec(), OWNER)
    assert yaml.safe_load(cm["data"]["storage-quota-rules.yaml"]) == rule["spec"]


def test_long_task_names_give_valid_deterministic_names() -> None:
    name = "a" * 63 + "." + "b" * 100
    cm = build_rules_configmap(name, "sre", spec(), {**OWNER, "name": name})
    assert len(cm["metadata"]["name"]) <= 63
    key = rules_file_key(name)
    assert key.endswith(".yaml") and len(key) <= 253
    assert build_rules_configmap(name, "sre", spec(), {**OWNER, "name": name}) == cm
    assert rules_file_key(name) != rules_file_key(name + "c")
    assert len(dashboard_uid(name, "sre")) <= 40
    assert dashboard_uid(name, "sre") != dashboard_uid(name, "other")


def test_an_incomplete_owner_reference_is_refused() -> None:
    with pytest.raises(ValueError, match="uid"):
        build_prometheus_rule("t", "sre", spec(), {k: v for k, v in OWNER.items() if k != "uid"})


def test_monitoring_settings_from_the_environment() -> None:
    settings = OperatorSettings.from_sources(
        {"FORESIGHT_RULE_LABELS": "release=prom, team=sre", "FORESIGHT_DASHBOARD_LABEL": "dashboards=yes"}
    )
    assert settings.monitoring == MonitoringSettings(
        rule_labels=(("release", "prom"), ("team", "sre")), dashboard_label=("dashboards", "yes")
    )
    assert OperatorSettings.from_sources({}).monitoring == MonitoringSettings()
    assert OperatorSettings.from_sources({"FORESIGHT_RULE_LABELS": ""}).monitoring.rule_labels == ()
    with pytest.raises(SettingsError, match="FORESIGHT_RULE_LABELS"):
        OperatorSettings.from_sources({"FORESIGHT_RULE_LABELS": "no value"})
    with pytest.raises(SettingsError, match="exactly one"):
        OperatorSettings.from_sources({"FORESIGHT_DASHBOARD_LABEL": "a=1,b=2"})


# ---- the dashboard -----------------------------------------------------------------------------


def test_dashboard_configmap_carries_the_sidecar_label_and_one_json_file() -> None:
    cm = build_dashboard_configmap("storage-quota", "sre", spec(), OWNER)
    assert cm["metadata"]["name"] == "storage-quota-dashboard"
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert cm["metadata"]["ownerReferences"] == [OWNER]
    ((key, text),) = cm["data"].items()
    assert key == "foresight-sre-storage-quota-dashboard.json"
    assert json.loads(text) == dashboard_model("storage-quota", "sre", spec())
    custom = MonitoringSettings(dashboard_label=("dashboards", "foresight"))
    relabelled = build_dashboard_configmap("storage-quota", "sre", spec(), OWNER, settings=custom)
    assert relabelled["metadata"]["labels"]["dashboards"] == "foresight"
    assert "grafana_dashboard" not in relabelled["metadata"]["labels"]


def test_dashboard_round_trips_through_the_grafana_sdk() -> None:
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.cog.plugins import register_default_plugins
    from grafana_foundation_sdk.models.dashboard import Dashboard

    register_default_plugins()  # panels and Prometheus queries decode to their typed models
    model = dashboard_model("storage-quota", "sre", spec())
    decoded = Dashboard.from_json(model)
    assert json.loads(JSONEncoder(sort_keys=True).encode(decoded)) == model
    assert decoded.uid == dashboard_uid("storage-quota", "sre")


def variables(model: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in model["templating"]["list"]}


def test_template_variables_are_the_group_by_labels_as_written_plus_datasource_and_horizon() -> None:
    model = dashboard_model("storage-quota", "sre", spec())
    found = variables(model)
    assert list(found) == [DATASOURCE_VARIABLE, "group", "user", "storage_type", "cluster", HORIZON_VARIABLE]
    user = found["user"]
    assert user["type"] == "query" and user["multi"] and user["includeAll"]
    assert user["query"] == 'label_values(foresight_forecast{namespace="sre",task="storage-quota"}, user)'
    assert found[HORIZON_VARIABLE]["query"] == "1h : 1h,6h : 6h,24h : 24h"
    assert found[HORIZON_VARIABLE]["current"]["text"] == "6h"
    renamed = dashboard_model("t", "sre", spec(source={"query": "kube_quota", "groupBy": ["namespace"]}))
    assert list(variables(renamed)) == [DATASOURCE_VARIABLE, "series_namespace", HORIZON_VARIABLE]
    # Two spellings of one duration are one horizon, labelled as the runtime writes it ("90m").
    odd = dashboard_model("t", "sre", spec(output={"horizons": ["90m", "1.5h"]}, horizon="2h"))
    assert variables(odd)[HORIZON_VARIABLE]["query"] == "90m : 1h30m"
    every = variables(dashboard_model("t", "sre", spec(output={"horizons": ["6h"], "everyStep": True})))
    assert every[HORIZON_VARIABLE]["query"] == ",".join(f"{h}h : {h}h" for h in range(1, 25))
    assert every[HORIZON_VARIABLE]["current"]["text"] == "6h"


def exprs(model: dict[str, Any]) -> dict[str, list[str]]:
    return {p["title"]: [t["expr"] for t in p["targets"]] for p in model["panels"]}


def test_panels_overlay_the_source_on_forecasts_offset_by_their_horizon() -> None:
    panels = exprs(dashboard_model("storage-quota", "sre", spec()))
    actual, forecast, lower, upper, threshold = panels["Actual vs forecast made ${horizon:text} earlier"]
    assert actual.startswith("sum by (group, user, storage_type, cluster) (storage_used_bytes)")
    picked = 'user=~"$user"'
    assert picked in actual  # only the series the task forecasts and the variables pick
    assert forecast.startswith(
        'foresight_forecast{namespace="sre",task="storage-quota",horizon="${horizon:text}"'
    )
    assert forecast.endswith("offset ${horizon}") and picked in forecast
    assert lower.startswith("foresight_forecast_lower{") and upper.startswith("foresight_forecast_upper{")
    assert threshold.startswith("sum by (group, user, storage_type, cluster) (storage_quota_bytes) * 0.95")
    assert set(panels) == {
        "Actual vs forecast made ${horizon:text} earlier",
        "Time to threshold",
        "Probability of crossing the threshold within ${horizon:text}",
        "Backtest error by model (MASE)",
        "Band coverage (target 80%)",
    }


def test_without_a_threshold_there_is_nothing_to_cross() -> None:
    panels = exprs(dashboard_model("t", "sre", spec(threshold=None)))
    assert set(panels) == {
        "Actual vs forecast made ${horizon:text} earlier",
        "Backtest error by model (MASE)",
        "Band coverage (target 80%)",
    }
    assert len(panels["Actual vs forecast made ${horizon:text} earlier"]) == 4  # no threshold line


def test_the_actual_is_read_as_a_run_reads_it() -> None:
    counter = spec(
        source={"query": "bytes_total", "groupBy": ["user"], "counter": True, "aggregation": "max"}
    )
    actual = exprs(dashboard_model("t", "sre", counter))["Actual vs forecast made ${horizon:text} earlier"][0]
    assert actual.startswith("max by (user) (increase((bytes_total)[1h:]))")
    renamed = spec(source={"query": "q", "groupBy": ["namespace"]}, threshold={"capacity": {"value": 100.0}})
    actual, *_, threshold = exprs(dashboard_model("t", "sre", renamed))[
        "Actual vs forecast made ${horizon:text} earlier"
    ]
    assert (
        "label_replace(group by (series_namespace)" in actual
        and '"namespace", "$1", "series_namespace"' in actual
    )
    assert threshold == "vector(95.0)"
    whole = spec(source={"query": "q", "groupBy": [], "aggregation": "none"})
    assert (
        exprs(dashboard_model("t", "sre", whole))["Actual vs forecast made ${horizon:text} earlier"][0] == "q"
    )


@pytest.mark.parametrize(
    ("unit", "grafana"), [("bytes", "bytes"), ("percent", "percent"), ("GPUs", "suffix: GPUs")]
)
def test_the_actual_vs_forecast_panel_is_in_the_tasks_unit(unit: str, grafana: str) -> None:
    board = dashboard_model("storage-quota", "sre", spec(source={**STORAGE["source"], "unit": unit}))
    first = board["panels"][0]
    assert (
        first["title"].startswith("Actual vs forecast")
        and first["fieldConfig"]["defaults"]["unit"] == grafana
    )
    plain = dashboard_model("storage-quota", "sre", spec())["panels"][0]
    assert "unit" not in plain["fieldConfig"]["defaults"]
