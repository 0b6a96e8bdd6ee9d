"""A sharded ForecastTask run, runtime side: the plan step, then one step per shard.

A task with ``spec.parallelism`` > 1 runs as two Kubernetes Jobs (the operator sequences them):

1. **the plan** (:func:`run_plan`, one pod): list the task's series without their history
   (:func:`~foresight.forecast.shard_plan.list_series`), refuse what cannot work before anything
   is read (no series, more than ``limits.maxSeries``, an output too big for its mode:
   :func:`foresight.api.output_size.check_output_size`), assign the series to shards and store the
   plan (:func:`~foresight.forecast.shard_plan.save_plan`); then, when the run trains and the
   task uses neural models, read a sample of series across the shards and train the networks
   once (:mod:`foresight.forecast.shard_models`). Its result names the plan and says how the
   shards run (``shardMode``: ``train`` when it trained, else ``auto``).
2. **the shards** (:func:`run_shard`, one pod per shard of an Indexed Job): the very pipeline of a
   single-pod run (:func:`~foresight.forecast.pipeline.run_forecast_task`) over the shard's
   series only: reads through :class:`~foresight.forecast.shard_read.ShardReader` on the plan's
   grid, state under the shard's prefix, its own Pushgateway group and exposition
   (:class:`~foresight.forecast.run_scope.RunScope`), the plan pod's networks.

Both return a :class:`~foresight.forecast.result.RunResult` (never raise), whose ``sharding``
fields (``stage``, ``planId``, ``shard``, the read statistics...) travel in the termination
message to the operator.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time as _time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from foresight.api.durations import duration_seconds
from foresight.api.forecasttask import MAX_PARALLELISM, ForecastReason, ForecastTaskSpec
from foresight.api.output_size import check_output_size
from foresight.artifacts import ArtifactStore
from foresight.prometheus.client import PrometheusClient
from foresight.prometheus.errors import NoSeriesError, TooManySeriesError
from foresight.prometheus.read_budget import ReadBudget

from . import persistence
from .errors import ForecastRunError, OutputTooLargeError, ReadBudgetError, describe_failure, failure_of
from .ingest import ingest
from .pipeline import Publisher, RemoteWriter, RunMode, needs_training, plan_run, run_forecast_task
from .result import RunEvent, RunProgress, RunResult
from .run_scope import RunScope
from .shard_plan import ShardPlan, list_series, load_shard, make_plan, parse_shard_index, save_plan
from .shard_read import ReadStats, ShardReader

__all__ = ["TRAINED_FILE", "read_budget", "run_plan", "run_shard"]

log = logging.getLogger(__name__)

TRAINED_FILE = "plans/trained.json"
"""Under the task's prefix: when a sharded run last trained, for which spec, and the version of
the networks it saved (``null`` when the task has none): what the next plan decides on and what
the shards load."""


def read_budget(spec: ForecastTaskSpec) -> ReadBudget:
    """The task's ``source.readBudget`` as the reader's budget."""
    rb = spec.source.read_budget
    return ReadBudget(samples_per_query=rb.samples_per_query, concurrency=rb.concurrency)


def _read_fields(stats: ReadStats) -> dict[str, Any]:
    return {
        "readQueries": stats.queries,
        "readSamples": stats.samples,
        "readMaxSamples": stats.max_samples_per_query,
        "readOverBudget": stats.over_budget_queries,
    }


def _failed(exc: Exception, step: str, what: str) -> RunResult:
    if failure_of(exc).unexpected:
        log.exception("%s failed during %s", what, step)
    reason, retryable, message = describe_failure(exc, step)
    return RunResult("Failed", reason, message, retryable=retryable)


# ---- the plan ------------------------------------------------------------------------------------


@dataclass
class _Trained:
    """What the plan step's training decision came to."""

    shard_mode: str
    last_train: float | None = None
    artifact_uri: str | None = None
    sha256: str | None = None
    trained_models: list[str] | None = None
    warnings: list[str] = field(default_factory=list)


