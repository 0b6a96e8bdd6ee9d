"""``ttlSecondsAfterFinished`` as in Kubernetes, and the trained model outliving its TrainingJob.

The operator only passes ``runPolicy.ttlSecondsAfterFinished`` to the Job; the test cluster's Job
controller (tests/cluster/kubelet.py, like Kubernetes' TTL-after-finished controller) deletes the
finished Job, and the garbage collector its pods. The TrainingJob keeps its Succeeded status and
its ModelVersion after the Job is gone, and deleting the TrainingJob keeps the ModelVersion (it
is labelled with the job, not owned by it). ``suspend`` is covered in test_operator_trainingjob.py.
"""

from __future__ import annotations

import pytest
import yaml

from tests.cluster.emulator import Cluster
from tests.cluster.kubectl import Kubectl
from tests.cluster.kubelet import Kubelet
from tests.cluster.operator_process import OperatorProcess
from tests.e2e.resources import SELECTOR, TJ, condition, phase_is, toy_trainingjob
from tests.polling import wait_for

pytestmark = pytest.mark.e2e

MV = "foresight.dev/v1alpha1/modelversions"


def test_finished_job_is_deleted_after_its_ttl_and_the_trainingjob_keeps_status_and_model(
    cluster: Cluster, kubectl: Kubectl, kubelet: Kubelet, operator: OperatorProcess
) -> None:
    api = cluster.api
    body = toy_trainingjob(
        "short-lived",
        epochs=1,
        runPolicy={"backoffLimit": 0, "ttlSecondsAfterFinished": 2},
        output={"modelName": "toy-ttl"},
    )
    kubectl.apply(yaml.safe_dump(body)).check()
    job = api.wait_for("batch/v1/jobs", "short-lived-train", lambda o: o is not None, "default", timeout=30)
    assert job is not None and job["spec"]["ttlSecondsAfterFinished"] == 2

    done = api.wait_for(TJ, "short-lived", phase_is("Succeeded", "Failed"), "default", timeout=120)
    assert done is not None and done["status"]["phase"] == "Succeeded", done
    # The Job and its pods go once the TTL has passed...
    api.wait_for("batch/v1/jobs", "short-lived-train", lambda o: o is None, "default", timeout=60)
    wait_for(lambda: not api.list("v1/pods", "default", label_selector=SELECTOR.format("short-lived")),
             "the finished Job's pods to be garbage-collected", timeout=30)  # fmt: skip
    # ... and the TrainingJob keeps its result and its ModelVersion.
    after = api.wait_for(TJ, "short-lived", lambda o: bool(o and o["status"].get("modelVersion")), "default")
    assert after is not None
    status = after["status"]
    assert status["phase"] == "Succeeded" and status["progress"]["epoch"] == 1
    assert status["artifactUri"] == "pvc://foresight-artifacts/models/default/short-lived"
    assert status["completionTime"] == done["status"]["completionTime"]
    assert condition(after, "Ready")["status"] == "True"
    mv_name = status["modelVersion"]
    mv = api.get(MV, mv_name, "default")
    assert mv["spec"]["artifact"]["uri"] == status["artifactUri"]
    assert api.find("batch/v1/jobs", "short-lived-train", "default") is None  # not started again

    # Deleting the TrainingJob deletes its children, not the model it produced.
    kubectl("delete", "tj", "short-lived", "--wait=false").check()
    api.wait_for(TJ, "short-lived", lambda o: o is None, "default", timeout=30)
    api.wait_for("v1/configmaps", "short-lived-config", lambda o: o is None, "default", timeout=30)
    assert api.find(MV, mv_name, "default") is not None
