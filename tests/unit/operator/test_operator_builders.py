"""Builders are pure: spec -> manifest, checked against expected YAML."""

from __future__ import annotations

import pytest
import yaml
from foresight.api.meta import Placement, Resources, RunPolicy, SecretKeyRef, Toleration
from foresight.api.trainingjob import TrainingJobSpec
from foresight_operator.builders import (
    Volume,
    build_configmap,
    build_deployment,
    build_job,
    build_service,
    plan_training,
)
from foresight_operator.reconcile import SpecError, owner_labels

LABELS = owner_labels("TrainingJob", "demo")

EXPECTED_JOB = """
apiVersion: batch/v1
kind: Job
metadata:
  name: demo-train
  namespace: ml
  labels: {app.kubernetes.io/managed-by: foresight, foresight.dev/kind: TrainingJob, foresight.dev/name: demo}
spec:
  backoffLimit: 2
  suspend: true
  activeDeadlineSeconds: 3600
  ttlSecondsAfterFinished: 600
  template:
    metadata:
      labels:
        {app.kubernetes.io/managed-by: foresight, foresight.dev/kind: TrainingJob, foresight.dev/name: demo}
    spec:
      restartPolicy: Never
      nodeSelector: {nvidia.com/gpu.product: NVIDIA-H100}
      tolerations:
        - {key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}
      containers:
        - name: main
          image: runtime:1
          imagePullPolicy: IfNotPresent
          command: [foresight, train, --config, /etc/foresight/config/train.yaml]
          workingDir: /var/foresight/artifacts
          env:
            - {name: FORESIGHT_TERMINATION_LOG, value: /dev/termination-log}
            - {name: PYTHONUNBUFFERED, value: "1"}
            - {name: AWS_ACCESS_KEY_ID, valueFrom: {secretKeyRef: {name: s3-creds, key: accessKey}}}
          resources:
            requests: {cpu: "4", memory: 16Gi, nvidia.com/gpu: "2"}
            limits: {memory: 16Gi, nvidia.com/gpu: "2"}
          terminationMessagePath: /dev/termination-log
          terminationMessagePolicy: FallbackToLogsOnError
          volumeMounts:
            - {name: config, mountPath: /etc/foresight/config, readOnly: true}
            - {name: artifacts, mountPath: /var/foresight/artifacts}
      volumes:
        - {name: config, configMap: {name: demo-config}}
        - {name: artifacts, persistentVolumeClaim: {claimName: foresight-artifacts}}
"""


def test_job_has_resources_gpus_placement_volumes_and_run_policy() -> None:
    job = build_job(
        name="demo-train",
        namespace="ml",
        labels=LABELS,
        image="runtime:1",
        command=["foresight", "train", "--config", "/etc/foresight/config/train.yaml"],
        secret_env={"AWS_ACCESS_KEY_ID": SecretKeyRef(name="s3-creds", key="accessKey")},
        resources=Resources(cpu="4", memory="16Gi", gpu=2),
        placement=Placement(
            node_selector={"nvidia.com/gpu.product": "NVIDIA-H100"},
            tolerations=[Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")],
        ),
        run_policy=RunPolicy(
            backoff_limit=2, active_deadline_seconds=3600, ttl_seconds_after_finished=600, suspend=True
        ),
        volumes=[
            Volume(
                name="config", mount_path="/etc/foresight/config", config_map="demo-config", read_only=True
            ),
            Volume(name="artifacts", mount_path="/var/foresight/artifacts", claim="foresight-artifacts"),
        ],
        working_dir="/var/foresight/artifacts",
    )
    assert job == yaml.safe_load(EXPECTED_JOB)


def test_cpu_only_job_requests_no_gpu_and_defaults_run_policy() -> None:
    job = build_job(name="j", namespace="d", labels={}, image="i", command=["true"])
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"] == {
        "requests": {"cpu": "500m", "memory": "1Gi"},
        "limits": {"memory": "1Gi"},
    }
    assert job["spec"]["backoffLimit"] == 3 and job["spec"]["suspend"] is False
    assert "activeDeadlineSeconds" not in job["spec"] and "volumes" not in job["spec"]["template"]["spec"]