class _PlanStep:
    """One plan step; ``step`` names the part under way (what a failure is reported against)."""

    def __init__(
        self,
        spec: ForecastTaskSpec,
        *,
        name: str,
        namespace: str,
        run_id: str,
        prometheus: PrometheusClient,
        store: ArtifactStore,
        now: float,
        emit: RunProgress,
    ) -> None:
        self.spec, self.name, self.namespace, self.run_id = spec, name, namespace, run_id
        self.prometheus, self.store, self.now, self.emit = prometheus, store, now, emit
        self.prefix = persistence.task_prefix(namespace, name)
        self.budget = read_budget(spec)
        self.step = "plan"
        self.warnings: list[str] = []
        self.stats = ReadStats()

    def plan(self) -> tuple[ShardPlan, str]:
        """List the series, refuse what cannot work, store the plan; ``(plan, its prefix)``."""
        spec, src = self.spec, self.spec.source
        rp = plan_run(spec)
        self.emit(RunEvent("plan", f"listing the series of {src.query!r} over {src.lookback} at {src.step}"))
        listing = list_series(
            self.prometheus, src.query, start=self.now - rp.lookback, end=self.now, step=rp.step,
            group_by=src.group_by, aggregate=src.aggregation, budget=self.budget,
        )  # fmt: skip
        n = len(listing.series)
        if n == 0:
            raise NoSeriesError(src.query, listing.start, listing.end, rp.step)
        if n > spec.limits.max_series:
            raise TooManySeriesError(src.query, n, spec.limits.max_series, list(src.group_by))
        verdict = check_output_size(spec, n)
        if verdict.level == "refuse":
            raise OutputTooLargeError(verdict.message)
        if verdict.level == "warn":
            self.warnings.append(verdict.message)
        heaviest = max(listing.series, key=lambda p: p.weight)
        if heaviest.weight > self.budget.samples_per_query:
            raise ReadBudgetError(
                f"the forecast series {heaviest.labels} merges {heaviest.weight:,} raw series, more than "
                f"source.readBudget.samplesPerQuery ({self.budget.samples_per_query:,}) at a single point, "
                "so no query for it can stay within the budget: aggregate it in a recording rule, add "
                "groupBy labels, or raise samplesPerQuery (at most Prometheus' query.max-samples)"
            )
        plan = make_plan(
            listing, run_id=self.run_id, parallelism=spec.parallelism, query=src.query,
            group_by=src.group_by, aggregate=src.aggregation, created_at=self.now,
        )  # fmt: skip
        self.step = "save"
        prefix = save_plan(self.store, self.prefix, plan)
        sizes = [len(s) for s in plan.shards]
        self.emit(RunEvent("planned", f"{n} series in {spec.parallelism} shards ({min(sizes)}-{max(sizes)} "
                           f"each, {listing.method}, {listing.queries} queries) at {prefix}",
                           {"series": n, "shards": spec.parallelism, "prefix": prefix}))  # fmt: skip
        return plan, prefix

    def train_if_due(self, plan: ShardPlan, mode: RunMode) -> _Trained:
        """Decide, like a single-pod run, whether this run trains; train the networks if so."""
        from .shard_models import neural_names, sharded_digest

        self.step = "train"
        saved = persistence.read_json(self.store, f"{self.prefix}/{TRAINED_FILE}")
        if mode == "predict" and saved is None:
            raise ForecastRunError(
                f"mode predict, but no sharded run has trained under {self.store.uri_for(self.prefix)}: "
                "run with mode train (or auto) first"
            )
        retrain_every = duration_seconds(self.spec.schedule.retrain_every) if mode == "auto" else 0
        digest = sharded_digest(self.spec)
        if saved is not None and not needs_training(
            mode, saved, digest=digest, now=self.now, retrain_every=retrain_every
        ):
            return _Trained("auto", last_train=float(saved.get("trainedAt", 0)) or None)
        trained = _Trained("train", last_train=self.now)
        version = None
        if neural_names(self.spec):
            version = self.train_networks(plan, trained)
        doc = {"trainedAt": self.now, "specDigest": digest, "version": version, "planId": plan.run_id}
        self.store.put_bytes(json.dumps(doc, sort_keys=True).encode(), f"{self.prefix}/{TRAINED_FILE}")
        return trained

    def train_networks(self, plan: ShardPlan, trained: _Trained) -> str:
        """Read the sample across the shards, train the networks, save them; their version."""
        from .shard_models import (
            NetworksArtifact,
            neural_names,
            sample_series,
            sharded_digest,
            train_networks,
        )

        spec, src = self.spec, self.spec.source
        rp = plan_run(spec)
        sample = sample_series(plan.shards, spec.model.training_sample_series)
        self.step = "sample"
        reader = ShardReader(self.prometheus, sample, group_by=plan.group_by, aggregate=plan.aggregate,
                             budget=self.budget)  # fmt: skip
        ingested = ingest(
            reader, src.query, start=plan.start, end=plan.end, step=plan.step, group_by=src.group_by,
            aggregate=src.aggregation, covariates={c.name: c.query for c in src.covariates},
            max_series=len(sample), min_history_points=spec.limits.min_history_points, counter=src.counter,
        )  # fmt: skip
        panel = ingested.panel
        self.warnings += [f"sample: {note}" for note in ingested.warnings]
        self.stats = reader.stats
        names = neural_names(spec)
        self.emit(RunEvent("train", f"training {', '.join(names)} once on {panel.n_series} of "
                           f"{plan.series_count} series sampled across {plan.parallelism} shards",
                           {"model": ",".join(names), "series": panel.n_series}))  # fmt: skip
        self.step = "train"
        networks = train_networks(spec, panel, rp.horizon, names, on_epoch=self._epoch)
        self.step = "save"
        version = "v" + datetime.fromtimestamp(self.now, tz=UTC).strftime("%Y%m%dT%H%M%SZ")
        run_doc = {
            "trainedAt": self.now, "specDigest": sharded_digest(spec), "model": str(spec.model.type),
            "step": rp.step, "horizon": rp.horizon, "seriesCount": panel.n_series,
            "sampleOf": plan.series_count, "planId": plan.run_id, "sharded": True, "backtest": [],
        }  # fmt: skip
        trained.artifact_uri, trained.sha256, trained.trained_models = persistence.save_model(
            self.store, self.prefix, version, NetworksArtifact(spec, networks, rp.horizon), run_doc
        )
        uri = trained.artifact_uri
        self.emit(RunEvent("saved", f"networks saved to {uri}", {"uri": uri}))
        return version

    def _epoch(self, model: str, which: str, r: Any) -> None:
        self.emit(RunEvent("epoch", f"{model} ({which}) epoch {r.epoch} train_loss={r.train_loss:.4f} "
                           f"val_loss={r.val_loss:.4f} ({r.seconds:.1f}s)",
                           {"model": model, "epoch": r.epoch, "trainLoss": r.train_loss}))  # fmt: skip


