"""The reconcile kit's shared pieces: Secrets to wait for, update diffs, Job state, pod results.

Every kind's handler uses these one home each; a fake client stands in for the API server where
one is needed (the handlers' own tests run them against the emulator).
"""

from __future__ import annotations

from typing import Any

import pytest
from foresight.api.meta import SecretKeyRef
from foresight.kube import KubeApiError, ResourceRef
from foresight_operator.reconcile import (
    JobState,
    WaitError,
    get_or_create,
    job_state,
    parse_time,
    pods_worth_reading,
    require_secrets,
)
from foresight_operator.reconcile.pods import ended, finished_at, termination_message
from foresight_operator.reconcile.updates import (
    SPEC_HASH_ANNOTATION,
    configmap_update,
    deployment_update,
    service_update,
    suspend_update,
)

Obj = dict[str, Any]
THINGS = ResourceRef("v1", "things", "Thing")


class FakeKube:
    """get / create over a dict; ``conflict_on_create`` makes the next create answer 409."""

    def __init__(self, objects: dict[str, Obj] | None = None) -> None:
        self.objects = dict(objects or {})
        self.conflict_on_create: Obj | None = None

    def get(self, ref: ResourceRef, name: str, namespace: str | None) -> Obj | None:
        return self.objects.get(name)

    def create(self, ref: ResourceRef, body: Obj, namespace: str | None) -> Obj:
        if self.conflict_on_create is not None:
            self.objects[body["metadata"]["name"]] = self.conflict_on_create
            raise KubeApiError(409, "AlreadyExists", "exists", "POST /things")
        self.objects[body["metadata"]["name"]] = body
        return body


def secret(name: str, **data: str) -> Obj:
    return {"metadata": {"name": name}, "data": data}


def test_a_missing_secret_is_waited_for_with_the_command_that_makes_it() -> None:
    refs = [SecretKeyRef(name="s3", key="accessKey"), SecretKeyRef(name="s3", key="secretKey")]
    with pytest.raises(WaitError) as err:
        require_secrets(FakeKube(), "ml", refs, waiting="the TrainingJob starts", delay=5)  # type: ignore[arg-type]
    assert err.value.reason == "SecretNotFound" and err.value.delay == 5
    assert "Secret ml/s3 not found: create it with keys accessKey, secretKey" in err.value.message
    assert "--from-literal=accessKey=... --from-literal=secretKey=..." in err.value.message
    assert err.value.message.endswith("the TrainingJob starts once it exists")


def test_a_secret_without_a_key_is_as_clear_and_a_complete_one_passes() -> None:
    refs = [SecretKeyRef(name="s3", key="accessKey"), SecretKeyRef(name="s3", key="secretKey")]
    kube = FakeKube({"s3": secret("s3", accessKey="QQ==")})
    with pytest.raises(WaitError, match="has no key secretKey \\(it has: accessKey\\)"):
        require_secrets(kube, "ml", refs, waiting="runs start", delay=5)  # type: ignore[arg-type]
    kube.objects["s3"] = secret("s3", accessKey="QQ==", secretKey="Qg==")
    require_secrets(kube, "ml", refs, waiting="runs start", delay=5)  # type: ignore[arg-type]


def deployment(hash_: str, replicas: int, template: Obj) -> Obj:
    return {
        "metadata": {"annotations": {SPEC_HASH_ANNOTATION: hash_}},
        "spec": {"replicas": replicas, "template": template, "strategy": {"type": "Recreate"}},
    }


def test_deployment_update_patches_only_what_the_operator_owns() -> None:
    template = {"spec": {"containers": [{"name": "c", "env": [{"name": "A", "value": "1"}]}]}}
    same = deployment("h1", 2, template)
    assert deployment_update(same, same) is None
    # Scaled by hand: the replicas come back, the template is left alone (same hash).
    assert deployment_update(same, deployment("h1", 5, template)) == {"spec": {"replicas": 2}}
    # ... unless an HPA owns the count.
    assert deployment_update(same, deployment("h1", 5, template), manage_replicas=False) is None
    # A new spec: template and strategy are diffed (removed keys nulled), the hash moves.
    old = deployment("h0", 2, {"spec": {"containers": [{"name": "c"}], "nodeSelector": {"gpu": "a"}}})
    patch = deployment_update(same, old)
    assert patch is not None and patch["metadata"] == {"annotations": {SPEC_HASH_ANNOTATION: "h1"}}
    assert patch["spec"]["template"]["spec"]["nodeSelector"] is None


