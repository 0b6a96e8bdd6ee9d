"""The exhaustion alert, chosen by evidence: which rule fires, and how well it did on the backtest.

An SRE alerts on "this quota will be full within 6 h". Several rules can say so from one forecast:
the point forecast reaches the threshold within the window, the upper edge of the band does, or
the exhaustion probability (:mod:`foresight.forecast.exhaustion`) is at least ``p``. They trade
precision for recall, and which trade suits a task depends on its data, so the task scores each
rule on its own backtest. A deployed task predicts every few minutes and the alert is evaluated
on each prediction, so the rules are scored not only at the fold origins but at every step of
each fold at which the fold's forecast still covers a whole window: at that step the newest
actual is known, and the forecast is the one made at the origin (older than a deployed task's,
so the scores are, if anything, pessimistic; at most :data:`MAX_DECISIONS_PER_FOLD` steps a fold, evenly
spaced). At each such decision point of every series that is
below its threshold: did the rule fire, and did the series really cross within the window?
Precision and recall count decision points, as an SRE counts alerts; the lead of a crossing runs
from the first decision that warned of it. The rule with the highest recall among those with
precision at least ``minPrecision`` wins (ties: higher precision, then longer lead). Each fold is
judged with bands and probabilities calibrated on the *other* folds, so a rule is not scored on
residuals it was calibrated with.

Real crossings are rare in most histories. With fewer than :data:`MIN_EVENTS` of them the
evidence cannot rank rules; the task then uses :data:`DEFAULT_RULE` and says so (precision and
recall are reported as unknown, never invented).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from foresight.timeseries import FloatArray

from .calibration import calibrate
from .exhaustion import exhaustion_probability
from .models._baseline import ffill

__all__ = [
    "DEFAULT_RULE",
    "MAX_DECISIONS_PER_FOLD",
    "MIN_EVENTS",
    "PROBABILITY_LEVELS",
    "AlertChoice",
    "AlertRule",
    "Assessment",
    "RuleScore",
    "assess",
    "candidate_rules",
    "choose_rule",
    "decision_offsets",
    "fires",
    "score_rules",
]

MAX_DECISIONS_PER_FOLD = 24
"""Decision points per fold and series at most (evenly spaced beyond: a fine step and a long horizon
would otherwise cost hundreds of probability evaluations per fold)."""
MIN_EVENTS = 5
"""Real crossings the backtest must hold before rules are ranked by their precision and recall."""
PROBABILITY_LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


@dataclass(frozen=True)
class AlertRule:
    """``point`` / ``upper``: that path reaches the threshold within the window; ``probability``:
    the exhaustion probability within the window is at least ``p``."""

    kind: str
    p: float | None = None

    @property
    def label(self) -> str:
        return f"probability>={self.p:g}" if self.kind == "probability" else self.kind

    @classmethod
    def parse(cls, text: str) -> AlertRule:
        """The inverse of :attr:`label` (``point``, ``upper``, ``probability>=0.4``)."""
        if text in ("point", "upper"):
            return cls(text)
        head, _, value = text.partition(">=")
        if head == "probability" and value:
            p = float(value)
            if 0 < p <= 1:
                return cls("probability", p)
        raise ValueError(f"{text!r} is not an alert rule: point, upper or probability>=P with 0 < P <= 1")


DEFAULT_RULE = AlertRule("probability", 0.5)
"""Used when the backtest holds too few real crossings to choose (as likely as not to cross)."""


def candidate_rules() -> list[AlertRule]:
    return [
        AlertRule("point"),
        AlertRule("upper"),
        *(AlertRule("probability", p) for p in PROBABILITY_LEVELS),
    ]


def _reaches(path: FloatArray, last: FloatArray, threshold: FloatArray, within: int) -> npt.NDArray[np.bool_]:
    full = np.concatenate([np.asarray(last)[:, None], np.asarray(path)[:, :within]], axis=1)
    with np.errstate(invalid="ignore"):
        return np.asarray((full >= np.asarray(threshold)[:, None]).any(axis=1))


def fires(
    rule: AlertRule,
    *,
    point: FloatArray,
    upper: FloatArray,
    probability: FloatArray,
    last: FloatArray,
    threshold: FloatArray,
    within: int,
) -> npt.NDArray[np.bool_]:
    """Per series, whether ``rule`` fires (``probability``: P(cross within ``within`` steps))."""
    if rule.kind == "point":
        return _reaches(point, last, threshold, within)
    if rule.kind == "upper":
        return _reaches(upper, last, threshold, within)
    assert rule.p is not None
    with np.errstate(invalid="ignore"):
        return np.asarray(np.nan_to_num(probability, nan=0.0) >= rule.p - 1e-12)


@dataclass(frozen=True)
class RuleScore:
    rule: AlertRule
    true_positives: int
    false_positives: int
    false_negatives: int
    median_lead_steps: float | None
    """Median steps from the first alert before a crossing to the crossing (``None``: none warned)."""

    @property
    def precision(self) -> float | None:
        fired = self.true_positives + self.false_positives
        return self.true_positives / fired if fired else None

    @property
    def recall(self) -> float | None:
        events = self.true_positives + self.false_negatives
        return self.true_positives / events if events else None


@dataclass(frozen=True)
class AlertChoice:
    """The rule a task alerts with, and the evidence for it."""

    rule: AlertRule
    within: int
    """The alert window in steps."""
    events: int
    """Real crossings of the threshold in the backtest window (each counted once)."""
    decisions: int
    """Decision points scored (series x steps of the folds, below the threshold)."""
    score: RuleScore | None
    """The chosen rule's backtest score (``None`` when the evidence was too thin to score)."""
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """JSON for the saved model and the run's result (``status.alert``'s fields)."""
        doc: dict[str, Any] = {
            "rule": self.rule.label, "withinSteps": self.within, "events": self.events,
            "decisions": self.decisions, "reason": self.reason,
        }  # fmt: skip
        if self.score is not None:
            sc = self.score
            doc.update(precision=sc.precision, recall=sc.recall, medianLeadSteps=sc.median_lead_steps,
                       truePositives=sc.true_positives, falsePositives=sc.false_positives,
                       falseNegatives=sc.false_negatives)  # fmt: skip
        return doc

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> AlertChoice:
        rule = AlertRule.parse(str(doc["rule"]))
        score = None
        if "truePositives" in doc:
            lead = doc.get("medianLeadSteps")
            score = RuleScore(rule, int(doc["truePositives"]), int(doc["falsePositives"]),
                              int(doc["falseNegatives"]), None if lead is None else float(lead))  # fmt: skip
        return cls(rule, int(doc["withinSteps"]), int(doc["events"]), int(doc["decisions"]), score,
                   str(doc.get("reason", "")))  # fmt: skip


