"""The plan of a sharded ForecastTask run: which series exist, and which shard forecasts each.

A sharded run starts with one cheap step: list the task's series without reading their history
(:func:`list_series`), assign each to one of ``parallelism`` shards by a stable hash of its label
set (:func:`shard_of`), and store the result in the artifact store (:func:`save_plan`), where each
pod of the Indexed Job reads only its own part (:func:`load_shard`, index = the pod's
``JOB_COMPLETION_INDEX``).

**Listing.** The series a run forecasts are the keys ingestion groups the query's result into
(:func:`foresight.forecast.ingest.series_key`) over the run's grid. Three ways, cheapest first:

- a plain selector: the series API lists its series from the index alone, no sample read;
- a query whose ``groupBy`` labels all come from its one selector (``sum by (user) (rate(x[5m]))``,
  :func:`foresight.prometheus.promql.series_source`): the series API on that selector, from its
  longest range before the grid start. A superset: a series that yields no output (a single
  sample under ``rate``) is listed and then has no data in its shard, which is harmless;
- anything else (joins, ``label_replace`` writing a groupBy label...), or ``exact=True``:
  ``count by (<groupBy>) (last_over_time((<query>)[<range>:<step>]))``, which makes Prometheus
  evaluate the query at exactly the run's grid points and answer one number per series, in time
  chunks under the sample budget. Exact, but it costs the server about one evaluation of the
  query over the range (measured in ``bench/forecast_prometheus_load.py``).

The counts (series of the query, or of the selector, per key) size the shards' batches.

**Assignment.** SHA-256 of the key's sorted, non-empty label pairs (JSON, UTF-8), its first 8
bytes through jump consistent hashing (Lamping & Veach, 2014). A series' shard depends on its
labels and ``parallelism`` only, never on which other series exist, so it stays on its shard as
the set grows or shrinks; going from ``n`` to ``n + 1`` shards moves only ~1/(n + 1) of the series
(a modulo hash would move ~n/(n + 1)). Python's ``hash()`` is salted per process, so unusable.

**Storage** (under the task's store prefix, e.g. ``forecasttasks/<ns>/<name>``)::

    plans/<run_id>/plan.json           header: run id, times, parallelism, source, totals per shard
    plans/<run_id>/shard-00000.json    one shard's series: [{"labels": {...}, "weight": n}, ...]
    plans/<run_id>/MANIFEST.json       written last (ArtifactStore.put_dir): the plan is complete
    plans/latest.json                  {"runId", "prefix", "createdAt"}: the newest complete plan

Readers trust only a plan with a manifest, and check each file's SHA-256 against it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import tempfile
import time as _time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from foresight.artifacts import ArtifactStore
from foresight.prometheus.client import PrometheusClient, align_range
from foresight.prometheus.promql import is_plain_selector, series_source
from foresight.prometheus.read_budget import ReadBudget

from .ingest import Aggregate, series_key

__all__ = [
    "HASH_SCHEME",
    "PLAN_FORMAT",
    "PlannedSeries",
    "SeriesListing",
    "ShardPart",
    "ShardPlan",
    "jump_hash",
    "list_series",
    "load_plan",
    "load_shard",
    "make_plan",
    "parse_shard_index",
    "plan_prefix",
    "save_plan",
    "series_hash",
    "shard_of",
]

log = logging.getLogger(__name__)

PLAN_FORMAT = 1
HASH_SCHEME = "sha256-jump-v1"
"""Recorded in every plan: a shard refuses a plan made with another assignment rule."""
PLAN_FILE = "plan.json"
LATEST_FILE = "latest.json"
PLANS_DIR = "plans"
DEFAULT_LOOKBACK_DELTA = 300
"""Prometheus' default ``--query.lookback-delta`` (5 min): a sample that old still shows at the
first grid point, so the series API is asked from this much before the range start."""


# ---- assignment ---------------------------------------------------------------------------------


def series_hash(labels: Mapping[str, str]) -> int:
    """A 64-bit hash of a label set that is the same in every process, on every machine.

    Empty values are left out: to Prometheus ``{user=""}`` and ``{}`` are the same series.
    """
    pairs = sorted((k, v) for k, v in labels.items() if v != "")
    data = json.dumps(pairs, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return int.from_bytes(hashlib.sha256(data).digest()[:8], "big")


def jump_hash(key: int, buckets: int) -> int:
    """Jump consistent hash: ``key`` (64-bit) -> a bucket in ``[0, buckets)``; growing
    ``buckets`` by one moves a key only into the new bucket, with probability 1/buckets."""
    if buckets < 1:
        raise ValueError(f"buckets must be >= 1, got {buckets}")
    key &= 0xFFFFFFFFFFFFFFFF
    b, j = -1, 0
    while j < buckets:
        b = j
        key = (key * 2862933555777941757 + 1) & 0xFFFFFFFFFFFFFFFF
        j = int((b + 1) * (float(1 << 31) / float((key >> 33) + 1)))
    return b


def shard_of(labels: Mapping[str, str], parallelism: int) -> int:
    """The shard (0-based) that forecasts the series with this key."""
    return jump_hash(series_hash(labels), parallelism)


# ---- listing ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedSeries:
    """One forecast series of the plan: its key (the groupBy labels, ``""`` when absent) and its
    weight, what one point of it costs a read: the series of the query's result that ingestion
    merges into it (subquery listing), or the series of the query's selector behind it (series
    API listing, so the budget then bounds the raw samples Prometheus loads)."""

    labels: dict[str, str]
    weight: int = 1

    def to_json(self) -> dict[str, Any]:
        return {"labels": self.labels, "weight": self.weight}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> PlannedSeries:
        return cls({str(k): str(v) for k, v in doc["labels"].items()}, int(doc.get("weight", 1)))


@dataclass(frozen=True)
class SeriesListing:
    """What :func:`list_series` found and what it cost."""

    series: list[PlannedSeries]
    """Sorted by key."""
    method: str
    """``series-api`` (a plain selector), ``series-api-selector`` (the query's one selector; a
    superset) or ``subquery`` (exact; one number per series per chunk)."""
    queries: int
    seconds: float
    start: int
    end: int
    step: int


def _planned(counts: Mapping[tuple[tuple[str, str], ...], int]) -> list[PlannedSeries]:
    return [PlannedSeries(dict(key), int(n)) for key, n in sorted(counts.items())]


def _count_expr(query: str, group_by: Sequence[str], aggregate: Aggregate, range_s: int, step: int) -> str:
    if group_by:
        head = f"count by ({', '.join(group_by)})"
    elif aggregate == "none":
        head = "count without ()"  # every label set, the metric name aside, as ingestion keys it
    else:
        head = "count"
    # Newlines: the user's query may end in a # comment.
    return f"{head} (last_over_time((\n{query}\n)[{range_s}s:{step}s]))"


def list_series(
    client: PrometheusClient,
    query: str,
    *,
    start: float,
    end: float,
    step: int,
    group_by: Sequence[str] = (),
    aggregate: Aggregate = "sum",
    budget: ReadBudget | None = None,
    lookback_delta: int = DEFAULT_LOOKBACK_DELTA,
    exact: bool = False,
    clock: Any = _time.monotonic,
) -> SeriesListing:
    """The forecast series of ``query`` over the grid ``start..end`` (aligned down to ``step``),
    without reading their history (the three ways of the module docstring).

    The series API answers at chunk granularity, so it may also list a series with no sample on
    the grid (it then has no data in its shard). The subquery count evaluates the query at exactly
    the run's grid points, so its keys are exactly those ingestion builds; each of its chunks holds
    at most ``budget.samples_per_query`` series x points, sized from the series seen so far.
    ``exact=True`` always takes the subquery count.
    """
    budget = budget or ReadBudget()
    s, e = align_range(start, end, step)
    group_by = list(group_by)
    t0 = clock()
    counts: dict[tuple[tuple[str, str], ...], int] = {}
    source = None if exact or not group_by else series_source(query, group_by)
    plain = not exact and is_plain_selector(query)
    if plain or source is not None:
        match, reach = (query, 0) if plain or source is None else (source.selector, source.reach)
        for labels in client.series(match, s - max(lookback_delta, reach), e):
            key = series_key(labels, group_by, aggregate)
            counts[key] = counts.get(key, 0) + 1
        method = "series-api" if plain else "series-api-selector"
        return SeriesListing(_planned(counts), method, 1, clock() - t0, s, e, step)

    # Start small: the number of series is unknown until the first answer (the instant count at
    # the end is a floor), then size each chunk from the most series any chunk has shown.
    probe = client.query(f"count((\n{query}\n))", time=e)
    seen = max(1, int(sum(x.value for x in probe if math.isfinite(x.value))))
    queries = 1
    chunk_end = e
    while chunk_end >= s:
        n_left = (chunk_end - s) // step + 1
        points = max(1, min(n_left, budget.samples_per_query // (2 * seen)))
        chunk_start = chunk_end - (points - 1) * step
        expr = _count_expr(query, group_by, aggregate, (chunk_end - chunk_start) + step - 1, step)
        chunk: dict[tuple[tuple[str, str], ...], int] = {}
        for sample in client.query(expr, time=chunk_end):
            key = series_key(sample.labels, group_by, aggregate)
            chunk[key] = chunk.get(key, 0) + int(sample.value)
        queries += 1
        for key, n in chunk.items():
            counts[key] = max(counts.get(key, 0), n)  # a series seen in two chunks counts once
        seen = max(seen, sum(chunk.values()))
        chunk_end = chunk_start - step
    return SeriesListing(_planned(counts), "subquery", queries, clock() - t0, s, e, step)


# ---- the plan ---------------------------------------------------------------------------------------


@dataclass
class ShardPlan:
    """Every series of one run, assigned to shards; ``shards[i]`` is shard ``i``'s series."""

    run_id: str
    created_at: float
    parallelism: int
    query: str
    group_by: list[str]
    aggregate: Aggregate
    start: int
    end: int
    step: int
    listing: dict[str, Any]
    shards: list[list[PlannedSeries]] = field(default_factory=list)

    @property
    def series_count(self) -> int:
        return sum(len(s) for s in self.shards)

    def header(self) -> dict[str, Any]:
        """``plan.json``: everything but the series themselves."""
        return {
            "format": PLAN_FORMAT,
            "hash": HASH_SCHEME,
            "runId": self.run_id,
            "createdAt": datetime.fromtimestamp(self.created_at, tz=UTC).isoformat().replace("+00:00", "Z"),
            "parallelism": self.parallelism,
            "source": {
                "query": self.query,
                "groupBy": self.group_by,
                "aggregation": self.aggregate,
                "start": self.start,
                "end": self.end,
                "step": self.step,
            },
            "listing": self.listing,
            "totals": {
                "series": self.series_count,
                "weight": sum(p.weight for s in self.shards for p in s),
                "shards": [
                    {"index": i, "series": len(s), "weight": sum(p.weight for p in s), "file": _shard_file(i)}
                    for i, s in enumerate(self.shards)
                ],
            },
        }


