"""A real Ray Tune search on a local Ray (2 CPUs): 4 trials, ASHA, the best config refitted and published."""

from __future__ import annotations

import io
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from foresight.training import TrainConfig, run_training

pytestmark = pytest.mark.integration


@pytest.fixture
def ray_tmp() -> Iterator[str]:
    # Ray's session sockets must fit in 107 bytes (AF_UNIX): pytest's tmp_path is too deep.
    path = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_four_trial_search_reports_trials_and_best_config(tmp_path: Path, ray_tmp: str) -> None:
    pytest.importorskip("ray.tune")
    config = TrainConfig.model_validate(
        {
            "task": "toy",
            "epochs": 3,
            "batchSize": 32,
            "seed": 1,
            "hyperparameters": {"samples": "256", "hidden": "8"},
            "search": {
                "trials": 4,
                "metric": "val_loss",
                "mode": "min",
                "scheduler": "asha",
                "gracePeriod": 1,
                "maxConcurrent": 2,
                "space": {
                    "learningRate": {"type": "loguniform", "min": 1e-4, "max": 1e-1},
                    "hidden": {"type": "choice", "values": ["4", "16"]},
                    "dropout": {"type": "uniform", "min": 0.0, "max": 0.3},
                },
            },
            "output": {"uri": str(tmp_path / "out")},
            "ray": {"numCpus": 2, "tempDir": ray_tmp},
        }
    )
    environ = {"FORESIGHT_TERMINATION_LOG": str(tmp_path / "termination-log")}
    out = io.StringIO()
    code, doc = run_training(config, environ=environ, stdout=out, workdir=tmp_path / "work")
    assert code == 0, doc
    trials = doc["trials"]
    assert len(trials) == 4 and len({t["id"] for t in trials}) == 4
    assert {t["status"] for t in trials} <= {"TERMINATED", "STOPPED"}
    assert all(
        1e-4 <= t["config"]["learningRate"] <= 1e-1 and t["config"]["hidden"] in (4, 16) for t in trials
    )
    # ASHA lets at least one trial finish; the best is chosen among those (an early-stopped
    # trial's metric is from an earlier epoch).
    complete = [t for t in trials if t["status"] == "TERMINATED" and t["metric"] is not None]
    assert complete
    best = min(complete, key=lambda t: t["metric"])
    assert doc["bestTrial"]["id"] == best["id"] and doc["bestMetric"] == best["metric"]
    assert doc["bestConfig"] == best["config"]
    # The best configuration was refitted and published, and the termination message says so.
    term = json.loads(Path(environ["FORESIGHT_TERMINATION_LOG"]).read_text())
    assert term["bestConfig"] == best["config"] and term["artifactUri"] == doc["artifactUri"]
    assert (tmp_path / "out" / "model.pt").is_file()
    training = json.loads((tmp_path / "out" / "training.json").read_text())
    assert training["hyperparameters"]["learningRate"] == best["config"]["learningRate"]
    search = json.loads((tmp_path / "out-search" / "search.json").read_text())
    assert len(search["trials"]) == 4
    events = [json.loads(line)["event"] for line in out.getvalue().splitlines() if line.startswith("{")]
    assert events.count("trial") == 4 and "refit" in events
