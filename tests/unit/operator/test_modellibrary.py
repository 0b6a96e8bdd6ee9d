"""ModelLibrary: the fetch Job plan (pure builders), status from a Job's verdict (pure), and the
controller against the in-process API emulator (Jobs "finished" by writing what a kubelet would)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml
from foresight.api.modellibrary import ModelLibrarySpec
from foresight.contract.library import FetchConfig, FetchResult, ModelArtifact
from foresight_operator.builders.modellibrary import (
    FetchRun,
    build_fetch_configmap,
    build_fetch_job,
    build_library_model_version,
    fetch_job_name,
    parse_fetch_run,
    plan_fetch,
    source_digest,
)
from foresight_operator.handlers.context import HandlerContext
from foresight_operator.handlers.modellibrary import LibraryController
from foresight_operator.handlers.modellibrary.status import Verdict, folded_status, read_verdict
from foresight_operator.reconcile import SpecError, WaitError
from foresight_operator.schedule import Backoff

from tests.cluster.emulator import Cluster
from tests.unit.operator.conftest import Events, handler_context

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
NS = "ml"
MLIB = "foresight.dev/v1alpha1/modellibraries"
MV = "foresight.dev/v1alpha1/modelversions"
SHA = "a" * 64
BACKOFF = Backoff(base=timedelta(seconds=10), cap=timedelta(minutes=10))


def spec(**fields: Any) -> ModelLibrarySpec:
    return ModelLibrarySpec.model_validate(
        {"source": {"builtin": "postgresql-oltp"}, "version": "2026.12", **fields}
    )


# --- builders ----------------------------------------------------------------------------------------


def test_fetch_job_of_a_builtin_library_on_the_default_claim() -> None:
    plan = plan_fetch(
        spec(),
        name="pg",
        namespace=NS,
        run=FetchRun(3),
        default_image="img:1",
        protected_owners=("ml/other",),
    )
    assert plan.name == fetch_job_name("pg", FetchRun(3)) == "pg-fetch-g3"
    assert plan.command == ("foresight", "library", "fetch", "--config", "/etc/foresight/library/fetch.yaml")
    assert {v.claim: v.mount_path for v in plan.volumes if v.claim} == {
        "foresight-artifacts": "/var/lib/foresight/pvc/foresight-artifacts"
    }
    assert plan.env["FORESIGHT_PVC_ROOT"] == "/var/lib/foresight/pvc/foresight-artifacts/.."
    assert plan.secret_env == {} and plan.config_map is None
    cm = build_fetch_configmap(plan, name="pg", namespace=NS)
    config = FetchConfig.model_validate(yaml.safe_load(cm["data"]["fetch.yaml"]))
    assert (config.name, config.namespace, config.generation, config.action) == ("pg", NS, 3, "fetch")
    assert (config.store, config.prefix) == ("pvc://foresight-artifacts/", "modellibraries/ml")
    assert config.protected_owners == ["ml/other"] and config.spec == spec()
    job = build_fetch_job(plan, name="pg", namespace=NS)
    assert job["spec"]["backoffLimit"] == 0 and job["spec"]["activeDeadlineSeconds"] == 900
    assert parse_fetch_run(job["metadata"]["annotations"]) == FetchRun(3)
    assert job["metadata"]["labels"]["foresight.dev/kind"] == "ModelLibrary"


def test_a_configmap_source_is_mounted_and_named_on_the_command_line() -> None:
    cm_spec = spec(source={"configMap": {"name": "team-cases", "key": "lib.json"}}, version="1.0")
    plan = plan_fetch(cm_spec, name="team", namespace=NS, run=FetchRun(1, 2), default_image="img")
    assert plan.name == "team-fetch-g1-a2" and plan.config_map == "team-cases"
    assert plan.command[-2:] == ("--source-dir", "/etc/foresight/library-source")
    assert {v.config_map: v.mount_path for v in plan.volumes if v.config_map} == {
        "team-fetch-g1-a2": "/etc/foresight/library",
        "team-cases": "/etc/foresight/library-source",
    }
    # A withdraw needs no source: nothing of it is mounted.
    withdraw = plan_fetch(
        cm_spec,
        name="team",
        namespace=NS,
        run=FetchRun(2, 1, "withdraw"),
        default_image="img",
        library_name="team-oltp",
    )
    assert withdraw.name == "team-withdraw-g2" and withdraw.config_map is None
    assert "--source-dir" not in withdraw.command and withdraw.config.library_name == "team-oltp"


def test_s3_source_and_s3_store_credentials_come_from_their_secrets() -> None:
    s3_spec = spec(
        source={
            "s3": "s3://libs/pg.tar.gz",
            "store": {"endpoint": "minio:9000", "credentialsSecret": "reader"},
        },
        sha256=SHA,
        store={
            "uri": "s3://libraries/",
            "endpoint": "minio:9000",
            "insecure": True,
            "credentialsSecret": "writer",
        },
    )
    plan = plan_fetch(s3_spec, name="pg", namespace=NS, run=FetchRun(1), default_image="img")
    refs = {k: (r.name, r.key) for k, r in plan.secret_env.items()}
    assert refs == {
        "AWS_ACCESS_KEY_ID": ("writer", "accessKey"),
        "AWS_SECRET_ACCESS_KEY": ("writer", "secretKey"),
        "FORESIGHT_SOURCE_AWS_ACCESS_KEY_ID": ("reader", "accessKey"),
        "FORESIGHT_SOURCE_AWS_SECRET_ACCESS_KEY": ("reader", "secretKey"),
    }
    assert (plan.config.store, plan.config.store_endpoint, plan.config.store_insecure) == (
        "s3://libraries/",
        "minio:9000",
        True,
    )
    assert not any(v.claim for v in plan.volumes)
    assert "writer" not in json.dumps(plan.config.model_dump(mode="json")).replace('"writer"', "")


def test_a_file_store_is_refused_in_a_cluster_naming_the_field() -> None:
    with pytest.raises(SpecError, match=r"spec\.store\.uri.*local mode"):
        plan_fetch(
            spec(store={"uri": "file:///tmp/x"}), name="pg", namespace=NS, run=FetchRun(1), default_image="i"
        )


def test_the_source_digest_ignores_active_only() -> None:
    assert source_digest(spec()) == source_digest(spec(active=False))
    assert source_digest(spec()) != source_digest(spec(version="2027.01"))


def test_a_library_model_becomes_a_model_version_of_the_claim() -> None:
    library = {"metadata": {"name": "pg", "namespace": NS}, "spec": spec().to_wire()}
    artifact = ModelArtifact(
        name="qps-lstm",
        type="lstm",
        sha256="b" * 64,
        uri="file:///var/lib/foresight/pvc/foresight-artifacts/modellibraries/ml/pg-oltp/versions/1+x/models/qps-lstm",
    )
    mv = build_library_model_version(library, artifact, library_name="pg-oltp", version="1+x")
    assert mv["metadata"]["name"] == "pg-qps-lstm-1-x"
    assert mv["metadata"]["labels"]["foresight.dev/modellibrary"] == "pg"
    assert mv["spec"]["artifact"] == {
        "uri": "pvc://foresight-artifacts/modellibraries/ml/pg-oltp/versions/1+x/models/qps-lstm",
        "sha256": "b" * 64,
    }
    assert (mv["spec"]["modelName"], mv["spec"]["version"]) == ("pg-oltp-qps-lstm", "1-x")


# --- status from a verdict ----------------------------------------------------------------------------


def verdict(**doc: Any) -> Verdict:
    return Verdict(FetchResult.model_validate(doc), NOW - timedelta(seconds=5))


def fold(current: dict[str, Any], v: Verdict, attempt: int = 1, **kw: Any) -> dict[str, Any]:
    return folded_status(
        current,
        spec=spec(),
        job=f"pg-fetch-g2-a{attempt}",
        run=FetchRun(2, attempt),
        verdict=v,
        now=NOW,
        degraded_after=kw.pop("degraded_after", 3),
        backoff=BACKOFF,
        **kw,
    )


def cond(status: dict[str, Any], ctype: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == ctype)


ACTIVE = {
    "phase": "Ready",
    "reason": "Active",
    "message": "postgresql-oltp 2026.12: 300 cases verified and active",
    "libraryName": "postgresql-oltp",
    "version": "2026.12",
    "cases": 300,
    "validCases": 300,
    "invalidCases": 0,
    "checksum": SHA,
    "active": True,
    "activeVersion": "2026.12",
    "activeOwner": "ml/pg",
    "storedUri": "file:///var/lib/foresight/pvc/foresight-artifacts/modellibraries/ml/postgresql-oltp/versions/2026.12",
    "pointer": "file:///var/lib/foresight/pvc/foresight-artifacts/modellibraries/ml/postgresql-oltp/active.json",
    "quality": {"heldOut": 300, "k": 5, "architectureAccuracy": 0.8, "baselineAccuracy": 0.4},
    "source": {"kind": "builtin", "location": "builtin:postgresql-oltp", "reachable": True},
    "fetchedTime": "2026-12-05T11:59:55Z",
}


def test_a_verified_and_activated_library_is_ready_with_its_counts_and_quality() -> None:
    status = fold({}, verdict(**ACTIVE), model_versions=["pg-m-1"])
    assert (status["phase"], status["active"], status["cases"], status["validCases"]) == (
        "Ready",
        True,
        300,
        300,
    )
    assert (
        status["storedUri"] == "pvc://foresight-artifacts/modellibraries/ml/postgresql-oltp/versions/2026.12"
    )
    assert status["pointer"].startswith("pvc://foresight-artifacts/modellibraries/ml/")
    assert status["quality"]["architectureAccuracy"] == 0.8 and status["modelVersions"] == ["pg-m-1"]
    assert (cond(status, "Ready")["status"], cond(status, "Ready")["reason"]) == ("True", "Active")
    assert status["fetchJob"] == "pg-fetch-g2-a1" and status["observedGeneration"] == 2


def test_a_checksum_mismatch_says_the_previous_version_stays_active_and_what_to_do() -> None:
    before = fold({}, verdict(**ACTIVE))
    failed = verdict(
        phase="Failed",
        reason="ChecksumMismatch",
        retryable=False,
        message="downloaded sha256 b..., pinned a...",
        checksum="b" * 64,
        active=True,
        activeVersion="2026.12",
        activeOwner="ml/pg",
    )
    status = fold(before, failed)
    ready = cond(status, "Ready")
    assert (status["phase"], ready["status"], ready["reason"]) == ("Failed", "False", "ChecksumMismatch")
    assert "version 2026.12 of this library stays active" in ready["message"]
    assert "pin the new sha256" in ready["message"]
    assert (status["active"], status["activeVersion"], status["checksum"]) == (True, "2026.12", "b" * 64)
    assert "cases" not in status and "quality" not in status  # every verdict replaces all result fields
    assert status["modelVersions"] == []


def test_a_withdraw_keeps_what_the_last_fetch_found_of_the_source() -> None:
    before = fold({}, verdict(**ACTIVE))
    withdrawn = {
        **ACTIVE,
        "reason": "Inactive",
        "action": "withdraw",
        "active": False,
        "activeVersion": None,
        "activeOwner": None,
        "previousVersion": "2026.12",
        "quality": None,
        "source": None,
    }
    status = fold(before, verdict(**{k: v for k, v in withdrawn.items() if v is not None}))
    assert (status["phase"], status["active"], status["previousVersion"]) == ("Ready", False, "2026.12")
    assert status["source"] == before["source"] and status["quality"] == before["quality"]
    assert "activeVersion" not in status


def test_a_retryable_failure_backs_off_and_turns_degraded_after_repeated_ones() -> None:
    down = {
        "phase": "Failed",
        "reason": "SourceUnreachable",
        "retryable": True,
        "message": "connection refused",
    }
    status: dict[str, Any] = {}
    for attempt in (1, 2, 3):
        status = fold(status, verdict(**down), attempt=attempt)
    assert (status["phase"], status["consecutiveFailures"]) == ("Retrying", 3)
    assert status["nextRetryTime"] == "2026-12-05T12:00:35Z"  # finished 11:59:55 + 10 s x 2^2
    assert (
        cond(status, "Degraded")["status"] == "True"
        and "3 fetches in a row" in cond(status, "Degraded")["message"]
    )
    assert "next starts at 2026-12-05T12:00:35Z" in cond(status, "Ready")["message"]
    recovered = fold(status, verdict(**ACTIVE), attempt=4)
    assert recovered["consecutiveFailures"] == 0 and "nextRetryTime" not in recovered
    assert (cond(recovered, "Degraded")["status"], cond(recovered, "Degraded")["reason"]) == (
        "False",
        "Recovered",
    )


def test_a_pod_that_left_no_result_is_retried() -> None:
    job = {"status": {"conditions": [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}]}}
    v = read_verdict(job, [], now=NOW)
    assert (v.phase, v.result.reason, v.result.retryable) == ("Retrying", "FetchFailed", True)
    assert "did not finish within 900 s" in v.result.message
    crash = {
        "status": {
            "containerStatuses": [
                {
                    "state": {
                        "terminated": {
                            "exitCode": 1,
                            "message": "Traceback ... MemoryError",
                            "finishedAt": "2026-12-05T11:58:00Z",
                        }
                    }
                }
            ]
        }
    }
    v = read_verdict({"status": {"conditions": [{"type": "Failed", "status": "True"}]}}, [crash], now=NOW)
    assert "MemoryError" in v.result.message and v.finished == NOW - timedelta(minutes=2)


def test_an_active_conflict_is_its_own_phase_naming_the_holder() -> None:
    status = fold(
        {},
        verdict(
            phase="Failed",
            reason="ActiveConflict",
            retryable=False,
            active=False,
            activeOwner="ml/other",
            activeVersion="2026.11",
            libraryName="postgresql-oltp",
            message="ModelLibrary ml/other holds the active version of library postgresql-oltp (2026.11)",
        ),
    )
    assert (status["phase"], status["activeOwner"], status["active"]) == ("Conflict", "ml/other", False)
    assert (
        cond(status, "Ready")["reason"] == "ActiveConflict" and "ml/other" in cond(status, "Ready")["message"]
    )


# --- the controller against the API emulator -------------------------------------------------------------


@pytest.fixture
def ctx(cluster: Cluster, events: Events) -> HandlerContext:
    return handler_context(cluster, events, NOW)


def apply(cluster: Cluster, name: str, **spec_fields: Any) -> dict[str, Any]:
    body = {
        "apiVersion": "foresight.dev/v1alpha1",
        "kind": "ModelLibrary",
        "metadata": {"name": name},
        "spec": {"source": {"builtin": "postgresql-oltp"}, "version": "2026.12", **spec_fields},
    }
    return cluster.api.create(MLIB, body, NS)


def finish(cluster: Cluster, job: str, result: dict[str, Any], *, exit_code: int = 0) -> None:
    """What the Job controller and the kubelet write when the fetch pod ends with ``result``."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"{job}-x", "labels": {"batch.kubernetes.io/job-name": job}},
        "spec": {"containers": [{"name": "main", "image": "img"}]},
    }
    cluster.api.create("v1/pods", pod, NS)
    term = {"exitCode": exit_code, "message": json.dumps(result), "finishedAt": "2026-12-05T11:59:55Z"}
    cluster.api.patch(
        "v1/pods",
        f"{job}-x",
        {
            "status": {
                "phase": "Succeeded" if exit_code == 0 else "Failed",
                "containerStatuses": [{"name": "main", "state": {"terminated": term}}],
            }
        },
        NS,
        sub="status",
    )
    kind = "Complete" if exit_code == 0 else "Failed"
    cluster.api.patch(
        "batch/v1/jobs", job, {"status": {"conditions": [{"type": kind, "status": "True"}]}}, NS, sub="status"
    )