def make_plan(
    listing: SeriesListing,
    *,
    run_id: str,
    parallelism: int,
    query: str,
    group_by: Sequence[str],
    aggregate: Aggregate,
    created_at: float,
) -> ShardPlan:
    """Assign every listed series to its shard (:func:`shard_of`)."""
    if parallelism < 1:
        raise ValueError(f"parallelism must be >= 1, got {parallelism}")
    shards: list[list[PlannedSeries]] = [[] for _ in range(parallelism)]
    for planned in listing.series:
        shards[shard_of(planned.labels, parallelism)].append(planned)
    return ShardPlan(
        run_id=run_id,
        created_at=created_at,
        parallelism=parallelism,
        query=query,
        group_by=list(group_by),
        aggregate=aggregate,
        start=listing.start,
        end=listing.end,
        step=listing.step,
        listing={"method": listing.method, "queries": listing.queries, "seconds": round(listing.seconds, 3)},
        shards=shards,
    )


def _shard_file(index: int) -> str:
    return f"shard-{index:05d}.json"


def plan_prefix(task_prefix: str, run_id: str) -> str:
    """Where run ``run_id``'s plan lives under a task's store prefix."""
    if not run_id or "/" in run_id or run_id in (".", ".."):
        raise ValueError(f"run id {run_id!r} must be a non-empty name without '/'")
    return f"{task_prefix.strip('/')}/{PLANS_DIR}/{run_id}"


