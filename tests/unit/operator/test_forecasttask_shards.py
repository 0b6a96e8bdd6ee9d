"""Sharded ForecastTask runs, operator side: the plan Job, the shards' Indexed Job, status.

Builders (pure): the plan Job is the run's Job plus ``--stage plan`` (the GPU only for a train
run); the shards' Job is an Indexed Job with per-index retries, ``maxFailedIndexes`` that never
stops healthy shards, bad input failing its index at once, the plan's location in its env and the
plan's result in an annotation, and no GPU. Harvest (pure): per-index outcomes become one run:
all done; some failed (the run succeeded, the task is Degraded, not Failed); all failed (as their
shards did). Handler (``ForecastTaskController.reconcile`` against the API emulator, pods and Job
status written as the Job controller and the kubelet would): plan Job -> shards' Job -> status with
per-shard progress; a task whose output is too big for the Pushgateway is refused with what to do.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from foresight.api.forecasttask import ForecastTaskSpec
from foresight.contract.forecast import ForecastRunResult
from foresight.contract.shard_results import merge_alerts, merge_bands, merge_quality
from foresight_operator.builders.forecasttask import ForecastRun, run_job_name
from foresight_operator.builders.forecasttask_shards import (
    SHARD_RETRIES,
    build_plan_job,
    build_shards_job,
    plan_result_of,
    shards_job_name,
)
from foresight_operator.handlers.context import HandlerContext
from foresight_operator.handlers.forecasttask.controller import ForecastTaskController
from foresight_operator.handlers.forecasttask.gauges import ForecastTaskMetrics
from foresight_operator.handlers.forecasttask.shards import (
    index_ranges,
    merge_backtests,
    merge_models,
    read_sharded_run,
    visible_runs,
)
from foresight_operator.handlers.forecasttask.status import task_status
from foresight_operator.reconcile import SpecError
from foresight_operator.schedule import Outcome, Plan
from prometheus_client import CollectorRegistry

from tests.cluster.emulator import Cluster
from tests.unit.operator.conftest import Events, handler_context

NS = "sre"
T0 = datetime(2026, 3, 1, 6, 15, tzinfo=UTC)
FT = "foresight.dev/v1alpha1/forecasttasks"
SPEC: dict[str, Any] = {
    "source": {
        "url": "http://prom:9090",
        "query": "storage_used_bytes",
        "lookback": "48h",
        "groupBy": ["user"],
    },
    "horizon": "6h",
    "output": {"horizons": ["1h"], "pushgatewayUrl": "http://pgw:9091"},
    "resources": {"cpu": "2", "memory": "4Gi", "gpu": 1},
    "parallelism": 3,
}
PLAN: dict[str, Any] = {
    "phase": "Ready",
    "reason": "Planned",
    "message": "30 series planned in 3 shards",
    "mode": "train",
    "seriesCount": 30,
    "stage": "plan",
    "planId": "disk-train-20260301t061500",
    "planPrefix": "forecasttasks/sre/disk/plans/disk-train-20260301t061500",
    "shardSeries": [12, 10, 8],
    "shardMode": "train",
    "artifactUri": "file:///var/lib/foresight/pvc/foresight-artifacts/../"
    "foresight-artifacts/forecasttasks/sre/disk/v1",
    "sha256": "c" * 64,
    "trainedModels": ["lstm"],
    "lastTrainTime": "2026-03-01T06:15:30Z",
}


def make_spec(**extra: Any) -> ForecastTaskSpec:
    return ForecastTaskSpec.model_validate({**copy.deepcopy(SPEC), **extra})


def plan_result(**extra: Any) -> ForecastRunResult:
    return ForecastRunResult.model_validate({**PLAN, **extra})


def shard_result(index: int, series: int, **extra: Any) -> dict[str, Any]:
    return {
        "phase": "Ready",
        "reason": "ForecastsWritten",
        "message": f"{series} series",
        "mode": "train",
        "seriesCount": series,
        "model": f"auto(ets:{series - 2},lstm:2)",
        "stage": "shard",
        "shard": index,
        "backtest": [{"model": "auto", "mase": 0.5 + index, "mae": 1.0}, {"model": "linear", "mase": 1.0}],
        "lastPredictTime": f"2026-03-01T06:2{index}:00Z",
        **extra,
    }


def pod(index: int, result: dict[str, Any] | None, exit_code: int, name: str = "") -> dict[str, Any]:
    term = {
        "exitCode": exit_code,
        "message": json.dumps(result) if result else "Traceback ... OOM",
        "finishedAt": f"2026-03-01T06:2{index}:00Z",
    }
    return {
        "metadata": {
            "name": name or f"p{index}",
            "annotations": {"batch.kubernetes.io/job-completion-index": str(index)},
        },
        "status": {
            "phase": "Succeeded" if exit_code == 0 else "Failed",
            "containerStatuses": [{"state": {"terminated": term}}],
        },
    }


def shards_job(completed: str, failed: str = "", *, done: bool = True) -> dict[str, Any]:
    run = ForecastRun("train", T0, generation=1)
    job = build_shards_job(
        make_spec(),
        name="disk",
        namespace=NS,
        run=run,
        default_image="rt:1",
        plan=plan_result(),
        plan_job="disk-train-20260301t061500",
    )
    cond = [{"type": "Failed" if failed else "Complete", "status": "True"}] if done else []
    job["status"] = {
        "completedIndexes": completed,
        "failedIndexes": failed,
        "conditions": cond,
        "completionTime": "2026-03-01T06:30:00Z",
    }
    return job


# --- builders ------------------------------------------------------------------------------------


def test_the_plan_job_is_the_runs_job_planning_with_the_gpu_only_when_it_trains() -> None:
    train = build_plan_job(
        make_spec(), name="disk", namespace=NS, run=ForecastRun("train", T0), default_image="x"
    )
    assert train["metadata"]["name"] == run_job_name("disk", ForecastRun("train", T0))
    assert train["metadata"]["labels"]["foresight.dev/run-stage"] == "plan"
    c = train["spec"]["template"]["spec"]["containers"][0]
    assert c["command"][-4:] == ["--stage", "plan", "--run-id", train["metadata"]["name"]]
    assert c["command"][4:6] == ["--mode", "train"]
    assert c["resources"]["requests"]["nvidia.com/gpu"] == "1"
    predict = build_plan_job(
        make_spec(), name="disk", namespace=NS, run=ForecastRun("predict", T0), default_image="x"
    )
    assert (
        "nvidia.com/gpu" not in predict["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]
    )
    assert "completionMode" not in train["spec"] and train["spec"]["backoffLimit"] == 0


def test_the_shards_job_is_indexed_with_per_index_retries_and_the_plan_baked_in() -> None:
    job = shards_job("")
    spec = job["spec"]
    assert job["metadata"]["name"] == shards_job_name("disk", ForecastRun("train", T0))
    assert job["metadata"]["name"].endswith("-shards") and len(job["metadata"]["name"]) <= 63
    assert (spec["completionMode"], spec["completions"], spec["parallelism"]) == ("Indexed", 3, 3)
    assert (spec["backoffLimitPerIndex"], spec["maxFailedIndexes"]) == (SHARD_RETRIES, 3)
    assert "backoffLimit" not in spec
    (fail_index, ignore) = spec["podFailurePolicy"]["rules"]
    assert fail_index == {
        "action": "FailIndex",
        "onExitCodes": {"containerName": "main", "operator": "In", "values": [2]},
    }
    assert ignore["action"] == "Ignore"
    c = spec["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["FORESIGHT_SHARD_PLAN"] == PLAN["planPrefix"]
    assert c["command"][-2:] == ["--mode", "train"] and "--stage" not in c["command"]
    assert "nvidia.com/gpu" not in c["resources"]["requests"]  # the plan pod trained; shards predict
    assert plan_result_of(job) == plan_result()
    assert job["metadata"]["annotations"]["foresight.dev/scheduled-time"] == "2026-03-01T06:15:00Z"
    auto = build_shards_job(
        make_spec(),
        name="disk",
        namespace=NS,
        run=ForecastRun("predict", T0),
        default_image="x",
        plan=plan_result(shardMode="auto"),
        plan_job="p",
    )
    assert auto["spec"]["template"]["spec"]["containers"][0]["command"][-1] == "auto"
    with pytest.raises(ValueError, match="not a plan"):
        build_shards_job(
            make_spec(),
            name="disk",
            namespace=NS,
            run=ForecastRun("predict", T0),
            default_image="x",
            plan=plan_result(stage="shard"),
            plan_job="p",
        )


def test_index_lists_models_and_backtests_merge() -> None:
    assert index_ranges("0-2,5,7-8") == {0, 1, 2, 5, 7, 8} and index_ranges("") == set()
    assert merge_models(["auto(ets:3,lstm:1)", "auto(ets:2,theta:4)"], [4, 6]) == "auto(ets:5,lstm:1,theta:4)"
    assert merge_models(["lstm", "lstm"], [4, 6]) == "lstm"
    rows = merge_backtests(
        [
            ForecastRunResult.model_validate(shard_result(0, 10)),
            ForecastRunResult.model_validate(shard_result(1, 30)),
        ]
    )
    auto = next(r for r in rows if r.model == "auto")
    assert auto.mase == pytest.approx((0.5 * 10 + 1.5 * 30) / 40) and auto.mae == pytest.approx(1.0)


def test_bands_alerts_and_data_quality_merge_across_shards() -> None:
    def result(i: int, n: int, **extra: Any) -> tuple[int, ForecastRunResult]:
        return i, ForecastRunResult.model_validate(shard_result(i, n, **extra))

    bands = [
        result(
            0, 10, bands={"level": 0.8, "coverage": [{"horizon": "1h", "coverage": 0.9}, {"horizon": "6h"}]}
        ),
        result(
            1, 30, bands={"level": 0.8, "coverage": [{"horizon": "1h", "coverage": 0.7}, {"horizon": "6h"}]}
        ),
    ]
    assert merge_bands(bands) == {
        "level": 0.8,
        "coverage": [
            {"horizon": "1h", "coverage": pytest.approx((0.9 * 10 + 0.7 * 30) / 40)},
            {"horizon": "6h"},
        ],
    }
    # Same rule: 2 true, 2 false alerts and 2 silent decisions before crossings (recall 0.5, precision
    # 0.5), and 2 true, 0 false, 4 silent (recall 1/3, precision 1) are 4 of 10 and 4 of 6.
    rule = {"rule": "probability>=0.4", "within": "6h", "reason": "highest recall"}
    same = [
        result(0, 10, alert={**rule, "recall": 0.5, "precision": 0.5, "events": 3, "decisions": 40,
                             "truePositives": 2, "falsePositives": 2, "falseNegatives": 2,
                             "medianLeadSeconds": 7200.0}),
        result(1, 30, alert={**rule, "recall": 1 / 3, "precision": 1.0, "events": 2, "decisions": 90,
                             "truePositives": 2, "falsePositives": 0, "falseNegatives": 4,
                             "medianLeadSeconds": 3600.0}),
    ]  # fmt: skip
    merged = merge_alerts(same)
    assert merged is not None and merged["rule"] == "probability>=0.4" and merged["within"] == "6h"
    assert merged["events"] == 5 and merged["decisions"] == 130
    assert (merged["truePositives"], merged["falsePositives"], merged["falseNegatives"]) == (4, 2, 6)
    assert merged["recall"] == pytest.approx(0.4) and merged["precision"] == pytest.approx(4 / 6)
    # A shard with too little evidence to score makes the sum's precision and recall unknown, not a guess.
    unscored = result(3, 5, alert={**rule, "events": 1, "decisions": 12})
    thin = merge_alerts([*same, unscored])
    assert thin is not None and "precision" not in thin and "recall" not in thin and thin["events"] == 6
    assert merged["medianLeadSeconds"] in (3600.0, 7200.0) and "2 shards" in merged["reason"]
    # Different rules: the most series' rule, and the reason names both with their shards.
    other = result(
        2, 50, alert={"rule": "upper", "within": "6h", "reason": "default", "events": 0, "decisions": 5}
    )
    split = merge_alerts([*same, other])
    assert split is not None and split["rule"] == "upper" and split["events"] == 0
    assert (
        "probability>=0.4 within 6h in shard(s) 0, 1" in split["reason"]
        and "upper within 6h in shard(s) 2" in split["reason"]
    )
    # One shard: its own, untouched.
    assert merge_alerts(same[:1]) == same[0][1].alert
    quality = merge_quality([
        result(0, 10, dataQuality={"series": 10, "staleSeries": 1, "warnings": ["1 stale"],
                                   "staleMessage": "user=a"}),
        result(1, 30, dataQuality={"series": 30, "missingPoints": 7, "warnings": ["gaps"]}),
    ])  # fmt: skip
    assert (
        quality is not None
        and quality.series == 40
        and quality.stale_series == 1
        and quality.missing_points == 7
    )
    assert (
        quality.warnings == ["shard 0: 1 stale", "shard 1: gaps"]
        and quality.stale_message == "shard 0: user=a"
    )


# --- harvest and status --------------------------------------------------------------------------


def test_all_shards_done_is_one_run_with_the_plans_model_and_every_series() -> None:
    pods = [pod(i, shard_result(i, n), 0) for i, n in enumerate([12, 10, 8])]
    h = read_sharded_run(shards_job("0-2"), pods, kind="train", now=T0)
    assert h.outcome is Outcome.SUCCEEDED and h.trained
    assert h.result is not None and h.result.series_count == 30
    assert h.result.model == "auto(ets:24,lstm:6)" and h.result.artifact_uri == PLAN["artifactUri"]
    assert h.result.last_predict_time == "2026-03-01T06:22:00Z"
    assert h.shards is not None and h.shards["progress"] == "3/3" and h.shards["seriesSucceeded"] == 30
    assert [i["phase"] for i in h.shards["items"]] == ["Succeeded"] * 3


def test_some_shards_failed_is_degraded_not_failed_and_recovers() -> None:
    bad = {
        "phase": "Failed",
        "reason": "PrometheusUnavailable",
        "message": "prom down",
        "retryable": True,
        "stage": "shard",
        "shard": 1,
    }
    pods = [
        pod(0, shard_result(0, 12), 0),
        pod(1, bad, 3, "a"),
        pod(1, bad, 3, "b"),
        pod(1, bad, 3, "c"),
        pod(2, shard_result(2, 8), 0),
    ]
    h = read_sharded_run(shards_job("0,2", "1"), pods, kind="train", now=T0)
    assert h.outcome is Outcome.SUCCEEDED and h.result is not None and h.result.series_count == 20
    assert "shard(s) 1 failed (10 series without fresh forecasts)" in h.message and "prom down" in h.message
    assert h.shards is not None and (h.shards["failed"], h.shards["progress"]) == (1, "2/3 (1 failed)")
    item = h.shards["items"][1]
    assert (item["phase"], item["attempts"], item["series"], item["message"]) == (
        "Failed",
        3,
        10,
        "prom down",
    )
    status = task_status(
        {},
        spec=make_spec(),
        generation=1,
        now=T0,
        harvests=[h],
        active=None,
        plan=Plan(None, T0, 0, "interval"),
        degraded_after=3,
    )
    conds = {c["type"]: c for c in status["conditions"]}
    assert (conds["Ready"]["status"], conds["Degraded"]["status"], conds["Degraded"]["reason"]) == (
        "True",
        "True",
        "ShardsFailed",
    )
    assert status["phase"] == "Ready" and status["shards"]["failed"] == 1 and status["seriesCount"] == 20
    ok = read_sharded_run(
        shards_job("0-2"),
        [pod(i, shard_result(i, n), 0) for i, n in enumerate([12, 10, 8])],
        kind="predict",
        now=T0,
    )
    later = task_status(
        status,
        spec=make_spec(),
        generation=1,
        now=T0,
        harvests=[ok],
        active=None,
        plan=Plan(None, T0, 0, "interval"),
        degraded_after=3,
    )
    conds = {c["type"]: c for c in later["conditions"]}
    assert (conds["Degraded"]["status"], conds["Degraded"]["reason"]) == ("False", "Recovered")


def test_all_shards_failed_fails_the_run_as_its_shards_did() -> None:
    bad = {"phase": "Failed", "reason": "NoSeries", "message": "no series", "stage": "shard"}
    h = read_sharded_run(shards_job("", "0-2"), [pod(i, bad, 2) for i in range(3)], kind="train", now=T0)
    assert (h.outcome, h.reason) == (Outcome.BLOCKED, "NoSeries") and "all 3 shards failed" in h.message
    down = {"phase": "Failed", "reason": "PrometheusUnavailable", "message": "down", "retryable": True}
    h = read_sharded_run(shards_job("", "0-2"), [pod(i, down, 3) for i in range(3)], kind="train", now=T0)
    assert h.outcome is Outcome.RETRY
    crashed = read_sharded_run(
        shards_job("", "0-2"), [pod(i, None, 137) for i in range(3)], kind="train", now=T0
    )
    assert crashed.outcome is Outcome.FAILED and "last words" in crashed.message


# --- handler -------------------------------------------------------------------------------------


@pytest.fixture
def ctx(cluster: Cluster, events: Events) -> HandlerContext:
    return handler_context(cluster, events, T0, runtime_image="foresight-runtime:test")


@pytest.fixture
def controller(ctx: HandlerContext) -> ForecastTaskController:
    return ForecastTaskController(ctx, ForecastTaskMetrics(CollectorRegistry()))


def apply(cluster: Cluster, name: str, **spec: Any) -> dict[str, Any]:
    body = {
        "apiVersion": "foresight.dev/v1alpha1",
        "kind": "ForecastTask",
        "metadata": {"name": name, "namespace": NS},
        "spec": {**copy.deepcopy(SPEC), **spec},
    }
    return cluster.api.create(FT, body, NS)


def finish(cluster: Cluster, job: dict[str, Any], pods: list[dict[str, Any]], status: dict[str, Any]) -> None:
    """What the Job controller and the kubelet write: the pods (with their results) and the Job's status."""
    for p in pods:
        meta = p["metadata"]
        meta["name"] = f"{job['metadata']['name']}-{meta['name']}"
        meta["labels"] = {"batch.kubernetes.io/job-name": job["metadata"]["name"]}
        made = cluster.api.create(
            "v1/pods",
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": meta,
                "spec": {"containers": [{"name": "main", "image": "x"}]},
            },
            NS,
        )
        cluster.api.patch("v1/pods", made["metadata"]["name"], {"status": p["status"]}, NS, sub="status")
    fresh = cluster.api.get("batch/v1/jobs", job["metadata"]["name"], NS)
    cluster.api.replace("batch/v1/jobs", {**fresh, "status": status}, sub="status")


