"""``foresight ab simulate`` (and ``foresight run -f FILE --local``): an ABExperiment without a cluster.

The ABExperiment of the file runs against a **synthetic** stream of requests and feedback
(:class:`foresight.experiment.simulation.CounterSimulator`: Poisson arrivals split by the
effective weights, errors, log-normal latencies and feedback drawn from each variant's true
behaviour), on a simulated clock of one ``analysisInterval`` per step, through the same
``analyse()`` and the same spec-to-config mapping as the operator. The decisions print as they
happen; at the end a PNG shows the traffic over time (weights per variant per interval) and the
evidence (the primary metric per variant with its confidence interval, and the always-valid
p-value against the significance level).

What is simulated is what the classifier's built-in counters measure: ``accuracy``, ``errorRate``
and ``latency``. A metric that reads other counters cannot be simulated (the message says so).
Each variant's truth defaults to the control at 0.80 accuracy, 0.5% errors and 50 ms, and every
candidate 2 points more accurate; ``--truth NAME=accuracy:0.84,errorRate:0.02,latency:0.12``
changes a variant (a candidate that breaks a guard shows a rollback).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

from foresight.api.abexperiment import ABExperimentSpec, Guard, Metric
from foresight.experiment.decision import Action, Decision
from foresight.experiment.policy import analyse, format_seconds
from foresight.experiment.simulation import ACCURACY, ERROR_RATE, LATENCY, CounterSimulator, VariantTruth
from foresight.experiment.spec import experiment_config
from foresight.experiment.state import ExperimentState, Observation, initial_state

__all__ = ["SimulationError", "Timeline", "main_simulate", "parse_truths", "plot_timeline", "simulate"]

SIMULATED = {"accuracy": ACCURACY, "errorRate": ERROR_RATE, "latency": LATENCY}
"""The experiment's builtin metrics and the simulator's keys for them."""
TRUTH_KEYS = {"accuracy": "accuracy", "errorRate": "error_rate", "latency": "latency_mean"}
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
"""The simulated clock's start (a Monday morning; only differences are printed)."""


class SimulationError(Exception):
    """The file or the options cannot be simulated; the message says what to change."""


@dataclass
class Timeline:
    """One row per analysis: the weights in force during the interval, and the evidence after it."""

    hours: list[float] = field(default_factory=list)
    weights: list[dict[str, int]] = field(default_factory=list)
    means: list[dict[str, float | None]] = field(default_factory=list)
    ci: list[dict[str, tuple[float | None, float | None]]] = field(default_factory=list)
    p_values: list[float | None] = field(default_factory=list)
    decisions: list[tuple[float, str, str]] = field(default_factory=list)  # (hours, action, message)


def parse_truths(values: Sequence[str], variants: Sequence[str]) -> dict[str, VariantTruth]:
    """``--truth`` options onto the defaults (control 0.80, candidates 0.82)."""
    truths = {v: VariantTruth(accuracy=0.80 if i == 0 else 0.82) for i, v in enumerate(variants)}
    for text in values:
        name, sep, rest = text.partition("=")
        if not sep or name not in truths:
            raise SimulationError(
                f"--truth {text!r}: write VARIANT=accuracy:0.84,errorRate:0.01,latency:0.05 with VARIANT "
                f"one of {list(variants)}"
            )
        changes: dict[str, float] = {}
        for part in rest.split(","):
            key, _, value = part.partition(":")
            if key.strip() not in TRUTH_KEYS:
                raise SimulationError(f"--truth {text!r}: {key!r} is not one of {sorted(TRUTH_KEYS)}")
            try:
                changes[TRUTH_KEYS[key.strip()]] = float(value)
            except ValueError as exc:
                raise SimulationError(f"--truth {text!r}: {value!r} is not a number") from exc
        truths[name] = replace(truths[name], **changes)
    return truths


def _keys(spec: ABExperimentSpec) -> dict[str, str]:
    """The experiment's metric names -> the simulator's keys (every metric must be a builtin)."""
    out = {}
    metrics: list[Metric | Guard] = [spec.primary_metric, *spec.guard_metrics]
    for metric in metrics:
        if metric.builtin is None:
            raise SimulationError(
                f"metric {metric.name!r} reads its own counters; the simulation knows the classifier's "
                "builtin accuracy, errorRate and latency only"
            )
        out[metric.name] = SIMULATED[metric.builtin]
    return out


def _renamed(observation: Observation, keys: Mapping[str, str]) -> Observation:
    return Observation(
        metrics={name: observation.of(key) for name, key in keys.items()}, traffic=observation.traffic
    )


def _record(timeline: Timeline, hours: float, weights: Mapping[str, int], decision: Decision) -> None:
    ev = decision.evidence
    timeline.hours.append(hours)
    timeline.weights.append(dict(weights))
    timeline.means.append({v.name: v.mean for v in ev.variants})
    timeline.ci.append({v.name: (v.ci_low, v.ci_high) for v in ev.variants})
    ps = [
        c.adjusted_p_value
        for c in ev.comparisons
        if c.metric == ev.primary and c.adjusted_p_value is not None
    ]
    timeline.p_values.append(min(ps) if ps else None)