def save_plan(store: ArtifactStore, task_prefix: str, plan: ShardPlan) -> str:
    """Store ``plan`` (shard files, header, manifest last), then point ``plans/latest.json`` at it.

    Returns the plan's prefix in the store (what the shards are given).
    """
    prefix = plan_prefix(task_prefix, plan.run_id)
    with tempfile.TemporaryDirectory(prefix="foresight-plan-") as tmp:
        root = Path(tmp)
        for i, series in enumerate(plan.shards):
            doc = {"format": PLAN_FORMAT, "runId": plan.run_id, "index": i,
                   "series": [p.to_json() for p in series]}  # fmt: skip
            (root / _shard_file(i)).write_text(json.dumps(doc, ensure_ascii=False, separators=(",", ":")))
        header = plan.header()
        (root / PLAN_FILE).write_text(json.dumps(header, ensure_ascii=False, indent=1, sort_keys=True))
        store.put_dir(root, prefix)
    pointer = {"runId": plan.run_id, "prefix": prefix, "createdAt": header["createdAt"]}
    store.put_bytes(
        json.dumps(pointer, sort_keys=True).encode(), f"{task_prefix.strip('/')}/{PLANS_DIR}/{LATEST_FILE}"
    )
    log.info(
        "plan %s: %d series in %d shards at %s", plan.run_id, plan.series_count, plan.parallelism, prefix
    )
    return prefix


