"""A sharded ForecastTask run, runtime side, through a real Prometheus and Pushgateway.

The pods' way, as the operator starts them: ``foresight run --stage plan`` (the plan Job's pod),
then one ``foresight run`` per shard with ``FORESIGHT_SHARD_PLAN`` and ``JOB_COMPLETION_INDEX``
(the Indexed Job's pods), each a child process. Checked where an SRE would look: every series is
forecast exactly once in Prometheus, each shard in its own Pushgateway group; the LSTM is trained
once by the plan pod on a sample and never by a shard; a second run keeps every series on its
shard; groups no shard replaces are deleted. ``--local`` runs the same steps in one process.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
import yaml

from tests.integration.forecast.cli import foresight
from tests.polling import wait_for
from tests.servers.prometheus import PrometheusServer, PushgatewayServer, openmetrics

pytestmark = pytest.mark.integration

STEP = 3600
HOURS = 8 * 24
TASK = "sharded-it"
NAMESPACE = "sre-shards"
USERS = [f"u{i:02d}" for i in range(12)]
CLUSTERS = ["east", "west"]
TINY_LSTM = {"inputWindow": 24, "hiddenSize": 8, "layers": 1, "epochs": 1, "windowsPerEpoch": 100,
             "batchSize": 64}  # fmt: skip


def history(now: int) -> str:
    """24 SYNTHETIC series (12 users x 2 clusters), a daily cycle each, plus a label to aggregate."""
    hours = np.arange(HOURS)
    ts = now - STEP * (HOURS - 1 - hours)
    used = []
    for i, user in enumerate(USERS):
        for j, cluster in enumerate(CLUSTERS):
            vals = 50 + i + 10 * j + 5 * np.sin(2 * np.pi * (hours + i) / 24)
            used.append(({"user": user, "cluster": cluster, "pod": "p0"},
                         list(zip(ts.tolist(), vals.tolist(), strict=True))))  # fmt: skip
    return openmetrics({"shard_used_bytes": ("gauge", used)})


def task_yaml(path: Path, prom: str, gateway: str, store: Path, **spec: Any) -> Path:
    doc: dict[str, Any] = {
        "apiVersion": "foresight.dev/v1alpha1",
        "kind": "ForecastTask",
        "metadata": {"name": TASK, "namespace": NAMESPACE},
        "spec": {
            "source": {"url": prom, "query": "shard_used_bytes", "lookback": "168h", "step": "1h",
                       "groupBy": ["user", "cluster"], "readBudget": {"samplesPerQuery": 10_000}},
            "model": {"type": "auto", "candidates": ["seasonal_naive", "linear", "lstm"], "backtestFolds": 1,
                      "hyperparameters": TINY_LSTM, "trainingSampleSeries": 10},
            "horizon": "6h",
            "output": {"mode": "pushgateway", "pushgatewayUrl": gateway, "horizons": ["1h", "6h"]},
            "artifacts": {"uri": store.as_uri()},
            "parallelism": 3,
            **spec,
        },
    }  # fmt: skip
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture
def prom(prometheus_with_history: Any, hour_now: int, pushgateway: PushgatewayServer) -> PrometheusServer:
    server: PrometheusServer = prometheus_with_history(history(hour_now), pushgateway=pushgateway)
    return server


def run_pod(
    task: Path, tmp: Path, name: str, *args: str, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """One pod's ``foresight run``: its exit code and termination message."""
    term = tmp / f"{name}.term"
    proc = foresight("run", "-f", str(task), *args, env={"FORESIGHT_TERMINATION_MESSAGE_PATH": str(term),
                                                          **(env or {})})  # fmt: skip
    assert term.exists(), proc.stdout + proc.stderr
    msg: dict[str, Any] = json.loads(term.read_text())
    msg["_exit"], msg["_stdout"] = proc.returncode, proc.stdout + proc.stderr
    return msg


def groups(gateway: PushgatewayServer) -> list[dict[str, str]]:
    data = requests.get(gateway.url + "/api/v1/metrics", timeout=5).json()["data"]
    return [g["labels"] for g in data if g["labels"].get("task") == TASK]


def shard_series(store: Path, plan_prefix: str, index: int) -> list[dict[str, str]]:
    doc = json.loads((store / plan_prefix / f"shard-{index:05d}.json").read_text())
    return [p["labels"] for p in doc["series"]]