def simulate(
    spec: ABExperimentSpec,
    *,
    name: str,
    truths: Mapping[str, VariantTruth],
    requests_per_second: float,
    feedback_fraction: float,
    max_intervals: int,
    seed: int,
    out: TextIO,
) -> tuple[Timeline, Decision | None]:
    """Run the experiment until it ends or ``max_intervals`` pass; print each decision that changes
    something (or says something new)."""
    keys = _keys(spec)
    config = experiment_config(spec, name=name)
    interval = config.analysis_interval_seconds
    sim = CounterSimulator(
        truths, requests_per_second, interval, feedback_fraction=feedback_fraction, seed=seed
    )
    timeline = Timeline()
    state: ExperimentState | None = None
    decision: Decision | None = None
    weights = {v.name: v.weight for v in config.variants}
    last_reason = ""
    for i in range(1, max_intervals + 1):
        if state is None:
            state = initial_state(config, START)
            weights = dict(state.weights)
        now = START + timedelta(seconds=i * interval)
        observation = _renamed(sim.step(weights), keys)
        decision = analyse(config, state, observation, now)
        hours = i * interval / 3600
        _record(timeline, hours, weights, decision)
        if decision.action not in (Action.HOLD, Action.NO_DATA) or str(decision.reason) != last_reason:
            split = ",".join(f"{v}={w}" for v, w in decision.weights.items())
            out.write(
                f"+{format_seconds(i * interval):>7}  {decision.action!s:<11} {split:<24} "
                f"{decision.message}\n"
            )
            timeline.decisions.append((hours, str(decision.action), decision.message))
            last_reason = str(decision.reason)
        state, weights = decision.state, dict(decision.weights)
        if state.finished_action is not None:
            # One more row: the split the decision left, so the plot ends on it.
            _record(timeline, hours + interval / 3600, weights, decision)
            break
    return timeline, decision


def plot_timeline(
    timeline: Timeline, variants: Sequence[str], *, title: str, alpha: float, path: Path
) -> Path:
    """Traffic over time (stacked weights), the primary metric per variant with its CI, the p-value."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_w, ax_m, ax_p) = plt.subplots(3, 1, figsize=(10, 9), sharex=True)
    hours = timeline.hours
    ax_w.stackplot(
        hours, [[w.get(v, 0) for w in timeline.weights] for v in variants], labels=list(variants), step="pre"
    )
    ax_w.set_ylabel("traffic (%)")
    ax_w.set_ylim(0, 100)
    ax_w.legend(loc="upper left")
    ax_w.set_title(f"{title}: traffic over time")
    for v in variants:
        means = [m.get(v) for m in timeline.means]
        low = [c.get(v, (None, None))[0] for c in timeline.ci]
        high = [c.get(v, (None, None))[1] for c in timeline.ci]
        ax_m.plot(hours, [math.nan if x is None else x for x in means], label=v)
        ax_m.fill_between(
            hours,
            [math.nan if x is None else x for x in low],
            [math.nan if x is None else x for x in high],
            alpha=0.2,
        )
    ax_m.set_ylabel("primary metric")
    ax_m.legend(loc="lower right")
    ax_p.semilogy(
        hours,
        [math.nan if p is None else max(p, 1e-12) for p in timeline.p_values],
        label="p (always-valid, Holm)",
    )
    ax_p.axhline(alpha, color="red", linestyle="--", label=f"alpha {alpha:g}")
    ax_p.set_ylabel("p-value")
    ax_p.set_xlabel("hours since start")
    ax_p.legend(loc="lower left")
    for h, action, _ in timeline.decisions:
        if action in ("StepForward", "Promote", "Rollback", "Reweight", "Fail"):
            for ax in (ax_w, ax_m, ax_p):
                ax.axvline(h, color="grey", linestyle=":", linewidth=0.8)
            ax_w.annotate(action, (h, 95), fontsize=7, rotation=90, va="top")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _load(path: str) -> tuple[str, ABExperimentSpec]:
    from foresight.api.documents import DocumentError, load_documents
    from foresight.api.validation import validate_object

    try:
        docs = [d for d in load_documents(path) if isinstance(d, dict) and d.get("kind") == "ABExperiment"]
    except DocumentError as exc:
        raise SimulationError(f"{path}: {exc}") from exc
    if not docs:
        raise SimulationError(f"{path}: no ABExperiment in the file")
    errors = validate_object(docs[0])
    if errors:
        raise SimulationError(f"{path}: invalid: " + "; ".join(str(e) for e in errors))
    meta = docs[0].get("metadata") or {}
    name = f"{meta.get('namespace') or 'default'}/{meta.get('name')}"
    return name, ABExperimentSpec.model_validate(docs[0]["spec"])


def main_simulate(args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """The command: 0 when it ran (whatever the experiment decided), 2 when it cannot run."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        name, spec = _load(args.filename)
        variants = [v.name for v in spec.variants]
        truths = parse_truths(getattr(args, "truth", None) or [], variants)
        out.write(
            f"simulating ABExperiment {name} on SYNTHETIC traffic: {args.requests_per_second:g} requests/s, "
            f"{args.feedback_fraction:.0%} with feedback, one analysis every {spec.analysis_interval}\n"
        )
        for v, t in truths.items():
            out.write(
                f"  truth {v}: accuracy {t.accuracy:.3f}, error rate {t.error_rate:.3%}, latency "
                f"{t.latency_mean * 1000:.0f} ms\n"
            )
        timeline, last = simulate(
            spec,
            name=name,
            truths=truths,
            requests_per_second=args.requests_per_second,
            feedback_fraction=args.feedback_fraction,
            max_intervals=args.intervals,
            seed=args.seed,
            out=out,
        )
    except SimulationError as exc:
        err.write(f"error: {exc}\n")
        return 2
    if last is not None:
        out.write(f"phase {last.phase}; weights {','.join(f'{v}={w}' for v, w in last.weights.items())}\n")
    plot = Path(
        args.plot or Path(args.state_dir or ".cache/foresight") / "ab" / f"{name.replace('/', '_')}.png"
    )
    plot_timeline(timeline, variants, title=name, alpha=1 - spec.confidence, path=plot)
    out.write(f"plot: {plot}\n")
    return 0
