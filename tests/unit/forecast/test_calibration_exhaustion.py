"""Calibrated bands, exhaustion probabilities and the alert rule chosen on a backtest."""

from __future__ import annotations

import numpy as np
import pytest
from foresight.forecast.alerting import (
    DEFAULT_RULE,
    MAX_DECISIONS_PER_FOLD,
    MIN_EVENTS,
    AlertChoice,
    AlertRule,
    RuleScore,
    choose_rule,
    decision_offsets,
    fires,
    score_rules,
)
from foresight.forecast.calibration import Calibration, calibrate, conformal_quantile
from foresight.forecast.exhaustion import exhaustion_probability


def test_conformal_quantile_uses_the_finite_sample_rank() -> None:
    r = np.arange(1.0, 10.0)  # 9 residuals: rank ceil(10 * 0.9) = 9 -> the largest
    assert conformal_quantile(r[:, None], 0.9)[0] == 9.0
    assert conformal_quantile(r[:, None], 0.1)[0] == 1.0  # floor(10 * 0.1) = 1
    assert conformal_quantile(np.arange(1.0, 100.0)[:, None], 0.8)[0] == 80.0  # ceil(100 * 0.8)
    assert np.isnan(conformal_quantile(np.full((3, 1), np.nan), 0.9)[0])


def test_bands_from_backtest_residuals_cover_new_errors_at_their_level() -> None:
    rng = np.random.default_rng(0)
    n, folds, horizon = 200, 4, 6
    scale = rng.uniform(1, 10, n)
    # Errors grow with the horizon step; each series' errors are proportional to its scale.
    sd = scale[:, None, None] * np.linspace(1, 3, horizon)[None, None, :]
    point = rng.normal(100, 5, (n, folds, horizon))
    actual = point + rng.standard_normal((n, folds, horizon)) * sd
    cal = calibrate(actual, point, scale, 0.8)
    assert not cal.per_series.any()  # 4 folds: too few paths for a band of its own
    assert np.all(np.abs(cal.coverage - 0.8) < 0.04)  # measured out of sample, fold by fold
    new_point = rng.normal(100, 5, (n, horizon))
    new_actual = new_point + rng.standard_normal((n, horizon)) * sd[:, 0, :]
    lower, upper = cal.bands(new_point)
    inside = (new_actual >= lower) & (new_actual <= upper)
    assert abs(inside.mean() - 0.8) < 0.03
    assert np.all(upper[:, -1] - lower[:, -1] > upper[:, 0] - lower[:, 0])  # wider further out


def test_a_series_with_enough_folds_gets_a_band_of_its_own_and_it_survives_saving() -> None:
    rng = np.random.default_rng(1)
    actual = rng.standard_normal((3, 40, 2))
    actual[0] *= 10  # one series is much noisier than its scale says
    point = np.zeros_like(actual)
    keys = [{"s": "a"}, {"s": "b"}, {"s": "c"}]
    cal = calibrate(actual, point, np.ones(3), 0.8, min_series_paths=30)
    assert cal.per_series.all()
    assert cal.upper_q[0, 0] > 5 * cal.upper_q[1, 0]
    back = Calibration.from_dict(cal.to_dict(keys), [keys[1], keys[0], {"s": "new"}], np.ones(3))
    np.testing.assert_allclose(back.upper_q[1], cal.upper_q[0], atol=1e-5)
    np.testing.assert_allclose(back.upper_q[0], cal.upper_q[1], atol=1e-5)
    assert back.per_series.tolist() == [True, True, False]  # a new series gets the pooled band
    assert back.paths.shape[1] == 2


def test_exhaustion_probability_counts_the_paths_that_cross_by_each_step() -> None:
    point = np.array([[90.0, 92.0, 94.0]])
    paths = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 1.5], [0.0, 3.0, 3.0], [-5.0, -5.0, -5.0]])
    p = exhaustion_probability(point, np.array([89.0]), np.array([95.0]), np.array([1.0]), paths, [1, 2, 3])
    # step 2 reaches 95 in path 3 only; step 3 (94 + 1.5 or + 3) in paths 2 and 3.
    np.testing.assert_allclose(p[0], [0.0, 0.25, 0.5])


