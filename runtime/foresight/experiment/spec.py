"""An ABExperiment's spec in analysis terms: the :class:`~.config.ExperimentConfig` and the counters.

The operator's controller and ``foresight ab simulate`` (local mode) both start here, so an
experiment is analysed the same way in a cluster and on a laptop:

- :func:`experiment_config` maps the spec onto the decision policy's settings (Go durations to
  seconds, ``confidence`` to ``alpha``, guards' ``max`` / ``min`` / ``goal`` to a limit and a
  direction, a ``rollbackDegradation`` of 0 to "never");
- :func:`metric_sources` gives each metric's and guard's counters (:mod:`.counters`), the classifier's
  own for ``builtin`` ones.

``time_scale`` multiplies every duration (interval, step pauses, cooldown): 1 in production; the
end-to-end tests and demos run an experiment's hours in minutes with a smaller one.
"""

from __future__ import annotations

from foresight.api.abexperiment import (
    PROMQL_OPS,
    ABExperimentSpec,
    CounterSeries,
    Guard,
    HistogramCounters,
    LabelMatcher,
    MetricSource,
    source_kind,
)
from foresight.api.durations import nanoseconds

from . import counters
from .config import (
    DEFAULT_STEPS,
    BanditConfig,
    ExperimentConfig,
    GuardConfig,
    MetricConfig,
    NoDataPolicy,
    StepConfig,
    StrategyConfig,
    VariantConfig,
)

__all__ = ["BUILTIN_SOURCES", "experiment_config", "metric_sources", "selector_matchers", "source_of"]

BUILTIN_SOURCES: dict[str, counters.MetricSource] = {
    "accuracy": counters.ACCURACY,
    "errorRate": counters.ERROR_RATE,
    "latency": counters.LATENCY,
}
"""The classifier service's counters (:mod:`.counters`) behind ``builtin``."""
_LOWER_IS_BETTER = {"accuracy": False, "errorRate": True, "latency": True}


def _seconds(duration: str, scale: float) -> float:
    return nanoseconds(duration) / 1e9 * scale


def _matchers(matchers: list[LabelMatcher]) -> tuple[counters.Matcher, ...]:
    return tuple(counters.Matcher(label=m.label, op=PROMQL_OPS[m.op], value=m.value) for m in matchers)


def _series(series: CounterSeries) -> counters.Selector:
    return counters.Selector(metric=series.metric, matchers=_matchers(series.matchers))


def source_of(source: MetricSource) -> counters.MetricSource:
    """The counters behind one metric or guard of the spec."""
    if source.builtin is not None:
        return BUILTIN_SOURCES[source.builtin]
    if source.rate is not None:
        return counters.RateSource(
            successes=_series(source.rate.successes), trials=_series(source.rate.trials)
        )
    if source.moments is not None:
        m = source.moments
        return counters.MomentsSource(
            count=_series(m.count), total=_series(m.sum), total_sq=_series(m.sum_of_squares)
        )
    hist: HistogramCounters | None = source.histogram
    if hist is None:
        raise ValueError(
            "a metric needs one source: builtin, rate, moments or histogram (the CRD refuses one without)"
        )
    return counters.HistogramSource(name=hist.name, matchers=_matchers(hist.matchers))


def metric_sources(spec: ABExperimentSpec) -> dict[str, counters.MetricSource]:
    """Counters per metric name: the primary metric first, then the guards."""
    out = {spec.primary_metric.name: source_of(spec.primary_metric)}
    for guard in spec.guard_metrics:
        out[guard.name] = source_of(guard)
    return out


def selector_matchers(spec: ABExperimentSpec, namespace: str) -> tuple[counters.Matcher, ...]:
    """``spec.prometheus.selector`` plus ``namespace="<namespace>"`` unless it matches on namespace."""
    given = _matchers(spec.prometheus.selector)
    if any(m.label == "namespace" for m in given):
        return given
    return (counters.Matcher(label="namespace", value=namespace), *given)


def _guard(guard: Guard) -> GuardConfig:
    if guard.max is not None:
        lower, limit = True, guard.max
    elif guard.min is not None:
        lower, limit = False, guard.min
    else:
        limit = None
        if guard.goal is not None:
            lower = guard.goal == "minimize"
        elif guard.builtin is not None:
            lower = _LOWER_IS_BETTER[guard.builtin]
        else:
            raise ValueError(
                f"guard {guard.name!r} has only a margin: set goal (minimize for errors and latency)"
            )
    return GuardConfig(
        name=guard.name,
        kind=source_kind(guard),
        lower_is_better=lower,
        limit=limit,
        margin=guard.margin,
        rollback_factor=guard.rollback_factor,
    )


def experiment_config(spec: ABExperimentSpec, *, name: str, time_scale: float = 1.0) -> ExperimentConfig:
    """The decision policy's settings for ``spec`` (raises ``ValueError`` naming what to fix)."""
    if time_scale <= 0:
        raise ValueError(f"time_scale must be positive, got {time_scale}")
    primary = spec.primary_metric
    s = spec.strategy
    return ExperimentConfig(
        name=name,
        variants=tuple(VariantConfig(name=v.name, weight=v.weight) for v in spec.variants),
        metrics=(
            MetricConfig(
                name=primary.name,
                kind=source_kind(primary),
                goal=primary.goal,
                minimum_detectable_effect=primary.minimum_detectable_effect,
                rollback_degradation=primary.rollback_degradation or None,
            ),
        ),
        guards=tuple(_guard(g) for g in spec.guard_metrics),
        alpha=round(1.0 - spec.confidence, 12),
        power=spec.power,
        min_samples=spec.min_samples,
        strategy=StrategyConfig(
            type=s.type,
            steps=tuple(
                StepConfig(weight=step.weight, pause_seconds=_seconds(step.pause, time_scale))
                for step in s.steps
            )
            # Seed 004's default steps, on the same clock as everything else.
            or tuple(
                StepConfig(weight=step.weight, pause_seconds=step.pause_seconds * time_scale)
                for step in DEFAULT_STEPS
            ),
            bandit=BanditConfig(
                algorithm=s.bandit.algorithm,
                epsilon=s.bandit.epsilon,
                floor=s.bandit.floor,
                min_change=s.bandit.min_change,
            ),
        ),
        analysis_interval_seconds=_seconds(spec.analysis_interval, time_scale),
        cooldown_seconds=_seconds(spec.cooldown, time_scale),
        auto_promote=spec.auto_promote,
        auto_rollback=spec.auto_rollback,
        no_data=NoDataPolicy(action=spec.no_data.action, max_intervals=spec.no_data.max_intervals),
        suspend=spec.suspend,
    )