def _verified(store: ArtifactStore, prefix: str, name: str) -> dict[str, Any]:
    entries = {e["path"]: e for e in store.read_manifest(prefix)}
    if name not in entries:
        raise ValueError(
            f"{store.uri_for(prefix)} has no {name}: the plan was made with another parallelism or "
            "an older runtime; re-plan the run"
        )
    doc = json.loads(store.get_bytes(f"{prefix}/{name}", expected_sha256=entries[name]["sha256"]))
    if not isinstance(doc, dict) or doc.get("format") != PLAN_FORMAT:
        raise ValueError(
            f"{store.uri_for(prefix)}/{name} is not a format-{PLAN_FORMAT} plan file: "
            "upgrade the runtime image"
        )
    return doc


def load_plan(store: ArtifactStore, prefix: str) -> dict[str, Any]:
    """The header (``plan.json``) of the complete plan at ``prefix``.

    Raises:
        IncompleteDirectoryError: no manifest yet (the plan is being written, or never was).
        ChecksumMismatchError: a file differs from what the manifest recorded.
        ValueError: another format or hash scheme.
    """
    header = _verified(store, prefix, PLAN_FILE)
    if header.get("hash") != HASH_SCHEME:
        raise ValueError(
            f"plan {store.uri_for(prefix)} assigns series by {header.get('hash')!r}, this runtime by "
            f"{HASH_SCHEME!r}: re-plan the run with one runtime version"
        )
    return header


@dataclass(frozen=True)
class ShardPart:
    """What one shard pod needs from the plan."""

    run_id: str
    index: int
    parallelism: int
    query: str
    group_by: list[str]
    aggregate: Aggregate
    start: int
    end: int
    step: int
    series: list[PlannedSeries]


def load_shard(store: ArtifactStore, prefix: str, index: int) -> ShardPart:
    """Shard ``index``'s part of the plan at ``prefix`` (only its own file is read)."""
    header = load_plan(store, prefix)
    parallelism = int(header["parallelism"])
    if not 0 <= index < parallelism:
        raise ValueError(
            f"shard index {index} is outside the plan's {parallelism} shards (0..{parallelism - 1})"
        )
    doc = _verified(store, prefix, _shard_file(index))
    if doc.get("runId") != header["runId"] or doc.get("index") != index:
        raise ValueError(f"{store.uri_for(prefix)}/{_shard_file(index)} belongs to another run or shard")
    src = header["source"]
    return ShardPart(
        run_id=str(header["runId"]),
        index=index,
        parallelism=parallelism,
        query=str(src["query"]),
        group_by=[str(g) for g in src["groupBy"]],
        aggregate=src["aggregation"],
        start=int(src["start"]),
        end=int(src["end"]),
        step=int(src["step"]),
        series=[PlannedSeries.from_json(p) for p in doc["series"]],
    )


def parse_shard_index(value: str | None, parallelism: int) -> int:
    """A shard index from ``JOB_COMPLETION_INDEX`` (what Kubernetes sets in an Indexed Job's pods)."""
    if value is None or not value.strip().isdigit():
        raise ValueError(
            f"JOB_COMPLETION_INDEX is {value!r}; a shard runs as a pod of an Indexed Job "
            "(completionMode: Indexed), which sets it to the pod's index"
        )
    index = int(value)
    if index >= parallelism:
        raise ValueError(f"JOB_COMPLETION_INDEX {index} is outside the plan's {parallelism} shards")
    return index
