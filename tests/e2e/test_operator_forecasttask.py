"""ForecastTask end to end: kubectl apply -> the operator's run Job -> the test kubelet runs
``foresight run`` -> history from a real Prometheus (backfilled with promtool) -> forecasts pushed
to a real Pushgateway and scraped back into Prometheus -> status -> a second scheduled run ->
kubectl delete removes the Pushgateway group.

A second task with a PromQL syntax error gets ``Ready=False`` with Prometheus' own message and is
not retried, while the first keeps running. A third task trains a (tiny) LSTM: its training run
leaves a ModelVersion of the saved artifact that the ModelVersion handler's verify Job loads and
reports Verified; the baseline task leaves none.
"""

from __future__ import annotations

import pathlib
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import yaml

from tests.cluster.emulator import Cluster
from tests.cluster.kubectl import Kubectl
from tests.cluster.kubelet import Kubelet
from tests.cluster.operator_process import OperatorProcess
from tests.servers.prometheus import PrometheusServer, PushgatewayServer, backfill, ensure_installed

pytestmark = pytest.mark.e2e

FT = "foresight.dev/v1alpha1/forecasttasks"
MV = "foresight.dev/v1alpha1/modelversions"
TINY_LSTM = {"inputWindow": 24, "hiddenSize": 8, "layers": 1, "epochs": 1, "windowsPerEpoch": 100,
             "batchSize": 64}  # fmt: skip
SELECTOR = "app.kubernetes.io/managed-by=foresight,foresight.dev/kind=ForecastTask,foresight.dev/name={}"




@pytest.fixture
def servers(tmp_path: pathlib.Path) -> Iterator[tuple[PrometheusServer, PushgatewayServer]]:
    """Prometheus with 4 days of SYNTHETIC storage history for 4 quotas, scraping a Pushgateway."""
    ensure_installed()
    from foresight.forecast.synthetic import make_storage_dataset, storage_openmetrics

    now = int(time.time())
    data = make_storage_dataset(n_series=4, days=4, start=now - 4 * 86400, gap_fraction=0.0)
    backfill(storage_openmetrics(data), tmp_path / "prom-data")
    pgw = PushgatewayServer(tmp_path / "pgw", None)
    with pgw, PrometheusServer(tmp_path / "prom-data", pushgateway=pgw) as prom:
        yield prom, pgw


def task(name: str, query: str, prom: PrometheusServer, pgw: PushgatewayServer) -> dict[str, Any]:
    return {
        "apiVersion": "foresight.dev/v1alpha1",
        "kind": "ForecastTask",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "source": {
                "url": prom.url,
                "query": query,
                "groupBy": ["cluster", "storage_type", "user"],
                "lookback": "72h",
                "step": "1h",
            },
            "model": {"type": "seasonal_naive", "backtestFolds": 1},
            "horizon": "6h",
            "limits": {"minHistoryPoints": 24},
            "schedule": {"retrainEvery": "1h", "predictEvery": "15s"},
            "output": {"pushgatewayUrl": pgw.url, "horizons": ["1h", "6h"]},
            "resources": {"cpu": "250m", "memory": "512Mi"},
        },
    }


def cond(obj: dict[str, Any], ctype: str) -> dict[str, Any]:
    return next(c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == ctype)


def pushed_tasks(pgw: PushgatewayServer) -> set[str]:
    groups = requests.get(pgw.url + "/api/v1/metrics", timeout=5).json()["data"]
    return {g["labels"].get("task", "") for g in groups if "foresight_forecast" in g}