def test_a_sharded_task_plans_then_runs_its_shards_and_reports_each(
    cluster: Cluster, controller: ForecastTaskController, events: Events
) -> None:
    apply(cluster, "disk")
    controller.reconcile(cluster.api.get(FT, "disk", NS))
    (plan_job,) = cluster.api.list("batch/v1/jobs", NS)
    assert plan_job["metadata"]["labels"]["foresight.dev/run-stage"] == "plan"
    task = cluster.api.get(FT, "disk", NS)
    assert task["status"]["activeRun"] == plan_job["metadata"]["name"]
    assert task["status"]["activeShards"]["progress"] == "planning"

    result = {**PLAN, "planId": plan_job["metadata"]["name"]}
    finish(cluster, plan_job, [pod(0, result, 0)], {"conditions": [{"type": "Complete", "status": "True"}]})
    controller.reconcile(cluster.api.get(FT, "disk", NS))
    jobs = {
        j["metadata"]["labels"]["foresight.dev/run-stage"]: j for j in cluster.api.list("batch/v1/jobs", NS)
    }
    shards = jobs["shards"]
    assert visible_runs(list(jobs.values())) == [shards]
    assert shards["spec"]["completionMode"] == "Indexed" and shards["spec"]["completions"] == 3
    (owner,) = shards["metadata"]["ownerReferences"]
    assert owner["kind"] == "ForecastTask"
    assert "ShardsStarted" in {reason for _, reason, _ in events}
    task = cluster.api.get(FT, "disk", NS)
    assert task["status"]["activeRun"] == shards["metadata"]["name"]

    # One shard done, one under way: status follows per shard.
    finish(cluster, shards, [pod(0, shard_result(0, 12), 0)], {"completedIndexes": "0", "active": 2})
    controller.reconcile(cluster.api.get(FT, "disk", NS))
    progress = cluster.api.get(FT, "disk", NS)["status"]["activeShards"]
    assert (progress["succeeded"], progress["running"], progress["progress"]) == (1, 2, "1/3")
    assert [i["phase"] for i in progress["items"]] == ["Succeeded", "Pending", "Pending"]

    finish(
        cluster,
        cluster.api.get("batch/v1/jobs", shards["metadata"]["name"], NS),
        [
            pod(2, shard_result(2, 8), 0),
            pod(1, {"phase": "Failed", "reason": "RunFailed", "message": "boom"}, 1),
        ],
        {
            "completedIndexes": "0,2",
            "failedIndexes": "1",
            "conditions": [{"type": "Failed", "status": "True", "reason": "FailedIndexes"}],
        },
    )
    controller.reconcile(cluster.api.get(FT, "disk", NS))
    status = cluster.api.get(FT, "disk", NS)["status"]
    conds = {c["type"]: c for c in status["conditions"]}
    assert (conds["Ready"]["status"], conds["Degraded"]["status"], conds["Degraded"]["reason"]) == (
        "True",
        "True",
        "ShardsFailed",
    )
    assert status["seriesCount"] == 20 and status["shards"]["progress"] == "2/3 (1 failed)"
    assert status["shards"]["planId"] == plan_job["metadata"]["name"] and "activeRun" not in status
    assert "activeShards" not in status
    assert status["modelVersion"]  # the plan's networks became a ModelVersion
    assert ("Warning", "ForecastsWritten") in {(t, r) for t, r, _ in events}


