"""Prediction drift per variant: PSI of the categories served now against the baseline window."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import pytest
from foresight.contract.classifier import MonitoringConfig
from foresight.serving.classifier.accounting import Ledger, RequestEvent
from foresight.serving.classifier.drift import DriftMonitor, psi
from foresight.serving.classifier.store.sqlite import SqliteStore
from foresight.serving.classifier.telemetry import ClassifierMetrics
from prometheus_client import CollectorRegistry

NOW = datetime(2026, 3, 10, 15, 30, tzinfo=UTC).timestamp()
CATS = ["pets", "foods", "other"]


def test_psi_matches_its_definition() -> None:
    recent, base = {"pets": 60, "foods": 30, "other": 10}, {"pets": 40, "foods": 40, "other": 20}
    want = sum(
        (recent[c] / 100 - base[c] / 100) * math.log((recent[c] / 100) / (base[c] / 100)) for c in CATS
    )
    assert psi(recent, base, CATS) == pytest.approx(want)
    assert psi(base, base, CATS) == 0
    # A category missing from one window is a large, finite term (floored share), not infinity.
    assert 1 < psi({"pets": 100}, {"foods": 100}, CATS) < 30


def _serve(ledger: Ledger, ts: float, variant: str, counts: dict[str, int]) -> None:
    for category, n in counts.items():
        for _ in range(n):
            ledger.add(RequestEvent(ts, "classify", 200, variant, 0.01, category=category, outcome="hit"))


def test_the_monitor_scores_each_variant_against_its_own_baseline(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "d.db")
    registry = CollectorRegistry()
    ledger = Ledger(
        store,
        ClassifierMetrics(registry),
        prices={},
        backends={},
        clock=lambda: NOW,
        timezone="UTC",
        retention_days=30,
        start_thread=False,
    )
    steady = {"pets": 50, "foods": 30, "other": 20}
    for hours_ago in range(1, 25):  # the baseline: a day of the same mix, both variants
        _serve(ledger, NOW - hours_ago * 3600, "control", steady)
        _serve(ledger, NOW - hours_ago * 3600, "candidate", steady)
    _serve(ledger, NOW, "control", steady)  # the recent hour: control unchanged...
    shifted = {"pets": 10, "foods": 30, "other": 60}
    _serve(ledger, NOW, "candidate", shifted)  # ...the candidate's answers moved
    _serve(ledger, NOW, "quiet", {"pets": 3})
    ledger.flush()
    settings = MonitoringConfig(drift_window_hours=1, drift_baseline_hours=24, drift_min_samples=50)
    monitor = DriftMonitor(
        store, settings, categories=CATS, variants=["control", "candidate", "quiet"], clock=lambda: NOW
    )
    scores = {s.variant: s for s in monitor.compute()}
    assert scores["control"].psi == pytest.approx(0, abs=1e-9)
    base = {c: n * 24 for c, n in steady.items()}
    assert scores["candidate"].psi == pytest.approx(psi(shifted, base, CATS))
    assert scores["candidate"].psi > 0.25  # what the shipped alert fires on
    assert (scores["candidate"].recent, scores["candidate"].baseline) == (100, 2400)
    assert scores["quiet"].psi is None  # 3 answers are no evidence either way

    registry.register(monitor)
    monitor.refresh_if_stale()
    value = registry.get_sample_value("foresight_classifier_prediction_drift_psi", {"variant": "candidate"})
    assert value == pytest.approx(scores["candidate"].psi)
    assert (
        registry.get_sample_value("foresight_classifier_prediction_drift_psi", {"variant": "quiet"}) is None
    )
    samples = {"variant": "quiet", "window": "recent"}
    assert registry.get_sample_value("foresight_classifier_prediction_drift_samples", samples) == 3
    store.close()
