"""Reconcile machinery: names, labels, conditions, merge diffs (pure parts)."""

from __future__ import annotations

from datetime import UTC, datetime

from foresight_operator.reconcile import child_name, merge_diff, owner_labels, owner_selector, set_condition

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = datetime(2026, 1, 2, tzinfo=UTC)


def test_child_names_are_deterministic_and_fit_63_characters() -> None:
    assert child_name("demo", "train") == "demo-train"
    long_a = "a" * 80 + "-one"
    long_b = "a" * 80 + "-two"
    na, nb = child_name(long_a, "train"), child_name(long_b, "train")
    assert len(na) <= 63 and len(nb) <= 63
    assert na != nb and na == child_name(long_a, "train")
    assert na.endswith("-train")
    assert child_name("my.model", "config") == "my-model-config"


def test_owner_labels_and_selector() -> None:
    labels = owner_labels("TrainingJob", "demo")
    assert labels == {
        "app.kubernetes.io/managed-by": "foresight",
        "foresight.dev/kind": "TrainingJob",
        "foresight.dev/name": "demo",
    }
    assert owner_selector("TrainingJob", "demo") == (
        "app.kubernetes.io/managed-by=foresight,foresight.dev/kind=TrainingJob,foresight.dev/name=demo"
    )
    assert len(owner_labels("TrainingJob", "x" * 200)["foresight.dev/name"]) <= 63


def test_condition_transition_time_moves_only_when_status_changes() -> None:
    conds = set_condition([], "Ready", "False", "Pending", "waiting", generation=1, now=T0)
    assert conds == [{"type": "Ready", "status": "False", "reason": "Pending", "message": "waiting",
                      "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1}]  # fmt: skip
    same = set_condition(conds, "Ready", "False", "Running", "running", generation=2, now=T1)
    assert same[0]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert same[0]["reason"] == "Running" and same[0]["observedGeneration"] == 2
    flipped = set_condition(same, "Ready", "True", "Succeeded", "done", generation=2, now=T1)
    assert flipped[0]["lastTransitionTime"] == "2026-01-02T00:00:00Z"
    both = set_condition(flipped, "Degraded", "True", "TemporaryFailure", "x", generation=2, now=T1)
    assert [c["type"] for c in both] == ["Ready", "Degraded"]


def test_merge_diff_nulls_removed_keys_and_keeps_equal_ones_out() -> None:
    old = {"phase": "Running", "progress": {"epoch": 1, "eta": 5}, "gone": 1}
    new = {"phase": "Succeeded", "progress": {"epoch": 3}}
    assert merge_diff(old, new) == {"phase": "Succeeded", "progress": {"epoch": 3, "eta": None}, "gone": None}
    assert merge_diff(new, new) == {}
