"""The sample-ratio-mismatch check against scipy's chi-square test."""

from __future__ import annotations

import pytest
from foresight.experiment.srm import sample_ratio_mismatch
from scipy import stats


@pytest.mark.parametrize(
    ("observed", "weights", "mismatch"),
    [
        ({"control": 50_600.0, "candidate": 49_400.0}, {"control": 50, "candidate": 50}, True),
        ({"control": 50_200.0, "candidate": 49_800.0}, {"control": 50, "candidate": 50}, False),
        ({"a": 8_980.0, "b": 520.0, "c": 500.0}, {"a": 90, "b": 5, "c": 5}, False),
        ({"a": 8_700.0, "b": 800.0, "c": 500.0}, {"a": 90, "b": 5, "c": 5}, True),
    ],
)
def test_matches_scipy_chisquare(observed: dict[str, float], weights: dict[str, int], mismatch: bool) -> None:
    res = sample_ratio_mismatch(observed, weights, alpha=0.001)
    total = sum(observed.values())
    expected = [total * w / 100 for w in weights.values()]
    ref = stats.chisquare(list(observed.values()), expected)
    assert res.chi2 == pytest.approx(ref.statistic)
    assert res.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert res.df == len(weights) - 1
    assert res.mismatch is mismatch


def test_requests_on_a_zero_weight_variant_are_a_mismatch() -> None:
    res = sample_ratio_mismatch({"control": 1000.0, "candidate": 12.0}, {"control": 100, "candidate": 0})
    assert res.mismatch and res.p_value == 0.0 and res.chi2 is None
    quiet = sample_ratio_mismatch({"control": 1000.0}, {"control": 100, "candidate": 0})
    assert not quiet.mismatch


def test_no_traffic_is_no_mismatch_and_no_weights_is_an_error() -> None:
    assert not sample_ratio_mismatch({}, {"a": 50, "b": 50}).mismatch
    with pytest.raises(ValueError, match="no declared split"):
        sample_ratio_mismatch({"a": 1.0}, {"a": 0})
