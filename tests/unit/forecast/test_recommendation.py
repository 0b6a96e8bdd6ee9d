"""A ForecastTask run's capacity recommendation (spec.recommendation) against the in-memory Prometheus.

The built-in ``postgresql-oltp`` library is stored and activated in the task's artifact store the way
the fetch Job does it; the task forecasts a database's QPS and data size (one query, two series told
apart by a ``signal`` label); the run must write the architecture the predicted load needs next to
today's, as gauges and as the status document, and say why when it cannot.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from foresight.api.forecasttask import ForecastTaskSpec
from foresight.api.recommendation import RecommendationStatus
from foresight.artifacts import LocalArtifactStore
from foresight.contract.forecast import ForecastRunResult
from foresight.contract.library import store_prefix
from foresight.forecast.pipeline import run_forecast_task
from foresight.forecast.result import RunEvent
from foresight.library.builtin import builtin_path
from foresight.library.store import LibraryStore
from foresight.library.verify import verify_path
from foresight.run.memory import MemoryPrometheus

from .test_pipeline import Recorder, samples

STEP = 3600
NOW = 1_770_000_000 // STEP * STEP
NAMESPACE = "team-a"
GB = 1e9


def database_load() -> MemoryPrometheus:
    """A week of a steady 5,000 QPS and a data size growing 200 GB an hour to 500 GB now: in 12 h
    it will be about 2.9 TB, which the library sizes as a distributed database, not a primary with
    a standby."""
    ts = NOW - STEP * np.arange(7 * 24)[::-1]
    hours_before_now = (ts[-1] - ts) / STEP
    prom = MemoryPrometheus()
    prom.add("db_load", {"signal": "qps", "service": "orders"}, ts, np.full(ts.size, 5000.0))
    prom.add("db_load", {"signal": "bytes", "service": "orders"}, ts, 500 * GB - 200 * GB * hours_before_now)
    return prom


def task(**recommendation: Any) -> ForecastTaskSpec:
    rec: dict[str, Any] = {
        "library": "postgresql-oltp",
        "horizon": "12h",
        "inputs": {
            "qps": {"series": {"signal": "qps"}},
            "total_data_size_gb": {"series": {"signal": "bytes"}, "scale": 1e-9},
        },
        "constants": {"need_high_availability": True},
        **recommendation,
    }
    return ForecastTaskSpec.model_validate(
        {
            "source": {
                "query": "db_load",
                "lookback": "168h",
                "step": "1h",
                "groupBy": ["signal", "service"],
            },
            "model": {"type": "linear", "backtestFolds": 1},
            "horizon": "12h",
            "output": {"horizons": ["12h"]},
            "recommendation": rec,
        }
    )


def activate_builtin(store: LocalArtifactStore, namespace: str = NAMESPACE) -> None:
    report = verify_path(builtin_path("postgresql-oltp"), Path(tempfile.mkdtemp()))
    assert report.library is not None and report.raw is not None
    lib_store = LibraryStore(store, store_prefix(namespace))
    ref, _, _ = lib_store.put_version(
        report.library, report.raw.cases, models_root=None, verification={"checksum": report.checksum}
    )
    lib_store.activate("postgresql-oltp", ref, owner=f"{namespace}/pg")


def run(
    spec: ForecastTaskSpec, store: LocalArtifactStore, publisher: Recorder, events: list[RunEvent]
) -> Any:
    return run_forecast_task(
        spec,
        name="orders-db",
        namespace=NAMESPACE,
        prometheus=database_load(),
        pushgateway=publisher,
        store=store,
        clock=lambda: NOW + 60,
        progress=events.append,
        mode="train",
    )


@pytest.fixture
def store(tmp_path: Path) -> LocalArtifactStore:
    return LocalArtifactStore(tmp_path / "artifacts")


def test_the_predicted_load_gets_its_architecture_next_to_todays(store: LocalArtifactStore) -> None:
    activate_builtin(store)
    publisher, events = Recorder(), []
    result = run(task(), store, publisher, events)
    assert result.ok, result.message
    rec = RecommendationStatus.model_validate(result.recommendation).to_wire()  # the API's shape
    assert (rec["library"], rec["libraryVersion"], rec["horizon"], rec["reason"]) == (
        "postgresql-oltp",
        "2026.12",
        "12h",
        "Recommended",
    )
    predicted, current = rec["predicted"], rec["current"]
    assert predicted["inputs"]["total_data_size_gb"] == pytest.approx(2900, rel=0.02)
    assert predicted["inputs"]["qps"] == pytest.approx(5000, rel=0.01)
    assert current["inputs"]["total_data_size_gb"] == pytest.approx(500, rel=1e-6)
    assert (current["architecture"], predicted["architecture"]) == ("primary_standby", "distributed")
    assert predicted["nodes"] > current["nodes"] >= 2 and len(predicted["cases"]) == 5
    assert all(c.startswith("pg-") for c in predicted["cases"] + current["cases"])
    assert rec["changed"] is True and "distributed" in rec["message"] and "(a change)" in rec["message"]
    assert any(e.kind == "recommended" and e.data["changed"] is True for e in events)

    ((_, text),) = publisher.pushes
    nodes = {s[0]["load"]: s for s in samples(text, "foresight_recommended_nodes")}
    assert nodes["predicted"][1] == predicted["nodes"] and nodes["current"][1] == current["nodes"]
    assert nodes["predicted"][0]["architecture"] == "distributed"
    assert nodes["predicted"][0] | {"load": "", "architecture": ""} == {
        "task": "orders-db", "namespace": NAMESPACE, "library": "postgresql-oltp",
        "library_version": "2026.12", "horizon": "12h", "load": "", "architecture": "",
    }  # fmt: skip
    cost = samples(text, "foresight_recommended_cost")
    assert {s[0]["currency"] for s in cost} == {"USD"} and all(v > 0 for _, v in cost)
    for name in ("shards", "replicas", "proxies"):
        assert len(samples(text, f"foresight_recommended_{name}")) == 2, name
    for name in ("foresight_recommendation_confidence",):
        assert len(samples(text, name)) == 2, name
    assert [v for _, v in samples(text, "foresight_recommendation_changed")] == [1.0]
    assert sorted(v for _, v in samples(text, "foresight_recommendation_covered")) == [1.0, 1.0]
    assert samples(text, "foresight_forecast")  # the forecasts themselves are still there

    # The termination message carries it to the operator, under the size Kubernetes keeps.
    text_msg = result.as_message().termination_message()
    assert len(text_msg.encode()) <= 4096
    carried = ForecastRunResult.from_termination_message(text_msg)
    assert carried is not None and carried.recommendation == result.recommendation


def test_without_an_active_library_the_forecasts_are_written_and_the_status_says_what_to_do(
    store: LocalArtifactStore,
) -> None:
    activate_builtin(store, namespace="another-team")  # another namespace's pointer is not this task's
    publisher, events = Recorder(), []
    result = run(task(), store, publisher, events)
    assert result.ok and publisher.pushes, result.message
    rec = result.recommendation
    assert rec is not None and rec["reason"] == "LibraryNotActive"
    assert "modellibraries/team-a/postgresql-oltp/active.json" in rec["message"]
    assert "ModelLibrary" in rec["message"] and "predicted" not in rec
    assert any("no capacity recommendation" in w for w in result.warnings)
    assert not samples(publisher.pushes[0][1], "foresight_recommended_nodes")
    RecommendationStatus.model_validate(rec)


def test_a_selector_that_matches_no_series_names_the_input(store: LocalArtifactStore) -> None:
    activate_builtin(store)
    spec = task(inputs={"qps": {"series": {"signal": "requests"}}})
    result = run(spec, store, Recorder(), [])
    assert result.ok and result.recommendation is not None
    assert result.recommendation["reason"] == "InputsUnavailable"
    assert "qps" in result.recommendation["message"] and "groupBy" in result.recommendation["message"]


def test_a_load_beyond_the_library_is_outside_coverage_not_a_guess(store: LocalArtifactStore) -> None:
    activate_builtin(store)
    # 1e9 GB is far beyond every case: the recommender refuses instead of extrapolating.
    spec = task(inputs={"total_data_size_gb": {"series": {"signal": "bytes"}, "scale": 1.0}})
    publisher = Recorder()
    result = run(spec, store, publisher, [])
    rec = result.recommendation
    assert rec is not None and rec["reason"] == "OutsideCoverage"
    assert rec["predicted"]["covered"] is False and rec["predicted"]["reasons"]
    assert "architecture" not in rec["predicted"]
    covered = {
        s[0]["load"]: s[1] for s in samples(publisher.pushes[0][1], "foresight_recommendation_covered")
    }
    assert covered == {"predicted": 0.0, "current": 0.0}
    assert json.dumps(rec)  # plain JSON for the termination message
