"""``analyse``: one analysis interval of an experiment, from aggregates to a decision.

A pure function: the operator (or a local simulation) passes the config, the state the previous
analysis returned, the aggregates now and the time; it gets back the action, the weights after it,
the reason with the numbers, and the state to keep. No I/O, no clock, no randomness beyond the
bandit's seeded draws, so a decision can be replayed from the status.

The order of precedence, first match wins:

1. the experiment already ended (promoted, rolled back, failed): hold, report why;
2. ``suspend``: hold, nothing is updated;
3. a **breach** in the last interval: a guard's estimate beyond its rollback bound (2x the limit
   or 2x the control) with the candidate shown beyond the guard's own bound, or a deciding metric
   more than ``rollbackDegradation`` worse than the control and shown worse: ``autoRollback``
   sends all traffic to the control at once (Rollback), otherwise the experiment fails with the
   weights left as they are. Rollbacks ignore the cooldown: safety first;
4. **no data** (a variant with traffic has no sample of the primary metric, or nothing new
   arrived since the last analysis): NoData, and with the ``fail`` policy Fail after
   ``maxIntervals`` of them in a row;
5. a **sample-ratio mismatch**: hold; no winner or step is trusted on a broken split;
6. a **winner** (always-valid p-value, Holm-adjusted over every deciding metric and candidate, at
   most alpha; at least ``minSamples`` per variant; the winner's guards pass): ``autoPromote``
   gives it 100% (Promote); without it the winner is reported and the strategy goes on. A control
   that beats every candidate is a winner too;
7. the **strategy**: ``fixed`` holds; ``progressive`` steps forward once the step's pause is over
   and the guards pass (the last step ends in Promote); ``bandit`` reweights.

Weights change at most once per ``cooldownSeconds`` (rollbacks excepted). After every change the
ratio check waits one interval for the pods to load the new split.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

from .aggregates import Moments, Proportion
from .bandits import allocate, observe
from .config import ExperimentConfig, GuardConfig, MetricConfig
from .decision import (
    Action,
    ComparisonEvidence,
    Decision,
    Evidence,
    GuardEvidence,
    Phase,
    Reason,
    SampleSizeEvidence,
    VariantEvidence,
)
from .hypothesis import Alternative, compare, holm, interval, limit_test, ratio_test
from .sample_size import eta_seconds, fixed_horizon_samples, sequential_samples
from .sequential import SequentialState, difference_and_variance, msprt_update
from .srm import SrmResult, sample_ratio_mismatch
from .state import ExperimentState, Observation, initial_state

__all__ = ["analyse"]

Agg = Proportion | Moments


def format_seconds(seconds: float) -> str:
    """A Go-style duration for messages: ``2h13m``, ``4m10s``, ``35s``."""
    s = max(0, round(seconds))
    hours, rest = divmod(s, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


@dataclass(frozen=True)
class _Windows:
    total: Observation  # since the experiment started: what decides the winner
    recent: Observation  # since the previous analysis: what triggers a rollback
    step: Observation  # since the current weights began: what lets a guard pass


@dataclass(frozen=True)
class _Findings:
    """Everything measured at this analysis, before anything is decided."""

    comparisons: list[ComparisonEvidence]
    sequential: dict[str, SequentialState]
    guards: list[GuardEvidence]
    breaches: list[str]  # every rollback rule that fired, guards first
    guard_breached: bool  # a guard fired (else only a deciding metric's degradation rule)
    srm: SrmResult | None
    srm_baseline: dict[str, float] | None
    sample_size: SampleSizeEvidence | None
    variants: list[VariantEvidence]
    no_data: bool


@dataclass(frozen=True)
class _Outcome:
    action: Action
    reason: Reason
    message: str
    weights: dict[str, int]
    winner: str | None = None
    terminal: bool = False
    state: dict[str, object] = field(default_factory=dict)  # extra state updates


def analyse(
    config: ExperimentConfig, state: ExperimentState | None, observation: Observation, now: datetime
) -> Decision:
    """One analysis: measure, decide, and return the decision with the next state."""
    state = state if state is not None else initial_state(config, now)
    windows = _Windows(
        total=observation,
        recent=observation.since(state.last),
        step=observation.since(state.step_start),
    )
    findings = _measure(config, state, windows, now)
    if state.finished_action is not None:
        outcome = _Outcome(
            Action.HOLD,
            Reason.FINISHED,
            f"the experiment ended at {state.finished_at}: {state.finished_reason}",
            dict(state.weights),
            state.winner,
        )
        return _decision(config, state, state, outcome, findings, now, finished=True)
    if config.suspend:
        outcome = _Outcome(
            Action.HOLD, Reason.SUSPENDED, "suspended: weights frozen, nothing analysed", dict(state.weights)
        )
        return _decision(config, state, state, outcome, findings, now)
    no_data_count = state.no_data_intervals + 1 if findings.no_data else 0
    measured = state.model_copy(
        update={
            "sequential": findings.sequential,
            "last": observation,
            "last_analysis_at": now,
            "no_data_intervals": no_data_count,
            "srm_baseline": findings.srm_baseline,
        }
    )
    outcome = _decide(config, measured, observation, findings, now)
    return _decision(config, state, measured, outcome, findings, now)


def _decision(
    config: ExperimentConfig,
    before: ExperimentState,
    measured: ExperimentState,
    outcome: _Outcome,
    findings: _Findings,
    now: datetime,
    finished: bool = False,
) -> Decision:
    """Assemble the decision and the next state (weights, cooldown clock, terminal marks)."""
    changed = outcome.weights != before.weights
    update: dict[str, object] = {"weights": outcome.weights, "winner": outcome.winner, **outcome.state}
    if changed:
        # The ratio check skips one interval while the pods load the new split.
        update.update(last_change_at=now, srm_baseline=None)
    if outcome.terminal:
        update.update(finished_action=outcome.action.value, finished_reason=outcome.message, finished_at=now)
    state = measured.model_copy(update=update)
    if finished or outcome.terminal:
        phase = {
            Action.PROMOTE.value: Phase.PROMOTED,
            Action.ROLLBACK.value: Phase.ROLLED_BACK,
        }.get(state.finished_action or "", Phase.FAILED)
    elif config.suspend:
        phase = Phase.SUSPENDED
    else:
        phase = Phase.WINNER_FOUND if outcome.winner else Phase.RUNNING
    evidence = Evidence(
        time=now,
        primary=config.primary.name,
        variants=findings.variants,
        comparisons=findings.comparisons,
        guards=findings.guards,
        breaches=findings.breaches,
        sample_size=findings.sample_size,
        srm=findings.srm,
        bandit=dict(state.bandit.probabilities) if state.bandit and state.bandit.probabilities else None,
        no_data_intervals=state.no_data_intervals,
    )
    return Decision(
        action=outcome.action,
        reason=outcome.reason,
        message=outcome.message,
        phase=phase,
        weights=outcome.weights,
        winner=outcome.winner,
        evidence=evidence,
        state=state,
    )


# --- measuring -------------------------------------------------------------------------------


def _measure(config: ExperimentConfig, state: ExperimentState, w: _Windows, now: datetime) -> _Findings:
    comparisons, sequential = _compare(config, state, w.total)
    guards, guard_breaches = _guards(config, w)
    srm, baseline = _srm(config, state, w.total)
    return _Findings(
        comparisons=comparisons,
        sequential=sequential,
        guards=guards,
        breaches=guard_breaches + _degradations(config, w.recent),
        guard_breached=bool(guard_breaches),
        srm=srm,
        srm_baseline=baseline,
        sample_size=_sample_size(config, state, w, now),
        variants=_variant_evidence(config, state, w.total),
        no_data=_no_data(config, state, w),
    )


def _compare(
    config: ExperimentConfig, state: ExperimentState, total: Observation
) -> tuple[list[ComparisonEvidence], dict[str, SequentialState]]:
    """Every deciding metric, every candidate against the control; Holm over all of them."""
    sequential = dict(state.sequential)
    rows: list[tuple[MetricConfig, str, Agg | None, Agg | None, SequentialState | None]] = []
    for metric in config.metrics:
        data = total.of(metric.name)
        control = data.get(config.control)
        for candidate_name in config.candidates:
            candidate = data.get(candidate_name)
            key = f"{metric.name}/{candidate_name}"
            seq = sequential.get(key)
            if control and candidate and min(control.n, candidate.n) >= config.min_samples:
                diff, var = difference_and_variance(control, candidate)
                seq = msprt_update(seq, diff, var, metric.mde, config.alpha)
                sequential[key] = seq
            rows.append((metric, candidate_name, control, candidate, seq))
    adjusted = holm([seq.p_value if seq else 1.0 for *_, seq in rows])
    out = []
    for (metric, candidate_name, control, candidate, seq), adj in zip(rows, adjusted, strict=True):
        verdict = "inconclusive"
        if seq is not None and adj <= config.alpha and seq.verdict != "continue":
            verdict = "better" if (seq.verdict == "higher") == metric.maximize else "worse"
        both = control is not None and candidate is not None and min(control.n, candidate.n) >= 2
        out.append(
            ComparisonEvidence(
                metric=metric.name,
                candidate=candidate_name,
                n_control=control.n if control else 0.0,
                n_candidate=candidate.n if candidate else 0.0,
                fixed=compare(control, candidate, config.alpha) if both and control and candidate else None,
                sequential=seq,
                adjusted_p_value=adj if seq is not None else None,
                verdict=verdict,
            )
        )
    return out, sequential


def _guard_tests(
    guard: GuardConfig, control: Agg | None, candidate: Agg | None, min_n: int, breach: bool
) -> float | None:
    """p-value of a guard's pass test (every bound shown respected) or of its breach test.

    A breach needs the candidate's estimate beyond a rollback bound (``rollbackFactor`` x the limit
    or x the control: seed 004's rule on the observed value) **and** evidence that the candidate is
    beyond the guard's own bound (the limit, or ``1 + margin`` x the control); the p-value is that
    evidence's, 1 when no estimate is beyond a rollback bound. Proving the candidate beyond the
    rollback bound itself would wait long for a candidate at 2.4x the limit. None when a needed
    variant has fewer than ``min_n`` observations in the window.
    """
    lower = guard.lower_is_better
    if candidate is None or candidate.n < min_n:
        return None
    worse: Alternative = "greater" if lower else "less"
    better: Alternative = "less" if lower else "greater"
    factor = guard.rollback_factor if lower else 1 / guard.rollback_factor
    p_values = []
    if guard.limit is not None:
        if not breach:
            p_values.append(limit_test(candidate, guard.limit, better))
        elif _beyond(candidate.mean, guard.limit * factor, lower):
            p_values.append(limit_test(candidate, guard.limit, worse))
    if guard.margin is not None:
        if control is None or control.n < min_n:
            return None
        ratio = 1 + guard.margin if lower else 1 - guard.margin
        if not breach:
            p_values.append(ratio_test(control, candidate, ratio, better))
        elif _beyond(candidate.mean, control.mean * factor, lower):
            p_values.append(ratio_test(control, candidate, ratio, worse))
    if breach:
        return min(p_values, default=1.0)  # one rollback rule is enough
    return max(p_values)  # every bound must be respected


def _beyond(value: float, bound: float, lower_is_better: bool) -> bool:
    return value > bound if lower_is_better else value < bound


def _breach_alpha(config: ExperimentConfig) -> float:
    """Bonferroni over every rollback rule and candidate: a false rollback is costly too."""
    rules = len(config.guards) + sum(1 for m in config.metrics if m.rollback_degradation is not None)
    return config.alpha / max(1, rules * len(config.candidates))


def _guards(config: ExperimentConfig, w: _Windows) -> tuple[list[GuardEvidence], list[str]]:
    """Each guard for each candidate: breach on the last interval, pass on the current step."""
    evidence: list[GuardEvidence] = []
    breaches: list[str] = []
    alpha_breach = _breach_alpha(config)
    for candidate in config.candidates:
        rows = []
        for guard in config.guards:
            recent, step = w.recent.of(guard.name), w.step.of(guard.name)
            p_breach = _guard_tests(
                guard,
                recent.get(config.control),
                recent.get(candidate),
                config.guard_min_samples,
                breach=True,
            )
            p_pass = _guard_tests(
                guard, step.get(config.control), step.get(candidate), config.guard_min_samples, breach=False
            )
            rows.append(
                (
                    guard,
                    step.get(candidate),
                    step.get(config.control),
                    recent.get(candidate),
                    p_breach,
                    p_pass,
                )
            )
        adjusted = holm([p if p is not None else 1.0 for *_, p in rows])
        for (guard, cand_agg, control_agg, cand_agg_recent, p_breach, p_pass), adj in zip(
            rows, adjusted, strict=True
        ):
            if p_breach is not None and p_breach <= alpha_breach:
                status = "breach"
                bound = f"{guard.rollback_factor:g}x " + (
                    f"the limit {guard.limit:g}" if guard.limit is not None else "the control"
                )
                value = cand_agg_recent.mean if cand_agg_recent else float("nan")
                breaches.append(
                    f"guard {guard.name} on {candidate}: {value:.4g}, beyond {bound} in the last interval "
                    f"(p={p_breach:.2g})"
                )
            elif p_pass is None:
                status = "no-data"
            elif adj <= config.alpha:
                status = "pass"
            else:
                status = "inconclusive"
            evidence.append(
                GuardEvidence(
                    guard=guard.name,
                    variant=candidate,
                    status=status,
                    n=cand_agg.n if cand_agg else 0.0,
                    value=cand_agg.mean if cand_agg and cand_agg.n > 0 else None,
                    control_value=control_agg.mean if control_agg and control_agg.n > 0 else None,
                    p_pass=adj if p_pass is not None else None,
                    p_breach=p_breach,
                )
            )
    return evidence, breaches


def _degradations(config: ExperimentConfig, recent: Observation) -> list[str]:
    """Deciding metrics more than ``rollbackDegradation`` worse than the control in the last
    interval (the estimate), and significantly worse than the control (the evidence)."""
    found = []
    alpha_breach = _breach_alpha(config)
    for metric in config.metrics:
        if metric.rollback_degradation is None:
            continue
        data = recent.of(metric.name)
        control = data.get(config.control)
        if control is None or control.n < config.guard_min_samples:
            continue
        d = metric.rollback_degradation
        bound = control.mean * (1 - d if metric.maximize else 1 + d)
        for name in config.candidates:
            candidate = data.get(name)
            if candidate is None or candidate.n < config.guard_min_samples:
                continue
            if not _beyond(candidate.mean, bound, lower_is_better=not metric.maximize):
                continue
            p = ratio_test(control, candidate, 1.0, "less" if metric.maximize else "greater")
            if p <= alpha_breach:
                found.append(
                    f"{metric.name} on {name}: {candidate.mean:.4g} vs control {control.mean:.4g}, more than "
                    f"{d:.0%} worse in the last interval (p={p:.2g})"
                )
    return found


def _srm(
    config: ExperimentConfig, state: ExperimentState, total: Observation
) -> tuple[SrmResult | None, dict[str, float] | None]:
    """The ratio check on the traffic since the current split began (None while it settles)."""
    if state.srm_baseline is None:
        return None, dict(total.traffic)
    window = {v: max(0.0, total.traffic.get(v, 0.0) - state.srm_baseline.get(v, 0.0)) for v in state.weights}
    if sum(window.values()) < 1:
        return None, state.srm_baseline
    return sample_ratio_mismatch(window, state.weights, config.srm_alpha), state.srm_baseline


def _sample_size(
    config: ExperimentConfig, state: ExperimentState, w: _Windows, now: datetime
) -> SampleSizeEvidence | None:
    """Samples per variant for the primary metric's MDE at the current split, and the ETA."""
    metric = config.primary
    data = w.total.of(metric.name)
    control = data.get(config.control)
    w0 = state.weights.get(config.control, 0)
    if control is None or control.n < 2 or w0 <= 0:
        return None
    fixed: dict[str, float] = {}
    seq: dict[str, float] = {}
    for name in config.candidates:
        w1 = state.weights.get(name, 0)
        if w1 <= 0:
            continue
        args = (metric.kind, control.mean, control.variance, metric.mde, config.alpha, config.power, w1 / w0)
        for target, (n0, n1) in ((fixed, fixed_horizon_samples(*args)), (seq, sequential_samples(*args))):
            if math.isfinite(n0) and math.isfinite(n1):
                target[config.control] = max(target.get(config.control, 0.0), math.ceil(n0))
                target[name] = math.ceil(n1)
    current = {v: agg.n for v, agg in data.items()}
    rate: dict[str, float] = {}
    if state.last_analysis_at is not None and now > state.last_analysis_at:
        elapsed = (now - state.last_analysis_at).total_seconds()
        rate = {v: agg.n / elapsed for v, agg in w.recent.of(metric.name).items()}
    return SampleSizeEvidence(
        metric=metric.name,
        fixed_horizon=fixed,
        sequential=seq,
        current=current,
        rate_per_second=rate,
        eta_seconds=eta_seconds(seq, current, rate) if seq and rate else None,
    )


