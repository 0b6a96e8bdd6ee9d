"""The classifier server keeps the garbage collector off its hot path (``tune_gc``)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from foresight.serving.classifier.server import GC_THRESHOLDS, tune_gc


@pytest.fixture
def restored_gc() -> Iterator[None]:
    before = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_tune_gc_freezes_the_start_up_objects_and_raises_the_thresholds(restored_gc: None) -> None:
    gc.unfreeze()
    survivor = [object() for _ in range(100)]  # long-lived, as the app and its schemas are
    tune_gc()
    assert gc.get_threshold() == GC_THRESHOLDS
    assert gc.get_freeze_count() >= len(survivor)