def status_of(cluster: Cluster, name: str) -> dict[str, Any]:
    return dict(cluster.api.get(MLIB, name, NS).get("status") or {})


def with_models(doc: dict[str, Any], owner: str = "ml/pg") -> dict[str, Any]:
    return {
        **doc,
        "activeOwner": owner,
        "models": 1,
        "modelArtifacts": [
            {
                "name": "qps-lstm",
                "type": "lstm",
                "sha256": "c" * 64,
                "uri": "file:///pvc/foresight-artifacts/modellibraries/ml/postgresql-oltp/versions/2026.12/models/qps-lstm",
            }
        ],
    }


def test_fetch_fold_model_versions_and_withdraw_without_the_source(
    cluster: Cluster, ctx: HandlerContext, events: Events
) -> None:
    controller = LibraryController(ctx)
    apply(cluster, "pg")
    controller.reconcile(NS, "pg")
    job = cluster.api.get("batch/v1/jobs", "pg-fetch-g1", NS)
    assert job is not None and job["metadata"]["ownerReferences"][0]["name"] == "pg"
    assert cluster.api.get("v1/configmaps", "pg-fetch-g1", NS) is not None
    assert status_of(cluster, "pg")["phase"] == "Fetching"
    controller.reconcile(NS, "pg")  # nothing new while it runs: still one Job
    assert len(cluster.api.list("batch/v1/jobs", NS)) == 1

    finish(cluster, "pg-fetch-g1", with_models(ACTIVE))
    controller.reconcile(NS, "pg")
    status = status_of(cluster, "pg")
    assert (status["phase"], status["active"], status["modelVersions"]) == (
        "Ready",
        True,
        ["pg-qps-lstm-2026-12"],
    )
    mv = cluster.api.get(MV, "pg-qps-lstm-2026-12", NS)
    assert mv["metadata"]["ownerReferences"][0]["name"] == "pg"
    assert mv["spec"]["artifact"]["uri"].startswith("pvc://foresight-artifacts/modellibraries/ml/")
    assert ("Normal", "Active", ACTIVE["message"]) in events

    # active: false on the same source only withdraws it: no fetch, and its ModelVersions go.
    cluster.api.patch(MLIB, "pg", {"spec": {"active": False}}, NS)
    controller.reconcile(NS, "pg")
    withdraw = cluster.api.get("batch/v1/jobs", "pg-withdraw-g2", NS)
    config = yaml.safe_load(cluster.api.get("v1/configmaps", "pg-withdraw-g2", NS)["data"]["fetch.yaml"])
    assert withdraw is not None and (config["action"], config["libraryName"]) == (
        "withdraw",
        "postgresql-oltp",
    )
    finish(
        cluster,
        "pg-withdraw-g2",
        {
            **ACTIVE,
            "reason": "Inactive",
            "active": False,
            "activeVersion": None,
            "activeOwner": None,
            "previousVersion": "2026.12",
            "action": "withdraw",
        },
    )
    controller.reconcile(NS, "pg")
    status = status_of(cluster, "pg")
    assert (status["phase"], status["active"], status["previousVersion"]) == ("Ready", False, "2026.12")
    assert cluster.api.list(MV, NS) == [] and status["modelVersions"] == []