def _variant_evidence(
    config: ExperimentConfig, state: ExperimentState, total: Observation
) -> list[VariantEvidence]:
    data = total.of(config.primary.name)
    out = []
    for v in config.variants:
        agg = data.get(v.name)
        has = agg is not None and agg.n > 0
        low, high = interval(agg, config.alpha) if agg is not None and has else (None, None)
        out.append(
            VariantEvidence(
                name=v.name,
                weight=state.weights.get(v.name, 0),
                n=agg.n if agg else 0.0,
                mean=agg.mean if agg is not None and has else None,
                ci_low=low,
                ci_high=high,
            )
        )
    return out


def _no_data(config: ExperimentConfig, state: ExperimentState, w: _Windows) -> bool:
    """No sample of the primary metric for a variant with traffic, or nothing new since last time."""
    data = w.total.of(config.primary.name)
    active = [v for v, weight in state.weights.items() if weight > 0]
    if any(v not in data or data[v].n <= 0 for v in active):
        return True
    return state.last is not None and sum(a.n for a in w.recent.of(config.primary.name).values()) <= 0


# --- deciding --------------------------------------------------------------------------------


def _all_to(config: ExperimentConfig, variant: str) -> dict[str, int]:
    return {v.name: 100 if v.name == variant else 0 for v in config.variants}


