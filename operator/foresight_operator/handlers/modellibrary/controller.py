"""The ModelLibrary controller: one fetch Job at a time, its verdict into status, retries and conflicts.

:meth:`LibraryController.reconcile` runs, under a per-library lock, for the library's current
generation:

1. no fetch Job of this generation yet: stop an older one still running (one Job per ModelLibrary at
   a time), wait for the Secrets and the source ConfigMap, then make the ConfigMap of the
   :class:`~foresight.contract.library.FetchConfig` and the Job (:meth:`~LibraryController._start`);
   ``active: false`` on a library already stored from the same source only *withdraws* it (no
   fetch, the source is not needed);
2. its Job runs: ``Fetching``;
3. its Job finished and status has not taken it in: fold the verdict (:mod:`.status`), make the
   ModelVersions of the models it carries (:mod:`.models`) and tell the other ModelLibraries of
   the namespace that claimed the same library that this one holds it now (:mod:`.siblings`);
4. it was taken in: a retryable failure whose ``nextRetryTime`` has come, or an ``ActiveConflict``
   whose holder let go, starts the next attempt.

The other ModelLibraries of the namespace that want to be active are passed to the Job as
``protectedOwners``: it never takes the pointer over from one of them (``ActiveConflict``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from foresight.api.meta import ConditionType
from foresight.api.modellibrary import LibraryPhase, LibraryReason, ModelLibrarySpec
from foresight.kube import CONFIGMAPS, JOBS, KubeApiError

from ...builders.modellibrary import (
    ANNOTATION_SOURCE,
    KIND,
    FetchRun,
    build_fetch_configmap,
    build_fetch_job,
    parse_fetch_run,
    plan_fetch,
    source_digest,
)
from ...reconcile import (
    MODEL_LIBRARIES,
    JobState,
    WaitError,
    find_condition,
    job_pods,
    job_state,
    owner_selector,
    parse_time,
)
from ...reconcile.locks import KeyedLocks
from ...reconcile.secrets import secret_keys
from ...schedule import Backoff
from ..children import make_child
from ..common import parse_spec, wait_for_secrets, write_and_report_status
from ..context import HandlerContext
from .models import ensure_model_versions, prune_model_versions
from .siblings import holder_released, protected_owners, take_over_from_siblings
from .status import fetching_status, folded_status, read_verdict, waiting_status

__all__ = ["HISTORY_LIMIT", "LibraryController"]

Obj = dict[str, Any]
HISTORY_LIMIT = 3
"""Finished fetch Jobs kept per ModelLibrary (with their config ConfigMaps), besides the one in status."""
WARN_PHASES = (LibraryPhase.FAILED, LibraryPhase.CONFLICT, LibraryPhase.RETRYING)


@dataclass(frozen=True)
class _Job:
    run: FetchRun
    obj: Obj

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])

    @property
    def running(self) -> bool:
        return job_state(self.obj) is JobState.RUNNING


class LibraryController:
    """Reconciles ModelLibraries; one instance per operator process (holds the per-library locks)."""

    def __init__(self, ctx: HandlerContext, *, backoff: Backoff | None = None) -> None:
        self.ctx = ctx
        self.backoff = backoff or Backoff(
            base=timedelta(seconds=max(1.0, ctx.settings.retry_delay)), cap=timedelta(minutes=10)
        )
        self._locks = KeyedLocks()

    def forget(self, namespace: str, name: str) -> None:
        self._locks.forget(namespace, name)
        self.ctx.metrics.record_status(KIND, namespace, name, None)

    # -- the reconcile --

    def reconcile(self, namespace: str, name: str) -> None:
        """Bring one ModelLibrary up to date (see the module docstring)."""
        with self._locks.lock(namespace, name):
            body = self.ctx.kube.get(MODEL_LIBRARIES, name, namespace)
            if body is None or (body.get("metadata") or {}).get("deletionTimestamp"):
                return
            spec = parse_spec(ModelLibrarySpec, body.get("spec"))
            generation = int(body["metadata"].get("generation") or 1)
            jobs = self._fetch_jobs(namespace, name)
            mine = [j for j in jobs if j.run.generation == generation]
            latest = max(mine, key=lambda j: j.run.attempt) if mine else None
            if latest is None:
                self._start(body, spec, jobs, FetchRun(generation))
            elif latest.running:
                self._report(
                    body,
                    lambda cur: fetching_status(cur, job=latest.name, run=latest.run, now=self.ctx.clock()),
                )
            elif not self._taken_in(body, latest):
                self._fold(body, spec, latest, jobs)
            else:
                self._next_attempt(body, spec, latest, jobs)

    def _fetch_jobs(self, namespace: str, name: str) -> list[_Job]:
        found = self.ctx.kube.list(JOBS, namespace, label_selector=owner_selector(KIND, name))
        out = []
        for job in found:
            run = parse_fetch_run((job.get("metadata") or {}).get("annotations"))
            if run is not None:
                out.append(_Job(run, job))
        return out

    @staticmethod
    def _taken_in(body: Mapping[str, Any], job: _Job) -> bool:
        status = body.get("status") or {}
        return status.get("fetchJob") == job.name and status.get("phase") != LibraryPhase.FETCHING

    def _report(self, body: Mapping[str, Any], compute: Any) -> Any:
        meta = body["metadata"]

        def guarded_compute(current: Obj) -> Obj | None:
            return compute(dict(current.get("status") or {}))

        return write_and_report_status(
            self.ctx,
            MODEL_LIBRARIES,
            meta["namespace"],
            meta["name"],
            guarded_compute,
            warn_phases=WARN_PHASES,
        )

    def _waiting(self, body: Mapping[str, Any], generation: int, reason: str, message: str) -> None:
        now = self.ctx.clock()
        self._report(
            body,
            lambda cur: waiting_status(cur, generation=generation, reason=reason, message=message, now=now),
        )

    # -- step 1: a new Job --

    def _start(self, body: Obj, spec: ModelLibrarySpec, jobs: list[_Job], run: FetchRun) -> None:
        """Make the fetch Job of ``run``, once nothing else of this library runs and its inputs exist."""
        meta = body["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        running = [j for j in jobs if j.running]
        if running:
            for old in running:  # superseded by a newer spec: stopped; its end starts ours
                self.ctx.kube.delete(JOBS, old.name, namespace)
            message = (
                f"Job {running[0].name} (generation {running[0].run.generation}) of an earlier spec is "
                "stopping: one fetch per ModelLibrary at a time"
            )
            self._waiting(body, run.generation, LibraryReason.WAITING, message)
            return
        status = body.get("status") or {}
        if run.attempt == 1:
            run = FetchRun(run.generation, 1, self._action(spec, status, jobs))
        plan = plan_fetch(
            spec,
            name=name,
            namespace=namespace,
            run=run,
            default_image=self.ctx.settings.runtime_image,
            library_name=status.get("libraryName") or spec.source.builtin,
            protected_owners=protected_owners(self.ctx, namespace, name),
        )
        try:
            wait_for_secrets(self.ctx, namespace, plan.secret_env.values(), waiting="the fetch starts")
            if plan.config_map is not None and spec.source.config_map is not None:
                self._require_config_map(namespace, plan.config_map, spec.source.config_map.key)
        except WaitError as exc:
            self._waiting(body, run.generation, exc.reason, exc.message)
            raise
        make_child(self.ctx, body, CONFIGMAPS, build_fetch_configmap(plan, name=name, namespace=namespace))
        what = (
            "withdraws it from the active pointer" if run.action == "withdraw" else f"fetches {spec.version}"
        )
        job = build_fetch_job(plan, name=name, namespace=namespace)
        make_child(self.ctx, body, JOBS, job, announce=f"Job {plan.name} {what}", reason="FetchStarted")
        self._report(body, lambda cur: fetching_status(cur, job=plan.name, run=run, now=self.ctx.clock()))

    def _action(self, spec: ModelLibrarySpec, status: Mapping[str, Any], jobs: list[_Job]) -> Any:
        """``withdraw`` when only ``active`` turned false on a library stored from this same source."""
        if spec.active or not status.get("libraryName") or not status.get("storedUri"):
            return "fetch"
        if status.get("phase") not in (LibraryPhase.READY, LibraryPhase.CONFLICT):
            return "fetch"
        last = next((j for j in jobs if j.name == status.get("fetchJob")), None)
        digest = (
            ((last.obj.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_SOURCE)
            if last
            else None
        )
        return "withdraw" if digest == source_digest(spec) else "fetch"

    def _require_config_map(self, namespace: str, name: str, key: str) -> None:
        """The source ConfigMap and its key exist (the pod could not start without them)."""
        cm = self.ctx.kube.get(CONFIGMAPS, name, namespace)
        delay = max(self.ctx.settings.retry_delay, 5.0)
        if cm is None:
            raise WaitError(
                f"ConfigMap {namespace}/{name} (spec.source.configMap) not found: create it with "
                f"kubectl -n {namespace} create configmap {name} --from-file={key}=<library.json>; the "
                "fetch starts once it exists",
                reason=LibraryReason.CONFIG_MAP_NOT_FOUND,
                delay=delay,
            )
        have = secret_keys(cm) | set((cm.get("binaryData") or {}).keys())
        if key not in have:
            raise WaitError(
                f"ConfigMap {namespace}/{name} has no key {key} (it has: "
                f"{', '.join(sorted(have)) or 'none'}): add the key or fix spec.source.configMap.key; the "
                "fetch starts then",
                reason=LibraryReason.CONFIG_MAP_NOT_FOUND,
                delay=delay,
            )

    # -- step 3: a finished Job's verdict --

    def _fold(self, body: Obj, spec: ModelLibrarySpec, job: _Job, jobs: list[_Job]) -> None:
        """Take the verdict of ``job`` into status (once), with its ModelVersions and what it means for
        the other ModelLibraries of the namespace."""
        meta = body["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        now = self.ctx.clock()
        verdict = read_verdict(job.obj, job_pods(self.ctx.kube, namespace, job.name), now=now)
        result = verdict.result
        # Made before the status write: a crash in between folds again and finds them by name.
        if verdict.ok and result.active:
            made = ensure_model_versions(self.ctx, body, result)
        elif result.active:  # a newer version failed; the version still active keeps its ModelVersions
            made = list((body.get("status") or {}).get("modelVersions") or [])
        else:
            made = []

        def compute(current: Obj) -> Obj | None:
            if current.get("fetchJob") == job.name and current.get("phase") != LibraryPhase.FETCHING:
                return None  # taken in by another writer meanwhile
            return folded_status(
                current, spec=spec, job=job.name, run=job.run, verdict=verdict, now=now,
                degraded_after=self.ctx.settings.degraded_after, backoff=self.backoff, model_versions=made,
            )  # fmt: skip

        written = self._report(body, compute)
        if written is None or not written.changed:
            return
        prune_model_versions(self.ctx, namespace, name, keep=made)
        if result.active and result.library_name:
            take_over_from_siblings(self.ctx, namespace, name, result.library_name, result.active_version)
        self._prune_jobs(namespace, jobs, keep=job.name)

    def _prune_jobs(self, namespace: str, jobs: list[_Job], *, keep: str) -> None:
        """Delete all but the newest :data:`HISTORY_LIMIT` finished fetch Jobs and their ConfigMaps."""
        done = sorted((j for j in jobs if not j.running), key=lambda j: (j.run.generation, j.run.attempt))
        for old in [j for j in done[:-HISTORY_LIMIT] if j.name != keep]:
            for ref in (JOBS, CONFIGMAPS):
                try:
                    self.ctx.kube.delete(ref, old.name, namespace)
                except KubeApiError:  # housekeeping: the next fold tries again
                    continue

    # -- step 4: the next attempt --

    def _next_attempt(self, body: Obj, spec: ModelLibrarySpec, job: _Job, jobs: list[_Job]) -> None:
        """A retryable failure whose time has come, or a conflict whose holder let go: attempt + 1."""
        status = body.get("status") or {}
        phase = status.get("phase")
        now = self.ctx.clock()
        due = False
        if phase == LibraryPhase.RETRYING:
            retry_at = parse_time(status.get("nextRetryTime"))
            due = retry_at is None or retry_at <= now
        elif phase == LibraryPhase.CONFLICT and spec.active:
            due = holder_released(self.ctx, body["metadata"]["namespace"], status)
        if due:
            self._start(body, spec, jobs, FetchRun(job.run.generation, job.run.attempt + 1, "fetch"))

    def retry_due(self, body: Mapping[str, Any], now: datetime) -> bool:
        """Whether the timer should reconcile (no API call otherwise): a retry whose time has come, or
        a fetch waiting for a superseded Job to stop (its end normally wakes it; this is the backstop)."""
        status = body.get("status") or {}
        if status.get("phase") == LibraryPhase.PENDING:
            ready: Obj = find_condition(status.get("conditions"), ConditionType.READY) or {}
            return ready.get("reason") == LibraryReason.WAITING
        retry_at = parse_time(status.get("nextRetryTime"))
        return status.get("phase") == LibraryPhase.RETRYING and (retry_at is None or retry_at <= now)