def test_plan_then_shards_forecast_every_series_exactly_once_and_keep_them_on_their_shards(
    prom: PrometheusServer, pushgateway: PushgatewayServer, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    task = task_yaml(tmp_path / "task.yaml", prom.url, pushgateway.url, store)
    # What earlier runs left: a single-pod run's group and a shard beyond this plan's three. (A
    # family of its own: the session's gateway may hold foresight_forecast from other tests with
    # its HELP and TYPE, and a push inconsistent with those is refused.)
    for key in ("", "/shard/7"):
        url = f"{pushgateway.url}/metrics/job/foresight/namespace/{NAMESPACE}/task/{TASK}{key}"
        requests.put(url, data=b"foresight_test_earlier_run 1\n", timeout=5).raise_for_status()

    plan = run_pod(task, tmp_path, "plan", "--stage", "plan", "--run-id", "run-1", "--mode", "train")
    assert plan["_exit"] == 0, plan["_stdout"]
    assert (plan["stage"], plan["reason"], plan["planId"], plan["shardMode"]) == ("plan", "Planned", "run-1",
                                                                                   "train")  # fmt: skip
    assert sum(plan["shardSeries"]) == plan["seriesCount"] == 24 and len(plan["shardSeries"]) == 3
    assert plan["trainedModels"] == ["lstm"] and plan["artifactUri"].startswith(store.as_uri())
    assert "training lstm once on 10 of 24 series" in plan["_stdout"]
    assert plan["readQueries"] >= 1 and plan["readMaxSamples"] <= 10_000  # the sample read, under budget
    assert {g.get("shard") for g in groups(pushgateway)} == set(), "stale groups are deleted by the plan"

    results = []
    for index in range(3):
        env = {"FORESIGHT_SHARD_PLAN": plan["planPrefix"], "JOB_COMPLETION_INDEX": str(index)}
        r = run_pod(task, tmp_path, f"shard-{index}", "--mode", plan["shardMode"], env=env)
        assert r["_exit"] == 0, r["_stdout"]
        assert (r["stage"], r["shard"], r["planId"], r["seriesCount"]) == (
            "shard", index, "run-1", plan["shardSeries"][index])  # fmt: skip
        assert "lstm epoch" not in r["_stdout"]  # the network is the plan pod's, never trained here
        if r["seriesCount"]:
            assert "lstm" in {b["model"] for b in r["backtest"]}  # backtested with the fold network
            assert 0 < r["readMaxSamples"] <= 10_000
        results.append(r)
    assert {g["shard"] for g in groups(pushgateway)} == {"0", "1", "2"}

    # Every series exactly once in Prometheus, with the shard that wrote it.
    query = f'foresight_forecast{{task="{TASK}",horizon="1h"}}'
    found = wait_for(
        lambda: (lambda r: r if len(r) >= 24 else None)(prom.query(query)), "24 forecasts scraped"
    )
    keys = [(s["metric"]["user"], s["metric"]["cluster"]) for s in found]
    assert sorted(keys) == sorted((u, c) for u in USERS for c in CLUSTERS)
    for s in found:
        labels = {"user": s["metric"]["user"], "cluster": s["metric"]["cluster"]}
        assert labels in shard_series(store, plan["planPrefix"], int(s["metric"]["shard"]))

    # A second run (mode auto): the networks are fresh, so the shards only decide for themselves;
    # the assignment is the same series for series.
    again = run_pod(task, tmp_path, "plan2", "--stage", "plan", "--run-id", "run-2", "--mode", "auto")
    assert again["_exit"] == 0 and again["shardMode"] == "auto", again["_stdout"]
    assert again["shardSeries"] == plan["shardSeries"]
    for index in range(3):
        assert shard_series(store, again["planPrefix"], index) == shard_series(
            store, plan["planPrefix"], index
        )
    r = run_pod(task, tmp_path, "shard-0-again", "--mode", "auto",
                env={"FORESIGHT_SHARD_PLAN": again["planPrefix"], "JOB_COMPLETION_INDEX": "0"})  # fmt: skip
    assert r["_exit"] == 0 and r["mode"] == "predict", r["_stdout"]  # its own saved model, fresh


def test_a_shard_index_outside_the_plan_and_a_missing_plan_fail_with_what_to_do(
    prom: PrometheusServer, pushgateway: PushgatewayServer, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    task = task_yaml(tmp_path / "task.yaml", prom.url, pushgateway.url, store,
                     model={"type": "seasonal_naive", "backtestFolds": 1})  # fmt: skip
    plan = run_pod(task, tmp_path, "plan", "--stage", "plan", "--run-id", "r", "--mode", "train")
    assert plan["_exit"] == 0 and "trainedModels" not in plan, plan["_stdout"]
    bad = run_pod(
        task, tmp_path, "bad", env={"FORESIGHT_SHARD_PLAN": plan["planPrefix"], "JOB_COMPLETION_INDEX": "3"}
    )
    assert bad["_exit"] == 1 and "outside the plan's 3 shards" in bad["message"], bad
    gone = run_pod(task, tmp_path, "gone", env={"FORESIGHT_SHARD_PLAN": "forecasttasks/x/y/plans/nope",
                                                "JOB_COMPLETION_INDEX": "0"})  # fmt: skip
    assert gone["_exit"] != 0 and gone["stage"] == "shard" and gone["reason"] == "RunFailed", gone


def test_local_mode_runs_the_plan_and_every_shard_in_one_process(
    prom: PrometheusServer, pushgateway: PushgatewayServer, tmp_path: Path
) -> None:
    task = task_yaml(tmp_path / "task.yaml", prom.url, pushgateway.url, tmp_path / "store",
                     model={"type": "linear", "backtestFolds": 2})  # fmt: skip
    proc = foresight("run", "-f", str(task), "--local", "--state-dir", str(tmp_path / "state"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "24 series in 3 shards" in proc.stdout and proc.stdout.count("Ready") >= 3
    # The whole run's bands, as the operator's status merges the shards' (measured on 2 folds).
    assert "Bands:              level 0.8; out-of-sample coverage 1h 0." in proc.stdout, proc.stdout
    assert {g["shard"] for g in groups(pushgateway)} == {"0", "1", "2"}
