"""Pure builders of a sharded ForecastTask run (``spec.parallelism`` > 1): the plan Job, then one
Indexed Job of the shards.

**Why two Jobs, sequenced by the operator.** The plan (listing the series, assigning them to
shards, training the networks on a sample) must happen exactly once per run, before any shard
reads, and its result (the plan's location, the series per shard, the mode the shards run in)
is what the shards are started with. Kubernetes has no dependency between Jobs, and the three ways
to get one inside a single Job each break something: an init container would plan once *per
shard pod* (N listings, N possibly different plans as series come and go); shard 0 planning while
the others wait couples every shard to one pod's retries and holds N pods idle; and JobSet's
``startupPolicy: InOrder`` needs a controller most clusters do not run. So the operator, which
already sequences a task's runs, starts the plan Job, reads its termination message when it
succeeds, and then starts the shards' Job with the plan baked into its spec (env and annotations):
the Indexed Job is self-describing, a restarted operator finds both Jobs by their deterministic
names, and the plan pod alone gets the task's GPU (it trains; the shards only fit statistical
models and predict with the saved network).

**The shards' Job** is an Indexed Job (``completionMode: Indexed``, completion index = shard,
``completions = parallelism = shards``) with Kubernetes 1.29+'s per-index failure handling:

- ``backoffLimitPerIndex`` (:data:`SHARD_RETRIES`): a failed shard is retried on its own, as a
  new pod of the same index, and only its own failures count;
- ``maxFailedIndexes = shards``: the Job never stops the healthy shards because some failed; each
  shard writes its own output, so a failed shard costs only its series;
- ``podFailurePolicy``: a shard that exits with the bad-input code (``EXIT_BAD_INPUT``: a retry
  cannot help) fails its index at once (``FailIndex``); a disruption (eviction, preemption, node
  drain) is not counted (``Ignore``).

``backoffLimit`` is left unset (with ``backoffLimitPerIndex`` the per-index limits are the rule).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from foresight.api.forecasttask import ForecastTaskSpec
from foresight.contract import env as pod_env
from foresight.contract.forecast import EXIT_BAD_INPUT, ForecastRunResult

from ..reconcile.names import child_name
from .forecasttask import ForecastRun, build_run_job, run_suffix

__all__ = [
    "ANNOTATION_PLAN_JOB",
    "ANNOTATION_PLAN_RESULT",
    "SHARD_RETRIES",
    "STAGE_LABEL",
    "build_plan_job",
    "build_shards_job",
    "plan_result_of",
    "shards_job_name",
    "stage_of",
]

Obj = dict[str, Any]
STAGE_LABEL = "foresight.dev/run-stage"
"""``plan`` or ``shards`` on a sharded run's Jobs (a single-pod run's Job has none)."""
ANNOTATION_PLAN_RESULT = "foresight.dev/plan-result"
"""On the shards' Job: the plan pod's result (its termination message), what status and the
harvest of the shards read back."""
ANNOTATION_PLAN_JOB = "foresight.dev/plan-job"
"""On the shards' Job: the name of the plan Job it follows."""
SHARD_RETRIES = 2
"""``backoffLimitPerIndex``: pods a shard may fail before its index counts as failed (a Prometheus
hiccup, a lost node), not counting disruptions."""


def stage_of(job: Mapping[str, Any]) -> str | None:
    """``plan``, ``shards`` or ``None`` (a single-pod run's Job)."""
    return ((job.get("metadata") or {}).get("labels") or {}).get(STAGE_LABEL)


def shards_job_name(task: str, run: ForecastRun) -> str:
    """``<task>-<kind>-<stamp>[-r<attempt>]-shards`` (the plan Job's name plus ``-shards``, cut and
    hashed to 63 characters by the same rule)."""
    return child_name(task, run_suffix(run) + "-shards")


def _strip_gpu(spec: ForecastTaskSpec) -> ForecastTaskSpec:
    return spec.model_copy(update={"resources": spec.resources.model_copy(update={"gpu": 0})})


def _container(job: Obj) -> Obj:
    container: Obj = job["spec"]["template"]["spec"]["containers"][0]
    return container


def build_plan_job(
    spec: ForecastTaskSpec, *, name: str, namespace: str, run: ForecastRun, default_image: str
) -> Obj:
    """The plan Job of a sharded run: the run's Job (its name, annotations, store, Secrets) running
    ``foresight run ... --stage plan --run-id <job>``. Only a train run's plan gets the task's GPU:
    a predict run's plan trains only when no usable networks are saved (rare), and then on CPU."""
    own = spec if run.kind == "train" else _strip_gpu(spec)
    job = build_run_job(own, name=name, namespace=namespace, run=run, default_image=default_image)
    job["metadata"]["labels"][STAGE_LABEL] = "plan"
    job["spec"]["template"]["metadata"]["labels"][STAGE_LABEL] = "plan"
    container = _container(job)
    container["command"] = [*container["command"], "--stage", "plan", "--run-id", job["metadata"]["name"]]
    return job


def plan_result_of(job: Mapping[str, Any]) -> ForecastRunResult | None:
    """The plan pod's result a shards' Job carries (``None`` on any other Job)."""
    raw = ((job.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_PLAN_RESULT)
    return ForecastRunResult.from_termination_message(raw) if raw else None


def build_shards_job(
    spec: ForecastTaskSpec,
    *,
    name: str,
    namespace: str,
    run: ForecastRun,
    default_image: str,
    plan: ForecastRunResult,
    plan_job: str,
) -> Obj:
    """The Indexed Job of the shards of the plan ``plan`` (the plan Job's result), see the module
    docstring. Raises ``ValueError`` when ``plan`` is not a plan's result."""
    if plan.stage != "plan" or not plan.plan_prefix or not plan.shard_series:
        raise ValueError(
            f"the result of {plan_job} is not a plan (stage {plan.stage!r}): cannot start shards"
        )
    shards = len(plan.shard_series)
    mode = "train" if plan.shard_mode == "train" else "auto"
    job = build_run_job(
        _strip_gpu(spec), name=name, namespace=namespace, run=run, default_image=default_image
    )
    meta, jspec = job["metadata"], job["spec"]
    meta["name"] = shards_job_name(name, run)
    meta["labels"][STAGE_LABEL] = "shards"
    jspec["template"]["metadata"]["labels"][STAGE_LABEL] = "shards"
    meta["annotations"][ANNOTATION_PLAN_JOB] = plan_job
    meta["annotations"][ANNOTATION_PLAN_RESULT] = json.dumps(
        plan.to_wire(), sort_keys=True, separators=(",", ":")
    )
    container = _container(job)
    container["command"] = [*container["command"][:-1], mode]  # --mode <train|auto>
    container["env"] = [
        *(e for e in container["env"] if e["name"] != pod_env.SHARD_PLAN),
        {"name": pod_env.SHARD_PLAN, "value": plan.plan_prefix},
    ]
    jspec.pop("backoffLimit", None)
    jspec.update(
        completionMode="Indexed",
        completions=shards,
        parallelism=shards,
        backoffLimitPerIndex=SHARD_RETRIES,
        maxFailedIndexes=shards,
        podFailurePolicy={
            "rules": [
                {
                    "action": "FailIndex",
                    "onExitCodes": {
                        "containerName": container["name"],
                        "operator": "In",
                        "values": [EXIT_BAD_INPUT],
                    },
                },
                {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
            ]
        },
    )
    return job