@dataclass(frozen=True)
class Assessment:
    """What one forecast says about exhaustion, per series (NaN / False where no usable threshold)."""

    probability: dict[str, FloatArray]
    """Per output horizon label: P(the threshold is reached within it)."""
    fired: npt.NDArray[np.bool_]
    """The chosen rule's verdict within its window."""
    lead_seconds: FloatArray
    """When the rule fires: seconds until the exhaustion it predicts (else +Inf)."""
    usable: npt.NDArray[np.bool_]
    """Series with a usable threshold (the others get no exhaustion gauges)."""

    def select(self, rows: npt.ArrayLike) -> Assessment:
        """The assessment of some series only (by index), as :meth:`Panel.select` selects them."""
        idx = np.asarray(rows)
        return Assessment({k: v[idx] for k, v in self.probability.items()}, self.fired[idx],
                          self.lead_seconds[idx], self.usable[idx])  # fmt: skip


def assess(
    *,
    point: FloatArray,
    upper: FloatArray,
    last: FloatArray,
    threshold: FloatArray,
    scale: FloatArray,
    paths: FloatArray,
    horizons: Sequence[tuple[str, int]],
    choice: AlertChoice,
    step: int,
) -> Assessment:
    """Exhaustion probabilities at each ``(label, steps)`` horizon and the chosen rule's verdict."""
    from .threshold import time_to_threshold

    within = [h for _, h in horizons]
    steps = sorted({*within, choice.within})
    prob = exhaustion_probability(point, last, threshold, scale, paths, steps)
    at = {h: prob[:, k] for k, h in enumerate(steps)}
    fired = fires(choice.rule, point=point, upper=upper, probability=at[choice.within], last=last,
                  threshold=threshold, within=choice.within)  # fmt: skip
    usable = np.isfinite(threshold) & (threshold > 0)
    fired = fired & usable
    if choice.rule.kind == "probability":
        # The first step at which the probability of exhaustion by then reaches p.
        by_step = exhaustion_probability(point, last, threshold, scale, paths, range(1, choice.within + 1))
        reached = np.nan_to_num(by_step, nan=0.0) >= (choice.rule.p or 1.0) - 1e-12
        first = np.where(reached.any(axis=1), reached.argmax(axis=1) + 1, np.inf)
        over = np.isfinite(last) & (last >= threshold)
        lead = np.where(over, 0.0, first * step)
    else:
        path = point if choice.rule.kind == "point" else upper
        lead = time_to_threshold(path, last, threshold, step)
    return Assessment(
        probability={label: at[h] for label, h in horizons},
        fired=fired,
        lead_seconds=np.where(fired, lead, np.inf),
        usable=usable,
    )


