"""``foresight run`` for a sharded ForecastTask (``spec.parallelism`` > 1): the plan pod, a shard
pod, or the whole run on this machine.

What the process is comes from how it was started (:func:`foresight.run.local.main_run` decides):

- ``--stage plan --run-id ID`` (the operator's plan Job): list the series, store the plan, train
  the networks when the run trains (:func:`foresight.forecast.shard_run.run_plan`), and delete the
  task's Pushgateway groups no shard of this plan replaces (:func:`drop_stale_groups`);
- ``FORESIGHT_SHARD_PLAN`` in the environment (a pod of the operator's Indexed Job): the shard
  ``JOB_COMPLETION_INDEX`` of that plan (:func:`foresight.forecast.shard_run.run_shard`);
- ``--local``: the plan, then every shard one after the other in this process
  (:func:`run_locally`), what the cluster does, without it.

In a pod the result goes out as the termination message with the usual exit codes, exactly as a
single-pod run's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from foresight.api.forecasttask import ForecastTaskSpec
from foresight.artifacts import ArtifactStore
from foresight.contract import env as pod_env
from foresight.contract.forecast import stale_groups
from foresight.forecast.pipeline import Publisher, RemoteWriter, RunMode
from foresight.forecast.result import RunProgress, RunResult
from foresight.forecast.shard_run import run_plan, run_shard
from foresight.prometheus.client import PrometheusClient

__all__ = ["ShardedTask", "drop_stale_groups", "new_run_id", "run_locally", "run_stage"]

log = logging.getLogger(__name__)


def drop_stale_groups(gateway: str, namespace: str, name: str, parallelism: int) -> list[str]:
    """Delete task ``namespace/name``'s Pushgateway groups that a run of ``parallelism`` shards does
    not replace (:func:`foresight.contract.forecast.stale_groups`); what was deleted."""
    from foresight.prometheus.pushgateway import delete_group, list_groups

    dropped = []
    for key in stale_groups(list_groups(gateway), namespace, name, parallelism):
        delete_group(gateway, grouping_key=key)
        dropped.append(",".join(f"{k}={v}" for k, v in sorted(key.items())))
    return dropped


def new_run_id(name: str) -> str:
    """A plan id for a run started by hand (the operator names plans after their Job)."""
    return f"{name}-{datetime.now(tz=UTC).strftime('%Y%m%dt%H%M%S')}"


@dataclass(frozen=True)
class ShardedTask:
    """A sharded task and the clients its pods use."""

    spec: ForecastTaskSpec
    name: str
    namespace: str
    prometheus: PrometheusClient
    store: ArtifactStore
    publisher: Publisher | None
    gateway: str
    remote_writer: RemoteWriter | None

    def plan(self, run_id: str, mode: RunMode, progress: RunProgress) -> RunResult:
        return run_plan(
            self.spec, name=self.name, namespace=self.namespace, run_id=run_id, prometheus=self.prometheus,
            store=self.store, mode=mode, progress=progress,
            drop_stale_groups=lambda n: drop_stale_groups(self.gateway, self.namespace, self.name, n),
        )  # fmt: skip

    def shard(self, plan_prefix: str, index: str | None, mode: RunMode, progress: RunProgress) -> RunResult:
        return run_shard(
            self.spec, name=self.name, namespace=self.namespace, plan_prefix=plan_prefix, index=index,
            prometheus=self.prometheus, store=self.store, pushgateway=self.publisher,
            remote_writer=self.remote_writer, mode=mode, progress=progress,
        )  # fmt: skip


def run_stage(
    task: ShardedTask,
    *,
    plan_stage: bool,
    run_id: str | None,
    environ: Mapping[str, str],
    mode: RunMode,
    progress: RunProgress,
) -> RunResult:
    """One pod of a sharded run: the plan (``plan_stage``) or the shard its environment names."""
    if plan_stage:
        return task.plan(run_id or new_run_id(task.name), mode, progress)
    return task.shard(environ[pod_env.SHARD_PLAN], environ.get(pod_env.JOB_COMPLETION_INDEX), mode, progress)


def run_locally(
    task: ShardedTask, *, mode: RunMode, progress: RunProgress, announce: Callable[[str], None]
) -> tuple[RunResult, list[RunResult]]:
    """The plan, then each shard in turn in this process; the plan's result and the shards'
    (none when the plan failed)."""
    plan = task.plan(new_run_id(task.name), mode, progress)
    if not plan.ok:
        return plan, []
    shard_mode: RunMode = "train" if plan.sharding.get("shardMode") == "train" else "auto"
    shards = []
    for index in range(task.spec.parallelism):
        announce(f"-- shard {index} of {task.spec.parallelism} (mode {shard_mode}) --")
        shards.append(task.shard(str(plan.sharding["planPrefix"]), str(index), shard_mode, progress))
    return plan, shards
