"""Write-back through real servers: Pushgateway scraped by Prometheus, serving, remote write."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pytest
import requests
from foresight.forecast.writeback import forecast_metrics, to_registry
from foresight.prometheus import PrometheusUnavailable, PushgatewayError, RetryPolicy
from foresight.prometheus.pushgateway import delete_group, push, serve_registry
from foresight.prometheus.remote_write import remote_write
from foresight.timeseries import Forecast
from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.core import Metric

from tests.polling import wait_for
from tests.servers.prometheus import PrometheusServer, PushgatewayServer, free_port

pytestmark = pytest.mark.integration

STEP = 3600


def forecast(keys: list[dict[str, str]], origin: int, horizon: int = 24) -> Forecast:
    point = np.array([[100.0 * (i + 1) + h for h in range(1, horizon + 1)] for i in range(len(keys))])
    return Forecast(
        origin=origin,
        step=STEP,
        keys=keys,
        point=point,
        lower=point - 10,
        upper=point + 10,
        model=["ets"] * len(keys),
    )


def gateway_text(pg: PushgatewayServer, task: str = "quota-wb") -> str:
    """The gateway's exposition lines of one task's group (the gateway is shared by the session)."""
    text = requests.get(pg.url + "/metrics", timeout=5).text
    return "\n".join(line for line in text.splitlines() if f'task="{task}"' in line)


def test_pushed_forecast_is_queryable_in_prometheus_and_deleted_with_the_group(
    prometheus: PrometheusServer, pushgateway: PushgatewayServer
) -> None:
    origin = int(time.time()) // STEP * STEP
    keys = [{"user": "alice", "namespace": "team-a"}, {"user": "bob"}]
    fams = forecast_metrics(
        forecast(keys, origin),
        task="quota-wb",
        namespace="ns1",
        horizons=["1h", "6h"],
        threshold=210.0,
        last_run={"predict": float(origin)},
    )
    group = {"namespace": "ns1", "task": "quota-wb"}
    push(pushgateway.url, to_registry(fams), grouping_key=group)

    result = wait_for(
        lambda: prometheus.query('foresight_forecast{horizon="6h",task="quota-wb"}'),
        "the pushed forecast scraped",
    )
    by_user = {r["metric"]["user"]: r for r in result}
    assert set(by_user) == {"alice", "bob"}
    assert float(by_user["alice"]["value"][1]) == 106.0 and float(by_user["bob"]["value"][1]) == 206.0
    alice = by_user["alice"]["metric"]
    # honor_labels keeps the pushed job and grouping labels; the series' own namespace is renamed.
    assert (
        alice["job"] == "foresight" and alice["namespace"] == "ns1" and alice["series_namespace"] == "team-a"
    )
    ttt = prometheus.query('foresight_time_to_threshold_seconds{task="quota-wb",bound="point"}')
    values = {r["metric"]["user"]: r["value"][1] for r in ttt}
    assert values["alice"] == "+Inf" and float(values["bob"]) == 10 * STEP

    # A second push replaces the whole group: bob's series are gone, nothing half-merged.
    fams2 = forecast_metrics(forecast(keys[:1], origin), task="quota-wb", namespace="ns1", horizons=["6h"])
    push(pushgateway.url, to_registry(fams2), grouping_key=group)
    text = gateway_text(pushgateway)
    assert 'user="alice"' in text and 'user="bob"' not in text and "foresight_time_to_threshold" not in text

    delete_group(pushgateway.url, grouping_key=group)
    assert 'task="quota-wb"' not in gateway_text(pushgateway)


def test_push_errors_are_mapped(pushgateway: PushgatewayServer) -> None:
    sleeps: list[float] = []
    reg = CollectorRegistry()
    Gauge("foresight_probe", "probe", registry=reg).set(1)
    with pytest.raises(PrometheusUnavailable) as ei:
        push(
            f"http://127.0.0.1:{free_port()}",
            reg,
            grouping_key={"task": "x"},
            retry=RetryPolicy(attempts=3, base_delay=0.1),
            sleep=sleeps.append,
        )
    assert ei.value.attempts == 3 and sleeps == [0.1, 0.2]
    # Client timestamps are refused by the Pushgateway: a permanent error carrying its message.
    stamped = Metric("foresight_probe", "probe", "gauge")
    stamped.add_sample("foresight_probe", {}, 1.0, timestamp=1_700_000_000)
    with pytest.raises(PushgatewayError) as pe:
        push(
            pushgateway.url,
            to_registry([stamped]),
            grouping_key={"task": "bad"},
            retry=RetryPolicy(attempts=1),
        )
    assert pe.value.status == 400 and pe.value.detail


def test_serve_registry_serves_and_stops() -> None:
    origin = int(time.time()) // STEP * STEP
    fams = forecast_metrics(forecast([{"user": "a"}], origin), task="t", namespace="n", horizons=["1h"])
    server = serve_registry(to_registry(fams))
    try:
        body = requests.get(server.url, timeout=5).text
        assert 'foresight_forecast{horizon="1h",namespace="n",task="t",user="a"} 101.0' in body
    finally:
        server.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(server.url, timeout=2)


def test_remote_write_future_trajectory_into_out_of_order_prometheus(
    prometheus_factory: Callable[..., PrometheusServer],
) -> None:
    prom = prometheus_factory(out_of_order_time_window="30d")
    origin = int(time.time()) // STEP * STEP
    f = forecast([{"user": "alice"}, {"user": "bob"}], origin, horizon=6)
    f.point[1, 4] = np.nan  # non-finite steps are skipped, not written
    n = remote_write(prom.url + "/api/v1/write", f, task="traj", namespace="ns1")
    assert n == 3 * 2 * 6 - 1
    at = origin + 3 * STEP  # three hours in the future
    result = prom.query('foresight_forecast_trajectory{task="traj",bound="upper"}', time=at)
    values = {r["metric"]["user"]: float(r["value"][1]) for r in result}
    assert values == {"alice": 113.0, "bob": 213.0}
    point = prom.query(
        'foresight_forecast_trajectory{task="traj",user="bob",bound="point"}', time=origin + 5 * STEP
    )
    assert point == []  # the skipped NaN step