def test_an_output_too_big_for_the_pushgateway_is_refused_with_what_to_do(
    cluster: Cluster, controller: ForecastTaskController, events: Events
) -> None:
    apply(cluster, "huge", limits={"maxSeries": 200_000})
    with pytest.raises(SpecError, match=r"output\.mode: scrape") as err:
        controller.reconcile(cluster.api.get(FT, "huge", NS))
    assert err.value.reason == "OutputTooLarge"
    assert cluster.api.list("batch/v1/jobs", NS) == []
    apply(cluster, "big", limits={"maxSeries": 20_000})  # 120,000 samples: warned, not refused
    controller.reconcile(cluster.api.get(FT, "big", NS))
    assert ("Warning", "OutputLarge") in {(t, r) for t, r, _ in events}
    before = len(events)
    controller.reconcile(cluster.api.get(FT, "big", NS))
    assert "OutputLarge" not in {r for _, r, _ in events[before:]}  # once, not every reconcile
    apply(cluster, "scraped", limits={"maxSeries": 200_000}, output={"mode": "scrape", "horizons": ["1h"]})
    controller.reconcile(cluster.api.get(FT, "scraped", NS))  # one endpoint per shard: no limit here


# --- scrape mode, one endpoint per shard ------------------------------------------------------------


def test_a_sharded_scrape_task_is_served_by_a_statefulset_pod_per_shard() -> None:
    from foresight_operator.builders.forecasttask import build_scrape_children

    spec = make_spec(output={"mode": "scrape", "horizons": ["1h"]})
    children = build_scrape_children(spec, name="disk", namespace=NS, default_image="rt:1")
    assert children.deployment is None and children.statefulset is not None
    sts = children.statefulset
    assert (sts["kind"], sts["metadata"]["name"]) == ("StatefulSet", "disk-forecasts")
    assert (sts["spec"]["replicas"], sts["spec"]["serviceName"], sts["spec"]["podManagementPolicy"]) == (
        3,
        "disk-forecasts",
        "Parallel",
    )
    template = sts["spec"]["template"]
    assert template["metadata"]["annotations"]["prometheus.io/scrape"] == "true"  # role: pod discovery
    c = template["spec"]["containers"][0]
    assert c["command"][-2:] == ["--shard", "$(POD_NAME)"]
    assert {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}} in c["env"]
    assert sts["spec"]["selector"]["matchLabels"] == children.service["spec"]["selector"]
    assert children.service["metadata"]["annotations"]["prometheus.io/port"] == "8080"
    single = build_scrape_children(
        make_spec(output={"mode": "scrape", "horizons": ["1h"]}, parallelism=1),
        name="disk",
        namespace=NS,
        default_image="rt:1",
    )
    assert single.statefulset is None and single.deployment is not None


