"""DDP builders: an Indexed Job of one pod per rank plus the headless Service, against expected YAML."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from foresight.api.trainingjob import TrainingJobSpec
from foresight.contract.training import NON_RETRYABLE_EXIT_CODES
from foresight_operator.builders import build_job, plan_training
from foresight_operator.builders.training import (
    DdpPlan,
    TrainingPlan,
    build_ddp_job,
    build_ddp_service,
)
from foresight_operator.reconcile import SpecError, owner_labels

LABELS = owner_labels("TrainingJob", "demo")


def _spec(**overrides: object) -> TrainingJobSpec:
    doc: dict[str, object] = {
        "task": "forecast",
        "model": "lstm",
        "dataset": {"uri": "pvc://foresight-artifacts/data/panel.npz"},
        "distributed": {"backend": "torch", "workers": 3, "joinTimeoutSeconds": 45},
        "runPolicy": {"backoffLimit": 4},
    }
    doc.update(overrides)
    return TrainingJobSpec.model_validate(doc)


def _plan(spec: TrainingJobSpec, port: str | None = None) -> TrainingPlan:
    return plan_training(
        spec, namespace="ml", name="demo", config_map="demo-config", default_image="rt:1", master_port=port
    )


EXPECTED_SERVICE = """
apiVersion: v1
kind: Service
metadata:
  name: demo-workers
  namespace: ml
  labels: {app.kubernetes.io/managed-by: foresight, foresight.dev/kind: TrainingJob, foresight.dev/name: demo}
spec:
  clusterIP: None
  publishNotReadyAddresses: true
  selector: {batch.kubernetes.io/job-name: demo-train}
  ports:
    - {name: c10d, port: 29500, targetPort: 29500, protocol: TCP}
"""

EXPECTED_DDP_SPEC = """
backoffLimit: 4
suspend: false
completionMode: Indexed
completions: 3
parallelism: 3
podFailurePolicy:
  rules:
    - action: FailJob
      onExitCodes: {containerName: main, operator: In, values: [2, 3, 4, 5, 7, 8, 10]}
    - action: Ignore
      onPodConditions: [{type: DisruptionTarget, status: "True"}]
"""

EXPECTED_DDP_ENV = """
- {name: FORESIGHT_TERMINATION_LOG, value: /dev/termination-log}
- {name: PYTHONUNBUFFERED, value: "1"}
- {name: WORLD_SIZE, value: "3"}
- name: RANK
  valueFrom: {fieldRef: {fieldPath: "metadata.annotations['batch.kubernetes.io/job-completion-index']"}}
- {name: LOCAL_RANK, value: "0"}
- {name: MASTER_ADDR, value: demo-train-0.demo-workers}
- {name: MASTER_PORT, value: "29500"}
"""


def _single_pod_job(plan: TrainingPlan, spec: TrainingJobSpec) -> dict[str, Any]:
    return build_job(
        name="demo-train",
        namespace="ml",
        labels=LABELS,
        image=plan.image,
        command=plan.command,
        env=plan.env,
        run_policy=spec.run_policy,
        volumes=plan.volumes,
        working_dir=plan.working_dir,
    )


def test_torch_backend_plans_ddp_with_join_timeout_in_the_runtime_config() -> None:
    plan = _plan(_spec())
    assert plan.ddp == DdpPlan(workers=3, master_port=29500, join_timeout_seconds=45)
    assert plan.config["distributed"] == {"backend": "auto", "joinTimeoutSeconds": 45}
    # The runtime accepts the document as its TrainConfig.
    from foresight.training.config import TrainConfig

    parsed = TrainConfig.model_validate(plan.config)
    assert parsed.distributed.join_timeout_seconds == 45 and parsed.distributed.backend == "auto"


def test_single_pod_backend_has_no_ddp_plan_and_no_distributed_section() -> None:
    plan = _plan(_spec(distributed={"backend": "none", "workers": 1}))
    assert plan.ddp is None and "distributed" not in plan.config


def test_ray_backend_plans_no_ddp_job() -> None:
    # backend ray runs the same plan in a KubeRay RayJob (builders.rayjob, tested there).
    plan = _plan(_spec(distributed={"backend": "ray", "workers": 2}))
    assert plan.ddp is None and "distributed" not in plan.config


def test_ddp_job_is_indexed_with_torchrun_env_per_pod_and_subdomain() -> None:
    spec = _spec()
    plan = _plan(spec)
    assert plan.ddp is not None
    single = _single_pod_job(plan, spec)
    job = build_ddp_job(single, ddp=plan.ddp, service="demo-workers")
    expected_spec = yaml.safe_load(EXPECTED_DDP_SPEC)
    got_spec = {k: v for k, v in job["spec"].items() if k != "template"}
    assert got_spec == expected_spec
    pod = job["spec"]["template"]["spec"]
    assert pod["subdomain"] == "demo-workers" and pod["restartPolicy"] == "Never"
    assert pod["containers"][0]["env"] == yaml.safe_load(EXPECTED_DDP_ENV)
    # Pure: the single-pod Job it was made from is unchanged.
    assert "completionMode" not in single["spec"]
    assert "subdomain" not in single["spec"]["template"]["spec"]


def test_ddp_env_replaces_user_values_of_the_same_names() -> None:
    spec = _spec()
    plan = _plan(spec)
    assert plan.ddp is not None
    single = _single_pod_job(plan, spec)
    single["spec"]["template"]["spec"]["containers"][0]["env"].append({"name": "WORLD_SIZE", "value": "99"})
    job = build_ddp_job(single, ddp=plan.ddp, service="demo-workers")
    env = job["spec"]["template"]["spec"]["containers"][0]["env"]
    assert [e["value"] for e in env if e["name"] == "WORLD_SIZE"] == ["3"]


def test_headless_service_selects_the_jobs_pods_on_the_master_port() -> None:
    plan = _plan(_spec())
    assert plan.ddp is not None
    svc = build_ddp_service(
        name="demo-workers", namespace="ml", labels=LABELS, job_name="demo-train", ddp=plan.ddp
    )
    assert svc == yaml.safe_load(EXPECTED_SERVICE)


def test_master_port_annotation_moves_env_and_service_port() -> None:
    spec = _spec()
    plan = _plan(spec, port="31234")
    assert plan.ddp is not None and plan.ddp.master_port == 31234
    job = build_ddp_job(_single_pod_job(plan, spec), ddp=plan.ddp, service="s")
    env = {e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MASTER_PORT"] == "31234"
    svc = build_ddp_service(name="s", namespace="ml", labels={}, job_name="demo-train", ddp=plan.ddp)
    assert svc["spec"]["ports"][0]["port"] == 31234


@pytest.mark.parametrize("bad", ["http", "80", "70000"])
def test_bad_master_port_annotation_is_a_spec_error(bad: str) -> None:
    with pytest.raises(SpecError) as info:
        _plan(_spec(), port=bad)
    assert "foresight.dev/ddp-master-port" in info.value.message and bad in info.value.message


def test_non_retryable_exit_codes_match_the_runtime_errors() -> None:
    from foresight.training import errors

    codes = sorted(
        cls.exit_code
        for cls in vars(errors).values()
        if isinstance(cls, type)
        and issubclass(cls, errors.TrainingError)
        and cls is not errors.TrainingError
        and not cls.retryable
    )
    assert tuple(codes) == NON_RETRYABLE_EXIT_CODES