def test_a_failed_newer_version_leaves_the_active_ones_model_versions(
    cluster: Cluster, ctx: HandlerContext
) -> None:
    controller = LibraryController(ctx)
    apply(cluster, "pg")
    controller.reconcile(NS, "pg")
    finish(cluster, "pg-fetch-g1", with_models(ACTIVE))
    controller.reconcile(NS, "pg")
    cluster.api.patch(MLIB, "pg", {"spec": {"version": "2027.01", "sha256": SHA}}, NS)
    controller.reconcile(NS, "pg")
    mismatch = {
        "phase": "Failed",
        "reason": "ChecksumMismatch",
        "retryable": False,
        "message": "not the file",
        "active": True,
        "activeVersion": "2026.12",
        "activeOwner": "ml/pg",
    }
    finish(cluster, "pg-fetch-g2", mismatch)
    controller.reconcile(NS, "pg")
    status = status_of(cluster, "pg")
    assert (status["phase"], status["active"], status["activeVersion"]) == ("Failed", True, "2026.12")
    assert status["modelVersions"] == ["pg-qps-lstm-2026-12"]
    assert [mv["metadata"]["name"] for mv in cluster.api.list(MV, NS)] == ["pg-qps-lstm-2026-12"]


def test_a_retryable_failure_is_retried_as_the_next_attempt_when_due(
    cluster: Cluster, events: Events
) -> None:
    clock = [NOW]
    base = handler_context(cluster, events, NOW)
    ctx = HandlerContext(base.settings, base.kube, base.metrics, base.post_event, clock=lambda: clock[0])
    controller = LibraryController(ctx, backoff=BACKOFF)  # the first retry 10 s after the failure
    apply(cluster, "pg")
    controller.reconcile(NS, "pg")
    finish(
        cluster,
        "pg-fetch-g1",
        {"phase": "Failed", "reason": "SourceUnreachable", "retryable": True, "message": "refused"},
        exit_code=75,
    )
    controller.reconcile(NS, "pg")
    status = status_of(cluster, "pg")
    assert (status["phase"], status["consecutiveFailures"]) == ("Retrying", 1)
    assert not controller.retry_due(cluster.api.get(MLIB, "pg", NS), clock[0])
    controller.reconcile(NS, "pg")  # not due yet: no second Job
    assert [j["metadata"]["name"] for j in cluster.api.list("batch/v1/jobs", NS)] == ["pg-fetch-g1"]
    clock[0] = NOW + timedelta(seconds=30)
    assert controller.retry_due(cluster.api.get(MLIB, "pg", NS), clock[0])
    controller.reconcile(NS, "pg")
    assert cluster.api.get("batch/v1/jobs", "pg-fetch-g1-a2", NS) is not None
    assert status_of(cluster, "pg")["phase"] == "Fetching"


