"""Training across shards: the sample, networks used as they are, their artifact, auto in a shard."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from foresight.api.forecasttask import ForecastTaskSpec
from foresight.forecast.auto import AutoModel
from foresight.forecast.models.base import load_model
from foresight.forecast.shard_models import (
    NetworksArtifact,
    ShardAutoModel,
    SharedNetworks,
    load_networks,
    neural_names,
    pretrained,
    sample_series,
    sharded_digest,
    train_networks,
)
from foresight.forecast.shard_plan import PlannedSeries, series_hash
from foresight.timeseries import Panel

from .conftest import seasonal_panel

TINY = {"inputWindow": 24, "hiddenSize": 8, "layers": 1, "epochs": 1, "windowsPerEpoch": 100, "batchSize": 64}


def spec(**model: object) -> ForecastTaskSpec:
    return ForecastTaskSpec.model_validate(
        {
            "source": {"query": "x", "lookback": "240h", "groupBy": ["user", "cluster"]},
            "horizon": "6h",
            "output": {"horizons": ["1h"]},
            "parallelism": 3,
            "model": {"backtestFolds": 1, "hyperparameters": TINY, **model},
        }
    )


def planned(n: int, prefix: str) -> list[PlannedSeries]:
    return [PlannedSeries({"user": f"{prefix}{i}"}) for i in range(n)]


def test_the_sample_is_proportional_to_the_shards_stable_and_uniform_by_hash() -> None:
    shards = [planned(600, "a"), planned(300, "b"), planned(100, "c")]
    sample = sample_series(shards, 100)
    counts = Counter(p.labels["user"][0] for p in sample)
    assert counts == {"a": 60, "b": 30, "c": 10} and len(sample) == 100
    assert sample_series(shards, 100) == sample  # the same series every run
    # Within a shard, the smallest hashes: unrelated to the names' order.
    picked = {p.labels["user"] for p in sample if p.labels["user"].startswith("c")}
    assert picked == {p.labels["user"] for p in sorted(shards[2], key=lambda p: series_hash(p.labels))[:10]}
    assert sample_series(shards, 5000) == [p for s in shards for p in s]  # fewer series than asked: all
    uneven = sample_series([planned(1, "a"), planned(1, "b"), planned(1, "c")], 2)
    assert len(uneven) == 2


def test_neural_names_and_the_sharded_digest() -> None:
    assert neural_names(spec()) == ["lstm"]  # the default candidates' only network
    assert neural_names(spec(type="ets")) == []
    assert neural_names(spec(type="gru")) == ["gru"]
    assert sharded_digest(spec()).endswith("-sharded")


@pytest.fixture(scope="module")
def networks() -> tuple[Panel, dict[str, object]]:
    panel = seasonal_panel(n_series=4, days=10)
    return panel, train_networks(spec(type="lstm"), panel, 6, ["lstm"])  # type: ignore[return-value]


def test_networks_are_trained_twice_and_unknown_labels_get_the_mean_embedding(
    networks: tuple[Panel, dict[str, object]],
) -> None:
    _, nets = networks
    pair = nets["lstm"]
    for net in (pair.fold, pair.final):  # type: ignore[attr-defined]
        for emb in net.net.embeddings:
            w = emb.weight.detach().numpy()
            np.testing.assert_allclose(w[0], w[1:].mean(axis=0), rtol=1e-5, atol=1e-6)
    assert pair.fold.history and pair.final.history  # type: ignore[attr-defined]


def test_a_pretrained_network_is_kept_by_fit_and_predicts_for_unseen_series(
    networks: tuple[Panel, dict[str, object]],
) -> None:
    panel, nets = networks
    final = nets["lstm"].final  # type: ignore[attr-defined]
    model = pretrained(final)
    assert (model.name, model.neural, model.cheap_refit) == ("lstm", True, False)
    before = {k: v.clone() for k, v in final.net.state_dict().items()}
    other = Panel(start=panel.start, step=panel.step, keys=[{"user": "new", "cluster": "zz"}],
                  values=panel.values[:1] * 3)  # fmt: skip
    model.fit(other, 6)
    assert all((before[k] == v).all() for k, v in final.net.state_dict().items())
    fc = model.predict(other, 6)
    assert fc.point.shape == (1, 6) and np.isfinite(fc.point).all()
    with pytest.raises(ValueError, match="trained for 6 steps ahead"):
        model.fit(other, 12)


def test_the_networks_artifact_loads_as_a_model_and_back_as_networks(
    networks: tuple[Panel, dict[str, object]], tmp_path: Path
) -> None:
    panel, nets = networks
    single = tmp_path / "single"
    NetworksArtifact(spec(type="lstm"), nets, 6).save(single)  # type: ignore[arg-type]
    assert load_model(single).name == "lstm"  # what a ModelVersion verifies
    auto = tmp_path / "auto"
    NetworksArtifact(spec(), nets, 6).save(auto)  # type: ignore[arg-type]
    loaded = AutoModel.load(auto)  # auto's own format: every series on the network
    assert set(loaded._fitted) == {"lstm"} and loaded.predict(panel, 6).model == ["lstm"] * 4
    for where in (single, auto):
        back = load_networks(where)
        assert set(back) == {"lstm"}
        np.testing.assert_allclose(back["lstm"].final.predict(panel, 6).point,
                                   nets["lstm"].final.predict(panel, 6).point)  # type: ignore[attr-defined]  # fmt: skip


def test_auto_in_a_shard_backtests_the_fold_network_and_trains_only_statistical_models(
    networks: tuple[Panel, dict[str, object]], tmp_path: Path
) -> None:
    panel, nets = networks
    s = spec(candidates=["seasonal_naive", "linear", "lstm"])
    maker = SharedNetworks(lambda: nets)  # type: ignore[arg-type,return-value]
    model = maker.task_model(s)
    assert isinstance(model, ShardAutoModel)
    trained: list[str] = []
    model.on_event = lambda kind, data: trained.append(data["model"]) if kind == "refit" else None
    model.fit(panel, 6, progress=lambda report: pytest.fail("a shard never trains a network"))
    assert set(model.results) == {"seasonal_naive", "linear", "lstm"}
    fold_fc = nets["lstm"].fold.predict(panel.head(panel.n_steps - 6), 6)  # type: ignore[attr-defined]
    np.testing.assert_allclose(model.results["lstm"].point[:, 0], fold_fc.point)
    model.save(tmp_path / "m")
    assert isinstance(load_model(tmp_path / "m"), AutoModel)  # a plain auto once saved
    factory = maker.fold_factory(spec(type="lstm"), "lstm", None)
    assert factory().predict(panel, 6).model == ["lstm"] * 4


def test_a_network_the_plan_did_not_train_is_a_clear_error() -> None:
    maker = SharedNetworks(lambda: {})
    with pytest.raises(RuntimeError, match=r"trained no network for \['gru'\].*train run"):
        maker.task_model(spec(type="gru"))