def _cooling(config: ExperimentConfig, state: ExperimentState, now: datetime) -> float:
    """Seconds of cooldown left (0 when weights may change)."""
    if state.last_change_at is None or config.cooldown_seconds <= 0:
        return 0.0
    return max(0.0, config.cooldown_seconds - (now - state.last_change_at).total_seconds())


def _winner(config: ExperimentConfig, f: _Findings) -> tuple[str | None, str]:
    """The significant winner, if any, and a sentence about it."""
    by_candidate: dict[str, list[ComparisonEvidence]] = {}
    for c in f.comparisons:
        by_candidate.setdefault(c.candidate, []).append(c)
    unproven = {g.variant for g in f.guards if g.status != "pass"}  # a winner must pass its guards
    eligible = [
        name
        for name, rows in by_candidate.items()
        if any(r.verdict == "better" for r in rows)
        and not any(r.verdict == "worse" for r in rows)
        and name not in unproven
    ]
    if eligible:
        primary = {c.candidate: c for c in f.comparisons if c.metric == config.primary.name}

        def gain(name: str) -> float:
            seq = primary[name].sequential
            est = seq.estimate if seq else 0.0
            return est if config.primary.maximize else -est

        best = max(eligible, key=gain)
        rows = [r for r in by_candidate[best] if r.verdict == "better"]
        detail = "; ".join(_describe(r) for r in rows)
        return best, f"{best} beats {config.control}: {detail}"
    primary_rows = [c for c in f.comparisons if c.metric == config.primary.name]
    if primary_rows and all(c.verdict == "worse" for c in primary_rows):
        detail = "; ".join(_describe(r) for r in primary_rows)
        return config.control, f"{config.control} beats every candidate: {detail}"
    return None, ""


