"""Training across shards: the neural networks of a sharded run, trained once on a sample.

Statistical and baseline models are per series, so each shard fits its own. A neural model is
global: one network learns from windows of every series. A sharded run trains it once, in its
plan pod (with the task's GPU, if any), on a bounded sample of the run's series drawn evenly
across the shards (:func:`sample_series`, read with the shards' own reader under the read
budget), and every shard then predicts with the saved network:

- :func:`train_networks` fits each neural model the task uses twice, as a single-pod run does: a
  *fold* network on the history before the first backtest origin (the shards backtest it on their
  own series, out of sample) and a *final* network on the whole history (what the shards predict
  with). Label values no sampled series had get the mean of the learnt embeddings
  (:func:`average_unknown_embedding`) instead of an untrained row.
- :class:`NetworksArtifact` saves them as a ForecastTask model directory (``model/`` in the
  ``auto`` or single-model format, so a ModelVersion can verify it, plus ``model/fold/<name>``);
  :func:`load_networks` reads them back.
- :class:`SharedNetworks` is the shards' :class:`~foresight.forecast.run_scope.ModelMaker`: the
  task's model with the networks as they are (:func:`pretrained`, whose ``fit`` keeps the
  network; :class:`ShardAutoModel` for ``auto``), statistical candidates fitted by the shard.

Why a sample and not training per shard (measured in ``bench/forecast_shard_training.py``): a
network's cost is its windows, not its series, so one training on 2,000 series costs what one
shard's would, where per-shard training pays it once per shard; and every shard predicts with
the same network, trained on more varied series than one shard holds.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from foresight.api.forecasttask import ForecastTaskSpec
from foresight.timeseries import Forecast, Panel

from .auto import SAVE_FORMAT as AUTO_SAVE_FORMAT
from .auto import AutoModel
from .backtest import backtest_origins
from .models.base import EpochReport, Model, ProgressCallback, get_model, is_neural, model_class
from .pipeline import build_model, model_params, spec_digest
from .shard_plan import PlannedSeries, series_hash

if TYPE_CHECKING:
    from .models.neural import NeuralModel

__all__ = [
    "NetworksArtifact",
    "PretrainedPair",
    "ShardAutoModel",
    "SharedNetworks",
    "average_unknown_embedding",
    "load_networks",
    "neural_names",
    "pretrained",
    "sample_series",
    "sharded_digest",
    "train_networks",
]

FOLD_DIR = "fold"


def neural_names(spec: ForecastTaskSpec) -> list[str]:
    """The neural models the task uses: its type, or ``auto``'s neural candidates."""
    mtype = str(spec.model.type)
    names = [str(c) for c in spec.model.candidates] if mtype == "auto" else [mtype]
    return [n for n in names if is_neural(n)]


def sharded_digest(spec: ForecastTaskSpec) -> str:
    """What a sharded run's networks were trained for: the spec digest, marked sharded, so a
    single-pod run of the same spec (parallelism set back to 1) does not take them for its model."""
    return f"{spec_digest(spec)}-sharded"


# ---- the sample ---------------------------------------------------------------------------------


def sample_series(shards: Sequence[Sequence[PlannedSeries]], n: int) -> list[PlannedSeries]:
    """At most ``n`` series drawn evenly across ``shards`` (each shard's share of the sample is its
    share of the series, largest remainders rounded up), within a shard those with the smallest
    :func:`~foresight.forecast.shard_plan.series_hash`: a uniform draw that is the same every
    run, so the networks learn from the same series as long as they exist."""
    total = sum(len(s) for s in shards)
    if total <= n:
        return [p for s in shards for p in s]
    exact = [n * len(s) / total for s in shards]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(len(shards)), key=lambda i: (counts[i] - exact[i], i))
    for i in by_remainder[: n - sum(counts)]:
        counts[i] += 1
    out: list[PlannedSeries] = []
    for series, k in zip(shards, counts, strict=True):
        out.extend(sorted(series, key=lambda p: series_hash(p.labels))[:k])
    return out


# ---- networks used as they are --------------------------------------------------------------------


