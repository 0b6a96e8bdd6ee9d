"""A sharded ForecastTask end to end: ``kubectl apply`` of a task with ``parallelism: 3`` -> the
operator's plan Job -> one Indexed Job of 3 shards run by the test kubelet (completion index =
shard) -> 12 SYNTHETIC storage quotas from a real Prometheus backfilled with promtool -> each shard
pushes its own group to a real Pushgateway, scraped back into Prometheus -> status per shard.

What must hold, checked where a user would look:

- every series is forecast exactly once (Prometheus has one ``foresight_forecast`` per quota and
  horizon, none missing), each by the shard the plan gave it;
- killing one shard's pod retries that index only (the other shards ran one pod each);
- status shows the run's progress per shard while it runs, and each shard's outcome after;
- the plan pod trains the LSTM once (a ModelVersion of it); the shards never train it;
- the next run keeps every series on its shard (the two plans' shard files are equal);
- deleting the task deletes every shard's Pushgateway group.
"""

from __future__ import annotations

import json
import pathlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import yaml

from tests.cluster.emulator import Cluster
from tests.cluster.kubectl import Kubectl
from tests.cluster.kubelet import FAILURE_COUNT_KEY, INDEX_KEY, Kubelet
from tests.cluster.operator_process import OperatorProcess
from tests.polling import wait_for
from tests.servers.prometheus import PrometheusServer, PushgatewayServer, backfill, ensure_installed

pytestmark = pytest.mark.e2e

FT = "foresight.dev/v1alpha1/forecasttasks"
MV = "foresight.dev/v1alpha1/modelversions"
NS = "default"
NAME = "quota-shards"
SERIES = 12
TINY_LSTM = {"inputWindow": 24, "hiddenSize": 8, "layers": 1, "epochs": 1, "windowsPerEpoch": 100,
             "batchSize": 64}  # fmt: skip
GROUP_BY = ["cluster", "storage_type", "user"]


@pytest.fixture
def servers(
    tmp_path: pathlib.Path,
) -> Iterator[tuple[PrometheusServer, PushgatewayServer, list[dict[str, str]]]]:
    """Prometheus with 8 days of SYNTHETIC storage history for 12 quotas, scraping a Pushgateway;
    and the quotas' label sets (on GROUP_BY)."""
    ensure_installed()
    from foresight.forecast.synthetic import make_storage_dataset
    from foresight.run.demo import demo_openmetrics

    days = 8
    now = int(time.time()) // 3600 * 3600
    data = make_storage_dataset(
        n_series=SERIES, days=days, start=now - (days * 24 - 1) * 3600, gap_fraction=0.0
    )
    backfill(demo_openmetrics(data, data.panel.n_steps - 1), tmp_path / "prom-data")
    keys = [{g: k.get(g, "") for g in GROUP_BY} for k in data.panel.keys]
    pgw = PushgatewayServer(tmp_path / "pgw", None)
    with pgw, PrometheusServer(tmp_path / "prom-data", pushgateway=pgw) as prom:
        yield prom, pgw, keys


def sharded_task(prom: PrometheusServer, pgw: PushgatewayServer) -> dict[str, Any]:
    return {
        "apiVersion": "foresight.dev/v1alpha1",
        "kind": "ForecastTask",
        "metadata": {"name": NAME, "namespace": NS},
        "spec": {
            "source": {"url": prom.url, "query": "storage_used_bytes", "groupBy": GROUP_BY,
                       "lookback": "168h", "step": "1h",
                       "readBudget": {"samplesPerQuery": 20_000, "concurrency": 2}},
            "model": {"type": "auto", "candidates": ["seasonal_naive", "linear", "lstm"], "backtestFolds": 1,
                      "hyperparameters": TINY_LSTM, "trainingSampleSeries": 10},
            "horizon": "6h",
            "limits": {"minHistoryPoints": 24},
            "schedule": {"retrainEvery": "1h", "predictEvery": "20s"},
            "output": {"pushgatewayUrl": pgw.url, "horizons": ["1h", "6h"]},
            "resources": {"cpu": "250m", "memory": "512Mi"},
            "parallelism": 3,
        },
    }  # fmt: skip


