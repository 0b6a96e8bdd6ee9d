"""ForecastTask builder and the pure parts of its handler: run Jobs, results, status."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import yaml
from foresight.api.forecasttask import ForecastTaskSpec, ForecastTaskStatus
from foresight.contract.forecast import ForecastRunResult
from foresight_operator.builders.forecasttask import (
    ForecastRun,
    build_run_job,
    build_task_configmap,
    parse_annotations,
    public_artifact_uri,
    run_job_name,
)
from foresight_operator.handlers.forecasttask.results import Harvest, read_run_result
from foresight_operator.handlers.forecasttask.status import task_status
from foresight_operator.reconcile import SpecError
from foresight_operator.schedule import Outcome, Plan

T0 = datetime(2026, 3, 1, 6, 15, tzinfo=UTC)


def make_spec(**extra: object) -> ForecastTaskSpec:
    return ForecastTaskSpec.model_validate(
        {
            "source": {"url": "http://prom:9090", "query": "storage_used_bytes", "lookback": "48h"},
            "horizon": "6h",
            "output": {"horizons": ["1h"], "pushgatewayUrl": "http://pgw:9091"},
            "resources": {"cpu": "2", "memory": "4Gi", "gpu": 1},
            "placement": {
                "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-H100"},
                "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
            },
            **extra,
        }
    )


def test_run_job_names_are_deterministic_per_kind_slot_and_attempt() -> None:
    run = ForecastRun("predict", T0)
    assert run_job_name("quota", run) == "quota-predict-20260301t061500"
    assert run_job_name("quota", ForecastRun("predict", T0, attempt=3)) == "quota-predict-20260301t061500-r3"
    assert run_job_name("quota", ForecastRun("train", T0)) == "quota-train-20260301t061500"
    long = run_job_name("q" * 70, run)
    assert len(long) <= 63 and long == run_job_name("q" * 70, run)


def test_run_job_carries_resources_gpu_placement_store_and_the_run_identity() -> None:
    spec = make_spec()
    run = ForecastRun("predict", T0, attempt=2, generation=4)
    job = build_run_job(spec, name="quota", namespace="sre", run=run, default_image="rt:1")
    meta = job["metadata"]
    assert meta["labels"]["foresight.dev/run-kind"] == "predict"
    assert parse_annotations(meta["annotations"]) == (T0, 2, 4)
    pod = job["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["command"] == ["foresight", "run", "-f", "/etc/foresight/task/task.yaml", "--mode", "auto"]
    assert c["resources"]["requests"] == {"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": "1"}
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pod["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-H100"}
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert job["spec"]["backoffLimit"] == 0  # the operator retries, with a backoff
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["FORESIGHT_PVC_ROOT"] == "/var/lib/foresight/pvc/foresight-artifacts/.."
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    assert mounts == {
        "task": "/etc/foresight/task",
        "artifacts": "/var/lib/foresight/pvc/foresight-artifacts",
    }
    vols = {v["name"]: v for v in pod["volumes"]}
    assert vols["artifacts"]["persistentVolumeClaim"] == {"claimName": "foresight-artifacts"}
    assert vols["task"]["configMap"] == {"name": "quota-task"}
    train = build_run_job(
        spec, name="quota", namespace="sre", run=ForecastRun("train", T0), default_image="x"
    )
    assert train["spec"]["template"]["spec"]["containers"][0]["command"][-1] == "train"


def test_secrets_become_secret_env_and_file_uris_are_refused() -> None:
    spec = make_spec(
        source={"query": "up", "bearerTokenSecret": {"name": "prom", "key": "token"}},
        artifacts={"uri": "s3://models/ft", "endpoint": "minio:9000", "credentialsSecret": "s3"},
    )
    job = build_run_job(spec, name="t", namespace="ns", run=ForecastRun("train", T0), default_image="x")
    env = {e["name"]: e for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["FORESIGHT_PROMETHEUS_TOKEN"]["valueFrom"] == {
        "secretKeyRef": {"name": "prom", "key": "token"}
    }
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "s3"
    assert env["FORESIGHT_S3_ENDPOINT"]["value"] == "minio:9000"
    with pytest.raises(SpecError, match="file:// locations exist only in local mode"):
        build_run_job(
            make_spec(artifacts={"uri": "file:///tmp/x"}),
            name="t", namespace="ns", run=ForecastRun("train", T0), default_image="x",
        )  # fmt: skip


def test_configmap_holds_the_task_as_foresight_run_reads_it() -> None:
    cm = build_task_configmap("quota", "sre", make_spec())
    doc = yaml.safe_load(cm["data"]["task.yaml"])
    assert (doc["kind"], doc["metadata"]) == ("ForecastTask", {"name": "quota", "namespace": "sre"})
    assert ForecastTaskSpec.model_validate(doc["spec"]) == make_spec()


def test_artifact_uri_is_reported_as_the_claim_not_the_pod_path() -> None:
    spec = make_spec()
    local = "file:///var/lib/foresight/pvc/foresight-artifacts/../foresight-artifacts/forecasttasks/sre/q/v1"
    assert public_artifact_uri(spec, local) == "pvc://foresight-artifacts/forecasttasks/sre/q/v1"
    assert public_artifact_uri(spec, "s3://b/forecasttasks/sre/q/v1") == "s3://b/forecasttasks/sre/q/v1"


def finished_job(name: str, *, ok: bool) -> dict[str, object]:
    cond = {
        "type": "Complete" if ok else "Failed",
        "status": "True",
        "reason": "" if ok else "BackoffLimitExceeded",
    }
    return {
        "metadata": {"name": name, "annotations": {"foresight.dev/scheduled-time": "2026-03-01T06:15:00Z"}},
        "status": {"conditions": [cond], "completionTime": "2026-03-01T06:16:00Z"},
    }


def pod(message: str, exit_code: int) -> dict[str, object]:
    term = {"exitCode": exit_code, "message": message, "finishedAt": "2026-03-01T06:15:59Z"}
    return {"status": {"containerStatuses": [{"state": {"terminated": term}}]}}


SUCCESS = {
    "phase": "Ready", "reason": "ForecastsWritten", "message": "3 series forecast 6h ahead with ets",
    "mode": "train", "seriesCount": 3, "model": "ets",
    "backtest": [{"model": "ets", "mase": 0.8, "mae": 2.0}, {"model": "linear", "mase": 1.4, "mae": None}],
    "artifactUri": "file:///x/foresight-artifacts/forecasttasks/sre/q/v20260301T061500Z",
    "lastTrainTime": "2026-03-01T06:15:10Z", "lastPredictTime": "2026-03-01T06:15:10Z",
}  # fmt: skip


@pytest.mark.parametrize(
    ("doc", "code", "outcome", "reason"),
    [
        ({"phase": "Failed", "reason": "PromQLError", "message": "bad_data: parse error", "retryable": False},
         2, Outcome.BLOCKED, "PromQLError"),
        ({"phase": "Failed", "reason": "PrometheusUnavailable", "message": "refused", "retryable": True},
         3, Outcome.RETRY, "PrometheusUnavailable"),
        ({"phase": "Failed", "reason": "RunFailed", "message": "predict failed", "retryable": False},
         1, Outcome.FAILED, "RunFailed"),
    ],
)  # fmt: skip
def test_run_results_are_classified_from_the_termination_message(
    doc: dict[str, object], code: int, outcome: Outcome, reason: str
) -> None:
    h = read_run_result(
        finished_job("q-predict", ok=False), [pod(json.dumps(doc), code)], kind="predict", now=T0
    )
    assert (h.outcome, h.reason, h.message) == (outcome, reason, doc["message"])
    assert h.scheduled == T0


def test_a_pod_that_left_no_json_is_a_plain_failure_with_its_log_tail() -> None:
    h = read_run_result(
        finished_job("q", ok=False), [pod("Traceback ... MemoryError", 137)], kind="train", now=T0
    )
    assert h.outcome is Outcome.FAILED and h.reason == "RunFailed" and "MemoryError" in h.message


def harvest(doc: dict[str, object], outcome: Outcome) -> Harvest:
    result = ForecastRunResult.model_validate(doc)
    reason, message = str(doc["reason"]), str(doc["message"])
    return Harvest("q-predict-x", "predict", T0, 1, outcome, reason, message, T0, result)


IDLE = Plan(None, T0 + timedelta(minutes=15), 0)


def test_status_from_a_successful_run() -> None:
    status = task_status(
        {"activeRun": "q-predict-x", "phase": "Predicting"}, spec=make_spec(), generation=2, now=T0,
        harvests=[harvest(SUCCESS, Outcome.SUCCEEDED)], active=None, plan=IDLE, degraded_after=3,
    )  # fmt: skip
    assert status["phase"] == "Ready" and "activeRun" not in status
    assert status["seriesCount"] == 3 and status["model"] == "ets" and status["runs"] == 1
    assert status["backtest"] == [{"model": "ets", "mase": 0.8, "mae": 2.0}, {"model": "linear", "mase": 1.4}]
    assert status["artifactUri"] == "pvc://foresight-artifacts/forecasttasks/sre/q/v20260301T061500Z"
    assert (
        status["lastPredictTime"] == "2026-03-01T06:15:10Z"
        and status["nextRunTime"] == "2026-03-01T06:30:00Z"
    )
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"], ready["observedGeneration"]) == ("True", "ForecastsWritten", 2)


def test_permanent_failure_sets_ready_false_with_the_reason_and_message() -> None:
    doc = {"reason": "PromQLError", "message": 'bad_data: 1:5: parse error: unexpected "}"'}
    status = task_status(
        {}, spec=make_spec(), generation=1, now=T0, harvests=[harvest(doc, Outcome.BLOCKED)], active=None,
        plan=Plan(None, None, 0, "blocked"), degraded_after=3,
    )  # fmt: skip
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "PromQLError")
    assert 'parse error: unexpected "}"' in ready["message"]
    assert status["phase"] == "Failed" and "nextRunTime" not in status
    assert not any(c["type"] == "Degraded" for c in status["conditions"])


def test_repeated_temporary_failures_degrade_and_a_success_recovers() -> None:
    doc = {"reason": "PrometheusUnavailable", "message": "connection refused"}
    status: dict[str, object] = {}
    for _ in range(3):
        status = task_status(
            status, spec=make_spec(), generation=1, now=T0, harvests=[harvest(doc, Outcome.RETRY)],
            active=None, plan=Plan(None, T0, 0, "backoff"), degraded_after=3,
        )  # fmt: skip
    conds = {c["type"]: c for c in status["conditions"]}  # type: ignore[attr-defined]
    assert status["consecutiveFailures"] == 3
    assert (conds["Degraded"]["status"], conds["Degraded"]["reason"]) == ("True", "PrometheusUnavailable")
    assert conds["Ready"]["status"] == "False"
    status = task_status(
        status, spec=make_spec(), generation=1, now=T0, harvests=[harvest(SUCCESS, Outcome.SUCCEEDED)],
        active=None, plan=IDLE, degraded_after=3,
    )  # fmt: skip
    conds = {c["type"]: c for c in status["conditions"]}  # type: ignore[attr-defined]
    assert status["consecutiveFailures"] == 0
    assert conds["Degraded"]["status"] == "False" and conds["Ready"]["status"] == "True"


def test_an_active_run_shows_in_phase_and_progressing() -> None:
    status = task_status(
        {}, spec=make_spec(), generation=1, now=T0, harvests=[], active=("q-train-x", "train"),
        plan=Plan(None, T0 + timedelta(minutes=15), 0, "active"), degraded_after=3, started_why="first run",
    )  # fmt: skip
    prog = next(c for c in status["conditions"] if c["type"] == "Progressing")
    assert status["phase"] == "Training" and status["activeRun"] == "q-train-x"
    assert prog["status"] == "True" and "first run" in prog["message"]


def test_data_quality_goes_to_status_and_stale_series_raise_the_stale_data_condition() -> None:
    stale = "1 of 3 series have had no sample for 3 steps or more before 2026-03-01T06:00:00Z: user=c ..."
    quality = {"series": 3, "staleSeries": 1, "missingPoints": 4, "warnings": ["2 series miss ..."],
               "staleMessage": stale}  # fmt: skip
    status = task_status(
        {}, spec=make_spec(), generation=1, now=T0, harvests=[harvest({**SUCCESS, "dataQuality": quality},
        Outcome.SUCCEEDED)], active=None, plan=IDLE, degraded_after=3,
    )  # fmt: skip
    assert status["dataQuality"]["staleSeries"] == 1 and status["dataQuality"]["missingPoints"] == 4
    assert status["dataQuality"]["warnings"] == ["2 series miss ..."]
    assert "staleMessage" not in status["dataQuality"]  # it is the condition's message
    conds = {c["type"]: c for c in status["conditions"]}
    assert (conds["StaleData"]["status"], conds["StaleData"]["reason"]) == ("True", "SourceDataStale")
    assert conds["StaleData"]["message"] == stale
    assert conds["Ready"]["status"] == "True"  # the other series' forecasts were written

    current = {"series": 3, "staleSeries": 0}
    status = task_status(
        status, spec=make_spec(), generation=1, now=T0, harvests=[harvest({**SUCCESS, "dataQuality": current},
        Outcome.SUCCEEDED)], active=None, plan=IDLE, degraded_after=3,
    )  # fmt: skip
    conds = {c["type"]: c for c in status["conditions"]}
    assert (conds["StaleData"]["status"], conds["StaleData"]["reason"]) == ("False", "DataCurrent")
    assert status["dataQuality"]["staleSeries"] == 0
    ForecastTaskStatus.model_validate(status)  # what the CRD's status schema admits
