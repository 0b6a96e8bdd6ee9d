"""A ForecastTask run: the result its pod leaves, its exit codes, where it pushes, what it serves.

The operator starts each run as a Job (``foresight run -f task.yaml --mode train|auto``); the pod
ends with an exit code (:data:`EXIT_BAD_INPUT`, :data:`EXIT_TEMPORARY`...) and a
:class:`ForecastRunResult` in its termination message, which the operator folds into the task's
status. In pushgateway mode the run replaces the group :func:`pushgateway_group` under job
:data:`PUSHGATEWAY_JOB` (the operator deletes it with the task); in scrape mode the task's
forecast server (``foresight serve forecasts``) answers on :data:`SERVER_PORT`.

A sharded run (``spec.parallelism`` > 1) is two Jobs: the plan Job
(``foresight run -f task.yaml --mode M --stage plan --run-id ID``), whose result
(:attr:`ForecastRunResult.stage` ``plan``) names the stored plan, the series per shard and the
mode the shards run in; then one Indexed Job of the shards, whose pods get the plan's location in
:data:`foresight.contract.env.SHARD_PLAN` and their shard in ``JOB_COMPLETION_INDEX``, and leave
one result each (:attr:`ForecastRunResult.shard`). Each shard pushes its own group
(:func:`pushgateway_group` with ``shard``) and, in scrape mode, writes its own exposition, which
the forecast server's pod of the same ordinal serves.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from foresight.api.forecasttask import ForecastReason
from foresight.api.meta import Reason

from .termination import Doc, ResultMessage, Shrink, cut_message, keep_only

__all__ = [
    "BAD_INPUT_REASONS",
    "EXIT_BAD_INPUT",
    "EXIT_FAILED",
    "EXIT_READY",
    "EXIT_TEMPORARY",
    "HEALTH_PATH",
    "METRICS_PATH",
    "PUSHGATEWAY_JOB",
    "QUALITY_WARNINGS_KEPT",
    "SERVER_PORT",
    "SHARD_LABEL",
    "STORE_PREFIX",
    "BacktestScore",
    "DataQualityReport",
    "ForecastRunResult",
    "pushgateway_group",
    "stale_groups",
    "task_groups",
]

EXIT_READY = 0
EXIT_FAILED = 1
"""Any other failure: the run waits for the task's next slot."""
EXIT_BAD_INPUT = 2
"""The spec or the query cannot work: the task waits for a spec change."""
EXIT_TEMPORARY = 3
"""Prometheus or the Pushgateway was unreachable: the operator retries with a backoff."""

BAD_INPUT_REASONS: frozenset[str] = frozenset(
    {
        ForecastReason.PROMQL_ERROR,
        ForecastReason.NO_SERIES,
        ForecastReason.DUPLICATE_SERIES,
        ForecastReason.INSUFFICIENT_HISTORY,
        ForecastReason.TOO_MANY_SERIES,
        ForecastReason.OUTPUT_TOO_LARGE,
        ForecastReason.READ_BUDGET_EXCEEDED,
        ForecastReason.UNSUPPORTED_KIND,
        Reason.INVALID_SPEC,
    }
)
"""Run failures no retry can fix (exit code :data:`EXIT_BAD_INPUT`): fix the spec or the query."""

STORE_PREFIX = "forecasttasks"
"""Where a task's models and forecasts live in its artifact store: ``<store>/forecasttasks/<ns>/<name>/``."""

PUSHGATEWAY_JOB = "foresight"
"""The ``job`` of every run's Pushgateway group."""

SERVER_PORT = 8080
"""The forecast server's port (scrape mode)."""
METRICS_PATH = "/metrics"
HEALTH_PATH = "/healthz"


SHARD_LABEL = "shard"
"""The grouping-key label of a sharded run's Pushgateway groups (one group per shard); the
Pushgateway puts it on every gauge of the group."""


def pushgateway_group(namespace: str, name: str, shard: int | None = None) -> dict[str, str]:
    """The grouping key of task ``namespace/name``'s forecasts on the Pushgateway: one group per
    task, or per shard of a sharded run (``shard``: the shard's index)."""
    key = {"namespace": namespace, "task": name}
    if shard is not None:
        key[SHARD_LABEL] = str(shard)
    return key


