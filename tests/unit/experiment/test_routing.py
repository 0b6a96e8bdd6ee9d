"""Sticky weighted routing: stickiness, shares, minimal movement, and bad weights."""

from __future__ import annotations

import pytest
from foresight.experiment.routing import VariantRouter, routing_key
from scipy import stats

KEYS = [f"client-{i}" for i in range(60_000)]


def _assign(router: VariantRouter) -> list[str]:
    return [router.choose(k) for k in KEYS]


def test_same_key_same_variant_across_router_instances_and_orders() -> None:
    a = VariantRouter({"control": 75, "candidate": 25}, salt="exp-1")
    b = VariantRouter({"candidate": 25, "control": 75}, salt="exp-1", cache_size=10)
    first = _assign(a)
    assert first == _assign(b)  # another pod, another insertion order, a tiny cache
    assert first == _assign(a)  # the cache answers the same


def test_the_salt_decorrelates_experiments() -> None:
    one = _assign(VariantRouter({"control": 90, "candidate": 10}, salt="exp-1"))
    two = _assign(VariantRouter({"control": 90, "candidate": 10}, salt="exp-2"))
    both = sum(x == "candidate" and y == "candidate" for x, y in zip(one, two, strict=True)) / len(KEYS)
    assert both == pytest.approx(0.01, abs=0.003)  # independent: 10% of 10%


def test_shares_follow_the_weights_for_three_variants() -> None:
    weights = {"control": 50, "b": 30, "c": 20}
    got = _assign(VariantRouter(weights, salt="s"))
    observed = [got.count(v) for v in weights]
    expected = [len(KEYS) * w / 100 for w in weights.values()]
    assert stats.chisquare(observed, expected).pvalue > 0.001


def test_raising_the_candidate_moves_only_control_clients_and_about_the_difference() -> None:
    before = _assign(VariantRouter({"control": 90, "candidate": 10}, salt="s"))
    after = _assign(VariantRouter({"control": 75, "candidate": 25}, salt="s"))
    moves = [(x, y) for x, y in zip(before, after, strict=True) if x != y]
    assert {m for m in moves} == {("control", "candidate")}
    assert len(moves) / len(KEYS) == pytest.approx(0.15, abs=0.01)


def test_removing_a_variant_moves_only_its_clients() -> None:
    before = _assign(VariantRouter({"a": 40, "b": 30, "c": 30}, salt="s"))
    after = _assign(VariantRouter({"a": 40, "b": 30, "c": 0}, salt="s"))
    assert all(x == y for x, y in zip(before, after, strict=True) if x != "c")
    assert "c" not in after


def test_one_live_variant_takes_everything() -> None:
    r = VariantRouter({"control": 100, "candidate": 0})
    assert {r.choose(k) for k in KEYS[:1000]} == {"control"}


@pytest.mark.parametrize("weights", [{"a": 0, "b": 0}, {"a": -1, "b": 101}, {"a": float("nan"), "b": 1}])
def test_weights_that_cannot_be_served_are_refused_with_the_fix(weights: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="weight"):
        VariantRouter(weights)


def test_routing_key_prefers_the_header_then_the_client_ip() -> None:
    assert routing_key(" user-7 ", "10.0.0.1") == "user-7"
    assert routing_key("", "10.0.0.1") == "ip:10.0.0.1"
    assert routing_key(None, None) is None