def test_exhaustion_probability_of_a_series_only_the_largest_residual_reaches_is_not_pruned() -> None:
    point = np.array([[90.0, 90.0], [90.0, 90.0], [50.0, 50.0]])
    paths = np.array([[0.0, 0.0], [0.0, 5.0], [-1.0, 0.0], [1.0, 1.0]])
    scale = np.array([1.0, 0.999, 1.0])  # series 1's largest path ends at 94.995, just short of 95
    p = exhaustion_probability(point, np.full(3, 80.0), np.full(3, 95.0), scale, paths, [1, 2])
    np.testing.assert_allclose(p, [[0.0, 0.25], [0.0, 0.0], [0.0, 0.0]])


def test_exhaustion_probability_is_one_when_already_over_and_unknown_without_a_threshold() -> None:
    point = np.zeros((3, 2))
    paths = np.zeros((5, 2))
    last = np.array([100.0, 1.0, 1.0])
    thr = np.array([95.0, np.nan, 0.0])
    p = exhaustion_probability(point, last, thr, np.ones(3), paths, [2])
    assert p[0, 0] == 1.0 and np.isnan(p[1, 0]) and np.isnan(p[2, 0])


def _backtest(crossing: bool, n: int = 30, folds: int = 3, horizon: int = 6) -> tuple[np.ndarray, ...]:
    """Series below a threshold of 100; some truly ramp over it within 3 steps of a fold origin."""
    rng = np.random.default_rng(3)
    actual = np.full((n, folds, horizon), 80.0) + rng.normal(0, 0.5, (n, folds, horizon))
    point = actual + rng.normal(0, 0.5, (n, folds, horizon))
    last = np.full((n, folds), 80.0)
    if crossing:
        ramp = np.linspace(90, 110, horizon)
        actual[:10, :, :] = ramp
        point[:10, :, :] = ramp + 1.0  # the model sees the ramps
        last[:10, :] = 88.0
    return actual, point, last


def test_rules_are_scored_on_the_backtest_and_the_best_recall_at_the_precision_wins() -> None:
    actual, point, last = _backtest(crossing=True)
    threshold = np.full(30, 100.0)
    scores, events, decisions = score_rules(actual, point, np.ones(30), last, threshold, level=0.8, within=4)
    # 10 ramping series x 3 folds cross once each; 30 series x 3 folds x 3 steps with a whole
    # window of forecast left (offsets 0, 1, 2 of 6 steps, a window of 4), all below the threshold.
    assert events == 30 and decisions == 270
    by = {s.rule.label: s for s in scores}
    assert by["point"].recall == 1.0 and by["point"].precision == 1.0
    assert by["point"].median_lead_steps == 4.0  # the ramp passes 100 at its 4th step
    choice = choose_rule(scores, events=events, decisions=decisions, within=4, min_precision=0.8)
    assert choice.score is not None and choice.score.precision is not None
    assert choice.score.precision >= 0.8 and choice.score.recall == 1.0
    again = AlertChoice.from_dict(choice.to_dict())
    assert again.rule == choice.rule and again.score == choice.score


def test_a_crossing_late_in_a_fold_is_scored_from_the_steps_before_it_not_only_at_the_origin() -> None:
    # 20 flat series at 80; series 0..4 ramp over 100 at step 9 of a 12-step fold (origin last = 80).
    n, folds, horizon, within = 20, 2, 12, 3
    rng = np.random.default_rng(0)
    actual = np.full((n, folds, horizon), 80.0) + rng.normal(0, 0.2, (n, folds, horizon))
    actual[:5, :, 6:] = np.array([85.0, 90.0, 101.0, 104.0, 106.0, 108.0])
    point = actual + rng.normal(0, 0.2, (n, folds, horizon))
    last = np.full((n, folds), 80.0)
    scores, events, decisions = score_rules(actual, point, np.ones(n), last, np.full(n, 100.0), level=0.8,
                                            within=within)  # fmt: skip
    assert events == 10  # 5 series x 2 folds, each crossing counted once though 3 decisions saw it coming
    # Decisions: every series at offsets 0..9 (a window of 3 left), except a ramp at offset 9, when
    # it is already over 100.
    assert decisions == n * folds * (horizon - within + 1) - 5 * folds
    point_rule = next(s for s in scores if s.rule.label == "point")
    # Fired at offsets 6, 7 and 8 before each crossing at step 9: 3 true positives per crossing,
    # the earliest 3 steps ahead; nothing else fired.
    assert (point_rule.true_positives, point_rule.false_positives, point_rule.false_negatives) == (30, 0, 0)
    assert point_rule.median_lead_steps == 3.0
    # At the origins alone (the old scoring) none of these crossings was within the window.
    origin_only = actual[:, :, :within] >= 100.0
    assert not origin_only.any()


