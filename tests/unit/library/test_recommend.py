"""The nearest-case recommender: known neighbours, coverage, sizes and cost, leave-one-out, forecasts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from foresight.cli import main as cli_main
from foresight.library.forecast_inputs import (
    InputSource,
    inputs_from_forecast,
    recommend_from_forecast,
    recommendation_changed,
)
from foresight.library.recommend import Recommender, leave_one_out, parse_inputs
from foresight.library.records import Case, Library, Manifest
from foresight.timeseries import Forecast

from .conftest import case, spread_cases


def library(cases: list[dict[str, object]]) -> Library:
    m = Manifest(name="test-lib", version="1.0.0", description="d", licence="Apache-2.0")
    return Library(manifest=m, cases=tuple(Case.from_json(c) for c in cases))


def inputs_of(doc: dict[str, object]) -> dict[str, object]:
    return dict(doc["input"])  # type: ignore[call-overload]


def test_a_query_equal_to_a_case_finds_it_first_at_distance_zero() -> None:
    cases = spread_cases()
    rec = Recommender(library(cases), k=3).recommend(inputs_of(cases[7]))
    assert rec.covered and rec.reasons == ()
    assert rec.neighbours[0].case_id == "c007" and rec.neighbours[0].distance == 0.0
    assert [n.distance for n in rec.neighbours] == sorted(n.distance for n in rec.neighbours)
    assert len(rec.neighbours) == 3
    assert sum(n.weight for n in rec.neighbours) == pytest.approx(1.0)
    assert rec.architecture_type == "distributed" and rec.node_count == 12 and rec.shard_count == 6


def test_the_nearest_group_decides_sizes_and_the_cost_scales_per_machine() -> None:
    rec = Recommender(library(spread_cases())).recommend(
        {
            "qps": 600,
            "tps": 60,
            "total_data_size_gb": 22,
            "concurrent_connections": 55,
            "need_high_availability": False,
        }
    )
    assert rec.covered and rec.architecture_type == "standalone"
    assert rec.votes == {"standalone": pytest.approx(1.0)} and rec.confidence == pytest.approx(1.0)
    assert (rec.node_count, rec.replica_count, rec.proxy_count) == (1, 0, 0)
    assert rec.estimated_cost == pytest.approx(100.0)  # 100 per machine, one machine
    big = Recommender(library(spread_cases())).recommend({"qps": 85000, "total_data_size_gb": 5200})
    assert big.architecture_type == "distributed" and big.estimated_cost == pytest.approx(100.0 * (12 + 2))
    assert "need_high_availability" in big.features_missing and "qps" in big.features_used


def test_votes_are_distance_weighted_not_counted() -> None:
    def at(case_id: str, qps: float, arch: str) -> dict[str, object]:
        replicas = 0 if arch == "standalone" else 1
        return case(
            case_id,
            **{
                "input.qps": qps,
                "input.need_high_availability": False,
                "output.architecture_type": arch,
                "output.node_count": 1 + replicas,
                "output.replica_count": replicas,
            },
        )

    cases = [
        at("a1", 10000, "standalone"),
        at("a2", 11000, "standalone"),
        at("b1", 15000, "primary_standby"),
        at("b2", 16000, "primary_standby"),
        at("b3", 17000, "primary_standby"),
    ]
    rec = Recommender(library(cases), k=5).recommend({"qps": 10500})
    # Three of the five neighbours say primary_standby, but the two nearest say standalone.
    assert rec.covered and rec.architecture_type == "standalone"
    assert rec.votes["standalone"] > 0.5 > rec.votes["primary_standby"]
    assert {n.case_id for n in rec.neighbours[:2]} == {"a1", "a2"}


def test_outside_the_range_it_says_so_instead_of_guessing() -> None:
    rec = Recommender(library(spread_cases())).recommend({"qps": 5_000_000, "total_data_size_gb": 5000})
    assert not rec.covered and rec.architecture_type is None and rec.node_count is None
    assert any("qps=5,000,000 is above the library's largest (112,000)" in r for r in rec.reasons)
    assert len(rec.neighbours) == 5  # still shown, for reference
    low = Recommender(library(spread_cases())).recommend({"qps": 1, "total_data_size_gb": 20})
    assert not low.covered and "below the library's smallest" in low.reasons[0]


def test_a_requirement_no_case_has_is_outside_coverage() -> None:
    rec = Recommender(library(spread_cases())).recommend({"qps": 600, "need_disaster_recovery": True})
    assert not rec.covered
    assert rec.reasons == ("no case of the library has need_disaster_recovery=true",)


def test_a_gap_between_the_cases_is_outside_coverage() -> None:
    # Inside every range, but far from both groups: qps of the small group with the data of the big one.
    rec = Recommender(library(spread_cases())).recommend(
        {"qps": 500, "tps": 50, "total_data_size_gb": 5000, "concurrent_connections": 4000}
    )
    assert not rec.covered and "coverage radius" in rec.reasons[0]


def test_inputs_are_checked_and_named() -> None:
    with pytest.raises(ValueError, match="'qpz' is not a recommender input"):
        parse_inputs({"qpz": 1})
    with pytest.raises(ValueError, match="qps=-1: must be at least 0"):
        parse_inputs({"qps": "-1"})
    with pytest.raises(ValueError, match="expected true or false"):
        parse_inputs({"need_high_availability": "maybe"})
    with pytest.raises(ValueError, match="expected a finite number"):
        parse_inputs({"qps": "nan"})
    assert parse_inputs({"need_read_write_split": "yes", "data_growth_rate": "-20"}) == {
        "need_read_write_split": True,
        "data_growth_rate": -20.0,
    }
    with pytest.raises(ValueError, match="at least one load figure"):
        Recommender(library(spread_cases())).recommend({"need_high_availability": True})


def test_leave_one_out_on_separated_groups_is_perfect_and_beats_the_baseline() -> None:
    q = leave_one_out(library(spread_cases(40)), k=3)
    assert q is not None
    assert (q.held_out, q.k, q.abstained) == (40, 3, 0)
    assert q.architecture_accuracy == 1.0 and q.node_count_mae == 0.0
    # Without the held-out case, its own group is the minority: the baseline is always wrong here.
    assert q.baseline_accuracy == 0.0
    assert q.confusion == {"distributed": {"distributed": 20}, "standalone": {"standalone": 20}}
    assert q.to_json()["architectureAccuracy"] == 1.0


def test_leave_one_out_counts_an_isolated_case_as_outside_coverage() -> None:
    cases = [*spread_cases(40), case("lonely", **{"input.qps": 10_000_000, "input.tps": 10})]
    q = leave_one_out(library(cases), k=3)
    assert q is not None and q.abstained == 1 and q.confusion["primary_standby"] == {"none": 1}
    assert q.architecture_accuracy == pytest.approx(40 / 41)


def test_leave_one_out_samples_large_libraries_and_skips_tiny_ones() -> None:
    assert leave_one_out(library([case()])) is None
    q = leave_one_out(library(spread_cases(40)), max_held_out=10)
    assert q is not None and q.held_out == 10 and q.sampled


def test_builtin_libraries_beat_the_most_common_architecture() -> None:
    from foresight.library.builtin import BUILTINS, builtin_path
    from foresight.library.verify import verify_path

    for name in BUILTINS:
        report = verify_path(builtin_path(name), Path("/nonexistent-workdir-unused"))
        assert report.library is not None
        q = leave_one_out(report.library)
        assert q is not None
        assert q.architecture_accuracy > q.baseline_accuracy + 0.1, (name, q)
        assert q.node_count_mae is not None and q.baseline_node_count_mae is not None
        assert q.node_count_mae < q.baseline_node_count_mae, (name, q)


# -- forecasts -> inputs -> recommendation ---------------------------------------------------------


def forecast() -> Forecast:
    point = np.array([[400.0, 420.0, 440.0], [300.0, 330.0, 360.0], [5e12, 5.1e12, 5.2e12]])
    return Forecast(
        origin=1_800_000_000,
        step=3600,
        keys=[{"job": "api", "instance": "a"}, {"job": "api", "instance": "b"}, {"job": "db"}],
        point=point,
        lower=point * 0.9,
        upper=point * 1.1,
        model=["theta"] * 3,
    )


def test_forecast_values_at_a_horizon_become_inputs() -> None:
    sources = [
        InputSource("qps", horizon_seconds=3 * 3600, match={"job": "api"}, aggregate="sum"),
        InputSource(
            "total_data_size_gb", horizon_seconds=2 * 3600, match={"job": "db"}, scale=1e-9, bound="upper"
        ),
    ]
    values, detail = inputs_from_forecast(forecast(), sources, {"need_high_availability": "true"})
    assert values == {
        "qps": 800.0,
        "total_data_size_gb": pytest.approx(5610.0),
        "need_high_availability": True,
    }
    assert [(d.input, d.series) for d in detail] == [("qps", 2), ("total_data_size_gb", 1)]


def test_forecast_mapping_errors_name_the_input() -> None:
    with pytest.raises(ValueError, match="qps: horizon 5400s is not one of the forecast's steps"):
        inputs_from_forecast(forecast(), [InputSource("qps", horizon_seconds=5400)])
    with pytest.raises(ValueError, match="qps: no series with labels"):
        inputs_from_forecast(forecast(), [InputSource("qps", horizon_seconds=3600, match={"job": "web"})])
    with pytest.raises(ValueError, match="cannot come from a forecast"):
        InputSource("need_high_availability", horizon_seconds=3600)
    with pytest.raises(ValueError, match="given twice"):
        inputs_from_forecast(forecast(), [InputSource("qps", horizon_seconds=3600)], {"qps": 3})


def test_recommendation_for_the_predicted_load_and_whether_it_changed() -> None:
    rec = Recommender(library(spread_cases()))
    f = forecast()
    f.point[:2] *= 100  # the API's load grows a hundredfold over the horizon
    predicted = recommend_from_forecast(
        rec, f, [InputSource("qps", horizon_seconds=3 * 3600, match={"job": "api"})]
    )
    current = rec.recommend({"qps": 700})
    assert predicted.recommendation.architecture_type == "distributed"
    assert current.architecture_type == "standalone"
    assert recommendation_changed(current, predicted.recommendation)
    assert not recommendation_changed(current, current)
    assert predicted.to_json()["inputs"] == {"qps": 80000.0}


# -- the CLI -------------------------------------------------------------------------------------------


def test_recommend_cli_answers_from_a_builtin(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli_main(
        [
            "recommend",
            "--library",
            "postgresql-oltp",
            "--set",
            "qps=25000,total_data_size_gb=500,tps=4000",
            "--set",
            "need_high_availability=true",
            "-o",
            "json",
        ]
    )
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["covered"] and doc["architectureType"] in (
        "primary_standby",
        "read_write_split",
        "distributed",
    )
    assert len(doc["neighbours"]) == 5 and doc["neighbours"][0]["id"].startswith("pg-")
    assert doc["estimatedCost"] > 0 and doc["currency"] == "USD"


def test_recommend_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["recommend", "--library", "postgresql-oltp", "--set", "qps=1e9"]) == 3
    assert "outside what postgresql-oltp" in capsys.readouterr().out
    assert cli_main(["recommend", "--library", "postgresql-oltp", "--set", "qps"]) == 2
    assert cli_main(["recommend", "--library", "postgresql-oltp", "--set", "speed=3"]) == 2
    assert cli_main(["recommend", "--library", "no-such-library", "--set", "qps=3"]) == 1
    assert "built-in: mysql-tidb, postgresql-oltp" in capsys.readouterr().err
