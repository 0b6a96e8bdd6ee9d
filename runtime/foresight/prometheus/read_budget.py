"""How much one read may ask of Prometheus: the sample budget, time chunks and series batches.

Prometheus refuses a range query that resolves to more than 11,000 points per series, and a query
whose evaluation would hold more than ``--query.max-samples`` samples (50 million by default) at
once; long before either, one huge query stalls the server for everyone. A sharded ForecastTask
therefore reads its series in *batches* (a few series per query, narrowed by
:mod:`foresight.prometheus.promql`) over *time chunks* (consecutive, step-aligned,
non-overlapping sub-ranges), so that series x points of every query stays under
:attr:`ReadBudget.samples_per_query`. Pure arithmetic: the reader that issues the queries is
:mod:`foresight.forecast.shard_read`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from .client import MAX_POINTS_PER_SERIES
from .promql import regex_escape

__all__ = ["ReadBudget", "pack_batches", "points_per_query", "target_weight", "time_chunks"]


@dataclass(frozen=True)
class ReadBudget:
    """Limits of one shard's reads. Every count is per query unless it says otherwise."""

    samples_per_query: int = 1_000_000
    """Series x points one query may return. 1M is 2% of Prometheus' default ``query.max-samples``
    (50M), so a few shards reading at once with :attr:`concurrency` each stay far below it, and
    one answer is about 30 MB of JSON."""
    points_per_series: int = MAX_POINTS_PER_SERIES
    """Points per series per range query; Prometheus refuses more than 11,000."""
    max_matcher_chars: int = 4096
    """Length of one injected ``label=~"a|b|..."`` regex; keeps queries and the server's regex
    compilation small (about 300 values of 12 characters)."""
    max_filter_chars: int = 65536
    """Length of the exact ``and on(...)`` key filter, when one is needed (several groupBy labels,
    or a label the query itself rewrites)."""
    concurrency: int = 4
    """Queries in flight at once per shard: enough to hide latency, few enough that N shards do
    not queue up on the server."""

    def __post_init__(self) -> None:
        if self.samples_per_query < 1:
            raise ValueError(f"samples_per_query must be >= 1, got {self.samples_per_query}")
        if not 1 <= self.points_per_series <= MAX_POINTS_PER_SERIES:
            raise ValueError(
                f"points_per_series must be in [1, {MAX_POINTS_PER_SERIES}] (Prometheus' limit), "
                f"got {self.points_per_series}"
            )
        if self.max_matcher_chars < 16 or self.max_filter_chars < 64:
            raise ValueError("max_matcher_chars must be >= 16 and max_filter_chars >= 64")
        if not 1 <= self.concurrency <= 64:
            raise ValueError(f"concurrency must be in [1, 64], got {self.concurrency}")


def points_per_query(series: int, n_points: int, budget: ReadBudget) -> int:
    """Points per series for one query over ``series`` series when ``n_points`` remain to read.

    At least 1: a single series over budget is still read, one point per query (the caller
    counts such queries as over budget).
    """
    if n_points < 1:
        raise ValueError(f"n_points must be >= 1, got {n_points}")
    by_budget = budget.samples_per_query // max(1, series)
    return max(1, min(n_points, budget.points_per_series, by_budget))


def time_chunks(start: int, end: int, step: int, points: int) -> list[tuple[int, int]]:
    """Consecutive ``(chunk_start, chunk_end)`` covering the grid ``start..end`` (both on the step
    grid), each at most ``points`` grid points, none overlapping (the next starts one step after
    the previous end), every edge on the grid."""
    if step <= 0 or points < 1:
        raise ValueError(f"step and points must be positive, got step={step}, points={points}")
    if start % step or end % step:
        raise ValueError(f"start {start} and end {end} must be multiples of the step {step}")
    out = []
    cs = start
    while cs <= end:
        ce = min(end, cs + (points - 1) * step)
        out.append((cs, ce))
        cs = ce + step
    return out


def target_weight(n_points: int, budget: ReadBudget) -> int:
    """Series per batch so that one chunk covers as much of the range as the budget allows."""
    return max(1, budget.samples_per_query // max(1, min(n_points, budget.points_per_series)))


def pack_batches(
    keys: Sequence[Mapping[str, str]],
    weights: Sequence[int],
    *,
    labels: Sequence[str],
    n_points: int,
    budget: ReadBudget,
    filter_chars: Callable[[Mapping[str, str]], int] | None = None,
) -> list[list[int]]:
    """Indices of ``keys`` grouped into batches, in order, each within the budget.

    A batch closes before a key would push its total weight (the series a query returns) over
    :func:`target_weight`, one label's regex over ``max_matcher_chars``, or, when
    ``filter_chars`` is given (the restriction needs the exact filter), the filter over
    ``max_filter_chars``. A key heavier than the target gets a batch of its own. Keys sorted by
    their labels share values, which keeps the regexes short.
    """
    if len(keys) != len(weights):
        raise ValueError(f"{len(keys)} keys but {len(weights)} weights")
    target = target_weight(n_points, budget)
    batches: list[list[int]] = []
    current: list[int] = []
    weight = 0
    chars: dict[str, int] = {}
    seen: dict[str, set[str]] = {}
    filt = 0
    for i, key in enumerate(keys):
        w = max(1, int(weights[i]))
        grow = {
            label: len(regex_escape(key.get(label, ""))) + 1
            for label in labels
            if key.get(label, "") not in seen.get(label, ())
        }
        fc = filter_chars(key) if filter_chars is not None else 0
        full = current and (
            weight + w > target
            or any(chars.get(label, 0) + c > budget.max_matcher_chars for label, c in grow.items())
            or filt + fc > budget.max_filter_chars
        )
        if full:
            batches.append(current)
            current, weight, chars, seen, filt = [], 0, {}, {}, 0
            grow = {label: len(regex_escape(key.get(label, ""))) + 1 for label in labels}
        current.append(i)
        weight += w
        filt += fc
        for label, c in grow.items():
            chars[label] = chars.get(label, 0) + c
            seen.setdefault(label, set()).add(key.get(label, ""))
    if current:
        batches.append(current)
    return batches
