"""A TrainingJob with S3 artifacts through the real operator, kubectl, the test kubelet and a real S3 server.

moto's S3 runs over HTTP on 127.0.0.1; the credentials reach the training pod only through a
Kubernetes Secret the spec names. Applied before the Secret exists, the TrainingJob waits with
``SecretNotFound`` (naming the Secret and what to create), starts once ``kubectl create secret``
made it, trains, and leaves a ModelVersion whose artifact is in the bucket (listed with the
minio client, its manifest's sha256 matching the ModelVersion's) and which the ModelVersion
handler's verify Job (reading the same bucket with the same Secret) reports Verified. The secret
value never appears in the TrainingJob, the ModelVersion, the events or the operator log.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator

import pytest
import yaml
from minio import Minio

from tests.cluster.emulator import Cluster
from tests.cluster.kubectl import Kubectl
from tests.cluster.kubelet import Kubelet
from tests.cluster.operator_process import OperatorProcess
from tests.e2e.resources import TJ, condition, phase_is, toy_trainingjob
from tests.servers.s3 import REGION, MotoS3Server, unique_bucket

pytestmark = pytest.mark.e2e

MV = "foresight.dev/v1alpha1/modelversions"




@pytest.fixture(scope="module")
def moto_s3() -> Iterator[MotoS3Server]:
    with MotoS3Server() as server:
        yield server


def test_s3_trainingjob_waits_for_its_secret_then_leaves_a_verified_model_version_in_the_bucket(
    cluster: Cluster,
    kubectl: Kubectl,
    kubelet: Kubelet,
    operator: OperatorProcess,
    moto_s3: MotoS3Server,
) -> None:
    api = cluster.api
    bucket = unique_bucket("tj")
    access, secret = "tj-access-key", f"tj-secret-{uuid.uuid4().hex}"
    s3 = Minio(moto_s3.endpoint, access, secret, secure=False, region=REGION)
    s3.make_bucket(bucket)
    tj = toy_trainingjob(
        "s3-toy",
        artifacts={
            "uri": f"s3://{bucket}/runs",
            "endpoint": moto_s3.endpoint,
            "insecure": True,
            "credentialsSecret": "s3-creds",
        },
        output={"modelName": "toy-s3"},
    )
    kubectl.apply(yaml.safe_dump(tj)).check()

    # No Secret yet: a condition that names it and says what to do; no Job.
    waiting = api.wait_for(
        TJ,
        "s3-toy",
        lambda o: any(
            c.get("reason") == "SecretNotFound"
            for c in ((o or {}).get("status") or {}).get("conditions") or []
        ),
        "default",
        timeout=30,
    )
    assert waiting is not None
    cond = next(c for c in waiting["status"]["conditions"] if c.get("reason") == "SecretNotFound")
    assert "default/s3-creds" in cond["message"] and "accessKey" in cond["message"]
    assert api.find("batch/v1/jobs", "s3-toy-train", "default") is None

    # kubectl's generator, then apply (the emulator speaks JSON / YAML, not the protobuf
    # `kubectl create secret` sends).
    made = kubectl(
        "create", "secret", "generic", "s3-creds", "--dry-run=client", "-o", "yaml",
        f"--from-literal=accessKey={access}", f"--from-literal=secretKey={secret}",
    ).check()  # fmt: skip
    kubectl.apply(made.stdout).check()
    done = api.wait_for(TJ, "s3-toy", phase_is("Succeeded", "Failed"), "default", timeout=120)
    assert done is not None
    assert done["status"]["phase"] == "Succeeded", (done["status"], operator.log.read_text()[-3000:])
    artifact_uri = f"s3://{bucket}/runs/models/default/s3-toy"
    assert done["status"]["artifactUri"] == artifact_uri

    # The ModelVersion: named in the status, not owned by the TrainingJob, pointing at the bucket.
    done = api.wait_for(TJ, "s3-toy", lambda o: bool(o and o["status"].get("modelVersion")), "default")
    assert done is not None
    mv_name = done["status"]["modelVersion"]
    mv = api.get(MV, mv_name, "default")
    assert "ownerReferences" not in mv["metadata"]
    assert mv["spec"]["modelName"] == "toy-s3"
    assert mv["spec"]["lineage"]["trainingJob"] == "s3-toy"
    assert mv["spec"]["artifact"]["uri"] == artifact_uri
    assert mv["spec"]["artifact"]["store"]["credentialsSecret"] == "s3-creds"
    assert mv["spec"]["metrics"]["val_loss"] == done["status"]["bestMetrics"]["val_loss"]

    # The artifact really is in the S3 server, and the checksum the ModelVersion carries is its
    # manifest's.
    keys = {
        o.object_name for o in s3.list_objects(bucket, prefix="runs/models/default/s3-toy/", recursive=True)
    }
    assert "runs/models/default/s3-toy/MANIFEST.json" in keys and any(k.endswith("model.pt") for k in keys), (
        keys
    )
    manifest = s3.get_object(bucket, "runs/models/default/s3-toy/MANIFEST.json")
    try:
        manifest_sha = hashlib.sha256(manifest.read()).hexdigest()
    finally:
        manifest.close()
        manifest.release_conn()
    assert mv["spec"]["artifact"]["sha256"] == manifest_sha

    # The ModelVersion handler verifies it from the bucket (its own Job, the same Secret).
    verified = api.wait_for(
        MV, mv_name, lambda o: bool(o and (o.get("status") or {}).get("verified")), "default", timeout=90
    )
    assert verified is not None
    assert condition(verified, "Ready")["status"] == "True", verified["status"]
    assert verified["status"]["checksum"] == manifest_sha

    # A second look (operator resync, Job events) never makes a second ModelVersion.
    assert [m["metadata"]["name"] for m in api.list(MV, "default")] == [mv_name]
    described = kubectl("describe", "tj", "s3-toy").check().stdout.split("Events:")[-1]
    assert "ModelVersionCreated" in described and "SecretNotFound" in described

    # The secret value is nowhere users or logs can see it.
    seen = "\n".join(
        [
            kubectl("get", "tj", "s3-toy", "-o", "yaml").check().stdout,
            kubectl("get", "mv", mv_name, "-o", "yaml").check().stdout,
            kubectl("get", "events", "-o", "yaml").check().stdout,
            operator.log.read_text(),
        ]
    )
    assert secret not in seen