def test_a_missing_configmap_is_waited_for_with_the_command_that_makes_it(
    cluster: Cluster, ctx: HandlerContext
) -> None:
    controller = LibraryController(ctx)
    apply(cluster, "team", source={"configMap": {"name": "team-cases"}}, version="1.0")
    with pytest.raises(WaitError) as err:
        controller.reconcile(NS, "team")
    assert (
        err.value.reason == "ConfigMapNotFound"
        and "kubectl -n ml create configmap team-cases" in err.value.message
    )
    assert status_of(cluster, "team")["phase"] == "Pending"
    assert cluster.api.list("batch/v1/jobs", NS) == []
    cluster.api.create(
        "v1/configmaps", {"metadata": {"name": "team-cases"}, "data": {"library.json": "{}"}}, NS
    )
    controller.reconcile(NS, "team")
    assert cluster.api.get("batch/v1/jobs", "team-fetch-g1", NS) is not None


def test_two_libraries_of_one_name_the_later_waits_and_takes_over_once_the_first_lets_go(
    cluster: Cluster, ctx: HandlerContext
) -> None:
    controller = LibraryController(ctx)
    apply(cluster, "pg")
    controller.reconcile(NS, "pg")
    finish(cluster, "pg-fetch-g1", ACTIVE)
    controller.reconcile(NS, "pg")
    apply(cluster, "pg2")
    controller.reconcile(NS, "pg2")
    config = yaml.safe_load(cluster.api.get("v1/configmaps", "pg2-fetch-g1", NS)["data"]["fetch.yaml"])
    assert config["protectedOwners"] == ["ml/pg"]  # the Job must not take pg's pointer
    finish(
        cluster,
        "pg2-fetch-g1",
        {
            "phase": "Failed",
            "reason": "ActiveConflict",
            "retryable": False,
            "active": False,
            "libraryName": "postgresql-oltp",
            "activeOwner": "ml/pg",
            "activeVersion": "2026.12",
            "message": "ModelLibrary ml/pg holds the active version of library postgresql-oltp (2026.12)",
        },
    )
    controller.reconcile(NS, "pg2")
    assert (status_of(cluster, "pg2")["phase"], status_of(cluster, "pg2")["activeOwner"]) == (
        "Conflict",
        "ml/pg",
    )
    controller.reconcile(NS, "pg2")  # pg still holds it: no new attempt
    assert "pg2-fetch-g1-a2" not in {j["metadata"]["name"] for j in cluster.api.list("batch/v1/jobs", NS)}
    cluster.api.delete(MLIB, "pg", NS)
    controller.reconcile(NS, "pg2")
    config = yaml.safe_load(cluster.api.get("v1/configmaps", "pg2-fetch-g1-a2", NS)["data"]["fetch.yaml"])
    assert config["protectedOwners"] == []