class _Pretrained(Model):
    """A network trained elsewhere, used as it is: ``fit`` keeps it (see :func:`pretrained`)."""

    neural: ClassVar[bool] = True
    cheap_refit: ClassVar[bool] = False
    uses_covariates: ClassVar[bool] = True
    global_model: ClassVar[bool] = True
    saveable: ClassVar[bool] = True

    def __init__(self, inner: NeuralModel) -> None:
        self.inner = inner

    def fit(
        self, panel: Panel, horizon: int, *, seed: int = 0, progress: ProgressCallback | None = None
    ) -> None:
        trained = self.inner.horizon or 0
        if horizon > trained:
            raise ValueError(
                f"the {self.name} network was trained for {trained} steps ahead, the run asks {horizon}: "
                "retrain (a train run)"
            )

    def predict(self, panel: Panel, horizon: int) -> Forecast:
        return self.inner.predict(panel, horizon)

    def params(self) -> dict[str, Any]:
        return self.inner.params()

    def save(self, path: str | Path) -> None:
        self.inner.save(path)  # the network's own format: it loads back as the plain model


@cache
def _pretrained_class(name: str) -> type[_Pretrained]:
    # ``name`` is a class attribute of every model (backtests and saved configs read it).
    return type(f"Pretrained_{name}", (_Pretrained,), {"name": name})


def pretrained(inner: NeuralModel) -> Model:
    """``inner`` as a model whose ``fit`` keeps the network it has (checking only the horizon)."""
    return _pretrained_class(inner.name)(inner)


def average_unknown_embedding(model: NeuralModel) -> None:
    """Give the "unknown value" row (id 0) of each label embedding the mean of the learnt rows.

    A network trained on a sample meets label values at prediction that no sampled series had;
    their id is 0, a row that training never updates (random). The mean of the learnt rows is
    the "average series" of that label instead.
    """
    import torch

    if model.net is None:
        raise RuntimeError(f"{model.name} network is not trained")
    with torch.no_grad():
        for emb in model.net.embeddings:
            assert isinstance(emb, torch.nn.Embedding)
            weight = emb.weight
            if weight.shape[0] > 1:
                weight[0] = weight[1:].mean(dim=0)


@dataclass(frozen=True)
class PretrainedPair:
    """One neural model trained by the plan pod: for the backtest and for predicting."""

    fold: NeuralModel
    """Trained on the history before the first backtest origin."""
    final: NeuralModel
    """Trained on the whole history."""


def train_networks(
    spec: ForecastTaskSpec,
    panel: Panel,
    horizon: int,
    names: Sequence[str],
    *,
    on_epoch: Callable[[str, str, EpochReport], None] | None = None,
) -> dict[str, PretrainedPair]:
    """Fit each of ``names`` on the sample ``panel``: a fold network (the history before the first
    of ``spec.model.backtestFolds`` origins, as a backtest fits it) and a final one (everything).

    ``on_epoch(model, which, report)`` hears every epoch (``which`` is ``fold`` or ``final``).
    """
    first = backtest_origins(panel.n_steps, horizon, spec.model.backtest_folds)[0]
    out: dict[str, PretrainedPair] = {}
    for name in names:
        trained: dict[str, NeuralModel] = {}
        for which, data in ((FOLD_DIR, panel.head(first + 1)), ("final", panel)):
            model = get_model(name, **model_params(spec, name))
            report = None if on_epoch is None else _bind(on_epoch, name, which)
            model.fit(data, horizon, seed=spec.model.seed, progress=report)
            average_unknown_embedding(model)  # type: ignore[arg-type]
            trained[which] = model  # type: ignore[assignment]
        out[name] = PretrainedPair(fold=trained[FOLD_DIR], final=trained["final"])
    return out


def _bind(fn: Callable[[str, str, EpochReport], None], name: str, which: str) -> ProgressCallback:
    return lambda report: fn(name, which, report)


# ---- saved networks -----------------------------------------------------------------------------------


