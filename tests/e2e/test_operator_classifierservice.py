"""The example ClassifierService through the real operator, kubectl, the test kubelet and dashscope.

``kubectl apply`` of examples/classifierservice.yaml (with its Secret; the DashScope base URL pointed
at the local stand-in, a free port, and the bind-host annotation so the pod, a local process,
listens on 127.0.0.1) -> the operator makes the ConfigMap, PVC, Deployment and Service -> the
kubelet runs ``foresight serve classifier`` -> a classification goes through the real dashscope SDK
with the key from the Secret -> the same image again is a cache hit with no LLM call -> a
stand-in failure is a 502 and is not cached -> /api/v1/stats/today and /metrics agree with what
was sent -> the ClassifierService status shows readyReplicas and requestsToday. A second
ClassifierService whose Secret does not exist gets ``SecretNotFound`` and no Deployment.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import io
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import yaml
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from tests.cluster.emulator import Cluster
from tests.cluster.kubectl import Kubectl
from tests.cluster.kubelet import Kubelet
from tests.cluster.operator_process import REPO, OperatorProcess, free_port
from tests.polling import wait_for
from tests.servers.dashscope_standin import DashScopeStandIn

pytestmark = pytest.mark.e2e


CS = "foresight.dev/v1alpha1/classifierservices"
NS = "photos"
API_KEY = "sk-e2e-0123456789-never-log-me"


@pytest.fixture
def standin() -> Iterator[DashScopeStandIn]:
    with DashScopeStandIn(answer="pets") as s:
        yield s


def image(seed: int) -> bytes:
    img = Image.new("RGB", (64, 48), (seed * 40 % 256, 100, 200 - seed))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def example(port: int, base_url: str) -> dict[str, Any]:
    doc = yaml.safe_load((REPO / "examples" / "classifierservice.yaml").read_text())
    doc["metadata"]["annotations"] = {"foresight.dev/bind-host": "127.0.0.1"}
    doc["spec"]["port"] = port
    ds = doc["spec"]["backend"]["dashscope"]
    ds.update(baseUrl=base_url, maxRetries=1, timeoutSeconds=5)
    doc["spec"]["resources"] = {"cpu": "100m", "memory": "256Mi"}
    return dict(doc)


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    out: dict[tuple[tuple[str, str], ...], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name:
                out[tuple(sorted(s.labels.items()))] = s.value
    return out


def test_example_classifierservice_serves_caches_and_reports(
    cluster: Cluster, kubectl: Kubectl, kubelet: Kubelet, operator: OperatorProcess, standin: DashScopeStandIn
) -> None:
    api = cluster.api
    port = free_port()
    service = example(port, standin.base_url)
    orphan = copy.deepcopy(service)
    orphan["metadata"]["name"] = "no-secret"
    orphan["spec"]["port"] = free_port()
    orphan["spec"]["backend"]["dashscope"]["apiKeySecret"] = {"name": "missing", "key": "api-key"}
    # `data`, as `kubectl create secret` sends it (the emulator does not fold stringData into data).
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "dashscope", "namespace": NS},
              "data": {"api-key": base64.b64encode(API_KEY.encode()).decode()}}  # fmt: skip
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}
    kubectl.apply(yaml.safe_dump_all([namespace, secret, service, orphan])).check()

    # Deployment, Service, ConfigMap and PVC; the pod becomes ready; the status says so.
    deploy = api.wait_for("apps/v1/deployments", "photo-classifier", lambda o: o is not None, NS, timeout=30)
    assert deploy is not None
    svc = api.wait_for("v1/services", "photo-classifier", lambda o: o is not None, NS, timeout=30)
    assert svc is not None and svc["spec"]["ports"][0]["port"] == port
    assert api.get("v1/persistentvolumeclaims", "photo-classifier-cache", NS)["spec"]["resources"] == {
        "requests": {"storage": "2Gi"}
    }
    env = deploy["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {
        "name": "DASHSCOPE_API_KEY",
        "valueFrom": {"secretKeyRef": {"name": "dashscope", "key": "api-key"}},
    } in env

    def running(o: dict[str, Any] | None) -> bool:
        return ((o or {}).get("status") or {}).get("phase") == "Running"

    try:
        cs = api.wait_for(CS, "photo-classifier", running, NS, timeout=60)
    except TimeoutError as exc:
        pods = api.list("v1/pods", NS)
        logs = "\n".join(kubelet.logs(p["metadata"]["name"], NS)[-2000:] for p in pods)
        raise AssertionError(
            f"{exc}\npods: {pods}\nlogs: {logs}\noperator: {operator.log.read_text()[-3000:]}"
        ) from exc
    assert cs is not None and cs["status"]["readyReplicas"] == 1
    assert cs["status"]["endpoint"] == f"http://photo-classifier.{NS}.svc:{port}"
    ready = next(c for c in cs["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "Available")

    base = f"http://127.0.0.1:{port}/api/v1"
    first, second = image(1), image(2)

    # 1. A new image: classified by "DashScope" through the real SDK, with the key from the Secret.
    r = requests.post(f"{base}/classify", files={"file": ("a.png", first, "image/png")}, timeout=30)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["category"], body["label_en"], body["cached"]) == ("pets", "Pets", False)
    assert standin.calls == 1
    assert standin.requests[0].headers["Authorization"] == f"Bearer {API_KEY}"
    assert standin.requests[0].images()[0].startswith("data:image/jpeg;base64,")

    # 2. The same bytes again: a cache hit, no LLM call; the hash pre-check hits too.
    r = requests.post(f"{base}/classify", files={"file": ("again.png", first, "image/png")}, timeout=30)
    assert r.status_code == 200 and r.json()["cached"] is True and r.json()["category"] == "pets"
    r = requests.post(
        f"{base}/classify/check-cache", json={"sha256": hashlib.sha256(first).hexdigest()}, timeout=30
    )
    assert r.status_code == 200 and r.json()["hit"] is True
    assert standin.calls == 1

    # 3. The stand-in fails (every try, retries included): 502, and nothing is cached.
    standin.fail_next(500, times=2)
    r = requests.post(f"{base}/classify", files={"file": ("b.png", second, "image/png")}, timeout=30)
    assert r.status_code == 502, r.text
    assert standin.calls == 3
    r = requests.post(
        f"{base}/classify/check-cache", json={"sha256": hashlib.sha256(second).hexdigest()}, timeout=30
    )
    assert r.json()["hit"] is False
    r = requests.post(f"{base}/classify", files={"file": ("b.png", second, "image/png")}, timeout=30)
    assert r.status_code == 200 and r.json()["cached"] is False
    assert standin.calls == 4

    # 4. Stats and /metrics agree with what was sent: 4 classify + 2 check-cache requests.
    # The request log is written behind the response.
    stats: dict[str, Any] = wait_for(
        lambda: requests.get(f"{base}/stats/today", timeout=10).json(),
        "the 6 requests in today's stats",
        timeout=15,
        until=lambda s: s["requests"] >= 6,
    )
    assert (stats["requests"], stats["classify_requests"], stats["check_cache_requests"]) == (6, 4, 2), stats
    # llm_calls counts classifications sent to the backend (3; the stand-in saw 4 HTTP tries with
    # the retry), one of which failed; the two cache hits are the calls saved.
    assert (stats["cache_hits"], stats["llm_calls"], stats["llm_failures"]) == (2, 3, 1), stats
    assert stats["llm_calls_saved"] == 2 and stats["errors"] == 1, stats
    assert stats["categories"] == {"pets": 4}, stats
    metrics = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    reqs = samples(metrics, "foresight_classifier_requests_total")
    assert reqs[(("endpoint", "classify"), ("status", "200"))] == 3
    assert reqs[(("endpoint", "classify"), ("status", "502"))] == 1
    assert reqs[(("endpoint", "check-cache"), ("status", "200"))] == 2
    hits = samples(metrics, "foresight_classifier_cache_hits_total")
    assert sum(hits.values()) == stats["cache_hits"] == 2
    assert samples(metrics, "foresight_classifier_backend_failures_total") == {
        (("backend", "dashscope"),): 1.0
    }

    # 5. The operator reads the stats into the status (on its timer).
    def counted(o: dict[str, Any] | None) -> bool:
        return ((o or {}).get("status") or {}).get("requestsToday") == stats["requests"]

    cs = api.wait_for(CS, "photo-classifier", counted, NS, timeout=40)
    assert cs is not None and cs["status"]["readyReplicas"] == 1
    assert cs["status"]["cacheHitRate"] == pytest.approx(stats["hit_rate"])
    # The full name: the short name `cs` is also core's componentstatuses, which kubectl prefers.
    got = kubectl("get", "classifierservices", "-n", NS).check().stdout
    row = next((line.split() for line in got.splitlines() if line.startswith("photo-classifier")), got)
    assert row[1:3] == ["True", "Running"], got

    # The one without its Secret: a clear condition, no Deployment, no pod churning.
    orphan_cs = api.get(CS, "no-secret", NS)
    cond = next(c for c in orphan_cs["status"]["conditions"] if c["type"] == "Ready")
    assert (orphan_cs["status"]["phase"], cond["reason"]) == ("Pending", "SecretNotFound")
    assert "Secret photos/missing not found" in cond["message"]
    assert api.find("apps/v1/deployments", "no-secret", NS) is None

    # The key never shows up where people look.
    assert API_KEY not in operator.log.read_text()
    assert API_KEY not in kubectl("describe", "classifierservices", "-n", NS).check().stdout
    pods = api.list("v1/pods", NS)
    assert all(API_KEY not in kubelet.logs(p["metadata"]["name"], NS) for p in pods)