def test_configmap_holds_the_run_configuration() -> None:
    cm = build_configmap(
        name="demo-config", namespace="ml", labels=LABELS, data={"train.yaml": "task: toy\n"}
    )
    assert cm == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "demo-config", "namespace": "ml", "labels": LABELS},
        "data": {"train.yaml": "task: toy\n"},
    }


EXPECTED_DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: cls, namespace: web, labels: {app: cls, tier: serve}}
spec:
  replicas: 2
  selector: {matchLabels: {app: cls}}
  template:
    metadata: {labels: {app: cls, tier: serve}}
    spec:
      containers:
        - name: main
          image: runtime:1
          imagePullPolicy: IfNotPresent
          command: [foresight, serve, classifier]
          ports: [{name: http, containerPort: 8000, protocol: TCP}]
          env:
            - {name: PYTHONUNBUFFERED, value: "1"}
            - {name: DASHSCOPE_API_KEY, valueFrom: {secretKeyRef: {name: ds, key: apiKey}}}
          resources:
            requests: {cpu: 500m, memory: 1Gi}
            limits: {memory: 1Gi}
          readinessProbe: {httpGet: {path: /healthz, port: http}, periodSeconds: 5, failureThreshold: 3}
"""


def test_deployment_and_service() -> None:
    dep = build_deployment(
        name="cls", namespace="web", labels={"app": "cls", "tier": "serve"}, selector={"app": "cls"},
        image="runtime:1", command=["foresight", "serve", "classifier"], port=8000, replicas=2,
        secret_env={"DASHSCOPE_API_KEY": SecretKeyRef(name="ds", key="apiKey")},
    )  # fmt: skip
    assert dep == yaml.safe_load(EXPECTED_DEPLOYMENT)
    svc = build_service(name="cls", namespace="web", labels={"app": "cls"}, selector={"app": "cls"}, port=80)
    assert svc["spec"] == {
        "selector": {"app": "cls"},
        "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        "type": "ClusterIP",
    }
    headless = build_service(
        name="w", namespace="d", labels={}, selector={"a": "b"}, port=29500, headless=True
    )
    assert headless["spec"]["clusterIP"] == "None" and headless["spec"]["publishNotReadyAddresses"] is True
    with pytest.raises(ValueError, match="selector"):
        build_deployment(
            name="x", namespace="d", labels={}, selector={"app": "x"}, image="i", command=["c"], port=1
        )


def _spec(**overrides: object) -> TrainingJobSpec:
    doc: dict[str, object] = {
        "task": "forecast",
        "model": "lstm",
        "dataset": {"uri": "pvc://foresight-artifacts/data/panel.npz"},
    }
    doc.update(overrides)
    return TrainingJobSpec.model_validate(doc)


def test_training_plan_on_a_pvc_uses_paths_relative_to_the_mounted_claim() -> None:
    spec = _spec(epochs=3, hyperparameters={"learningRate": "0.01"})
    plan = plan_training(spec, namespace="ml", name="demo", config_map="demo-config", default_image="rt:1")
    assert plan.command == ("foresight", "train", "--config", "/etc/foresight/config/train.yaml")
    assert plan.working_dir == "/var/foresight/artifacts"
    assert plan.config == {
        "task": "forecast",
        "model": "lstm",
        "epochs": 3,
        "seed": 0,
        "hyperparameters": {"learningRate": "0.01"},
        "dataset": {"uri": "data/panel.npz"},
        "checkpoint": {"uri": "checkpoints/ml/demo", "everyEpochs": 1, "keep": 2},
        "output": {"uri": "models/ml/demo"},
    }
    assert plan.artifact_uri == "pvc://foresight-artifacts/models/ml/demo"
    assert [v.claim for v in plan.volumes] == [None, "foresight-artifacts"]
    assert plan.secrets == ()


def test_training_plan_config_is_a_valid_runtime_train_config() -> None:
    from foresight.training.config import TrainConfig

    spec = _spec(search={"trials": 3, "space": {"hidden": {"type": "choice", "values": ["16", "32"]}}})
    plan = plan_training(spec, namespace="ml", name="demo", config_map="c", default_image="i")
    parsed = TrainConfig.model_validate(plan.config)
    assert parsed.search is not None and parsed.search.num_samples == 3
    toy = plan_training(
        spec, namespace="ml", name="demo", config_map="c", default_image="i", builtin_task="toy"
    )
    assert TrainConfig.model_validate(toy.config).task == "toy" and "dataset" not in toy.config


def test_training_plan_on_s3_passes_endpoint_and_secret_refs_not_values() -> None:
    spec = _spec(
        dataset={
            "uri": "s3://data/panel.npz",
            "store": {"endpoint": "minio:9000", "credentialsSecret": "s3"},
        },
        artifacts={
            "uri": "s3://models/team/",
            "endpoint": "minio:9000",
            "insecure": True,
            "credentialsSecret": "s3",
        },
    )
    plan = plan_training(spec, namespace="ml", name="demo", config_map="c", default_image="i")
    assert plan.config["output"] == {"uri": "s3://models/team/models/ml/demo"}
    assert plan.config["dataset"] == {"uri": "s3://data/panel.npz"}
    assert plan.env["FORESIGHT_S3_ENDPOINT"] == "minio:9000" and plan.env["FORESIGHT_S3_SECURE"] == "false"
    assert plan.secret_env["AWS_SECRET_ACCESS_KEY"] == SecretKeyRef(name="s3", key="secretKey")
    assert plan.secrets == ("s3",)
    # The Secret's name (never a value) reaches the pod, so BadCredentials can say what to fix.
    assert plan.env["FORESIGHT_S3_CREDENTIALS_SECRET"] == "s3"


@pytest.mark.parametrize(
    ("overrides", "reason", "hint"),
    [
        ({"dataset": {"uri": "file:///data/panel.npz"}}, "UnsupportedURI", "local mode"),
        ({"artifacts": {"uri": "file:///tmp/a/"}}, "UnsupportedURI", "pvc://"),
        (
            {"task": "classifier", "dataset": {"promql": {"url": "http://p:9090", "query": "up"}}},
            "UnsupportedDataset",
            "dataset.uri",
        ),
        # One pod, one S3 endpoint and one Secret: a dataset store that differs is refused, not
        # silently replaced by the artifacts' settings.
        (
            {
                "dataset": {
                    "uri": "s3://data/panel.npz",
                    "store": {"endpoint": "other:9000", "credentialsSecret": "s3"},
                },
                "artifacts": {"uri": "s3://models/", "endpoint": "minio:9000", "credentialsSecret": "s3"},
            },
            "InvalidSpec",
            "one S3 endpoint",
        ),
        (
            {
                "dataset": {
                    "uri": "s3://data/panel.npz",
                    "store": {"endpoint": "minio:9000", "credentialsSecret": "reader"},
                },
                "artifacts": {"uri": "s3://models/", "endpoint": "minio:9000", "credentialsSecret": "s3"},
            },
            "InvalidSpec",
            "one Secret that can read the dataset",
        ),
    ],
)
def test_training_plan_rejects_what_cannot_run_with_a_fix(
    overrides: dict[str, object], reason: str, hint: str
) -> None:
    with pytest.raises(SpecError) as info:
        plan_training(_spec(**overrides), namespace="ml", name="demo", config_map="c", default_image="i")
    assert info.value.reason == reason and hint in info.value.message


def test_unknown_builtin_task_annotation_is_a_spec_error() -> None:
    with pytest.raises(SpecError, match="toy"):
        plan_training(
            _spec(), namespace="ml", name="d", config_map="c", default_image="i", builtin_task="nope"
        )


def test_training_plan_passes_a_promql_dataset_to_the_runtime_for_the_forecast_task() -> None:
    from foresight.training.config import TrainConfig

    promql = {
        "url": "http://prometheus.monitoring:9090",
        "query": "sum by (user) (storage_used_bytes)",
        "lookback": "240h",
        "step": "30m",
        "groupBy": ["user"],
        "aggregation": "sum",
    }
    plan = plan_training(
        _spec(dataset={"promql": promql}), namespace="ml", name="demo", config_map="c", default_image="i"
    )
    assert plan.config["dataset"] == {"promql": {**promql, "maxSeries": 1000}}
    # Read over HTTP at train time: no dataset volume, no Secret, no S3 settings.
    assert [v.name for v in plan.volumes] == ["config", "artifacts"]
    assert plan.secrets == () and plan.env == {}
    parsed = TrainConfig.model_validate(plan.config)
    assert parsed.dataset is not None and parsed.dataset.uri is None and parsed.dataset.promql is not None
    assert (parsed.dataset.promql.lookback, parsed.dataset.promql.group_by) == ("240h", ["user"])
    defaults = plan_training(
        _spec(dataset={"promql": {"url": "http://p:9090", "query": "up"}}),
        namespace="ml", name="demo", config_map="c", default_image="i",
    )  # fmt: skip
    assert defaults.config["dataset"]["promql"] == {
        "url": "http://p:9090", "query": "up", "lookback": "720h", "step": "1h", "groupBy": [],
        "aggregation": "none", "maxSeries": 1000,
    }  # fmt: skip


def test_training_plan_pushes_epoch_gauges_grouped_by_namespace_and_name_when_asked() -> None:
    from foresight.training.config import TrainConfig

    assert (
        "pushgateway"
        not in plan_training(_spec(), namespace="ml", name="demo", config_map="c", default_image="i").config
    )
    spec = _spec(metrics={"pushgatewayUrl": "http://pushgateway.monitoring:9091"})
    plan = plan_training(spec, namespace="ml", name="demo", config_map="c", default_image="i")
    assert plan.config["pushgateway"] == {
        "url": "http://pushgateway.monitoring:9091",
        "job": "foresight-training",
        "grouping": {"namespace": "ml", "trainingjob": "demo"},
    }
    parsed = TrainConfig.model_validate(plan.config).pushgateway
    assert parsed is not None and parsed.grouping == {"namespace": "ml", "trainingjob": "demo"}
    with pytest.raises(ValueError, match="pushgatewayUrl"):
        _spec(metrics={"pushgatewayUrl": "pushgateway:9091"})  # no scheme


def test_custom_task_job_runs_the_users_image_command_and_args_with_the_spec_resources() -> None:
    spec = TrainingJobSpec.model_validate(
        {
            "task": "custom",
            "runtime": {"image": "registry.example/team/trainer:3", "pullPolicy": "Always"},
            "command": ["python", "-m", "team.train"],
            "args": ["--epochs", "5", "--data", "/data"],
            "resources": {"cpu": "2", "memory": "8Gi", "gpu": 1},
        }
    )
    plan = plan_training(spec, namespace="ml", name="own", config_map="own-config", default_image="rt:1")
    assert (plan.image, plan.pull_policy) == ("registry.example/team/trainer:3", "Always")
    assert plan.command == ("python", "-m", "team.train")
    assert plan.args == ("--epochs", "5", "--data", "/data")
    job = build_job(
        name="own-train", namespace="ml", labels=LABELS, image=plan.image, pull_policy=plan.pull_policy,
        command=plan.command, args=plan.args, env=plan.env, secret_env=plan.secret_env,
        resources=spec.resources, placement=spec.placement, run_policy=spec.run_policy,
        volumes=plan.volumes, working_dir=plan.working_dir,
    )  # fmt: skip
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "registry.example/team/trainer:3"
    assert container["imagePullPolicy"] == "Always"
    assert container["command"] == ["python", "-m", "team.train"]
    assert container["args"] == ["--epochs", "5", "--data", "/data"]
    assert container["resources"] == {
        "requests": {"cpu": "2", "memory": "8Gi", "nvidia.com/gpu": "1"},
        "limits": {"memory": "8Gi", "nvidia.com/gpu": "1"},
    }
    # The built-in runtime is not involved: neither its image nor `foresight train`.
    assert "rt:1" not in yaml.safe_dump(job)
    assert "foresight" not in container["command"] and "train" not in container["command"]
    assert not any("train.yaml" in part for part in container["command"] + container["args"])