def stage_jobs(cluster: Cluster, stage: str) -> list[dict[str, Any]]:
    selector = f"foresight.dev/name={NAME},foresight.dev/run-stage={stage}"
    return cluster.api.list("batch/v1/jobs", NS, label_selector=selector)


def pods_of(cluster: Cluster, job: str) -> list[dict[str, Any]]:
    return cluster.api.list("v1/pods", NS, label_selector=f"batch.kubernetes.io/job-name={job}")


def shard_groups(pgw: PushgatewayServer) -> set[str]:
    data = requests.get(pgw.url + "/api/v1/metrics", timeout=5).json()["data"]
    return {g["labels"].get("shard", "-") for g in data if g["labels"].get("task") == NAME}


def plan_shards(kubelet: Kubelet, plan_id: str) -> list[list[dict[str, str]]]:
    root = (
        kubelet.workdir
        / "pvcs"
        / NS
        / "foresight-artifacts"
        / "forecasttasks"
        / NS
        / NAME
        / "plans"
        / plan_id
    )
    files = sorted(root.glob("shard-*.json"))
    return [[p["labels"] for p in json.loads(f.read_text())["series"]] for f in files]


class ProgressWatch:
    """Every distinct ``status.activeShards.progress`` the task shows, polled in the background."""

    def __init__(self, cluster: Cluster) -> None:
        self.seen: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(cluster,), daemon=True)
        self._thread.start()

    def _run(self, cluster: Cluster) -> None:
        while not self._stop.is_set():
            try:
                obj = cluster.api.find(FT, NAME, NS) or {}
            except OSError:  # the cluster is being torn down
                return
            progress = ((obj.get("status") or {}).get("activeShards") or {}).get("progress")
            if progress and (not self.seen or self.seen[-1] != progress):
                self.seen.append(progress)
            time.sleep(0.2)

    def stop(self) -> list[str]:
        self._stop.set()
        self._thread.join(timeout=5)
        return self.seen