def run_plan(
    spec: ForecastTaskSpec,
    *,
    name: str,
    namespace: str,
    run_id: str,
    prometheus: PrometheusClient,
    store: ArtifactStore,
    mode: RunMode = "auto",
    clock: Callable[[], float] = _time.time,
    progress: RunProgress | None = None,
    drop_stale_groups: Callable[[int], list[str]] | None = None,
) -> RunResult:
    """The plan step of run ``run_id`` (see the module docstring); never raises.

    ``drop_stale_groups(parallelism)`` deletes the task's Pushgateway groups no shard of this plan
    replaces (an earlier run's with more shards, or a single-pod run's) and returns what it deleted.
    """
    emit = progress or (lambda event: None)
    step = _PlanStep(spec, name=name, namespace=namespace, run_id=run_id, prometheus=prometheus, store=store,
                     now=clock(), emit=emit)  # fmt: skip
    try:
        plan, prefix = step.plan()
        trained = step.train_if_due(plan, mode)
        if drop_stale_groups is not None and spec.output.mode == "pushgateway":
            step.step = "push"
            dropped = drop_stale_groups(plan.parallelism)
            if dropped:
                step.warnings.append(f"deleted {len(dropped)} Pushgateway group(s) no shard replaces: "
                                     f"{dropped}")  # fmt: skip
        sizes = [len(s) for s in plan.shards]
        result = RunResult(
            "Ready", ForecastReason.PLANNED,
            f"{plan.series_count} series planned in {plan.parallelism} shards; the shards run in mode "
            f"{trained.shard_mode}", mode="train" if trained.shard_mode == "train" else "predict",
            series_count=plan.series_count, last_train_time=trained.last_train,
            artifact_uri=trained.artifact_uri, artifact_sha256=trained.sha256,
            trained_models=trained.trained_models, warnings=step.warnings,
        )  # fmt: skip
        result.sharding = {"planPrefix": prefix, "shardSeries": sizes, "shardMode": trained.shard_mode}
    except Exception as exc:  # every failure, bad input or bug, becomes a readable result
        result = _failed(exc, step.step, f"plan {run_id} of {namespace}/{name}")
        result.warnings = step.warnings
    result.sharding.update({"stage": "plan", "planId": run_id, **_read_fields(step.stats)})
    emit(RunEvent("done", f"{result.phase}: {result.reason}: {result.message}", result.summary()))
    return result


# ---- one shard ------------------------------------------------------------------------------------


