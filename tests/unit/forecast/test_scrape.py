"""Scrape mode in the runtime: a run writes its exposition into the task's store instead of pushing,
and ``foresight serve forecasts`` serves the newest one over HTTP on 127.0.0.1.

The pipeline reads the in-memory Prometheus stand-in (a real one is in
tests/integration/forecast/test_forecast_scrape.py, which also has a real Prometheus scrape the
server); the store is a real local directory and the server a real HTTP server in this process.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from foresight.artifacts import LocalArtifactStore
from foresight.forecast.result import RunEvent
from foresight.forecast.scrape import CONTENT_TYPE, StoredExposition, make_app
from foresight.prometheus.pushgateway import MetricsServer, serve_app

from tests.unit.forecast.scrape_runs import KEY, NOW, families, run


@pytest.fixture
def store(tmp_path: Path) -> LocalArtifactStore:
    return LocalArtifactStore(tmp_path / "artifacts")


class Serving:
    def __init__(self, source: StoredExposition, server: MetricsServer) -> None:
        self.source = source
        self.base = f"http://127.0.0.1:{server.port}"

    def get(self, path: str) -> requests.Response:
        return requests.get(self.base + path, timeout=5)


@pytest.fixture
def serving(store: LocalArtifactStore) -> Iterator[Serving]:
    source = StoredExposition(store, KEY, task="team-a/quota")
    server = serve_app(make_app(source), port=0, addr="127.0.0.1")
    try:
        yield Serving(source, server)
    finally:
        server.stop()


def test_a_scrape_run_writes_the_pushgateway_families_into_the_store_instead_of_pushing(
    store: LocalArtifactStore,
) -> None:
    events: list[RunEvent] = []
    first = run(store, now=NOW + 60, events=events)
    assert first.ok, first.message
    assert not first.pushed
    assert (
        first.exposition_uri == store.uri_for(KEY)
        and first.summary()["expositionUri"] == first.exposition_uri
    )
    assert store.get_bytes(KEY) == first.exposition  # exactly what the Pushgateway path would push
    fams = families(store.get_bytes(KEY))
    assert {
        "foresight_forecast", "foresight_forecast_lower", "foresight_forecast_upper",
        "foresight_time_to_threshold_seconds", "foresight_backtest_error",
        "foresight_last_run_timestamp_seconds",
    } <= set(fams)  # fmt: skip
    labels = fams["foresight_forecast"][0][0]
    assert (labels["task"], labels["namespace"]) == ("quota", "team-a") and "user" in labels
    ttt = {s["user"]: v for s, v in fams["foresight_time_to_threshold_seconds"] if s["bound"] == "point"}
    assert 3 * 3600 < ttt["dave"] < 7 * 3600
    assert "exposed" in [e.kind for e in events]

    # The next run replaces it, now with the anomaly flag against the first one's band.
    second = run(store, now=NOW + 3600 + 60)
    assert second.ok and store.get_bytes(KEY) == second.exposition != first.exposition
    assert "foresight_anomaly" in families(store.get_bytes(KEY))


def test_pushgateway_mode_writes_no_exposition_and_scrape_without_a_store_says_so(
    store: LocalArtifactStore,
) -> None:
    assert run(store, now=NOW + 60, mode="pushgateway").ok
    assert not store.exists(KEY)
    result = run(None, now=NOW + 60)
    assert result.ok and result.exposition_uri is None
    assert result.message.endswith("(not published)")
    assert any("no artifact store to keep the exposition in" in w for w in result.warnings)


def test_the_server_answers_an_empty_exposition_until_a_run_writes_one_then_the_newest(
    store: LocalArtifactStore, serving: Serving, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="foresight.forecast.scrape"):
        assert serving.source.refresh() is False
    assert "serving an empty one until the first run of team-a/quota writes it" in caplog.text
    resp = serving.get("/metrics")
    assert resp.status_code == 200 and resp.headers["Content-Type"] == CONTENT_TYPE
    assert families(resp.content) == {} and resp.text.startswith("# foresight: no run")
    health = serving.get("/healthz")
    assert health.status_code == 200 and health.json()["written"] is False

    first = run(store, now=NOW + 60)
    assert serving.source.refresh() is True
    assert serving.get("/metrics").content == first.exposition
    assert serving.source.refresh() is False  # unchanged: not read again
    doc = serving.get("/healthz").json()
    assert (doc["status"], doc["written"], doc["bytes"]) == ("ok", True, len(first.exposition))
    assert doc["sha256"] == store.stat(KEY).sha256

    second = run(store, now=NOW + 3600 + 60)
    assert serving.source.refresh() is True
    assert serving.get("/metrics").content == second.exposition
    assert requests.head(serving.base + "/metrics", timeout=5).content == b""
    assert serving.get("/nope").status_code == 404
    assert requests.post(serving.base + "/metrics", timeout=5).status_code == 405


def test_an_unreadable_store_is_unhealthy_but_the_last_exposition_is_still_served(
    store: LocalArtifactStore, serving: Serving
) -> None:
    first = run(store, now=NOW + 60)
    assert serving.source.refresh()
    task_dir = store.root / "forecasttasks" / "team-a" / "quota"
    shutil.rmtree(task_dir)
    task_dir.write_text("not a directory")  # reading anything under it now fails
    assert serving.source.refresh() is False
    health = serving.get("/healthz")
    assert health.status_code == 503
    assert (
        "cannot read" in health.json()["error"]
        and "check that the store is reachable" in health.json()["error"]
    )
    assert serving.get("/metrics").content == first.exposition

    task_dir.unlink()
    second = run(store, now=NOW + 3600 + 60)
    assert serving.source.refresh() is True
    assert serving.get("/healthz").status_code == 200
    assert serving.get("/metrics").content == second.exposition


def test_a_shard_server_serves_its_own_shards_exposition(store: LocalArtifactStore, tmp_path: Path) -> None:
    """``foresight serve forecasts --shard <pod name>`` (a StatefulSet pod): the ordinal is the shard."""
    import argparse
    import socket
    import threading

    from foresight.forecast.persistence import exposition_key
    from foresight.run.serve_forecasts import main_serve_forecasts, shard_index

    assert (shard_index("quota-forecasts-2"), shard_index("7"), shard_index(None)) == (2, 7, None)
    with pytest.raises(ValueError, match="ordinal"):
        shard_index("quota-forecasts")
    for i in range(3):
        store.put_bytes(
            f'foresight_forecast{{shard="{i}"}} {i}\n'.encode(), exposition_key("team-a", "q", shard=i)
        )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = argparse.Namespace(filename=None, store=store.uri_for(""), namespace="team-a", name="q",
                              shard="q-forecasts-1", state_dir=None, host="127.0.0.1", port=port,
                              refresh=0.2)  # fmt: skip
    stop = threading.Event()
    server = threading.Thread(target=main_serve_forecasts, args=(args,), kwargs={"environ": {}, "stop": stop})
    server.start()
    try:

        def served() -> str:
            try:
                return requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            except requests.RequestException:
                return ""

        from tests.polling import wait_for

        assert 'shard="1"' in wait_for(lambda: served() if "shard" in served() else "", "shard 1's gauges")
    finally:
        stop.set()
        server.join(timeout=10)
