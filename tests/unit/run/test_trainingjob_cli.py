"""``foresight run -f trainingjob.yaml``: overrides, locations, S3 secrets, restarts, status, record."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from foresight.api.validation import validate_object
from foresight.run.hosts import Host, HostCheck, HostsError
from foresight.run.launcher import Attempt, RankSpec
from foresight.run.local import TaskFileError
from foresight.run.training_record import model_version_record
from foresight.run.training_report import build_status, format_status
from foresight.run.trainingjob import (
    HostPlan,
    JobFile,
    _s3,
    apply_overrides,
    is_trainingjob_file,
    load_trainingjob,
    resolve_locations,
    run_attempts,
)

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "trainingjob-gpu-ddp.yaml"


def test_overrides_keep_strings_strings_and_read_other_values_as_yaml() -> None:
    doc = {"spec": {"epochs": 50, "hyperparameters": {"hiddenSize": "128"}, "dataset": {"uri": "s3://b/k"}}}
    out = apply_overrides(doc, ["epochs=2", "spec.hyperparameters.windowsPerEpoch=256",
                                "dataset.uri=file:///d.npz", "distributed.workers=3"])  # fmt: skip
    assert out["spec"]["epochs"] == 2 and out["spec"]["distributed"] == {"workers": 3}
    assert out["spec"]["hyperparameters"] == {"hiddenSize": "128", "windowsPerEpoch": "256"}
    assert out["spec"]["dataset"]["uri"] == "file:///d.npz" and doc["spec"]["epochs"] == 50  # a copy
    with pytest.raises(ValueError, match="write it as path=value"):
        apply_overrides(doc, ["epochs"])


def test_an_override_that_breaks_the_spec_is_refused_naming_the_field() -> None:
    with pytest.raises(TaskFileError, match=r"invalid \(after --set\).*epochs"):
        load_trainingjob(str(EXAMPLE), sets=["epochs=0"])
    job = load_trainingjob(str(EXAMPLE), sets=["epochs=2"])
    assert (job.name, job.namespace, job.spec.epochs) == ("storage-transformer-ddp", "ml-platform", 2)
    assert is_trainingjob_file(str(EXAMPLE)) and not is_trainingjob_file(
        str(ROOT / "examples/modelversion.yaml")
    )


def _job(**spec: Any) -> JobFile:
    base = {
        "task": "forecast",
        "dataset": {"uri": "pvc://data/panel.npz"},
        "artifacts": {"uri": "pvc://arts/ml"},
    }
    return JobFile("tj", "ns", load_spec({**base, **spec}))


def load_spec(spec: dict[str, Any]) -> Any:
    from foresight.api.trainingjob import TrainingJobSpec

    return TrainingJobSpec.model_validate(spec)


def test_local_mode_resolves_claims_under_the_state_dir_with_the_clusters_layout(tmp_path: Path) -> None:
    loc = resolve_locations(_job(), pvc_root=tmp_path / "pvc", path="tj.yaml", s3=None)
    assert loc.root == str(tmp_path / "pvc/arts/ml")
    assert (loc.checkpoint, loc.output) == (f"{loc.root}/checkpoints/ns/tj", f"{loc.root}/models/ns/tj")
    assert loc.dataset == str(tmp_path / "pvc/data/panel.npz")


def test_ssh_mode_refuses_claims_that_only_a_cluster_has() -> None:
    with pytest.raises(TaskFileError, match=r"pvc:// exists only in a cluster.*use s3://"):
        resolve_locations(_job(), pvc_root=None, path="tj.yaml", s3=None)


def test_a_teacher_model_version_without_a_record_says_to_run_the_teacher_first(tmp_path: Path) -> None:
    job = _job(task="classifier", distillation={"teacher": {"modelVersion": "teacher-v1"}})
    with pytest.raises(TaskFileError, match=r"no ModelVersion record ns/teacher-v1.*run the teacher first"):
        resolve_locations(job, pvc_root=tmp_path / "pvc", path="tj.yaml", s3=None)


def test_s3_keys_go_to_the_secret_env_only() -> None:
    job = _job(artifacts={"uri": "s3://bucket/runs", "endpoint": "minio:9000", "insecure": True})
    opts, plain, secret = _s3(job.spec, {"AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "key"})
    assert opts is not None and opts.endpoint == "minio:9000" and opts.secure is False
    assert plain == {"FORESIGHT_S3_ENDPOINT": "minio:9000", "FORESIGHT_S3_REGION": "us-east-1",
                     "FORESIGHT_S3_SECURE": "false"}  # fmt: skip
    assert secret == {"AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "key"}
    assert _s3(_job().spec, {"AWS_ACCESS_KEY_ID": "id"}) == (None, {}, {})


class ScriptedLauncher:
    """Plays back attempts in order and records the ranks each was started with."""

    def __init__(self, *attempts: Attempt) -> None:
        self.attempts = list(attempts)
        self.ranks: list[list[RankSpec]] = []
        self.lines: list[str] = []

    def emit(self, line: str) -> None:
        self.lines.append(line)

    def run(self, ranks: list[RankSpec], config: Any, secret_env: Any, *, deadline: Any = None) -> Attempt:
        self.ranks.append(ranks)
        return self.attempts.pop(0)


def _ranks(*hosts: Host) -> list[RankSpec]:
    return [RankSpec(rank=i, host=h, env={}) for i, h in enumerate(hosts)]


def test_retryable_failures_restart_up_to_the_backoff_limit() -> None:
    fail = Attempt(False, [], "WorkerJoinTimeout", "rank 1 never joined", retryable=True)
    launcher = ScriptedLauncher(fail, fail, fail)
    outcome = run_attempts(launcher, _ranks(None), {}, {}, spec=_job(runPolicy={"backoffLimit": 2}).spec,
                           plan=None)  # type: ignore[arg-type]  # fmt: skip
    assert outcome.restarts == 2 and len(launcher.ranks) == 3
    assert outcome.attempt.message.endswith("(runPolicy.backoffLimit 2 reached)")
    final = Attempt(False, [], "NaNLoss", "loss is nan")
    launcher = ScriptedLauncher(final)
    assert run_attempts(launcher, _ranks(None), {}, {}, spec=_job().spec, plan=None).restarts == 0  # type: ignore[arg-type]


class Plan(HostPlan):
    def check(self, hosts: Any) -> list[HostCheck]:
        if any(h.host == "down" for h in hosts):
            raise HostsError("down: cannot log in over SSH")
        return [HostCheck(h, facts={"freePort": 40000 + i}) for i, h in enumerate(hosts)]


def _plan(hosts: list[Host], policy: str) -> Plan:
    return Plan(ssh=None, hosts=hosts, policy=policy, wait_timeout_s=0.0, want_gpus=False,  # type: ignore[arg-type]
                dataset_path=None, s3_endpoint=None)  # fmt: skip


def test_a_lost_host_is_dropped_and_the_job_goes_on_without_it() -> None:
    a, b = Host("a"), Host("b")
    lost = Attempt(False, [], "HostLost", "the SSH session to b dropped", True, [b])
    launcher = ScriptedLauncher(lost, Attempt(True, [], "Succeeded", "training finished"))
    outcome = run_attempts(launcher, _ranks(a, b), {}, {}, spec=_job(runPolicy={"backoffLimit": 0}).spec,
                           plan=_plan([a, b], "resume"))  # type: ignore[arg-type]  # fmt: skip
    assert outcome.attempt.ok and outcome.restarts == 1 and outcome.hosts == ["a"]
    assert [[r.host for r in ranks] for ranks in launcher.ranks] == [[a, b], [a]]
    assert launcher.ranks[1][0].env["WORLD_SIZE"] == "1"  # placed again, rank 0 alone
    assert any("resuming from the newest checkpoint on 1 host(s)" in line for line in launcher.lines)


@pytest.mark.parametrize("policy", ["fail", "wait"])
def test_a_lost_host_stops_the_job_when_the_policy_says_so_or_it_never_comes_back(policy: str) -> None:
    a, down = Host("a"), Host("down")
    lost = Attempt(False, [], "HostLost", "the SSH session to down dropped", True, [down])
    launcher = ScriptedLauncher(lost)
    outcome = run_attempts(launcher, _ranks(a, down), {}, {}, spec=_job().spec,
                           plan=_plan([a, down], policy))  # type: ignore[arg-type]  # fmt: skip
    assert outcome.attempt.reason == "HostLost" and len(launcher.ranks) == 1


def test_status_and_record_are_what_a_cluster_would_show(tmp_path: Path) -> None:
    when = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    result = {"reason": "Succeeded", "epochs": 3, "metrics": {"val_loss": 0.25, "accuracy": 0.9},
              "resumedFromEpoch": 1, "artifactUri": "s3://b/runs/models/ns/tj", "manifestSha256": "a" * 64,
              "worldSize": 2, "dataQuality": {"total": 10, "rows": 10, "passed": True}}  # fmt: skip
    job = _job(
        task="classifier",
        output={"modelName": "shapes"},
        distillation={"teacher": {"modelVersion": "shapes-v1"}},
    )
    record = model_version_record(
        job.spec, job="tj", namespace="ns", result=result, finished=when, mode="ssh", token="0123abcd"
    )
    assert validate_object(record) == []
    assert record["metadata"]["name"] == "shapes-tj-0123abcd"
    assert (
        record["spec"]["version"] == "20261201.120000-0123abcd"
        and record["spec"]["lineage"]["parent"] == "shapes-v1"
    )
    # lineage.parent names a ModelVersion: a teacher given by URI leaves it out.
    by_uri = _job(
        task="classifier", output={"modelName": "shapes"}, distillation={"teacher": {"uri": "s3://b/t"}}
    )
    uri_record = model_version_record(
        by_uri.spec, job="tj", namespace="ns", result=result, finished=when, mode="ssh", token="0123abcd"
    )
    assert validate_object(uri_record) == [] and "parent" not in uri_record["spec"]["lineage"]
    assert record["spec"]["config"]["workers"] == 2 and record["spec"]["artifact"]["sha256"] == "a" * 64
    status = build_status(ok=True, reason="Succeeded", message="training finished", epochs=3, result=result,
                          last_epoch=None, restarts=1, started=when, finished=when,
                          model_version="shapes-tj-0123abcd")  # fmt: skip
    wire = status.to_wire()
    assert wire["phase"] == "Succeeded" and wire["resumedFromEpoch"] == 1 and wire["restarts"] == 1
    assert wire["dataQuality"]["total"] == 10 and wire["bestMetrics"] == {"val_loss": 0.25, "accuracy": 0.9}
    text = format_status(status, name="tj", namespace="ns", where="a, b")
    assert "ns          tj     True    Succeeded   3       shapes-tj-0123abcd" in text
    assert "Resumed From Epoch:  1" in text
    assert yaml.safe_load(yaml.safe_dump(wire, default_flow_style=False))  # plain data