def test_a_sharded_task_forecasts_every_series_once_retries_a_killed_shard_and_keeps_the_assignment(
    cluster: Cluster,
    kubectl: Kubectl,
    kubelet: Kubelet,
    operator: OperatorProcess,
    servers: tuple[PrometheusServer, PushgatewayServer, list[dict[str, str]]],
) -> None:
    prom, pgw, keys = servers
    api = cluster.api

    def log() -> str:
        return operator.log.read_text()[-4000:]

    watch = ProgressWatch(cluster)
    kubectl.apply(yaml.safe_dump(sharded_task(prom, pgw))).check()

    # The plan Job comes first; once it has succeeded, the shards' Indexed Job.
    try:
        wait_for(lambda: stage_jobs(cluster, "shards"), "the shards' Job", timeout=180, interval=0.3)
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {api.get(FT, NAME, NS).get('status')}\n{log()}") from exc
    (plan_job,) = stage_jobs(cluster, "plan")
    (job,) = stage_jobs(cluster, "shards")
    jname = job["metadata"]["name"]
    assert job["spec"]["completionMode"] == "Indexed" and job["spec"]["completions"] == 3
    assert job["spec"]["backoffLimitPerIndex"] >= 1

    # Kill shard 1's first pod as soon as it has a process (its runtime is still importing).
    def first_pod_of_index_1() -> dict[str, Any] | None:
        found = [p for p in pods_of(cluster, jname) if p["metadata"]["annotations"].get(INDEX_KEY) == "1"]
        return found[0] if found and (found[0].get("status") or {}).get("phase") == "Running" else None

    victim = wait_for(first_pod_of_index_1, "shard 1's first pod running", timeout=60, interval=0.05)
    kubelet.kill(victim["metadata"]["name"], NS)

    # The first run's outcome (the next run may already be planning: activeShards shows that one).
    first = plan_job["metadata"]["name"]
    done = api.wait_for(
        FT, NAME, lambda o: ((o or {}).get("status") or {}).get("shards", {}).get("planId") == first,
        NS, timeout=240, interval=0.5,
    )  # fmt: skip
    assert done is not None, (api.get(FT, NAME, NS), api.get("batch/v1/jobs", jname, NS), log())
    status = done["status"]
    shards_status = status["shards"]
    assert shards_status["planId"] == plan_job["metadata"]["name"] and shards_status["job"] == jname
    assert (shards_status["total"], shards_status["succeeded"], shards_status["failed"]) == (3, 3, 0)
    assert shards_status["series"] == SERIES == status["seriesCount"]
    assert [i["phase"] for i in shards_status["items"]] == ["Succeeded"] * 3
    assert [i["attempts"] for i in shards_status["items"]] == [1, 2, 1]  # only index 1 was retried
    pods = pods_of(cluster, jname)
    by_index = sorted((p["metadata"]["annotations"][INDEX_KEY],
                       p["metadata"]["annotations"].get(FAILURE_COUNT_KEY)) for p in pods)  # fmt: skip
    assert by_index == [("0", "0"), ("1", "0"), ("1", "1"), ("2", "0")]
    conds = {c["type"]: c for c in status["conditions"]}
    assert (conds["Ready"]["status"], conds["Ready"]["reason"]) == ("True", "ForecastsWritten")
    assert shards_status["progress"] == "3/3"
    assert conds.get("Degraded", {}).get("status") != "True"
    assert status["model"].startswith("auto(") and status["modelVersion"]
    mv = api.get(MV, status["modelVersion"], NS)
    assert mv is not None and mv["spec"]["config"]["trainedModels"] == ["lstm"]
    for p in pods:  # a shard never trains the network: the plan pod did, once
        assert "lstm epoch" not in kubelet.logs(p["metadata"]["name"], NS)
    assert "lstm (final) epoch" in kubelet.logs(
        pods_of(cluster, plan_job["metadata"]["name"])[0]["metadata"]["name"], NS
    )

    # Every series exactly once in Prometheus (one group per shard), none missing.
    assert shard_groups(pgw) == {"0", "1", "2"}
    query = f'foresight_forecast{{task="{NAME}",horizon="1h"}}'
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(prom.query(query)) < SERIES:
        time.sleep(0.5)
    found = prom.query(query)
    written = sorted(tuple(s["metric"].get(g, "") for g in GROUP_BY) for s in found)
    assert written == sorted(tuple(k[g] for g in GROUP_BY) for k in keys), found
    per_key = prom.query(
        f'count by (cluster, storage_type, user) (foresight_forecast{{task="{NAME}",horizon="6h"}})'
    )
    assert len(per_key) == SERIES and {s["value"][1] for s in per_key} == {"1"}
    first_plan = plan_shards(kubelet, shards_status["planId"])
    for s in found:
        labels = {g: s["metric"].get(g, "") for g in GROUP_BY}
        assert labels in first_plan[int(s["metric"]["shard"])]

    # The next run (predict, 20 s later) plans again: every series on the same shard.
    again = api.wait_for(FT, NAME, lambda o: int(((o or {}).get("status") or {}).get("runs") or 0) >= 2, NS,
                         timeout=180, interval=0.5)  # fmt: skip
    assert again is not None, (api.get(FT, NAME, NS), log())
    second = again["status"]["shards"]["planId"]
    assert second != shards_status["planId"]
    assert plan_shards(kubelet, second) == first_plan
    seen = watch.stop()
    assert "planning" in seen and len(seen) >= 2, seen  # progress shown as it went: planning, k/3...
    wide = kubectl("get", "ft", NAME, "-o", "wide").check().stdout
    assert "3/3" in wide

    # Deleting the task deletes every shard's group.
    kubectl("delete", "ft", NAME, "-n", NS, "--wait=false").check()
    assert api.wait_for(FT, NAME, lambda o: o is None, NS, timeout=60) is None, log()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and shard_groups(pgw):
        time.sleep(0.5)
    assert shard_groups(pgw) == set()