@dataclass(frozen=True)
class _Decision:
    """One evaluation of the alert: a fold, an offset into it, and what was known then."""

    fold: int
    offset: int
    """Steps after the fold's origin (0: at the origin)."""
    point: FloatArray
    upper: FloatArray
    probability: FloatArray
    last: FloatArray
    below: npt.NDArray[np.bool_]
    """Series that are decision points (observed below a usable threshold)."""
    cross_in: FloatArray
    """Steps from this decision to the first actual at or over the threshold (+Inf: none within)."""


def decision_offsets(horizon: int, within: int) -> list[int]:
    """Steps after a fold's origin at which the alert is evaluated: every step with a whole window
    of the fold's forecast ahead, or :data:`MAX_DECISIONS_PER_FOLD` of them evenly spaced."""
    last = horizon - within
    if last + 1 <= MAX_DECISIONS_PER_FOLD:
        return list(range(last + 1))
    return sorted({round(i * last / (MAX_DECISIONS_PER_FOLD - 1)) for i in range(MAX_DECISIONS_PER_FOLD)})


def _decisions(
    actual: FloatArray,
    point: FloatArray,
    scale: FloatArray,
    last: FloatArray,
    threshold: FloatArray,
    level: float,
    within: int,
) -> list[_Decision]:
    """Every step of every fold at which a full window of the fold's forecast is left (module doc)."""
    n, folds, horizon = actual.shape
    # The value observed at each step of a fold (offset 0: the origin), carried over gaps.
    observed = ffill(np.concatenate([last[:, :, None], actual], axis=2).reshape(n * folds, horizon + 1))
    observed = observed.reshape(n, folds, horizon + 1)
    usable = np.isfinite(threshold)
    out = []
    for k in range(folds):
        rest = [j for j in range(folds) if j != k] or [k]
        cal = calibrate(actual[:, rest], point[:, rest], scale, level)
        _, upper = cal.bands(point[:, k])
        for s in decision_offsets(horizon, within):
            window = slice(s, s + within)
            now = observed[:, k, s]
            prob = exhaustion_probability(point[:, k, window], now, threshold, cal.scale,
                                          cal.paths[:, window], [within])[:, 0]  # fmt: skip
            with np.errstate(invalid="ignore"):
                below = usable & np.isfinite(now) & (now < threshold)
                hit = actual[:, k, window] >= threshold[:, None]
            cross_in = np.where(hit.any(axis=1), hit.argmax(axis=1) + 1, np.inf)
            out.append(_Decision(k, s, point[:, k, window], upper[:, window], prob, now, below, cross_in))
    return out