def task_groups(groups: Iterable[Mapping[str, str]], namespace: str, name: str) -> list[dict[str, str]]:
    """The grouping keys (without ``job``) among a Pushgateway's ``groups`` that are task
    ``namespace/name``'s: its single-pod group and every shard's."""
    out = []
    for labels in groups:
        if labels.get("job") != PUSHGATEWAY_JOB:
            continue
        key = {k: v for k, v in labels.items() if k != "job"}
        if key.get("namespace") != namespace or key.get("task") != name:
            continue
        if set(key) - {"namespace", "task", SHARD_LABEL}:
            continue  # another grouping than ours
        out.append(key)
    return out


def stale_groups(
    groups: Iterable[Mapping[str, str]], namespace: str, name: str, parallelism: int
) -> list[dict[str, str]]:
    """The task's groups a run with ``parallelism`` shards does not replace: with shards, the
    single-pod group and the shards at or beyond ``parallelism``; without, every shard's group.
    Left in place they would keep an earlier run's forecasts of the same series."""
    out = []
    for key in task_groups(groups, namespace, name):
        shard = key.get(SHARD_LABEL)
        if parallelism <= 1:
            stale = shard is not None
        else:
            stale = shard is None or not shard.isdigit() or int(shard) >= parallelism
        if stale:
            out.append(key)
    return out


