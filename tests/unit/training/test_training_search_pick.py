"""Choosing a search's best trial: full runs first, early-stopped ones only when nothing finished."""

from __future__ import annotations

from typing import Any

import pytest
from foresight.training.ray_backend import SearchFailedError, pick_best


def trial(tid: str, metric: float | None, status: str, epochs: int = 2) -> dict[str, Any]:
    return {"id": tid, "config": {}, "metric": metric, "status": status, "epochs": epochs}


def test_an_early_stopped_trial_with_a_lower_earlier_metric_is_not_the_best() -> None:
    # Seen in a real 4-trial ASHA search: the trial stopped after epoch 1 had reported 0.586 then,
    # below both full runs' epoch-2 values.
    trials = [
        trial("a", 0.5889, "TERMINATED"),
        trial("b", 0.5860, "STOPPED", epochs=1),
        trial("c", 0.5888, "TERMINATED"),
        trial("d", 0.61, "STOPPED", epochs=1),
    ]
    assert pick_best(trials, metric="val_loss", mode="min")["id"] == "c"


def test_mode_max_picks_the_highest_full_run() -> None:
    trials = [trial("a", 0.7, "TERMINATED"), trial("b", 0.9, "TERMINATED"), trial("c", 0.95, "STOPPED")]
    assert pick_best(trials, metric="accuracy", mode="max")["id"] == "b"


def test_without_a_full_run_the_best_early_stopped_trial_wins_and_errors_never_do() -> None:
    trials = [trial("a", 0.3, "STOPPED", 1), trial("b", 0.1, "ERROR", 1), trial("c", 0.2, "STOPPED", 1)]
    assert pick_best(trials, metric="val_loss", mode="min")["id"] == "c"


def test_no_trial_with_the_metric_is_a_search_failure_naming_each_trial() -> None:
    trials = [trial("a", None, "TERMINATED"), {**trial("b", 0.1, "ERROR"), "error": "CUDA out of memory"}]
    with pytest.raises(SearchFailedError, match=r"all 2 trials .*'val_loss'.*b: CUDA out of memory"):
        pick_best(trials, metric="val_loss", mode="min")
