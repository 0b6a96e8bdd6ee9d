"""The named steps of a ForecastTask run, one at a time (the whole run is in test_pipeline.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from foresight.api.forecasttask import ForecastTaskSpec
from foresight.forecast.errors import ForecastRunError
from foresight.forecast.pipeline import RunMode, TaskRun, needs_training, plan_run, spec_digest
from foresight.prometheus.errors import PrometheusUnavailable, PushgatewayUnavailable
from foresight.run.memory import MemoryPrometheus
from prometheus_client import CollectorRegistry

NOW = 1_770_000_000.0
DAY = 86400


def spec(**output: Any) -> ForecastTaskSpec:
    return ForecastTaskSpec.model_validate({
        "source": {"query": "used_bytes", "lookback": "168h", "step": "1h"},
        "model": {"type": "seasonal_naive"},
        "horizon": "12h",
        "output": {"horizons": ["1h", "6h", "12h"], **output},
    })  # fmt: skip


def task_run(task: ForecastTaskSpec, pushgateway: Any = None) -> TaskRun:
    return TaskRun(
        task, name="quota", namespace="team-a", prometheus=MemoryPrometheus(), pushgateway=pushgateway,
        store=None, now=NOW, emit=lambda event: None, remote_writer=None,
    )  # fmt: skip


def test_the_plan_puts_the_specs_durations_on_the_grid() -> None:
    plan = plan_run(spec())
    assert (plan.step, plan.lookback, plan.horizon) == (3600, 168 * 3600, 12)
    assert plan.out_horizons == (("1h", 1), ("6h", 6), ("12h", 12))


@pytest.mark.parametrize("horizon", ["90m", "13h"])
def test_an_output_horizon_off_the_grid_or_past_the_horizon_stops_the_run_before_any_query(
    horizon: str,
) -> None:
    task = spec()
    task.output.horizons = [horizon]  # what admission would refuse, in case it did not
    with pytest.raises(ForecastRunError, match=f"output.horizons entry '{horizon}'.*multiples of the step"):
        plan_run(task)


@pytest.mark.parametrize(
    ("mode", "saved", "trains"),
    [
        ("train", None, True),
        ("train", {"specDigest": "same", "trainedAt": NOW}, True),
        ("predict", {"specDigest": "same", "trainedAt": NOW - 30 * DAY}, False),
        ("auto", None, True),
        ("auto", {"specDigest": "other", "trainedAt": NOW}, True),
        ("auto", {"specDigest": "same", "trainedAt": NOW - DAY}, True),  # exactly retrainEvery old
        ("auto", {"specDigest": "same", "trainedAt": NOW - DAY + 1}, False),
        ("auto", {"specDigest": "same"}, True),  # no training time: as old as can be
    ],
)
def test_a_run_trains_when_its_mode_says_or_auto_finds_no_fresh_model_for_this_spec(
    mode: RunMode, saved: Mapping[str, Any] | None, trains: bool
) -> None:
    assert needs_training(mode, saved, digest="same", now=NOW, retrain_every=DAY) is trains


def test_predicting_without_a_saved_model_says_to_train_and_with_another_specs_model_warns() -> None:
    run = task_run(spec())
    with pytest.raises(ForecastRunError, match=r"no trained model under \(no artifact store\).*mode train"):
        run.decide_training("predict", None)
    assert run.decide_training("predict", {"version": "v1", "specDigest": "0ld"}) is False
    assert run.warnings == [
        f"the saved model v1 was trained for an earlier spec (digest 0ld, now {spec_digest(spec())}); run "
        "mode train to retrain it"
    ]


def test_whatever_the_publisher_could_not_reach_is_reported_as_the_pushgateway() -> None:
    def down(registry: CollectorRegistry, key: Mapping[str, str]) -> None:
        assert dict(key) == {"namespace": "team-a", "task": "quota"}
        raise PrometheusUnavailable("http://127.0.0.1:9091", "connection refused", attempts=4)

    run = task_run(spec(), pushgateway=down)
    with pytest.raises(PushgatewayUnavailable) as raised:
        run.push([])
    assert (raised.value.url, raised.value.attempts, run.step) == ("http://127.0.0.1:9091", 4, "push")


def test_write_back_without_a_pushgateway_or_a_store_writes_nothing_and_says_so() -> None:
    run = task_run(spec())
    assert run.push([]) is False
    assert run.expose(None) is None  # type: ignore[arg-type]  # not read without a store
    assert run.warnings == [
        "output.mode is pushgateway but no Pushgateway was given: nothing pushed",
        "output.mode is scrape but there is no artifact store to keep the exposition in: nothing published",
    ]