def _describe(c: ComparisonEvidence) -> str:
    seq = c.sequential
    if seq is None:
        return f"{c.metric} on {c.candidate}: not tested yet"
    cs = (
        f"[{seq.cs_low:.4g}, {seq.cs_high:.4g}]"
        if seq.cs_low is not None and seq.cs_high is not None
        else "-"
    )
    return (
        f"{c.metric} {c.candidate} - control = {seq.estimate:+.4g} (confidence sequence {cs}), "
        f"always-valid p={seq.p_value:.2g}, Holm p={c.adjusted_p_value:.2g}"
    )


def _collecting(config: ExperimentConfig, f: _Findings) -> str:
    s = f.sample_size
    if s is None or not s.sequential:
        return "collecting samples of the primary metric"
    have = ", ".join(f"{v} {s.current.get(v, 0):.0f}/{need:.0f}" for v, need in s.sequential.items())
    eta = f", ETA {format_seconds(s.eta_seconds)}" if s.eta_seconds else ""
    return f"collecting: samples {have} for a {config.primary.mde:g} effect at {config.power:.0%} power{eta}"


def _decide(
    config: ExperimentConfig, state: ExperimentState, total: Observation, f: _Findings, now: datetime
) -> _Outcome:
    weights = dict(state.weights)
    if f.breaches:
        message = "; ".join(f.breaches)
        reason = Reason.GUARD_BREACHED if f.guard_breached else Reason.PRIMARY_DEGRADED
        if config.auto_rollback:
            return _Outcome(Action.ROLLBACK, reason, message, _all_to(config, config.control), terminal=True)
        return _Outcome(
            Action.FAIL, reason, message + " (autoRollback is off: weights kept)", weights, terminal=True
        )
    if f.no_data:
        n = state.no_data_intervals
        if config.no_data.action == "fail" and n >= config.no_data.max_intervals:
            safe = _all_to(config, config.control) if config.auto_rollback else weights
            return _Outcome(
                Action.FAIL,
                Reason.NO_DATA_TIMEOUT,
                f"no new data of {config.primary.name} for {n} intervals; check the metric's counters "
                "and that the variants get traffic",
                safe,
                terminal=True,
            )
        return _Outcome(
            Action.NO_DATA,
            Reason.NO_DATA,
            f"no new data of {config.primary.name} ({n} interval(s) in a row); weights kept",
            weights,
            state.winner,
        )
    if f.srm is not None and f.srm.mismatch:
        observed = ", ".join(f"{v} {n:.0f}" for v, n in f.srm.observed.items())
        expected = ", ".join(f"{v} {n:.0f}" for v, n in f.srm.expected.items())
        return _Outcome(
            Action.HOLD,
            Reason.SAMPLE_RATIO_MISMATCH,
            f"requests per variant {observed} do not match the split (expected {expected}, "
            f"p={f.srm.p_value:.2g}); no decision until the cause is fixed",
            weights,
            state.winner,
        )
    winner, why = _winner(config, f)
    if winner is not None and config.auto_promote:
        return _Outcome(
            Action.PROMOTE,
            Reason.WINNER_FOUND if winner != config.control else Reason.CONTROL_WINS,
            why,
            _all_to(config, winner),
            winner,
            terminal=True,
        )
    if config.strategy.type == "progressive":
        return _progressive(config, state, f, now, winner, why)
    if config.strategy.type == "bandit":
        return _bandit(config, state, total, f, now, winner, why)
    if winner is not None:
        reason = Reason.WINNER_FOUND if winner != config.control else Reason.CONTROL_WINS
        return _Outcome(Action.HOLD, reason, why + " (autoPromote is off)", weights, winner)
    return _hold_collecting(config, f, weights)