def _networks_loader(store: ArtifactStore, prefix: str) -> Callable[[], Mapping[str, Any]]:
    """Loads the networks the last training plan saved (what ``TRAINED_FILE`` names)."""

    def load() -> Mapping[str, Any]:
        from .shard_models import load_networks

        doc = persistence.read_json(store, f"{prefix}/{TRAINED_FILE}")
        if doc is None or not doc.get("version"):
            raise ForecastRunError(
                f"no networks saved under {store.uri_for(prefix)}: a train run's plan pod trains them first"
            )
        with tempfile.TemporaryDirectory(prefix="foresight-networks-") as tmp:
            local = Path(tmp) / "v"
            store.get_dir(f"{prefix}/{doc['version']}", local)
            return load_networks(local / "model")

    return load


def _empty_shard(
    spec: ForecastTaskSpec,
    shard: int,
    plan_id: str,
    *,
    store: ArtifactStore,
    pushgateway: Publisher | None,
    scope: RunScope,
) -> RunResult:
    """A shard the plan gave no series (a task with few series and many shards): it writes nothing,
    but replaces what an earlier plan's shard of the same index left (its group, its exposition)."""
    from prometheus_client import CollectorRegistry

    try:
        if spec.output.mode == "pushgateway" and pushgateway is not None:
            pushgateway(CollectorRegistry(), scope.group_key)
        if spec.output.mode == "scrape":
            store.put_bytes(b"", scope.exposition_key)
    except Exception as exc:
        return _failed(exc, "push", f"empty shard {shard}")
    return RunResult(
        "Ready", ForecastReason.FORECASTS_WRITTEN, f"shard {shard} has no series in plan {plan_id}",
        mode="predict", series_count=0, pushed=spec.output.mode == "pushgateway" and pushgateway is not None,
    )  # fmt: skip


def run_shard(
    spec: ForecastTaskSpec,
    *,
    name: str,
    namespace: str,
    plan_prefix: str,
    index: str | None,
    prometheus: PrometheusClient,
    store: ArtifactStore,
    pushgateway: Publisher | None = None,
    remote_writer: RemoteWriter | None = None,
    mode: RunMode = "auto",
    clock: Callable[[], float] = _time.time,
    progress: RunProgress | None = None,
) -> RunResult:
    """Shard ``index`` (``JOB_COMPLETION_INDEX`` as the pod got it) of the plan at ``plan_prefix``:
    the pipeline over this shard's series (see the module docstring); never raises."""
    from .shard_models import SharedNetworks, neural_names

    emit = progress or (lambda event: None)
    sharding: dict[str, Any] = {"stage": "shard"}
    try:
        shard = parse_shard_index(index, MAX_PARALLELISM)
        sharding["shard"] = shard
        part = load_shard(store, plan_prefix, shard)
        sharding["planId"] = part.run_id
        src = spec.source
        if (part.query, part.group_by, part.aggregate) != (src.query, list(src.group_by), src.aggregation):
            raise ForecastRunError(
                f"the task's source changed since plan {part.run_id} (query, groupBy or aggregation): this "
                "run's shards cannot follow it; the next run plans again"
            )
    except ValueError as exc:  # an index outside the plan, a plan of another format: said as it is
        result = _failed(ForecastRunError(str(exc)), "plan", f"shard {index} of {namespace}/{name}")
        result.sharding = sharding
        return result
    except Exception as exc:
        result = _failed(exc, "plan", f"shard {index} of {namespace}/{name}")
        result.sharding = sharding
        return result
    if not part.series:
        result = _empty_shard(spec, shard, part.run_id, store=store, pushgateway=pushgateway,
                              scope=RunScope.of_shard(namespace, name, shard, window=(part.start, part.end),
                                                      models=None))  # fmt: skip
        result.sharding = sharding
        emit(RunEvent("done", f"{result.phase}: {result.reason}: {result.message}", result.summary()))
        return result
    reader = ShardReader(prometheus, part.series, group_by=part.group_by, aggregate=part.aggregate,
                         budget=read_budget(spec))  # fmt: skip
    task_prefix = persistence.task_prefix(namespace, name)
    models = SharedNetworks(_networks_loader(store, task_prefix)) if neural_names(spec) else None
    scope = RunScope.of_shard(namespace, name, shard, window=(part.start, part.end), models=models)
    emit(RunEvent("shard", f"shard {shard} of plan {part.run_id}: {len(part.series)} series",
                  {"shard": shard, "series": len(part.series)}))  # fmt: skip
    result = run_forecast_task(
        spec, name=name, namespace=namespace, prometheus=reader, pushgateway=pushgateway, store=store,
        clock=clock, progress=emit, mode=mode, remote_writer=remote_writer, scope=scope,
    )  # fmt: skip
    result.sharding = {**sharding, **_read_fields(reader.stats)}
    return result