def test_decision_points_are_every_step_with_a_window_left_and_bounded_for_long_horizons() -> None:
    assert decision_offsets(24, 6) == list(range(19))
    assert decision_offsets(6, 6) == [0]
    five_minutes = decision_offsets(288, 72)  # a day ahead at a 5-minute step, a 6 h window
    assert len(five_minutes) == MAX_DECISIONS_PER_FOLD and five_minutes[0] == 0 and five_minutes[-1] == 216
    assert five_minutes == sorted(set(five_minutes))


def test_too_few_crossings_fall_back_to_the_default_rule_and_say_so() -> None:
    actual, point, last = _backtest(crossing=False)
    scores, events, decisions = score_rules(
        actual, point, np.ones(30), last, np.full(30, 100.0), level=0.8, within=4
    )
    assert events == 0 < MIN_EVENTS
    choice = choose_rule(scores, events=events, decisions=decisions, within=4, min_precision=0.8)
    assert choice.rule == DEFAULT_RULE and choice.score is None and "fewer than" in choice.reason
    fixed = choose_rule(scores, events=events, decisions=decisions, within=4, min_precision=0.8,
                        fixed=AlertRule.parse("upper"))  # fmt: skip
    assert fixed.rule.label == "upper" and "spec" in fixed.reason


@pytest.mark.parametrize("text", ["point", "upper", "probability>=0.4", "probability>=1"])
def test_rule_labels_round_trip(text: str) -> None:
    assert AlertRule.parse(text).label == text


@pytest.mark.parametrize("text", ["probability>=0", "probability>=1.5", "maybe", "probability>="])
def test_a_bad_rule_is_refused_with_what_to_write(text: str) -> None:
    with pytest.raises(ValueError, match="point, upper or probability>=P"):
        AlertRule.parse(text)


def test_fires_reads_the_window_only() -> None:
    point = np.array([[90.0, 96.0], [90.0, 91.0]])
    kw = {"upper": point, "probability": np.array([0.6, 0.2]), "last": np.array([80.0, 80.0]),
          "threshold": np.array([95.0, 95.0])}  # fmt: skip
    assert fires(AlertRule("point"), point=point, within=2, **kw).tolist() == [True, False]  # type: ignore[arg-type]
    assert fires(AlertRule("point"), point=point, within=1, **kw).tolist() == [False, False]  # type: ignore[arg-type]
    assert fires(AlertRule("probability", 0.5), point=point, within=2, **kw).tolist() == [True, False]  # type: ignore[arg-type]


def test_when_no_rule_reaches_the_precision_the_most_precise_is_used_and_the_reason_says_what_to_do() -> None:
    scores = [
        RuleScore(AlertRule("upper"), 9, 21, 1, 6.0),  # precision 0.3, recall 0.9
        RuleScore(AlertRule("probability", 0.7), 6, 4, 4, 3.0),  # precision 0.6, recall 0.6
        RuleScore(AlertRule("point"), 2, 3, 8, 2.0),  # precision 0.4
    ]
    choice = choose_rule(scores, events=7, decisions=500, within=6, min_precision=0.8)
    assert choice.rule.label == "probability>=0.7" and choice.score is not None
    assert "no rule reached precision 0.8" in choice.reason
    assert "threshold.alert.minPrecision" in choice.reason
