"""What a ForecastTask keeps in its artifact store between runs.

Under ``forecasttasks/<namespace>/<name>/`` (:func:`task_prefix`):

- ``<version>/``: a trained model, saved as a manifest-checked directory (``model/`` and the
  ``run.json`` of the run that trained it: when, for which spec digest, at which step and
  horizon, with which backtest figures);
- ``latest.json``: the pointer to the newest version, written after the directory is complete,
  so a reader never sees half a model;
- ``forecast.json``: the last forecast, for the next run's anomaly flag and realised errors;
- ``metrics.txt``: a scrape-mode task's exposition (:func:`exposition_key`), which
  ``foresight serve forecasts`` serves;
- ``shards/<index>/``: the same three for each shard of a sharded run (:func:`shard_prefix`), and
  ``plans/``: its plans and the networks its plan pod trained (:mod:`foresight.forecast.shard_plan`,
  :mod:`foresight.forecast.shard_models`).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from foresight.artifacts import ArtifactNotFoundError, ArtifactStore
from foresight.contract.forecast import STORE_PREFIX
from foresight.timeseries import FloatArray, Forecast, finite_or_none

from .models.base import Model, get_model, load_model

__all__ = [
    "EXPOSITION_FILE",
    "FORECAST_FILE",
    "LATEST_FILE",
    "exposition_key",
    "forecast_from_json",
    "forecast_to_json",
    "load_saved_model",
    "read_json",
    "save_forecast",
    "save_model",
    "shard_prefix",
    "task_prefix",
]

EXPOSITION_FILE = "metrics.txt"
LATEST_FILE = "latest.json"
FORECAST_FILE = "forecast.json"


def task_prefix(namespace: str, name: str) -> str:
    """Where everything of one task lives in its store."""
    return f"{STORE_PREFIX}/{namespace}/{name}"


def shard_prefix(namespace: str, name: str, index: int) -> str:
    """Where shard ``index`` of a sharded task keeps its models, last forecast and exposition.

    By index, not by plan: the shard's series stay the same from run to run (the plan's stable
    hash), so its previous forecast and its saved model are the ones it needs next time.
    """
    if index < 0:
        raise ValueError(f"a shard index is >= 0, got {index}")
    return f"{task_prefix(namespace, name)}/shards/{index:05d}"


def exposition_key(namespace: str, name: str, shard: int | None = None) -> str:
    """The store key of a scrape-mode task's metrics exposition (what ``foresight serve forecasts``
    reads); one per shard of a sharded task."""
    base = task_prefix(namespace, name) if shard is None else shard_prefix(namespace, name, shard)
    return f"{base}/{EXPOSITION_FILE}"


def read_json(store: ArtifactStore, key: str) -> dict[str, Any] | None:
    try:
        doc = json.loads(store.get_bytes(key))
    except ArtifactNotFoundError:
        return None
    return doc if isinstance(doc, dict) else None


def _trained_models(model: Model, saved: Path) -> list[str]:
    """The models whose fitted weights ``saved`` (a model directory just written) holds."""
    if not model.saveable:
        return []
    config = json.loads((saved / "config.json").read_text())
    fitted = config.get("fitted")
    if isinstance(fitted, dict):  # auto: the per-series picks, only some of them trained
        return sorted(
            str(name) for name, info in fitted.items() if isinstance(info, dict) and info.get("saved")
        )
    return [model.name]


def save_model(
    store: ArtifactStore, prefix: str, version: str, model: Model, run: dict[str, Any]
) -> tuple[str, str, list[str]]:
    """Upload ``model`` + ``run.json`` as a manifest-checked directory, then point ``latest`` at it.

    Returns the directory's URI, its manifest's sha256 and :func:`_trained_models`.
    """
    with tempfile.TemporaryDirectory(prefix="foresight-model-") as tmp:
        root = Path(tmp)
        if model.saveable:
            model.save(root / "model")
            trained = _trained_models(model, root / "model")
        else:
            trained = []
            # Closed-form and statsforecast models have no fitted state: their parameters are the model.
            (root / "model").mkdir()
            config = {"name": model.name, "params": model.params(), "stateless": True}
            (root / "model" / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
        (root / "run.json").write_text(json.dumps(run, indent=2, sort_keys=True, default=str))
        info = store.put_dir(root, f"{prefix}/{version}")
    pointer = {"version": version, "uri": info.uri, **{k: run[k] for k in ("trainedAt", "specDigest")}}
    store.put_bytes(json.dumps(pointer, sort_keys=True).encode(), f"{prefix}/{LATEST_FILE}")
    return info.uri, info.manifest.sha256, trained


def load_saved_model(store: ArtifactStore, prefix: str, version: str) -> tuple[Model, dict[str, Any]]:
    """The model saved as ``version`` by :func:`save_model`, with its ``run.json``."""
    with tempfile.TemporaryDirectory(prefix="foresight-model-") as tmp:
        local = Path(tmp) / "m"
        store.get_dir(f"{prefix}/{version}", local)
        run = json.loads((local / "run.json").read_text())
        config = json.loads((local / "model" / "config.json").read_text())
        if config.get("stateless"):
            model = get_model(str(config["name"]), **config["params"])
        else:
            model = load_model(local / "model")
    return model, run


def forecast_to_json(fc: Forecast) -> dict[str, Any]:
    def arr(a: FloatArray) -> list[list[float | None]]:
        return [[finite_or_none(float(x)) for x in row] for row in a]

    return {
        "origin": fc.origin, "step": fc.step, "keys": fc.keys, "point": arr(fc.point),
        "lower": arr(fc.lower), "upper": arr(fc.upper), "model": fc.model, "level": fc.level,
    }  # fmt: skip


def forecast_from_json(doc: Mapping[str, Any]) -> Forecast:
    def arr(rows: Sequence[Sequence[float | None]]) -> FloatArray:
        return np.array([[np.nan if x is None else x for x in r] for r in rows], dtype=np.float64)

    return Forecast(
        origin=int(doc["origin"]), step=int(doc["step"]), keys=[dict(k) for k in doc["keys"]],
        point=arr(doc["point"]), lower=arr(doc["lower"]), upper=arr(doc["upper"]),
        model=list(doc["model"]), level=float(doc["level"]),
    )  # fmt: skip


def save_forecast(store: ArtifactStore, prefix: str, forecast: Forecast) -> None:
    """Keep ``forecast`` for the next run (one put: a reader sees the old one or this one)."""
    store.put_bytes(json.dumps(forecast_to_json(forecast)).encode(), f"{prefix}/{FORECAST_FILE}")
