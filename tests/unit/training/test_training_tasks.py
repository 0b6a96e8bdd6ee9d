"""The built-in tasks end to end: classifier (synthetic shapes -> ONNX) and forecast (panel -> model dir)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from foresight.timeseries import Panel
from foresight.training import DatasetError, TrainConfig, run_training
from foresight.training.tasks.classifier import SmallCNN, make_shapes_dataset, scan_image_folder
from foresight.training.tasks.forecast import load_panel_npz, save_panel_npz
from training_helpers import json_lines


def test_shapes_generator_writes_labelled_images(tmp_path: Path) -> None:
    root = make_shapes_dataset(tmp_path / "shapes", per_label=3, size=24, seed=1)
    labels, files = scan_image_folder(root)
    assert labels == ["circle", "square", "triangle"]
    assert all(len(v) == 3 for v in files.values())
    again = make_shapes_dataset(tmp_path / "again", per_label=3, size=24, seed=1)
    assert (root / "circle" / "circle-0000.png").read_bytes() == (
        again / "circle" / "circle-0000.png"
    ).read_bytes()


def test_classifier_trains_and_exports_onnx_matching_torch(tmp_path: Path, environ: dict[str, str]) -> None:
    ort = pytest.importorskip("onnxruntime")
    root = make_shapes_dataset(tmp_path / "shapes", per_label=10, size=32, seed=0)
    config = TrainConfig.model_validate(
        {
            "task": "classifier",
            "dataset": {"uri": root.as_uri()},
            "epochs": 2,
            "batchSize": 8,
            "hyperparameters": {"imageSize": "32", "channels": "4", "learningRate": "0.01"},
            "output": {"uri": str(tmp_path / "out")},
        }
    )
    out = io.StringIO()
    code, doc = run_training(config, environ=environ, stdout=out)
    assert code == 0, doc
    assert 0.0 <= doc["metrics"]["accuracy"] <= 1.0
    assert [e["epoch"] for e in json_lines(out.getvalue()) if e["event"] == "epoch"] == [1, 2]
    art = tmp_path / "out"
    assert doc["sha256"] == doc["files"]["model.onnx"]
    assert json.loads((art / "labels.json").read_text()) == ["circle", "square", "triangle"]
    meta = json.loads((art / "model.json").read_text())
    net = SmallCNN(3, channels=meta["channels"])
    net.load_state_dict(torch.load(art / "model.pt", weights_only=True))
    net.eval()
    x = torch.rand(5, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    session = ort.InferenceSession(str(art / "model.onnx"), providers=["CPUExecutionProvider"])
    (onnx_logits,) = session.run(["logits"], {"image": x.numpy()})
    np.testing.assert_allclose(onnx_logits, net(x).detach().numpy(), rtol=1e-4, atol=1e-5)


def test_classifier_needs_two_labels(tmp_path: Path, environ: dict[str, str]) -> None:
    root = make_shapes_dataset(tmp_path / "one", labels=("circle",), per_label=2, size=16)
    config = TrainConfig(task="classifier", dataset={"uri": str(root)})
    code, doc = run_training(config, environ=environ, stdout=io.StringIO())
    assert code == 3 and "at least 2" in doc["message"]


def _panel(n_series: int = 3, n_steps: int = 240) -> Panel:
    rng = np.random.default_rng(0)
    t = np.arange(n_steps)
    values = np.stack([10 + i + np.sin(2 * np.pi * t / 24) + 0.1 * rng.standard_normal(n_steps)
                       for i in range(n_series)])  # fmt: skip
    values[0, 50:53] = np.nan  # gaps must survive the round trip and training
    return Panel(
        start=1_700_000_000 - 1_700_000_000 % 3600,
        step=3600,
        keys=[{"user": f"u{i}", "fs": "home"} for i in range(n_series)],
        values=values,
        covariates={"writes": np.abs(values)},
        capacity=np.full(n_series, 20.0),
    )


def test_panel_npz_round_trip_without_pickle(tmp_path: Path) -> None:
    panel = _panel()
    save_panel_npz(panel, tmp_path / "p.npz")
    back = load_panel_npz(tmp_path / "p.npz")
    assert (back.start, back.step, back.keys) == (panel.start, panel.step, panel.keys)
    np.testing.assert_array_equal(back.values, panel.values)
    np.testing.assert_array_equal(back.covariates["writes"], panel.covariates["writes"])
    assert back.capacity is not None and back.capacity.tolist() == [20.0] * 3
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(DatasetError, match="not a panel"):
        load_panel_npz(tmp_path / "bad.npz")


@pytest.mark.parametrize("model", ["gru"])
def test_forecast_task_trains_a_loadable_forecast_model(
    tmp_path: Path, environ: dict[str, str], model: str
) -> None:
    from foresight.forecast.models import load_model

    panel = _panel()
    save_panel_npz(panel, tmp_path / "panel.npz")
    config = TrainConfig.model_validate(
        {
            "task": "forecast",
            "model": model,
            "dataset": {"uri": (tmp_path / "panel.npz").as_uri()},
            "epochs": 2,
            "batchSize": 64,
            "hyperparameters": {
                "horizon": "6",
                "inputWindow": "24",
                "hiddenSize": "8",
                "layers": "1",
                "windowsPerEpoch": "256",
            },
            "checkpoint": {"uri": str(tmp_path / "ckpt")},
            "output": {"uri": str(tmp_path / "out")},
        }
    )
    code, doc = run_training(config, environ=environ, stdout=io.StringIO())
    assert code == 0, doc
    assert np.isfinite(doc["metrics"]["val_loss"]) and np.isfinite(doc["metrics"]["mae_scaled"])
    loaded = load_model(tmp_path / "out")
    assert loaded.name == model
    forecast = loaded.predict(panel, 6)
    assert forecast.point.shape == (3, 6) and np.isfinite(forecast.point).all()
    assert (forecast.lower <= forecast.point).all() and (forecast.point <= forecast.upper).all()
    # Series levels 10, 11, 12 are learnt (the network predicts offsets from the last value).
    assert np.all(np.abs(forecast.point.mean(axis=1) - np.array([10, 11, 12])) < 3)
    # A second run resumes from the final checkpoint instead of retraining.
    code, again = run_training(config, environ=environ, stdout=io.StringIO())
    assert code == 0 and again["resumedFromEpoch"] == 2


def test_forecast_task_refuses_baselines(tmp_path: Path, environ: dict[str, str]) -> None:
    save_panel_npz(_panel(), tmp_path / "panel.npz")
    config = TrainConfig(task="forecast", model="ets", dataset={"uri": str(tmp_path / "panel.npz")})
    code, doc = run_training(config, environ=environ, stdout=io.StringIO())
    assert code == 2 and "nothing to train" in doc["message"]