def _hold_collecting(config: ExperimentConfig, f: _Findings, weights: dict[str, int]) -> _Outcome:
    s = f.sample_size
    if s is not None and s.sequential and all(s.current.get(v, 0) >= n for v, n in s.sequential.items()):
        return _Outcome(
            Action.HOLD,
            Reason.NO_DIFFERENCE,
            f"no significant difference with the samples that a {config.primary.mde:g} effect needs "
            "at this power; stop the experiment or keep collecting for a smaller effect",
            weights,
        )
    return _Outcome(Action.HOLD, Reason.COLLECTING, _collecting(config, f), weights)


def _progressive(
    config: ExperimentConfig,
    state: ExperimentState,
    f: _Findings,
    now: datetime,
    winner: str | None,
    why: str,
) -> _Outcome:
    weights = dict(state.weights)
    steps = config.steps
    candidate = config.candidates[0]
    if winner == config.control:
        return _Outcome(Action.HOLD, Reason.CONTROL_WINS, why + "; not stepping forward", weights, winner)
    step = steps[min(state.step, len(steps) - 1)]
    left = step.pause_seconds - (now - state.step_started_at).total_seconds()
    if left > 0:
        return _Outcome(
            Action.HOLD,
            Reason.STEP_PAUSE,
            f"step {state.step + 1}/{len(steps)} at {weights[candidate]}%: "
            f"{format_seconds(left)} of its pause left",
            weights,
            winner,
        )
    pending = [g for g in f.guards if g.status != "pass"]
    if pending:
        detail = ", ".join(f"{g.guard} {g.status} (n={g.n:.0f})" for g in pending)
        return _Outcome(
            Action.HOLD,
            Reason.WAITING_FOR_GUARDS,
            f"step {state.step + 1}/{len(steps)}: pause over, guards not shown yet: {detail}",
            weights,
            winner,
        )
    cooling = _cooling(config, state, now)
    if cooling > 0:
        return _Outcome(
            Action.HOLD, Reason.COOLDOWN, f"cooldown: {format_seconds(cooling)} left", weights, winner
        )
    nxt = state.step + 1
    if nxt >= len(steps) or steps[nxt].weight >= 100:
        return _Outcome(
            Action.PROMOTE,
            Reason.STEPS_COMPLETED,
            f"all {len(steps)} steps passed with guards holding: {candidate} gets 100%",
            _all_to(config, candidate),
            candidate,
            terminal=True,
        )
    new = {config.control: 100 - steps[nxt].weight, candidate: steps[nxt].weight}
    guards = ", ".join(f"{g.guard} pass (p={g.p_pass:.2g})" for g in f.guards if g.p_pass is not None)
    return _Outcome(
        Action.STEP_FORWARD,
        Reason.STEP_PASSED,
        f"step {state.step + 1}/{len(steps)} passed"
        + (f" ({guards})" if guards else "")
        + f": {candidate} {weights[candidate]}% -> {steps[nxt].weight}%",
        new,
        winner,
        state={"step": nxt, "step_started_at": now, "step_start": state.last},
    )