class NetworksArtifact(Model):
    """The networks of a sharded run as one saveable model (what ``persistence.save_model`` keeps).

    Its directory is a ForecastTask model a ModelVersion can verify: a single neural model's own
    format, or for ``auto`` its format (``config.json`` + ``models/<name>/``, every series on the
    first network), plus ``fold/<name>/`` with the backtest networks.
    """

    saveable: ClassVar[bool] = True
    name: ClassVar[str] = "networks"

    def __init__(self, spec: ForecastTaskSpec, networks: Mapping[str, PretrainedPair], horizon: int) -> None:
        if not networks:
            raise ValueError("no networks to save")
        self.spec = spec
        self.networks = dict(networks)
        self.horizon = horizon

    def fit(
        self, panel: Panel, horizon: int, *, seed: int = 0, progress: ProgressCallback | None = None
    ) -> None:
        raise NotImplementedError("the networks are trained by train_networks()")

    def predict(self, panel: Panel, horizon: int) -> Forecast:
        raise NotImplementedError("shards predict with the networks through SharedNetworks")

    def save(self, path: str | Path) -> None:
        d = Path(path)
        if str(self.spec.model.type) == "auto":
            self._save_auto(d)
        else:
            (pair,) = self.networks.values()
            pair.final.save(d)
        for name, pair in self.networks.items():
            pair.fold.save(d / FOLD_DIR / name)

    def _save_auto(self, d: Path) -> None:
        """``auto``'s format (:meth:`foresight.forecast.auto.AutoModel.save`) with the networks only."""
        names = list(self.networks)
        for name, pair in self.networks.items():
            pair.final.save(d / "models" / name)
        config = {
            "name": "auto",
            "format": AUTO_SAVE_FORMAT,
            "params": build_model(self.spec).params(),
            "horizon": self.horizon,
            "default": {"models": [names[0]], "weights": [1.0]},
            "choices": [],
            "fitted": {n: {"saved": True, "params": p.final.params()} for n, p in self.networks.items()},
            "failures": {},
            "backtest": {},
            "sharded": True,
        }
        (d / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))


def load_networks(directory: Path) -> dict[str, PretrainedPair]:
    """The networks saved by :meth:`NetworksArtifact.save` in ``directory`` (its ``model/``)."""
    config = json.loads((directory / "config.json").read_text())
    if config.get("name") == "auto":
        finals = {n: directory / "models" / n for n, info in config["fitted"].items() if info.get("saved")}
    else:
        finals = {str(config["name"]): directory}
    out: dict[str, PretrainedPair] = {}
    for name, final_dir in finals.items():
        cls = model_class(name)
        out[name] = PretrainedPair(
            fold=cls.load(directory / FOLD_DIR / name),  # type: ignore[arg-type]
            final=cls.load(final_dir),  # type: ignore[arg-type]
        )
    return out


# ---- what the shards fit -------------------------------------------------------------------------


class ShardAutoModel(AutoModel):
    """``auto`` in a shard: its neural candidates are the plan pod's networks, used as they are
    (the fold network in the backtest, the final one for the series that pick it); the others are
    backtested and fitted on the shard's series as usual. Saved and loaded as a plain ``auto``."""

    def __init__(self, *, networks: Mapping[str, PretrainedPair], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.networks = dict(networks)

    def _new(self, name: str) -> Model:
        if name in self.networks:
            return pretrained(self.networks[name].final)
        return super()._new(name)

    def _fold_factory(self, name: str, progress: ProgressCallback | None) -> Callable[[], Model]:
        if name not in self.networks:
            return super()._fold_factory(name, progress)
        fold = self.networks[name].fold
        self._emit("fold", model=name, fold=1, of=1)
        return lambda: pretrained(fold)


class SharedNetworks:
    """A shard's :class:`~foresight.forecast.run_scope.ModelMaker` when the task uses neural models
    (:func:`neural_names`; without them a shard fits the task's own models): the plan pod's
    networks, loaded on first use, so a shard that predicts with its own saved model never
    downloads them."""

    def __init__(self, load: Callable[[], Mapping[str, PretrainedPair]]) -> None:
        self._load = load
        self._networks: dict[str, PretrainedPair] | None = None

    def networks(self, spec: ForecastTaskSpec) -> dict[str, PretrainedPair]:
        if self._networks is None:
            self._networks = dict(self._load())
        missing = [n for n in neural_names(spec) if n not in self._networks]
        if missing:
            raise RuntimeError(
                f"the plan pod trained no network for {missing}: the saved networks are for another spec; "
                "run a train run (the next retrain does)"
            )
        return self._networks

    def task_model(self, spec: ForecastTaskSpec) -> Model:
        mtype = str(spec.model.type)
        if mtype == "auto":
            base = build_model(spec)
            assert isinstance(base, AutoModel)
            params = base.params()
            candidates = params.pop("candidates")
            return ShardAutoModel(networks=self.networks(spec), candidates=candidates, **params)
        return pretrained(self.networks(spec)[mtype].final)

    def fold_factory(
        self, spec: ForecastTaskSpec, name: str, on_epoch: Callable[[EpochReport], None] | None
    ) -> Callable[[], Model]:
        # Only a single neural model's backtest comes here (auto makes its own folds).
        fold = self.networks(spec)[name].fold
        return lambda: pretrained(fold)