def score_rules(
    actual: FloatArray,
    point: FloatArray,
    scale: FloatArray,
    last: FloatArray,
    threshold: FloatArray,
    *,
    level: float,
    within: int,
    rules: Sequence[AlertRule] | None = None,
) -> tuple[list[RuleScore], int, int]:
    """Each rule's score on a backtest, and ``(crossings, decisions)``.

    Precision and recall count decision points (an alert that fired and was followed by a crossing
    within the window is a true positive; one that stayed silent before a crossing, a false
    negative); the lead of a crossing is from the first decision that fired before it.

    Args:
        actual, point: ``(n_series, folds, horizon)`` of the model in use.
        scale: per-series scale (the backtest's).
        last: ``(n_series, folds)``: the last observed value at each fold origin.
        threshold: per series (NaN: no usable threshold, never a decision point).
        level: the band's level (the ``upper`` rule's band).
        within: the alert window in steps (at most the horizon).
    """
    decisions = _decisions(actual, point, scale, last, threshold, level, within)
    crossed: set[tuple[int, int, int]] = set()  # (series, fold, step of the fold) of real crossings
    for d in decisions:
        for i in np.flatnonzero(d.below & np.isfinite(d.cross_in)):
            crossed.add((int(i), d.fold, d.offset + int(d.cross_in[i])))
    scores = []
    for rule in rules or candidate_rules():
        tp = fp = fn = 0
        first: dict[tuple[int, int, int], int] = {}
        for d in decisions:
            fired = fires(rule, point=d.point, upper=d.upper, probability=d.probability, last=d.last,
                          threshold=threshold, within=within) & d.below  # fmt: skip
            event = d.below & np.isfinite(d.cross_in)
            tp += int(np.sum(fired & event))
            fp += int(np.sum(fired & ~event))
            fn += int(np.sum(~fired & event))
            for i in np.flatnonzero(fired & event):
                first.setdefault((int(i), d.fold, d.offset + int(d.cross_in[i])), d.offset)
        leads = [step - offset for (_, _, step), offset in first.items()]
        scores.append(RuleScore(rule, tp, fp, fn, float(np.median(leads)) if leads else None))
    return scores, len(crossed), sum(int(d.below.sum()) for d in decisions)


def choose_rule(
    scores: Sequence[RuleScore],
    *,
    events: int,
    decisions: int,
    within: int,
    min_precision: float,
    fixed: AlertRule | None = None,
) -> AlertChoice:
    """The rule to alert with: ``fixed`` when the user chose one, else the best-scoring (module doc)."""
    by_label = {s.rule.label: s for s in scores}
    if fixed is not None:
        score = by_label.get(fixed.label) if events else None
        return AlertChoice(fixed, within, events, decisions, score, "chosen in spec.threshold.alert.rule")
    if events < MIN_EVENTS:
        return AlertChoice(
            DEFAULT_RULE, within, events, decisions, None,
            f"{events} real crossing(s) within the window in the backtest, fewer than the {MIN_EVENTS} "
            f"needed to rank rules: using the default rule {DEFAULT_RULE.label}",
        )  # fmt: skip
    good = [s for s in scores if s.precision is not None and s.precision >= min_precision]
    if not good:
        best = max(scores, key=lambda s: (s.precision or 0.0, s.recall or 0.0))
        return AlertChoice(
            best.rule, within, events, decisions, best,
            f"no rule reached precision {min_precision:g} on {events} crossings: using the most precise "
            "(lower threshold.alert.minPrecision to trade precision for recall, or set threshold.alert.rule)",
        )  # fmt: skip
    best = max(good, key=lambda s: (s.recall or 0.0, s.precision or 0.0, s.median_lead_steps or 0.0))
    return AlertChoice(
        best.rule, within, events, decisions, best,
        f"highest recall with precision >= {min_precision:g} on {events} backtest crossings",
    )  # fmt: skip
