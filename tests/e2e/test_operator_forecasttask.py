"""ForecastTask end to end: ``kubectl apply`` of examples/forecasttask-storage.yaml -> the
operator's run Job -> the test kubelet runs ``foresight run`` -> 29 days of SYNTHETIC storage
history (the example's own metric names: usage, quota, a write counter) from a real Prometheus
backfilled with promtool -> forecasts pushed to a real Pushgateway and scraped back into
Prometheus -> status -> a second scheduled run -> kubectl delete removes the Pushgateway group.

The example is applied as written except for what belongs to this machine: the Prometheus and
Pushgateway URLs point at the test's servers, ``predictEvery`` is 15 s (so the second run comes
within the test, not in 15 minutes), and the LSTM candidate gets a tiny training budget (its
defaults are sized for a GPU; 2 CPU cores would need minutes).

A second task with a PromQL syntax error gets ``Ready=False`` with Prometheus' own message and is
not retried, while the first keeps running. A third task trains a (tiny) LSTM: its training run
leaves a ModelVersion of the saved artifact that the ModelVersion handler's verify Job loads and
reports Verified; a task whose runs chose only baselines leaves none.
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
from tests.cluster.operator_process import REPO, OperatorProcess
from tests.polling import wait_for
from tests.servers.prometheus import PrometheusServer, PushgatewayServer, backfill, ensure_installed

pytestmark = pytest.mark.e2e

FT = "foresight.dev/v1alpha1/forecasttasks"
MV = "foresight.dev/v1alpha1/modelversions"
TINY_LSTM = {"inputWindow": 24, "hiddenSize": 8, "layers": 1, "epochs": 1, "windowsPerEpoch": 100,
             "batchSize": 64}  # fmt: skip
SELECTOR = "app.kubernetes.io/managed-by=foresight,foresight.dev/kind=ForecastTask,foresight.dev/name={}"


@pytest.fixture
def servers(tmp_path: pathlib.Path) -> Iterator[tuple[PrometheusServer, PushgatewayServer]]:
    """Prometheus with 29 days of SYNTHETIC storage history for 6 quotas, scraping a Pushgateway."""
    ensure_installed()
    from foresight.forecast.synthetic import make_storage_dataset
    from foresight.run.demo import demo_openmetrics

    days = 29  # the example looks back 672 h = 28 days
    now = int(time.time()) // 3600 * 3600
    data = make_storage_dataset(n_series=6, days=days, start=now - (days * 24 - 1) * 3600, gap_fraction=0.0)
    backfill(demo_openmetrics(data, data.panel.n_steps - 1), tmp_path / "prom-data")
    pgw = PushgatewayServer(tmp_path / "pgw", None)
    with pgw, PrometheusServer(tmp_path / "prom-data", pushgateway=pgw) as prom:
        yield prom, pgw


def storage_example(prom: PrometheusServer, pgw: PushgatewayServer) -> dict[str, Any]:
    """examples/forecasttask-storage.yaml with this machine's URLs, a 15 s prediction schedule and
    a tiny LSTM budget (see the module docstring)."""
    doc = yaml.safe_load((REPO / "examples" / "forecasttask-storage.yaml").read_text())
    spec = doc["spec"]
    spec["source"]["url"] = prom.url
    spec["output"]["pushgatewayUrl"] = pgw.url
    spec["schedule"]["predictEvery"] = "15s"
    spec["model"]["hyperparameters"] = TINY_LSTM
    return dict(doc)


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


def test_forecasttask_example_runs_on_schedule_writes_forecasts_and_reports_bad_promql(
    cluster: Cluster,
    kubectl: Kubectl,
    kubelet: Kubelet,
    operator: OperatorProcess,
    servers: tuple[PrometheusServer, PushgatewayServer],
) -> None:
    prom, pgw = servers
    api = cluster.api
    good = storage_example(prom, pgw)
    name, ns = good["metadata"]["name"], good["metadata"]["namespace"]
    bad = task("broken", "sum(rate(storage_used_bytes[5m])", prom, pgw)
    trained = task("trained", "storage_used_bytes", prom, pgw)
    trained["spec"]["model"] = {"type": "lstm", "backtestFolds": 1, "hyperparameters": TINY_LSTM}
    trained["spec"]["schedule"] = {"retrainEvery": "1h", "predictEvery": "1h"}  # one run is enough
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
    kubectl.apply(yaml.safe_dump_all([namespace, good, bad, trained])).check()

    def log() -> str:
        return operator.log.read_text()[-3000:]

    # The first run trains; its Job carries the task's resources and mounts the task + the store.
    ready = api.wait_for(FT, name, lambda o: bool((o or {}).get("status", {}).get("lastPredictTime")),
                         ns, timeout=180, interval=0.5)  # fmt: skip
    assert ready is not None, (api.get(FT, name, ns), log())
    status = ready["status"]
    assert status["seriesCount"] == 6, status
    assert status["model"].startswith("auto("), status
    models = {row["model"] for row in status["backtest"]}
    assert {"auto", "seasonal_naive", "linear", "ets", "theta", "lstm"} <= models, status["backtest"]
    assert all(row.get("mase", 0) >= 0 for row in status["backtest"])
    # auto's row is its nested (out-of-sample) estimate, every row on the same folds; whether auto
    # beats its baselines is an accuracy claim, measured by bench/forecast_accuracy.py, not here.
    auto_row = next(row for row in status["backtest"] if row["model"] == "auto")
    assert auto_row["mase"] > 0 and auto_row["mae"] > 0, status["backtest"]
    assert status["artifactUri"].startswith(f"pvc://foresight-artifacts/forecasttasks/{ns}/{name}/")
    assert status["lastTrainTime"] and status["nextRunTime"]
    assert (cond(ready, "Ready")["status"], cond(ready, "Ready")["reason"]) == ("True", "ForecastsWritten")
    jobs = api.list("batch/v1/jobs", ns, label_selector=SELECTOR.format(name))
    first = next(j for j in jobs if j["metadata"]["labels"]["foresight.dev/run-kind"] == "train")
    container = first["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][:4] == ["foresight", "run", "-f", "/etc/foresight/task/task.yaml"]
    assert container["resources"]["requests"] == {"cpu": "2", "memory": "4Gi"}
    (owner,) = first["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"]) == ("ForecastTask", name)

    # The forecasts reached the Pushgateway and, scraped, Prometheus: per quota, with its labels.
    assert name in pushed_tasks(pgw)
    query = f'foresight_forecast{{task="{name}",horizon="24h"}}'
    series = wait_for(lambda: prom.query(query), f"{query} scraped by Prometheus", timeout=30, interval=0.5)
    assert len(series) == 6 and {s["metric"]["namespace"] for s in series} == {ns}
    assert all({"group", "user", "storage_type", "cluster"} <= set(s["metric"]) for s in series)
    ttt = prom.query(f'foresight_time_to_threshold_seconds{{task="{name}",bound="point"}}')
    assert len(ttt) == 6 and all(float(s["value"][1]) >= 0 for s in ttt)

    # The bad query: Ready=False with Prometheus' own message, phase Failed, no retries.
    broken = api.wait_for(FT, "broken", lambda o: (o or {}).get("status", {}).get("phase") == "Failed",
                          "default", timeout=60, interval=0.5)  # fmt: skip
    assert broken is not None, (api.get(FT, "broken", "default"), log())
    bready = cond(broken, "Ready")
    assert (bready["status"], bready["reason"]) == ("False", "PromQLError")
    assert "parse error" in bready["message"], bready
    assert "nextRunTime" not in broken["status"]

    # A second scheduled run (a prediction with the saved model) happens by itself.
    again = api.wait_for(FT, name, lambda o: int((o or {}).get("status", {}).get("runs") or 0) >= 2,
                         ns, timeout=90, interval=0.5)  # fmt: skip
    assert again is not None, (api.get(FT, name, ns), log())
    assert again["status"]["lastPredictTime"] >= status["lastPredictTime"]
    jobs = api.list("batch/v1/jobs", ns, label_selector=SELECTOR.format(name))
    kinds = sorted(j["metadata"]["labels"]["foresight.dev/run-kind"] for j in jobs)
    assert kinds.count("train") == 1 and kinds.count("predict") >= 1, kinds
    assert len(api.list("batch/v1/jobs", "default", label_selector=SELECTOR.format("broken"))) == 1

    # The LSTM task's training run left a ModelVersion of its artifact (not owned by the task),
    # which the ModelVersion handler verified. The example's ModelVersions are exactly the one its
    # status names (none when auto kept only baselines).
    lstm = api.wait_for(FT, "trained", lambda o: bool((o or {}).get("status", {}).get("modelVersion")),
                        "default", timeout=120, interval=0.5)  # fmt: skip
    assert lstm is not None, (api.get(FT, "trained", "default"), log())
    (mv,) = api.list(MV, "default", label_selector="foresight.dev/forecasttask=trained")
    assert (
        mv["metadata"]["name"] == lstm["status"]["modelVersion"] and "ownerReferences" not in mv["metadata"]
    )
    assert mv["spec"]["artifact"]["uri"] == lstm["status"]["artifactUri"]
    assert mv["spec"]["lineage"]["forecastTask"] == "trained" and mv["spec"]["metrics"]["mase"] >= 0
    example_mvs = api.list(MV, ns, label_selector=f"foresight.dev/forecasttask={name}")
    named = (api.get(FT, name, ns) or {}).get("status", {}).get("modelVersion")
    assert [m["metadata"]["name"] for m in example_mvs] == ([named] if named else [])
    checked = api.wait_for(MV, mv["metadata"]["name"],
                           lambda o: (o or {}).get("status", {}).get("phase") in ("Ready", "Failed"),
                           "default", timeout=120, interval=0.5)  # fmt: skip
    assert checked is not None, (api.get(MV, mv["metadata"]["name"], "default"), log())
    assert (cond(checked, "Ready")["status"], cond(checked, "Ready")["reason"]) == ("True", "Verified"), (
        checked
    )
    assert checked["status"]["checksum"] == mv["spec"]["artifact"]["sha256"]

    # kubectl shows it; /metrics exports the schedule.
    table = kubectl("get", "ft", "-A").check().stdout
    assert name in table and "broken" in table
    metrics = requests.get(operator.url("/metrics"), timeout=5).text
    assert f'foresight_forecasttask_next_run_timestamp_seconds{{name="{name}",namespace="{ns}"}}' in metrics
    assert f'foresight_forecasttask_runs_queued{{name="{name}",namespace="{ns}"}}' in metrics

    # Deleting the task deletes its Pushgateway group (the finalizer), and its Jobs.
    kubectl("delete", "ft", name, "-n", ns, "--wait=false").check()
    gone = api.wait_for(FT, name, lambda o: o is None, ns, timeout=60)
    assert gone is None, log()
    wait_for(
        lambda: name not in pushed_tasks(pgw), "the task's Pushgateway group to go", timeout=20, interval=0.5
    )
