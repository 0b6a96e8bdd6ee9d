"""The ForecastTask run's contract: what the runtime writes is what the operator reads.

The runtime's :class:`~foresight.forecast.result.RunResult` goes out through the contract's
termination message; the operator's :func:`read_run_result` reads it back from a pod status the
way the kubelet reports it, and the two must agree field by field, shrunk messages included.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from foresight.api.forecasttask import ForecastTaskSpec
from foresight.contract.forecast import (
    BAD_INPUT_REASONS,
    EXIT_BAD_INPUT,
    EXIT_READY,
    EXIT_TEMPORARY,
    QUALITY_WARNINGS_KEPT,
    DataQualityReport,
    ForecastRunResult,
    pushgateway_group,
)
from foresight.contract.termination import TERMINATION_MESSAGE_LIMIT, termination_log_path
from foresight.forecast.pipeline import run_forecast_task
from foresight.forecast.result import ModelScore, RunResult
from foresight.run.local import exit_code
from foresight.run.memory import MemoryPrometheus
from foresight_operator.handlers.forecasttask.results import read_run_result
from foresight_operator.schedule import Outcome

T0 = datetime(2026, 3, 1, 6, 15, tzinfo=UTC)
STEP = 3600
NOW = 1_770_000_000 // STEP * STEP


def pod_with(message: str, exit_code: int) -> dict[str, Any]:
    term = {"exitCode": exit_code, "message": message, "finishedAt": "2026-03-01T06:15:59Z"}
    return {"status": {"containerStatuses": [{"state": {"terminated": term}}]}}


def finished_job(ok: bool) -> dict[str, Any]:
    cond = {"type": "Complete" if ok else "Failed", "status": "True"}
    annotations = {"foresight.dev/scheduled-time": "2026-03-01T06:15:00Z"}
    return {"metadata": {"name": "q-train-x", "annotations": annotations}, "status": {"conditions": [cond]}}


def test_a_successful_run_reads_back_field_for_field() -> None:
    result = RunResult(
        "Ready", "ForecastsWritten", "4 series forecast", mode="train", series_count=4, model="auto(ets:4)",
        backtest=[ModelScore("auto", 0.5, 1.0), ModelScore("linear", None, 2.0)], artifact_uri="file:///a/b",
        artifact_sha256="c" * 64, trained_models=[], last_train_time=NOW, last_predict_time=NOW,
        pushed=True, warnings=["one series had gaps"],
    )  # fmt: skip
    written = result.as_message()
    text = written.termination_message()
    h = read_run_result(finished_job(ok=True), [pod_with(text, 0)], kind="train", now=T0)
    assert h.result == written  # the operator's typed view is the runtime's, field for field
    assert (h.outcome, h.reason, h.message) == (Outcome.SUCCEEDED, "ForecastsWritten", "4 series forecast")
    assert h.result is not None and h.result.backtest is not None
    assert [(r.model, r.mase, r.mae) for r in h.result.backtest] == [
        ("auto", 0.5, 1.0),
        ("linear", None, 2.0),
    ]
    assert h.result.last_train_time == datetime.fromtimestamp(NOW, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert h.trained and h.result.trained_models == []


def test_a_message_shrunk_to_the_kubernetes_limit_still_reads_back() -> None:
    result = RunResult(
        "Ready", "ForecastsWritten", "x" * 5000, series_count=3, model="auto(ets:3)",
        backtest=[ModelScore(f"m{i}", float(i), float(i)) for i in range(40)],
        warnings=["w" * 300] * 30, artifact_uri="file:///a/b",
    )  # fmt: skip
    text = result.as_message().termination_message()
    assert len(text.encode()) <= TERMINATION_MESSAGE_LIMIT
    h = read_run_result(finished_job(ok=True), [pod_with(text, 0)], kind="predict", now=T0)
    assert h.result is not None and h.result.warning_count == 30 and h.result.warnings is None
    assert h.result.series_count == 3 and h.result.artifact_uri == "file:///a/b"


def test_data_quality_keeps_its_counts_and_stale_message_when_the_message_is_shrunk() -> None:
    names = ", ".join(f"group=team-{i},user=someone-with-a-long-name-{i},cluster=gpu-east" for i in range(5))
    quality = DataQualityReport(
        series=2000, missing_points=12345, stale_series=40, outlier_series=3, invalid_capacity_series=7,
        warnings=[f"class {k}: {names} ... what to do" for k in range(5)],
        stale_message=f"40 of 2000 series have had no sample for 3 steps or more: {names} and 35 more ...",
    )  # fmt: skip
    result = RunResult(
        "Ready", "ForecastsWritten", "x" * 5000, series_count=2000, model="auto(ets:2000)",
        backtest=[ModelScore(f"m{i}", float(i), float(i)) for i in range(40)], warnings=["w" * 300] * 30,
        data_quality=quality,
    )  # fmt: skip
    text = result.as_message().termination_message()
    assert len(text.encode()) <= TERMINATION_MESSAGE_LIMIT
    h = read_run_result(finished_job(ok=True), [pod_with(text, 0)], kind="predict", now=T0)
    assert h.result is not None and h.result.data_quality is not None
    back = h.result.data_quality
    assert (back.series, back.missing_points, back.stale_series, back.invalid_capacity_series) == (
        2000,
        12345,
        40,
        7,
    )
    assert back.stale_message is not None and back.stale_message.startswith("40 of 2000 series")
    assert 1 <= len(back.warnings) <= QUALITY_WARNINGS_KEPT


@pytest.mark.parametrize(
    ("reason", "retryable", "outcome"),
    [("PromQLError", False, Outcome.BLOCKED), ("PrometheusUnavailable", True, Outcome.RETRY),
     ("RunFailed", False, Outcome.FAILED)],
)  # fmt: skip
def test_a_failed_run_exits_with_the_code_the_operator_classifies_the_same_way(
    reason: str, retryable: bool, outcome: Outcome
) -> None:
    result = RunResult("Failed", reason, "what to fix", retryable=retryable)
    code = exit_code(result)  # what the pod exits with
    assert code == (EXIT_BAD_INPUT if reason in BAD_INPUT_REASONS else EXIT_TEMPORARY if retryable else 1)
    h = read_run_result(
        finished_job(ok=False),
        [pod_with(result.as_message().termination_message(), code)],
        kind="train",
        now=T0,
    )
    assert (h.outcome, h.reason, h.message) == (outcome, reason, "what to fix")
    assert exit_code(RunResult("Ready", "ForecastsWritten", "ok")) == EXIT_READY


def test_a_crash_log_tail_is_no_result_and_a_foreign_document_is_none_either() -> None:
    assert ForecastRunResult.from_termination_message("Traceback (most recent call last): ...") is None
    assert ForecastRunResult.from_termination_message('{"phase": "Sideways", "reason": "x"}') is None
    assert ForecastRunResult.from_termination_message('{"reason": "x", "fromTheFuture": 1}') is not None


def test_the_writer_refuses_a_field_the_contract_does_not_know() -> None:
    with pytest.raises(ValueError, match="newField"):
        ForecastRunResult.of({"phase": "Ready", "reason": "ForecastsWritten", "newField": 1})


def test_nan_goes_out_as_null_and_the_message_stays_json() -> None:
    doc = json.loads(ForecastRunResult.of({"reason": "x", "backtest": [{"model": "m", "mase": float("nan")}]})
                     .termination_message())  # fmt: skip
    assert doc["backtest"] == [{"model": "m", "mase": None}]


def test_the_termination_log_path_follows_the_pod_environment() -> None:
    assert str(termination_log_path({})) == "/dev/termination-log"
    assert str(termination_log_path({"FORESIGHT_TERMINATION_LOG": "/t/log"})) == "/t/log"
    both = {"FORESIGHT_TERMINATION_LOG": "/t/log", "FORESIGHT_TERMINATION_MESSAGE_PATH": "/t/msg"}
    assert str(termination_log_path(both)) == "/t/msg"


def test_a_run_pushes_the_group_the_operator_deletes() -> None:
    ts = NOW - STEP * np.arange(8 * 24)[::-1]
    prom = MemoryPrometheus()
    prom.add("used_bytes", {"user": "a"}, ts, 50 + 5 * np.sin(2 * np.pi * np.arange(ts.size) / 24))
    spec = ForecastTaskSpec.model_validate(
        {"source": {"query": "used_bytes", "lookback": "168h", "step": "1h", "groupBy": ["user"]},
         "model": {"type": "naive", "backtestFolds": 1}, "horizon": "6h", "output": {"horizons": ["1h"]}}
    )  # fmt: skip
    keys: list[dict[str, str]] = []
    result = run_forecast_task(
        spec, name="quota", namespace="team-a", prometheus=prom, store=None, clock=lambda: NOW + 60,
        pushgateway=lambda _registry, key: keys.append(dict(key)), progress=None, mode="train",
    )  # fmt: skip
    assert result.ok, result.message
    assert keys == [pushgateway_group("team-a", "quota")]


def test_a_shard_pushes_its_own_group_and_stale_groups_are_those_no_shard_replaces() -> None:
    from foresight.contract.forecast import stale_groups, task_groups

    assert pushgateway_group("sre", "q") == {"namespace": "sre", "task": "q"}
    assert pushgateway_group("sre", "q", 2) == {"namespace": "sre", "task": "q", "shard": "2"}
    held = [
        {"job": "foresight", "namespace": "sre", "task": "q"},
        *({"job": "foresight", "namespace": "sre", "task": "q", "shard": str(i)} for i in range(4)),
        {"job": "foresight", "namespace": "sre", "task": "other", "shard": "0"},
        {"job": "foresight", "namespace": "dev", "task": "q"},
        {"job": "batch", "namespace": "sre", "task": "q"},
        {"job": "foresight", "namespace": "sre", "task": "q", "instance": "x"},  # not a grouping of ours
    ]
    assert len(task_groups(held, "sre", "q")) == 5
    assert [g.get("shard") for g in stale_groups(held, "sre", "q", 3)] == [None, "3"]
    assert sorted(str(g.get("shard")) for g in stale_groups(held, "sre", "q", 1)) == ["0", "1", "2", "3"]


def test_plan_and_shard_results_read_back_field_for_field() -> None:
    plan = RunResult("Ready", "Planned", "24 series planned in 3 shards", mode="train", series_count=24)
    plan.sharding = {"stage": "plan", "planId": "q-train-x", "shardSeries": [9, 7, 8], "shardMode": "train",
                     "planPrefix": "forecasttasks/sre/q/plans/q-train-x", "readQueries": 2,
                     "readSamples": 1900, "readMaxSamples": 1000, "readOverBudget": 0}  # fmt: skip
    written = plan.as_message()
    h = read_run_result(
        finished_job(ok=True), [pod_with(written.termination_message(), 0)], kind="train", now=T0
    )
    assert h.result == written
    assert (h.result.stage, h.result.shard_series, h.result.shard_mode) == ("plan", [9, 7, 8], "train")
    shard = RunResult("Failed", "PrometheusUnavailable", "down", retryable=True, warnings=["w" * 3000] * 3)
    shard.sharding = {"stage": "shard", "shard": 2, "planId": "q-train-x"}
    text = shard.as_message().termination_message()
    assert len(text.encode()) <= TERMINATION_MESSAGE_LIMIT
    back = ForecastRunResult.from_termination_message(text)
    assert back is not None and (back.stage, back.shard, back.plan_id) == ("shard", 2, "q-train-x")
