"""The nearest-case recommender: a workload in, the architecture of the most similar cases out.

How it decides (the README's "How the recommender decides" says the same for users):

1. **Features.** Each numeric input (data size, tables, QPS, TPS, connections, growth) becomes
   ``sign(x) * log(1 + |x|)``: sizes and rates span orders of magnitude, and going from 100 to 1,000
   QPS matters as much as from 10,000 to 100,000. Each is divided by its standard deviation over the
   library, so no unit dominates. The three requirement flags are 0 or 1 times
   :attr:`Recommender.boolean_weight` (1.5 standard deviations: a different requirement outweighs a
   moderately different load). An input you do not give is left out of the distance, and the
   answer says so.
2. **Coverage first.** The answer is "outside what this library covers" (no architecture, the
   reasons, the nearest cases for reference) when a numeric input lies beyond the library's range
   by more than a factor :attr:`Recommender.range_factor` (1.5), when a requirement flag takes a
   value no case has, or when the nearest case is further away than
   :attr:`Recommender.radius_factor` (2) times the library's own 95th-percentile nearest-case
   distance. A recommender that guesses outside its data is worse than one that says it does not know.
3. **k nearest cases** (Euclidean in the scaled features, default k = 5) vote for their
   ``architecture_type`` with weight ``1 / (distance + 0.001)``; the share of the winner is the
   confidence.
4. **Sizes and cost** come from the neighbours of the winning architecture: the weighted median of
   node / shard / replica / proxy counts, and their weighted median cost per machine (nodes plus
   proxies) times the recommended machines.

:func:`leave_one_out` measures this on a library's own cases: each case is recommended from all the
others (with the same coverage rules, so an isolated case counts as wrong) and compared with its
recorded architecture and node count, next to a baseline that always answers the most common
architecture and the median node count.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from .records import BOOLEAN_INPUTS, INPUT_FIELDS, NUMERIC_INPUTS, Case, CaseInput, CaseOutput, Library

__all__ = [
    "DEFAULT_K",
    "Neighbour",
    "Quality",
    "Recommendation",
    "Recommender",
    "case_inputs",
    "leave_one_out",
    "parse_inputs",
]

FloatArray = npt.NDArray[np.float64]
DEFAULT_K = 5
_EPS = 1e-3
_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}
_RADIUS_SAMPLE = 2000
MIN_RADIUS = 0.5


def _transform(x: FloatArray | float) -> Any:
    return np.sign(x) * np.log1p(np.abs(x))


def _num(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:g}"


def parse_inputs(values: Mapping[str, Any]) -> dict[str, float | bool]:
    """Recommender inputs from strings or numbers (``--set qps=25000,need_high_availability=true``).

    Raises ``ValueError`` naming the field for an unknown name, a value of the wrong kind, or one
    outside the format's range (a negative QPS); fields not given are simply absent.
    """
    out: dict[str, float | bool] = {}
    for name, raw in values.items():
        if name not in INPUT_FIELDS:
            raise ValueError(f"{name!r} is not a recommender input; the inputs are {', '.join(INPUT_FIELDS)}")
        if name in BOOLEAN_INPUTS:
            if isinstance(raw, bool):
                out[name] = raw
            elif str(raw).strip().lower() in _TRUE | _FALSE:
                out[name] = str(raw).strip().lower() in _TRUE
            else:
                raise ValueError(f"{name}={raw!r}: expected true or false")
            continue
        try:
            value = float(raw)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name}={raw!r}: expected a number") from exc
        if not math.isfinite(value):
            raise ValueError(f"{name}={raw!r}: expected a finite number")
        low = -100.0 if name == "data_growth_rate" else 0.0
        if value < low:
            raise ValueError(f"{name}={value:g}: must be at least {low:g}")
        out[name] = value
    return out


@dataclass(frozen=True)
class Neighbour:
    """One case the recommendation used: how far it is and what it recorded."""

    case_id: str
    distance: float
    weight: float
    """Its share of the vote."""
    input: CaseInput
    output: CaseOutput

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.case_id,
            "distance": round(self.distance, 4),
            "weight": round(self.weight, 4),
            "input": self.input.to_json(),
            "output": self.output.to_json(),
        }


@dataclass(frozen=True)
class Recommendation:
    """The answer for one workload (``covered=False``: no architecture, and ``reasons`` say why)."""

    library: str
    version: str
    covered: bool
    reasons: tuple[str, ...] = ()
    architecture_type: str | None = None
    confidence: float | None = None
    votes: Mapping[str, float] = field(default_factory=dict)
    node_count: int | None = None
    shard_count: int | None = None
    replica_count: int | None = None
    proxy_count: int | None = None
    estimated_cost: float | None = None
    currency: str = "USD"
    cost_period: str = "month"
    neighbours: tuple[Neighbour, ...] = ()
    features_used: tuple[str, ...] = ()
    features_missing: tuple[str, ...] = ()

    @property
    def case_ids(self) -> list[str]:
        return [n.case_id for n in self.neighbours]

    def to_json(self) -> dict[str, Any]:
        return {
            "library": self.library,
            "version": self.version,
            "covered": self.covered,
            "reasons": list(self.reasons),
            "architectureType": self.architecture_type,
            "confidence": None if self.confidence is None else round(self.confidence, 4),
            "votes": {k: round(v, 4) for k, v in self.votes.items()},
            "nodeCount": self.node_count,
            "shardCount": self.shard_count,
            "replicaCount": self.replica_count,
            "proxyCount": self.proxy_count,
            "estimatedCost": None if self.estimated_cost is None else round(self.estimated_cost, 2),
            "currency": self.currency,
            "costPeriod": self.cost_period,
            "featuresUsed": list(self.features_used),
            "featuresMissing": list(self.features_missing),
            "neighbours": [n.to_json() for n in self.neighbours],
        }


@dataclass(frozen=True)
class _Decision:
    architecture: str
    votes: dict[str, float]
    node_count: int
    shard_count: int
    replica_count: int
    proxy_count: int
    cost: float
    weights: FloatArray


def _weighted_median(values: FloatArray, weights: FloatArray) -> float:
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(weights[order])
    return float(values[order][int(np.searchsorted(cum, cum[-1] / 2.0))])


class Recommender:
    """k-nearest-case recommendations over one library (built once, queried many times)."""

    def __init__(
        self,
        library: Library,
        *,
        k: int = DEFAULT_K,
        boolean_weight: float = 1.5,
        range_factor: float = 1.5,
        radius_factor: float = 2.0,
    ) -> None:
        if not library.cases:
            raise ValueError(f"library {library.name} has no cases to recommend from")
        if k < 1:
            raise ValueError("k must be at least 1")
        self.library = library
        self.k = k
        self.boolean_weight = boolean_weight
        self.range_factor = range_factor
        self.radius_factor = radius_factor
        cases = library.cases
        self.ids = [c.id for c in cases]
        raw = np.array(
            [[float(getattr(c.input, n)) for n in NUMERIC_INPUTS] for c in cases], dtype=np.float64
        )
        flags = np.array(
            [[float(getattr(c.input, n)) for n in BOOLEAN_INPUTS] for c in cases], dtype=np.float64
        )
        t = _transform(raw)
        std = t.std(axis=0)
        # A feature every case shares cannot tell cases apart: weight 0 instead of a division by 0.
        self.scale = np.where(std > 1e-9, 1.0 / np.where(std > 1e-9, std, 1.0), 0.0)
        self.features = np.hstack([t * self.scale, flags * boolean_weight])
        self.t_min, self.t_max = t.min(axis=0), t.max(axis=0)
        self.raw_min, self.raw_max = raw.min(axis=0), raw.max(axis=0)
        self.flag_values = [set(flags[:, j].tolist()) for j in range(len(BOOLEAN_INPUTS))]
        outs = [c.output for c in cases]
        self.arch = np.array([o.architecture_type for o in outs])
        self.nodes = np.array([o.node_count for o in outs], dtype=np.float64)
        self.shards = np.array([o.shard_count for o in outs], dtype=np.float64)
        self.replicas = np.array([o.replica_count for o in outs], dtype=np.float64)
        self.proxies = np.array([o.proxy_count for o in outs], dtype=np.float64)
        self.cost_per_machine = np.array([o.estimated_cost for o in outs]) / (self.nodes + self.proxies)
        self._radius: dict[tuple[int, ...], float] = {}

    # -- coverage --------------------------------------------------------------------------------

    def radius(self, columns: Sequence[int]) -> float:
        """How far the nearest case may be: radius_factor x the library's p95 nearest-case distance.

        Cases with identical inputs count once (a duplicate is no evidence of density), and the
        radius is at least :data:`MIN_RADIUS` (half a standard deviation of one feature): a query
        that close to a case is covered however dense the library is.
        """
        key = tuple(columns)
        if key not in self._radius:
            nn = _nearest_other_distances(self.features[:, list(columns)])
            finite = nn[np.isfinite(nn)]
            base = float(np.percentile(finite, 95)) if finite.size else 0.0
            self._radius[key] = max(self.radius_factor * base, MIN_RADIUS)
        return self._radius[key]

    def _coverage(
        self, values: Mapping[str, float | bool], nearest: float, columns: Sequence[int]
    ) -> list[str]:
        reasons: list[str] = []
        margin = math.log(self.range_factor)
        for j, name in enumerate(NUMERIC_INPUTS):
            if name not in values:
                continue
            t = float(_transform(float(values[name])))
            if t > self.t_max[j] + margin:
                reasons.append(
                    f"{name}={_num(float(values[name]))} is above the library's largest "
                    f"({_num(self.raw_max[j])}) by more than a factor {self.range_factor:g}"
                )
            elif t < self.t_min[j] - margin:
                reasons.append(
                    f"{name}={_num(float(values[name]))} is below the library's smallest "
                    f"({_num(self.raw_min[j])}) by more than a factor {self.range_factor:g}"
                )
        for j, name in enumerate(BOOLEAN_INPUTS):
            if name in values and float(bool(values[name])) not in self.flag_values[j]:
                reasons.append(f"no case of the library has {name}={str(bool(values[name])).lower()}")
        if not reasons and nearest > self.radius(columns):
            reasons.append(
                f"the nearest case is {nearest:.2f} away, beyond the library's coverage radius "
                f"{self.radius(columns):.2f}: no case is similar enough"
            )
        return reasons

    # -- deciding ----------------------------------------------------------------------------------

    def _decide(self, idx: npt.NDArray[np.intp], dist: FloatArray) -> _Decision:
        w = 1.0 / (dist + _EPS)
        votes: dict[str, float] = {}
        for a, wi in zip(self.arch[idx].tolist(), w.tolist(), strict=True):
            votes[a] = votes.get(a, 0.0) + wi
        total = sum(votes.values())
        best = max(votes.values())
        # Ties go to the architecture of the nearest case among the tied ones.
        tied = {a for a, v in votes.items() if math.isclose(v, best)}
        winner = next(a for a in self.arch[idx].tolist() if a in tied)
        mask = self.arch[idx] == winner
        sel, ws = idx[mask], w[mask]
        nodes = round(_weighted_median(self.nodes[sel], ws))
        proxies = round(_weighted_median(self.proxies[sel], ws))
        per_machine = _weighted_median(self.cost_per_machine[sel], ws)
        return _Decision(
            architecture=winner,
            votes={a: v / total for a, v in sorted(votes.items(), key=lambda kv: -kv[1])},
            node_count=max(1, nodes),
            shard_count=max(1, round(_weighted_median(self.shards[sel], ws))),
            replica_count=round(_weighted_median(self.replicas[sel], ws)),
            proxy_count=proxies,
            cost=per_machine * (max(1, nodes) + proxies),
            weights=w / w.sum(),
        )

    def _query(self, values: Mapping[str, float | bool]) -> tuple[FloatArray, list[int]]:
        q = np.zeros(self.features.shape[1])
        columns: list[int] = []
        for j, name in enumerate(NUMERIC_INPUTS):
            if name in values and self.scale[j] > 0.0:
                q[j] = float(_transform(float(values[name]))) * self.scale[j]
                columns.append(j)
        for j, name in enumerate(BOOLEAN_INPUTS):
            if name in values:
                q[len(NUMERIC_INPUTS) + j] = float(bool(values[name])) * self.boolean_weight
                columns.append(len(NUMERIC_INPUTS) + j)
        return q, columns

    def recommend(self, inputs: Mapping[str, Any]) -> Recommendation:
        """The recommendation for ``inputs`` (field -> value; see :func:`parse_inputs`)."""
        values = parse_inputs(inputs)
        if not any(n in values for n in NUMERIC_INPUTS):
            raise ValueError(
                "give at least one load figure (qps, tps, total_data_size_gb, ...): "
                "requirement flags alone say nothing about size"
            )
        q, columns = self._query(values)
        diff = self.features[:, columns] - q[columns]
        dist = np.sqrt(np.einsum("ij,ij->i", diff, diff))
        k = min(self.k, len(dist))
        idx = np.argpartition(dist, k - 1)[:k] if k < len(dist) else np.arange(len(dist))
        idx = idx[np.argsort(dist[idx], kind="stable")]
        manifest = self.library.manifest
        base = Recommendation(
            library=self.library.name,
            version=self.library.version,
            covered=False,
            currency=manifest.currency,
            cost_period=manifest.cost_period,
            features_used=tuple(n for n in INPUT_FIELDS if n in values),
            features_missing=tuple(n for n in INPUT_FIELDS if n not in values),
        )
        cases = self.library.cases
        reasons = self._coverage(values, float(dist[idx[0]]), columns)
        if reasons:
            nearest = tuple(
                Neighbour(self.ids[i], float(dist[i]), 0.0, cases[i].input, cases[i].output) for i in idx
            )
            return replace(base, reasons=tuple(reasons), neighbours=nearest)
        d = self._decide(idx, dist[idx])
        neighbours = tuple(
            Neighbour(self.ids[i], float(dist[i]), float(wi), cases[i].input, cases[i].output)
            for i, wi in zip(idx.tolist(), d.weights.tolist(), strict=True)
        )
        return replace(
            base,
            covered=True,
            architecture_type=d.architecture,
            confidence=d.votes[d.architecture],
            votes=d.votes,
            node_count=d.node_count,
            shard_count=d.shard_count,
            replica_count=d.replica_count,
            proxy_count=d.proxy_count,
            estimated_cost=d.cost,
            neighbours=neighbours,
        )


def _nearest_other_distances(features: FloatArray, rows: npt.NDArray[np.intp] | None = None) -> FloatArray:
    """Distance from each of ``rows`` (default: all, at most a sample of 2000) to its nearest case with
    other inputs (``inf`` when every case has the same inputs)."""
    n = features.shape[0]
    if rows is None:
        rows = np.arange(n) if n <= _RADIUS_SAMPLE else np.linspace(0, n - 1, _RADIUS_SAMPLE).astype(np.intp)
    out = np.full(len(rows), np.inf)
    sq = np.einsum("ij,ij->i", features, features)
    for start in range(0, len(rows), 256):
        chunk = rows[start : start + 256]
        d2 = sq[chunk, None] + sq[None, :] - 2.0 * features[chunk] @ features.T
        d2[d2 <= 1e-12] = np.inf  # itself, and exact duplicates
        out[start : start + len(chunk)] = np.sqrt(d2.min(axis=1))
    return out


@dataclass(frozen=True)
class Quality:
    """Leave-one-out figures of a library (the API's ``status.quality``)."""

    held_out: int
    k: int
    architecture_accuracy: float
    baseline_accuracy: float
    node_count_mae: float | None
    baseline_node_count_mae: float | None
    abstained: int
    sampled: bool = False
    confusion: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    """recorded architecture -> recommended architecture (or "none") -> count."""

    def to_json(self) -> dict[str, Any]:
        """The API's ``LibraryQuality`` fields (camelCase)."""
        return {
            "heldOut": self.held_out,
            "k": self.k,
            "architectureAccuracy": round(self.architecture_accuracy, 4),
            "baselineAccuracy": round(self.baseline_accuracy, 4),
            "nodeCountMAE": None if self.node_count_mae is None else round(self.node_count_mae, 3),
            "baselineNodeCountMAE": (
                None if self.baseline_node_count_mae is None else round(self.baseline_node_count_mae, 3)
            ),
            "abstained": self.abstained,
        }


def leave_one_out(
    library: Library, *, k: int = DEFAULT_K, max_held_out: int = 2000, recommender: Recommender | None = None
) -> Quality | None:
    """Each case (or an even sample of ``max_held_out``) recommended from all the others.

    Same features, coverage rules and vote as :meth:`Recommender.recommend`, with every input given.
    The feature scales and the coverage radius are computed once on the whole library (a held-out
    case moves them by about 1/n). ``None`` for a library of one case.
    """
    n = len(library.cases)
    if n < 2:
        return None
    rec = recommender or Recommender(library, k=k)
    k = min(rec.k, n - 1)
    rows = np.arange(n) if n <= max_held_out else np.linspace(0, n - 1, max_held_out).astype(np.intp)
    feats = rec.features
    all_columns = list(range(feats.shape[1]))
    radius = rec.radius(all_columns)
    sq = np.einsum("ij,ij->i", feats, feats)
    t = feats[:, : len(NUMERIC_INPUTS)]
    # The library's range without case i: the second extreme where i is the only extreme.
    order_lo, order_hi = np.sort(t, axis=0)[:2], np.sort(t, axis=0)[-2:]
    arch_counts = Counter(rec.arch.tolist())
    sorted_nodes = np.sort(rec.nodes)
    correct = base_correct = abstained = 0
    node_err: list[float] = []
    base_err: list[float] = []
    confusion: dict[str, Counter[str]] = {}
    for start in range(0, len(rows), 256):
        chunk = rows[start : start + 256]
        d2 = sq[chunk, None] + sq[None, :] - 2.0 * feats[chunk] @ feats.T
        d2[np.arange(len(chunk)), chunk] = np.inf
        dist = np.sqrt(np.maximum(d2, 0.0))
        for r, i in enumerate(chunk.tolist()):
            row = dist[r]
            idx = np.argpartition(row, k - 1)[:k]
            idx = idx[np.argsort(row[idx], kind="stable")]
            truth = str(rec.arch[i])
            counts = arch_counts.copy()
            counts[truth] -= 1
            majority = min(a for a, c in counts.items() if c == max(counts.values()))
            base_correct += majority == truth
            others_median = float(
                np.median(np.delete(sorted_nodes, np.searchsorted(sorted_nodes, rec.nodes[i])))
            )
            if _held_out_uncovered(rec, i, t, order_lo, order_hi, float(row[idx[0]]), radius):
                abstained += 1
                confusion.setdefault(truth, Counter())["none"] += 1
                continue
            d = rec._decide(idx, row[idx])
            confusion.setdefault(truth, Counter())[d.architecture] += 1
            correct += d.architecture == truth
            node_err.append(abs(d.node_count - rec.nodes[i]))
            base_err.append(abs(others_median - rec.nodes[i]))
    held = len(rows)
    return Quality(
        held_out=held,
        k=k,
        architecture_accuracy=correct / held,
        baseline_accuracy=base_correct / held,
        node_count_mae=float(np.mean(node_err)) if node_err else None,
        baseline_node_count_mae=float(np.mean(base_err)) if base_err else None,
        abstained=abstained,
        sampled=held < n,
        confusion={a: dict(sorted(c.items())) for a, c in sorted(confusion.items())},
    )


def _held_out_uncovered(
    rec: Recommender, i: int, t: FloatArray, lo2: FloatArray, hi2: FloatArray, nearest: float, radius: float
) -> bool:
    """The coverage rules of :meth:`Recommender._coverage` for case ``i`` against the others."""
    margin = math.log(rec.range_factor)
    for j in range(t.shape[1]):
        if rec.scale[j] == 0.0:
            continue
        lo = lo2[1, j] if t[i, j] == lo2[0, j] else lo2[0, j]
        hi = hi2[0, j] if t[i, j] == hi2[1, j] else hi2[1, j]
        value = t[i, j] / rec.scale[j]
        if value > hi / rec.scale[j] + margin or value < lo / rec.scale[j] - margin:
            return True
    for j in range(len(BOOLEAN_INPUTS)):
        column = rec.features[:, len(NUMERIC_INPUTS) + j]
        if np.count_nonzero(column == column[i]) < 2:
            return True
    return nearest > radius


def case_inputs(case: Case) -> dict[str, float | bool]:
    """A case's input as recommender inputs (for previews and evaluations)."""
    return {n: getattr(case.input, n) for n in INPUT_FIELDS}
