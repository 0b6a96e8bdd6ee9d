"""Scrape mode in the runtime: a run writes its exposition into the task's store instead of pushing,
and ``foresight serve forecasts`` serves the newest one over HTTP on 127.0.0.1.

The runner reads the in-memory Prometheus stand-in (a real one is in
tests/integration/forecast/test_forecast_scrape.py, which also has a real Prometheus scrape the
server); the store is a real local directory and the server a real HTTP server in this process.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
import yaml
from foresight.api.forecasttask import ForecastTaskSpec
from foresight.artifacts import LocalArtifactStore
from foresight.cli import build_parser, main
from foresight.commands import SUBCOMMANDS
from foresight.forecast.runner import RunEvent, RunResult, exposition_key, run_forecast_task
from foresight.forecast.scrape import CONTENT_TYPE, StoredExposition, main_serve_forecasts, make_app
from foresight.prometheus.pushgateway import MetricsServer, serve_app
from foresight.run.localprom import free_port
from foresight.run.memory import MemoryPrometheus
from prometheus_client.parser import text_string_to_metric_families

STEP = 3600
NOW = 1_770_000_000 // STEP * STEP
KEY = exposition_key("team-a", "quota")


def history() -> MemoryPrometheus:
    """Two users over 8 days: a daily cycle around 80 of a 100 quota, and a ramp to 95 ~5 h out."""
    ts = NOW - STEP * np.arange(8 * 24)[::-1]
    hours = np.arange(ts.size)
    prom = MemoryPrometheus()
    prom.add("used_bytes", {"user": "alice"}, ts, 80 + 2 * np.sin(2 * np.pi * hours / 24))
    prom.add("used_bytes", {"user": "dave"}, ts, 94.0 - 0.2 * (ts[-1] - ts) / STEP)
    for user in ("alice", "dave"):
        prom.add("quota_bytes", {"user": user}, ts, np.full(ts.size, 100.0))
    return prom


SPEC: dict[str, Any] = {
    "source": {"query": "used_bytes", "lookback": "168h", "step": "1h", "groupBy": ["user"]},
    "model": {"type": "auto", "candidates": ["seasonal_naive", "linear"], "backtestFolds": 2},
    "horizon": "12h",
    "threshold": {"capacity": {"query": "quota_bytes"}, "ratio": 0.95},
    "output": {"mode": "scrape", "horizons": ["1h", "6h"]},
}


def run(store: LocalArtifactStore | None, *, now: float, events: list[RunEvent] | None = None,
        **output: Any) -> RunResult:  # fmt: skip
    pushed: list[object] = []
    spec = ForecastTaskSpec.model_validate({**SPEC, "output": {**SPEC["output"], **output}})
    result = run_forecast_task(
        spec, name="quota", namespace="team-a", prometheus=history(),
        pushgateway=lambda registry, key: pushed.append(key), store=store, clock=lambda: now,
        progress=events.append if events is not None else None,
    )  # fmt: skip
    assert pushed == [] or spec.output.mode == "pushgateway"
    return result


def families(text: bytes) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for fam in text_string_to_metric_families(text.decode()):
        for s in fam.samples:
            out.setdefault(s.name, []).append((dict(s.labels), s.value))
    return out


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


def task_file(tmp_path: Path, store: LocalArtifactStore, mode: str = "scrape") -> Path:
    doc = {
        "apiVersion": "foresight.dev/v1alpha1",
        "kind": "ForecastTask",
        "metadata": {"name": "quota", "namespace": "team-a"},
        "spec": {
            **SPEC,
            "output": {**SPEC["output"], "mode": mode},
            "artifacts": {"uri": store.root.as_uri()},
        },
    }
    path = tmp_path / "task.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.mark.parametrize("how", ["file", "store"])
def test_the_command_serves_the_task_named_by_its_file_or_its_store(
    tmp_path: Path, store: LocalArtifactStore, how: str
) -> None:
    port = free_port()
    argv = ["serve", "forecasts", "--port", str(port), "--refresh", "0.1"]
    if how == "file":
        argv += ["-f", str(task_file(tmp_path, store))]
    else:
        argv += ["--store", store.root.as_uri(), "--namespace", "team-a", "--name", "quota"]
    args = build_parser(SUBCOMMANDS).parse_args(argv)
    stop = threading.Event()
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(main_serve_forecasts(args, environ={}, stop=stop)))
    thread.start()
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        deadline = time.monotonic() + 10
        while True:
            try:
                assert requests.get(url, timeout=2).text.startswith("# foresight: no run")
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.05)
        result = run(store, now=NOW + 60)
        deadline = time.monotonic() + 10
        while requests.get(url, timeout=2).content != result.exposition:
            assert time.monotonic() < deadline, "the new exposition was not picked up"
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert codes == [0]


def test_the_command_refuses_what_it_cannot_serve(
    tmp_path: Path, store: LocalArtifactStore, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "forecasts", "-f", str(task_file(tmp_path, store, mode="pushgateway"))]) == 2
    assert "has output.mode pushgateway" in capsys.readouterr().err
    assert main(["serve", "forecasts", "--store", store.root.as_uri(), "--name", "quota"]) == 2
    assert "--store needs --namespace and --name" in capsys.readouterr().err
    assert main(["serve", "forecasts"]) == 2
    assert "say which task" in capsys.readouterr().err
    assert main(["serve", "forecasts", "-f", str(tmp_path / "missing.yaml")]) == 2
    assert "cannot read" in capsys.readouterr().err
