"""The operator SIGKILLed in the middle of reconciles, then restarted: no duplicates, nothing stuck.

Several TrainingJobs are applied at once; the operator is killed (SIGKILL, no clean-up) right
after the first ConfigMap appears, right after the first Job appears, and at random moments;
after the last restart every TrainingJob must reach Succeeded with exactly one ConfigMap, one
Job and one training pod (a second Job would mean a second training).
"""

from __future__ import annotations

import pathlib
import random
import time
from collections.abc import Callable

import pytest
import yaml

from tests.cluster.emulator import Cluster
from tests.cluster.kubectl import Kubectl
from tests.cluster.kubelet import Kubelet
from tests.cluster.operator_process import OperatorProcess, declared_calls, operator_calls
from tests.e2e.resources import SELECTOR, TJ, phase_is, toy_trainingjob
from tests.polling import wait_for

pytestmark = pytest.mark.e2e

NAMES = [f"restart-{i}" for i in range(5)]
SERVING = "foresight operator serving"  # the operator's start-up log line


def test_operator_killed_mid_reconcile_leaves_no_duplicate_and_no_stuck_resource(
    cluster: Cluster, kubectl: Kubectl, kubelet: Kubelet, crds: None, tmp_path: pathlib.Path
) -> None:
    api = cluster.api
    rng = random.Random(7)
    op = OperatorProcess(cluster, tmp_path)
    docs = [toy_trainingjob(n, epochs=1, resources={"cpu": "100m", "memory": "256Mi"}) for n in NAMES]
    for doc in docs:
        doc["spec"].pop("placement")
    kubectl.apply(yaml.safe_dump_all(docs)).check()

    def any_of(resource: str) -> Callable[[], bool]:
        return lambda: bool(
            api.list(resource, "default", label_selector="app.kubernetes.io/managed-by=foresight")
        )

    kill_points: list[tuple[str, Callable[[], bool] | None]] = [
        ("after the first ConfigMap", any_of("v1/configmaps")),
        ("after the first Job", any_of("batch/v1/jobs")),
        ("at a random moment", None),
        ("at a random moment", None),
    ]
    kills = 0
    children: list[int] = []  # children that existed at each kill
    try:
        for what, point in kill_points:
            if point is None:
                op.start()  # ready: its watches run; kill it while it works through the backlog
                time.sleep(rng.uniform(0.0, 1.0))
            else:
                op.start(wait_ready=False)
                # Up first (its start-up line logged), so a kill point that already holds from an
                # earlier round still kills a running operator rather than one still importing.
                wait_for(
                    lambda n=kills + 1: op.log.read_text().count(SERVING) == n,
                    f"operator start {kills + 1} to log {SERVING!r}",
                    timeout=60,
                    interval=0.01,
                )
                wait_for(point, f"the kill point {what}", timeout=60, interval=0.01)
            op.kill()
            kills += 1
            ours = "app.kubernetes.io/managed-by=foresight"
            children.append(
                len(api.list("v1/configmaps", "default", label_selector=ours))
                + len(api.list("batch/v1/jobs", "default", label_selector=ours))
            )
        op.start()
        for name in NAMES:
            done = api.wait_for(TJ, name, phase_is("Succeeded", "Failed"), "default", timeout=180)
            assert done is not None and done["status"]["phase"] == "Succeeded", (
                done,
                op.log.read_text()[-3000:],
            )
    finally:
        op.stop()
    assert not operator_calls(cluster) - declared_calls()
    assert kills == len(kill_points)
    # At least one kill really landed half-way: some children made, others not yet.
    assert any(0 < n < 2 * len(NAMES) for n in children), children
    assert op.log.read_text().count(SERVING) == kills + 1
    for name in NAMES:
        selector = SELECTOR.format(name)
        jobs = api.list("batch/v1/jobs", "default", label_selector=selector)
        cms = api.list("v1/configmaps", "default", label_selector=selector)
        assert [j["metadata"]["name"] for j in jobs] == [f"{name}-train"]
        assert [c["metadata"]["name"] for c in cms] == [f"{name}-config"]
        pods = api.list("v1/pods", "default", label_selector=f"batch.kubernetes.io/job-name={name}-train")
        assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
        tj = api.get(TJ, name, "default")
        assert tj["status"]["observedGeneration"] == tj["metadata"]["generation"]
        ready = next(c for c in tj["status"]["conditions"] if c["type"] == "Ready")
        assert ready["status"] == "True"
    assert kubelet.errors == []
