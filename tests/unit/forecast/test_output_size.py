"""The output-size rule the operator applies: its gauge count is writeback's, its verdicts say what to do."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from foresight.api.forecasttask import ForecastTaskSpec
from foresight.api.output_size import (
    PUSHGATEWAY_MAX_SAMPLES,
    PUSHGATEWAY_WARN_SAMPLES,
    check_output_size,
    gauges_per_series,
)
from foresight.forecast.alerting import DEFAULT_RULE, AlertChoice, Assessment
from foresight.forecast.writeback import data_stale_family, forecast_metrics
from foresight.timeseries import Forecast


def spec(**overrides: Any) -> ForecastTaskSpec:
    doc: dict[str, Any] = {"source": {"query": "storage_used_bytes"}, **overrides}
    return ForecastTaskSpec.model_validate(doc)


@pytest.mark.parametrize(
    ("horizons", "threshold"),
    [(["1h", "6h", "24h"], True), (["1h"], False), (["1h", "2h", "3h", "4h"], True), ("every", True)],
)
def test_gauges_per_series_is_what_writeback_writes_in_the_steady_state(
    horizons: list[str] | str, threshold: bool
) -> None:
    output: dict[str, Any] = (
        {"horizons": ["6h"], "everyStep": True} if horizons == "every" else {"horizons": horizons}
    )
    s = spec(output=output, **({"threshold": {"capacity": {"value": 10.0}}} if threshold else {}))
    if horizons == "every":
        horizons = [f"{h}h" for h in range(1, 25)]  # every step of the default 24h horizon
    n, step, horizon = 7, 3600, 24
    keys = [{"user": f"u{i}"} for i in range(n)]
    point = np.linspace(1, 2, n * horizon).reshape(n, horizon)

    def fc(origin: int) -> Forecast:
        return Forecast(origin=origin, step=step, keys=keys, point=point, lower=point - 1, upper=point + 1,
                        model=["ets"] * n)  # fmt: skip

    exhaustion = Assessment(
        probability={h: np.full(n, 0.1) for h in horizons}, fired=np.zeros(n, dtype=bool),
        lead_seconds=np.full(n, np.inf), usable=np.ones(n, dtype=bool),
    )  # fmt: skip
    families = forecast_metrics(
        fc(7200), task="t", namespace="ns", horizons=horizons,
        threshold=np.full(n, 10.0) if threshold else None, actual_latest=np.ones(n), previous=fc(3600),
        realised_errors={h: {"mae": np.ones(n), "mape": np.ones(n)} for h in horizons},
        exhaustion=exhaustion if threshold else None,
        alert_rule=AlertChoice(DEFAULT_RULE, 1, 0, 0, None, "") if threshold else None,
        coverage={h: 0.8 for h in horizons},
    )  # fmt: skip
    families.append(data_stale_family(keys, np.zeros(n, dtype=bool), task="t", namespace="ns"))
    per_task = ("foresight_backtest_error", "foresight_band_coverage")
    per_series = sum(len(f.samples) for f in families if f.name not in per_task)
    assert per_series == n * gauges_per_series(s)


def test_small_tasks_and_scrape_mode_are_fine() -> None:
    ok = check_output_size(spec(), 2000)
    assert ok.level == "ok" and ok.message == "" and ok.samples == 2000 * gauges_per_series(spec())
    huge = 10 * PUSHGATEWAY_MAX_SAMPLES
    assert check_output_size(spec(output={"mode": "scrape"}), huge).level == "ok"
    assert check_output_size(spec(output={"mode": "none"}), huge).level == "ok"


def test_a_big_task_on_the_pushgateway_is_warned_then_refused_with_what_to_do() -> None:
    g = gauges_per_series(spec())
    warn = check_output_size(spec(), PUSHGATEWAY_WARN_SAMPLES // g + 1)
    assert warn.level == "warn"
    refuse = check_output_size(spec(), PUSHGATEWAY_MAX_SAMPLES // g + 1)
    assert refuse.level == "refuse" and refuse.samples > PUSHGATEWAY_MAX_SAMPLES
    for verdict in (warn, refuse):
        assert "output.mode: scrape" in verdict.message and "one endpoint per shard" in verdict.message
        assert f"{g} gauges" in verdict.message
    assert check_output_size(spec(), PUSHGATEWAY_WARN_SAMPLES // g).level == "ok"