def test_forecasttask_runs_on_schedule_writes_forecasts_and_reports_bad_promql(
    cluster: Cluster,
    kubectl: Kubectl,
    kubelet: Kubelet,
    operator: OperatorProcess,
    servers: tuple[PrometheusServer, PushgatewayServer],
) -> None:
    prom, pgw = servers
    api = cluster.api
    good = task("quota", "foresight_demo_storage_used_bytes", prom, pgw)
    bad = task("broken", "sum(rate(foresight_demo_storage_used_bytes[5m])", prom, pgw)
    trained = task("trained", "foresight_demo_storage_used_bytes", prom, pgw)
    trained["spec"]["model"] = {"type": "lstm", "backtestFolds": 1, "hyperparameters": TINY_LSTM}
    trained["spec"]["schedule"] = {"retrainEvery": "1h", "predictEvery": "1h"}  # one run is enough
    kubectl.apply(yaml.safe_dump_all([good, bad, trained])).check()

    def log() -> str:
        return operator.log.read_text()[-3000:]

    # The first run trains; its Job carries the task's resources and mounts the task + the store.
    ready = api.wait_for(FT, "quota", lambda o: bool((o or {}).get("status", {}).get("lastPredictTime")),
                         "default", timeout=120, interval=0.5)  # fmt: skip
    assert ready is not None, (api.get(FT, "quota", "default"), log())
    status = ready["status"]
    assert status["seriesCount"] == 4, status
    assert status["model"].startswith("seasonal_naive"), status
    models = {row["model"] for row in status["backtest"]}
    assert {"seasonal_naive", "linear"} <= models, status["backtest"]
    assert all(row.get("mase", 0) >= 0 for row in status["backtest"])
    assert status["artifactUri"].startswith("pvc://foresight-artifacts/forecasttasks/default/quota/")
    assert status["lastTrainTime"] and status["nextRunTime"]
    assert (cond(ready, "Ready")["status"], cond(ready, "Ready")["reason"]) == ("True", "ForecastsWritten")
    jobs = api.list("batch/v1/jobs", "default", label_selector=SELECTOR.format("quota"))
    first = next(j for j in jobs if j["metadata"]["labels"]["foresight.dev/run-kind"] == "train")
    container = first["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][:4] == ["foresight", "run", "-f", "/etc/foresight/task/task.yaml"]
    assert container["resources"]["requests"] == {"cpu": "250m", "memory": "512Mi"}
    (owner,) = first["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"]) == ("ForecastTask", "quota")

    # The forecasts reached the Pushgateway and, scraped, Prometheus.
    assert "quota" in pushed_tasks(pgw)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not prom.query('foresight_forecast{task="quota",horizon="6h"}'):
        time.sleep(0.5)
    series = prom.query('foresight_forecast{task="quota",horizon="6h"}')
    assert len(series) == 4 and {s["metric"]["namespace"] for s in series} == {"default"}

    # The bad query: Ready=False with Prometheus' own message, phase Failed, no retries.
    broken = api.wait_for(FT, "broken", lambda o: (o or {}).get("status", {}).get("phase") == "Failed",
                          "default", timeout=60, interval=0.5)  # fmt: skip
    assert broken is not None, (api.get(FT, "broken", "default"), log())
    bready = cond(broken, "Ready")
    assert (bready["status"], bready["reason"]) == ("False", "PromQLError")
    assert "parse error" in bready["message"], bready
    assert "nextRunTime" not in broken["status"]

    # A second scheduled run (a prediction with the saved model) happens by itself.
    again = api.wait_for(FT, "quota", lambda o: int((o or {}).get("status", {}).get("runs") or 0) >= 2,
                         "default", timeout=90, interval=0.5)  # fmt: skip
    assert again is not None, (api.get(FT, "quota", "default"), log())
    assert again["status"]["lastPredictTime"] >= status["lastPredictTime"]
    jobs = api.list("batch/v1/jobs", "default", label_selector=SELECTOR.format("quota"))
    kinds = sorted(j["metadata"]["labels"]["foresight.dev/run-kind"] for j in jobs)
    assert kinds.count("train") == 1 and kinds.count("predict") >= 1, kinds
    assert len(api.list("batch/v1/jobs", "default", label_selector=SELECTOR.format("broken"))) == 1

    # The LSTM task's training run left a ModelVersion of its artifact (not owned by the task),
    # which the ModelVersion handler verified; the baseline task registered nothing.
    lstm = api.wait_for(FT, "trained", lambda o: bool((o or {}).get("status", {}).get("modelVersion")),
                        "default", timeout=120, interval=0.5)  # fmt: skip
    assert lstm is not None, (api.get(FT, "trained", "default"), log())
    (mv,) = api.list(MV, "default", label_selector="foresight.dev/forecasttask=trained")
    assert (
        mv["metadata"]["name"] == lstm["status"]["modelVersion"] and "ownerReferences" not in mv["metadata"]
    )
    assert mv["spec"]["artifact"]["uri"] == lstm["status"]["artifactUri"]
    assert mv["spec"]["lineage"]["forecastTask"] == "trained" and mv["spec"]["metrics"]["mase"] >= 0
    assert api.list(MV, "default", label_selector="foresight.dev/forecasttask=quota") == []
    assert "modelVersion" not in (api.get(FT, "quota", "default") or {}).get("status", {})
    checked = api.wait_for(MV, mv["metadata"]["name"],
                           lambda o: (o or {}).get("status", {}).get("phase") in ("Ready", "Failed"),
                           "default", timeout=120, interval=0.5)  # fmt: skip
    assert checked is not None, (api.get(MV, mv["metadata"]["name"], "default"), log())
    assert (cond(checked, "Ready")["status"], cond(checked, "Ready")["reason"]) == ("True", "Verified"), (
        checked
    )
    assert checked["status"]["checksum"] == mv["spec"]["artifact"]["sha256"]

    # kubectl shows it; /metrics exports the schedule.
    table = kubectl("get", "ft").check().stdout
    assert "quota" in table and "broken" in table
    metrics = requests.get(operator.url("/metrics"), timeout=5).text
    assert 'foresight_forecasttask_next_run_timestamp_seconds{name="quota",namespace="default"}' in metrics
    assert 'foresight_forecasttask_runs_queued{name="quota",namespace="default"}' in metrics

    # Deleting the task deletes its Pushgateway group (the finalizer), and its Jobs.
    kubectl("delete", "ft", "quota", "--wait=false").check()
    gone = api.wait_for(FT, "quota", lambda o: o is None, "default", timeout=60)
    assert gone is None, log()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and "quota" in pushed_tasks(pgw):
        time.sleep(0.5)
    assert "quota" not in pushed_tasks(pgw)