class BacktestScore(BaseModel):
    """Backtest error of one model over the whole horizon (``None``: not computable)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    model: str
    mase: float | None = None
    mae: float | None = None


STATUS_WARNINGS = 20
"""Most data-quality warnings ``status.dataQuality`` keeps (the API's bound)."""


class DataQualityReport(BaseModel):
    """What a run found in its input (``status.dataQuality``) and, when series are stale, the
    ``StaleData`` condition's message (which series, since when, what to do)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    series: int = 0
    missing_points: int = 0
    late_series: int = 0
    stale_series: int = 0
    dropped_series: int = 0
    out_of_range_series: int = 0
    clipped_series: int = 0
    outlier_series: int = 0
    invalid_capacity_series: int = 0
    warnings: list[str] = []
    stale_message: str | None = None
    """The ``StaleData`` condition's message; ``None`` when no series is stale."""

    def status(self) -> dict[str, Any]:
        """``status.dataQuality`` (camelCase; the condition's message is not part of it)."""
        doc = self.model_dump(by_alias=True, exclude={"stale_message"})
        doc["warnings"] = doc["warnings"][:STATUS_WARNINGS]
        return doc


class ForecastRunResult(ResultMessage):
    """What one run did, as its termination message carries it (``status``-shaped, camelCase)."""

    phase: Literal["Ready", "Failed"] | None = None
    """Always written by the runtime; the operator goes by the Job's state and :attr:`reason`."""
    reason: str
    """A :class:`~foresight.api.forecasttask.ForecastReason` (or ``InvalidSpec``)."""
    message: str = ""
    mode: Literal["train", "predict"] | None = None
    """What the run actually did: ``train`` (backtest + fit + predict) or ``predict``."""
    retryable: bool | None = None
    series_count: int | None = None
    model: str | None = None
    """The model in use, per-series picks summarised (``auto(ets:12,lstm:30)``)."""
    backtest: list[BacktestScore] | None = None
    artifact_uri: str | None = None
    """The saved model directory as the pod sees it (a ``file://`` URI under a PVC mount, or ``s3://``)."""
    sha256: str | None = None
    """The saved model directory's manifest checksum."""
    trained_models: list[str] | None = None
    """Models whose fitted weights the artifact holds: empty when only baselines were chosen."""
    last_train_time: str | None = None
    last_predict_time: str | None = None
    pushed: bool | None = None
    exposition_uri: str | None = None
    bands: dict[str, Any] | None = None
    """The API's ``status.bands``: the interval level and its measured coverage per output horizon."""
    alert: dict[str, Any] | None = None
    """The API's ``status.alert``: the exhaustion alert's rule and its backtested evidence."""
    warnings: list[str] | None = None
    warning_count: int | None = None
    """Set instead of ``warnings`` when they did not fit into the message."""
    stage: Literal["plan", "shard"] | None = None
    """A sharded run's plan pod (``plan``) or one of its shards (``shard``); ``None``: a single-pod run."""
    plan_id: str | None = None
    """The plan's id (the plan Job's name)."""
    plan_prefix: str | None = None
    """Where the plan is in the task's artifact store (what the shards get in ``FORESIGHT_SHARD_PLAN``)."""
    shard_series: list[int] | None = None
    """The plan's series per shard, by index."""
    shard_mode: Literal["train", "auto"] | None = None
    """How the shards run: ``train`` when the plan pod trained (the shards fit with its networks),
    ``auto`` otherwise (each shard trains only when its own saved model is missing or stale)."""
    shard: int | None = None
    """This shard's index (``stage`` ``shard``)."""
    read_queries: int | None = None
    """Queries this pod sent to Prometheus (sharded runs)."""
    read_samples: int | None = None
    """Samples they returned."""
    read_max_samples: int | None = None
    """The most samples one query returned (at most ``source.readBudget.samplesPerQuery``, unless
    ``readOverBudget`` says otherwise)."""
    read_over_budget: int | None = None
    """Queries whose answer was over the budget (one series alone over it)."""
    recommendation: dict[str, Any] | None = None
    """``spec.recommendation``'s outcome (the API's ``RecommendationStatus`` as JSON): the operator
    validates it into ``status.recommendation`` and posts an event when ``changed``."""
    data_quality: DataQualityReport | None = None
    """What the run found in its input (a run that read its history)."""

    @classmethod
    def shrink_steps(cls) -> Sequence[Shrink]:
        return (
            _count_warnings,
            _best_backtest_rows,
            _slim_recommendation,
            _fewer_quality_warnings,
            cut_message(1000),
            keep_only(_ESSENTIAL, cut_strings=500),
        )


_ESSENTIAL = ("phase", "reason", "message", "mode", "seriesCount", "model", "artifactUri", "sha256",
              "trainedModels", "lastTrainTime", "stage", "planId", "planPrefix", "shardSeries",
              "shardMode", "shard", "recommendation", "dataQuality")  # fmt: skip


def _slim_recommendation(doc: Doc) -> Doc | None:
    """The recommendation without its inputs and reasons (the answer and its case ids stay)."""
    rec = doc.get("recommendation")
    if not isinstance(rec, dict):
        return None
    slim = dict(rec)
    slim["message"] = str(slim.get("message", ""))[:300]
    for load in ("predicted", "current"):
        if isinstance(slim.get(load), dict):
            slim[load] = {k: v for k, v in slim[load].items() if k not in ("inputs", "reasons")}
    return {**doc, "recommendation": slim}


QUALITY_WARNINGS_KEPT = 3
"""Data-quality warnings a message keeps when the whole report does not fit (each cut to 300
characters, like the stale message); the counts always stay."""


def _fewer_quality_warnings(doc: Doc) -> Doc | None:
    quality = doc.get("dataQuality")
    if not quality:
        return None
    cut = dict(quality)
    cut["warnings"] = [str(w)[:300] for w in (quality.get("warnings") or [])[:QUALITY_WARNINGS_KEPT]]
    if cut.get("staleMessage"):
        cut["staleMessage"] = str(cut["staleMessage"])[:300]
    return None if cut == quality else {**doc, "dataQuality": cut}


def _count_warnings(doc: Doc) -> Doc | None:
    if not doc.get("warnings"):
        return None
    out = dict(doc)
    out["warningCount"] = len(out.pop("warnings"))
    return out


def _best_backtest_rows(doc: Doc) -> Doc | None:
    rows = doc.get("backtest") or []
    if len(rows) <= 4:
        return None
    best = sorted(rows, key=lambda r: (r.get("mase") is None, r.get("mase") or 0.0))
    return {**doc, "backtest": best[:4]}