def test_when_two_activate_at_once_the_pointers_last_writer_holds_and_the_other_is_told(
    cluster: Cluster, ctx: HandlerContext
) -> None:
    controller = LibraryController(ctx)
    for name in ("pg", "pg2"):
        apply(cluster, name)
        controller.reconcile(NS, name)
    finish(cluster, "pg-fetch-g1", ACTIVE)
    controller.reconcile(NS, "pg")
    finish(cluster, "pg2-fetch-g1", {**ACTIVE, "activeOwner": "ml/pg2", "previousVersion": "2026.12"})
    controller.reconcile(NS, "pg2")
    first, second = status_of(cluster, "pg"), status_of(cluster, "pg2")
    assert (second["phase"], second["active"]) == ("Ready", True)
    assert (first["phase"], first["active"], first["activeOwner"]) == ("Conflict", False, "ml/pg2")
    assert "ml/pg2" in cond(first, "Ready")["message"]


def test_the_libraries_waiting_in_conflict_are_known_from_the_events_without_listing() -> None:
    from foresight_operator.handlers.modellibrary.siblings import Conflicts

    def lib(name: str, phase: str, namespace: str = "ml", **meta: Any) -> dict[str, Any]:
        return {"metadata": {"name": name, "namespace": namespace, **meta}, "status": {"phase": phase}}

    conflicts = Conflicts()
    seen = [lib("a", "Conflict"), lib("b", "Ready"), lib("c", "Conflict"), lib("d", "Conflict", "other")]
    for body in seen:
        conflicts.see(body)
    assert conflicts.waiting("ml") == ["a", "c"] and conflicts.waiting("other") == ["d"]
    conflicts.see(lib("a", "Fetching"))  # it took the name over: no longer waiting
    conflicts.see(lib("c", "Conflict", deletionTimestamp="2026-03-01T00:00:00Z"))  # going
    conflicts.see(lib("d", "Conflict", "other"), deleted=True)
    assert conflicts.waiting("ml") == [] and conflicts.waiting("other") == []