def test_service_update_compares_ports_selector_and_the_desired_annotations() -> None:
    desired = {
        "metadata": {"annotations": {"prometheus.io/scrape": "true"}},
        "spec": {"selector": {"app": "a"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
    }
    extra = {**desired, "metadata": {"annotations": {"prometheus.io/scrape": "true", "other": "x"}}}
    assert service_update(desired, extra) is None  # annotations someone else added are theirs
    moved = {**desired, "spec": {**desired["spec"], "selector": {"app": "b"}}}
    assert service_update(desired, moved) == {
        "spec": {"ports": desired["spec"]["ports"], "selector": {"app": "a"}}
    }


def test_configmap_and_suspend_updates() -> None:
    assert configmap_update({"data": {"a": "1"}}, {"data": {"a": "1", "stale": "x"}}) == {
        "data": {"stale": None}
    }
    assert configmap_update({"data": {"a": "1"}}, {"data": {"a": "1"}}) is None
    assert suspend_update({"spec": {"suspend": True}}, {"spec": {}}) == {"spec": {"suspend": True}}
    assert suspend_update({"spec": {"suspend": False}}, {"spec": {"suspend": False}}) is None


def test_job_state_and_when_its_pods_are_worth_reading() -> None:
    def job(*conds: tuple[str, str], failed: int = 0) -> Obj:
        status: Obj = {"conditions": [{"type": t, "status": s} for t, s in conds]}
        if failed:
            status["failed"] = failed
        return {"status": status}

    assert job_state(job()) is JobState.RUNNING
    assert job_state(job(("Complete", "True"))) is JobState.SUCCEEDED
    assert job_state(job(("Failed", "True"))) is JobState.FAILED
    assert job_state(job(("Failed", "False"))) is JobState.RUNNING
    assert not pods_worth_reading(None) and not pods_worth_reading({"status": {}})
    assert pods_worth_reading({"status": {"failed": 1}}) and pods_worth_reading(job(("Complete", "True")))


def test_pods_that_ended_oldest_first_with_their_messages() -> None:
    def pod(name: str, finished: str | None, message: str = "") -> Obj:
        state = {"terminated": {"finishedAt": finished, "message": message}} if finished else {"running": {}}
        return {"metadata": {"name": name}, "status": {"containerStatuses": [{"state": state}]}}

    pods = [pod("b", "2026-03-01T06:02:00Z", "{}"), pod("run", None), pod("a", "2026-03-01T06:01:00Z", "x")]
    assert [p["metadata"]["name"] for p in ended(pods)] == ["a", "b"]
    assert termination_message(pods[2]) == "x" and termination_message(pods[1]) == ""
    assert finished_at(pods[0]) == "2026-03-01T06:02:00Z" and finished_at(pods[1]) == ""


def test_times_parse_in_both_spellings() -> None:
    a = parse_time("2026-03-01T06:15:00Z")
    assert a is not None and a == parse_time("2026-03-01T07:15:00+01:00")
    assert parse_time("") is None and parse_time("yesterday") is None


def test_get_or_create_finds_what_someone_else_made_meanwhile() -> None:
    kube = FakeKube()
    desired = {"metadata": {"name": "mv", "namespace": "ml"}, "spec": {"x": 1}}
    assert get_or_create(kube, THINGS, desired) == (desired, True)  # type: ignore[arg-type]
    assert get_or_create(kube, THINGS, {**desired, "spec": {"x": 2}}) == (desired, False)  # type: ignore[arg-type]
    theirs = {"metadata": {"name": "other"}, "spec": {"x": 3}}
    kube.conflict_on_create = theirs
    assert get_or_create(kube, THINGS, {"metadata": {"name": "other"}}) == (theirs, False)  # type: ignore[arg-type]