def test_parallelism_crossing_one_swaps_the_deployment_for_a_statefulset_and_back(
    cluster: Cluster, controller: ForecastTaskController, events: Events
) -> None:
    apply(cluster, "disk", output={"mode": "scrape", "horizons": ["1h"]}, parallelism=1)
    controller.reconcile(cluster.api.get(FT, "disk", NS))
    assert [d["metadata"]["name"] for d in cluster.api.list("apps/v1/deployments", NS)] == ["disk-forecasts"]
    cluster.api.patch(FT, "disk", {"spec": {"parallelism": 3}}, NS)
    controller.reconcile(cluster.api.get(FT, "disk", NS))
    assert cluster.api.list("apps/v1/deployments", NS) == []
    (sts,) = cluster.api.list("apps/v1/statefulsets", NS)
    assert sts["spec"]["replicas"] == 3 and sts["metadata"]["ownerReferences"][0]["kind"] == "ForecastTask"
    assert "DeploymentDeleted" in {reason for _, reason, _ in events}
    cluster.api.patch(FT, "disk", {"spec": {"parallelism": 4}}, NS)
    controller.reconcile(cluster.api.get(FT, "disk", NS))
    assert cluster.api.get("apps/v1/statefulsets", "disk-forecasts", NS)["spec"]["replicas"] == 4
    cluster.api.patch(FT, "disk", {"spec": {"output": {"mode": "pushgateway"}}}, NS)
    controller.reconcile(cluster.api.get(FT, "disk", NS))
    assert cluster.api.list("apps/v1/statefulsets", NS) == [] and cluster.api.list("v1/services", NS) == []