def _bandit(
    config: ExperimentConfig,
    state: ExperimentState,
    total: Observation,
    f: _Findings,
    now: datetime,
    winner: str | None,
    why: str,
) -> _Outcome:
    assert state.bandit is not None, "initial_state creates the bandit for the bandit strategy"
    weights = dict(state.weights)
    bandit = observe(state.bandit, total.of(config.primary.name), config.primary.maximize)
    # Arms whose guards have not passed stay at the floor: no traffic is shifted to an unproven arm.
    capped = {g.variant for g in f.guards if g.status != "pass"}
    settings = config.strategy.bandit
    bandit = allocate(bandit, floor=settings.floor, epsilon=settings.epsilon, capped=capped)
    proposed = bandit.weights
    shares = ", ".join(f"{v} {p:.2f}" for v, p in sorted(bandit.probabilities.items()))
    note = f" ({why})" if winner else ""
    biggest = max(abs(proposed[v] - weights.get(v, 0)) for v in proposed)
    cooling = _cooling(config, state, now)
    if biggest < max(1, settings.min_change) or cooling > 0:
        reason = (
            Reason.COOLDOWN if cooling > 0 and biggest >= max(1, settings.min_change) else Reason.COLLECTING
        )
        return _Outcome(
            Action.HOLD,
            reason,
            f"bandit ({settings.algorithm}) allocation {shares}: weights kept"
            + (f", cooldown {format_seconds(cooling)} left" if cooling > 0 else "")
            + note,
            weights,
            winner,
            state={"bandit": bandit},
        )
    return _Outcome(
        Action.REWEIGHT,
        Reason.BANDIT,
        f"bandit ({settings.algorithm}) allocation {shares}"
        + (f", capped at the floor: {sorted(capped)}" if capped else "")
        + note,
        dict(proposed),
        winner,
        state={"bandit": bandit},
    )
