"""Loading a model artifact for verification and optimisation, whatever produced it.

A ModelVersion's artifact is either a model *directory* (what TrainingJobs and ForecastTasks
publish: weights plus a small JSON description) or a single ONNX file. :func:`load_artifact`
recognises the formats the runtime writes and returns the module together with an example input
of the right shapes, which is what "one inference runs" and the ONNX export both need:

- ``model.json`` with ``task: toy`` or ``task: classifier`` (:mod:`foresight.training.tasks`);
- ``config.json`` with a neural forecaster ``name`` (``lstm``, ``gru``, ``transformer``): the
  forecast package's ``save()`` format; the module is its ``QuantileNet``;
- ``config.json`` of an ``auto`` model (per-series picks): its trained sub-models, each loaded as
  above, the first (by name) is the one that runs; an ``auto`` model that picked only baselines has
  no network and is refused;
- a ForecastTask's model directory: ``run.json`` (what the run trained on) next to ``model/``,
  which is one of the two above;
- a ``.onnx`` file (or a directory holding only ``model.onnx``): run with ONNX Runtime.

Weights are always read with ``weights_only=True``: an artifact is data, never code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from foresight.forecast.models import is_neural, neural_model_names

__all__ = ["LoadError", "LoadedModel", "load_artifact", "run_once"]


class LoadError(Exception):
    """The artifact is not a model this runtime can load; the message says which formats it reads."""


@dataclass
class LoadedModel:
    """A loaded model: a torch module with an example input, or an ONNX file."""

    format: str
    """``toy``, ``classifier``, ``forecast-<name>`` or ``onnx``."""
    module: nn.Module | None
    example: tuple[torch.Tensor, ...]
    onnx_path: Path | None = None


def _load_state(module: nn.Module, weights: Path) -> nn.Module:
    if not weights.is_file():
        raise LoadError(f"{weights.name} is missing from the model directory")
    state = torch.load(weights, map_location="cpu", weights_only=True)
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        raise LoadError(f"{weights.name} does not fit the architecture its JSON describes: {exc}") from exc
    return module.eval()


def _task_model(directory: Path, desc: dict[str, Any]) -> LoadedModel:
    task = desc.get("task")
    if task == "toy":
        features, hidden = int(desc["features"]), int(desc["hidden"])
        module: nn.Module = nn.Sequential(
            nn.Linear(features, hidden), nn.ReLU(), nn.Dropout(0.0), nn.Linear(hidden, 1)
        )
        example = (torch.randn(4, features, generator=torch.Generator().manual_seed(0)),)
    elif task == "classifier":
        from foresight.training.tasks.classifier import load_classifier

        try:
            classifier, _, size = load_classifier(directory)
        except ValueError as exc:
            raise LoadError(f"the classifier model directory does not load: {exc}") from exc
        example = (torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(0)),)
        return LoadedModel(format="classifier", module=classifier, example=example)
    else:
        raise LoadError(f"model.json names task {task!r}; this runtime loads tasks toy and classifier")
    return LoadedModel(format=str(task), module=_load_state(module, directory / "model.pt"), example=example)


def _forecaster(directory: Path, config: dict[str, Any]) -> LoadedModel:
    from foresight.forecast.models import load_model

    name = str(config.get("name"))
    model: Any = load_model(directory)
    net = getattr(model, "net", None)
    if not isinstance(net, nn.Module):
        raise LoadError(f"forecast model {name!r} has no network to run")
    net = net.to("cpu").eval()
    window = int(config["params"]["input_window"])
    n_features = int(config["n_features"])
    horizon = int(config["horizon"])
    n_future = int(model.calendar.n_features)
    n_labels = len(model.vocab.cardinalities)
    g = torch.Generator().manual_seed(0)
    example = (
        torch.randn(2, window, n_features, generator=g),
        torch.zeros(2, n_labels, dtype=torch.long),
        torch.randn(2, horizon, n_future, generator=g),
    )
    return LoadedModel(format=f"forecast-{name}", module=net, example=example)


def _auto(directory: Path, config: dict[str, Any]) -> LoadedModel:
    trained = sorted(name for name, info in dict(config["fitted"]).items() if info.get("saved"))
    if not trained:
        raise LoadError(
            "this auto model picked only baselines (fitted: "
            f"{sorted(config['fitted'])}); they have no trained network to verify"
        )
    # Every trained pick must load (predictions use all of them); the first one runs.
    loaded = [
        _forecaster(directory / "models" / name, _config(directory / "models" / name)) for name in trained
    ]
    first = loaded[0]
    return LoadedModel(
        format=f"forecast-auto-{'+'.join(trained)}", module=first.module, example=first.example
    )


def _config(directory: Path) -> dict[str, Any]:
    if not (directory / "config.json").is_file():
        raise LoadError(f"{directory.name}/config.json is missing from the model directory")
    doc = json.loads((directory / "config.json").read_text())
    if not isinstance(doc, dict):
        raise LoadError(f"{directory.name}/config.json is not a JSON object")
    return doc


def _onnx(path: Path) -> LoadedModel:
    from foresight.optimize import make_session

    try:
        session = make_session(path)
    except Exception as exc:  # ORT raises its own types (InvalidGraph, Fail...)
        raise LoadError(f"ONNX Runtime cannot load {path.name}: {exc}") from exc
    example = []
    for meta in session.get_inputs():
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in meta.shape]
        if "int" in meta.type:
            example.append(torch.zeros(shape, dtype=torch.long))
        else:
            example.append(torch.randn(shape, generator=torch.Generator().manual_seed(0)))
    return LoadedModel(format="onnx", module=None, example=tuple(example), onnx_path=path)


def load_artifact(path: Path) -> LoadedModel:
    """Load the model at ``path`` (a downloaded directory or file); :class:`LoadError` if it cannot."""
    if path.is_file():
        if path.suffix == ".onnx":
            return _onnx(path)
        raise LoadError(
            f"{path.name} is a single file that is not .onnx; a torch model is a directory with "
            "model.pt and model.json (or config.json), as TrainingJobs publish it"
        )
    if (path / "run.json").is_file() and (path / "model").is_dir():
        return load_artifact(path / "model")  # a ForecastTask's model directory
    try:
        if (path / "model.json").is_file():
            return _task_model(path, json.loads((path / "model.json").read_text()))
        if (path / "config.json").is_file():
            config = json.loads((path / "config.json").read_text())
            name = config.get("name")
            if isinstance(name, str) and is_neural(name):
                return _forecaster(path, config)
            if name == "auto":
                return _auto(path, config)
            raise LoadError(
                f"config.json names model {config.get('name')!r}; ModelVersions verify the neural "
                f"forecasters {', '.join(neural_model_names())} and auto models that picked one"
            )
    except (KeyError, TypeError, ValueError) as exc:
        raise LoadError(
            f"the model description is incomplete or malformed: {type(exc).__name__}: {exc}"
        ) from exc
    if (path / "model.onnx").is_file():
        return _onnx(path / "model.onnx")
    found = sorted(p.name for p in path.iterdir())
    raise LoadError(
        f"no model.json, config.json or model.onnx in the model directory (it holds {found}); "
        "point artifact.uri at a directory a TrainingJob or ForecastTask published"
    )


def run_once(model: LoadedModel) -> list[int]:
    """One inference on the example input; returns the output shape, :class:`LoadError` if it fails.

    Non-finite outputs count as a failure: a model that answers NaN would pass every other check.
    """
    try:
        if model.module is not None:
            with torch.inference_mode():
                out = model.module(*model.example)
            first = out[0] if isinstance(out, tuple | list) else out
            array = first.detach().cpu().numpy()
        else:
            from foresight.optimize import make_session

            assert model.onnx_path is not None
            session = make_session(model.onnx_path)
            feed = {m.name: t.numpy() for m, t in zip(session.get_inputs(), model.example, strict=True)}
            array = np.asarray(session.run(None, feed)[0])
    except Exception as exc:  # any failure of the forward pass is the artifact's
        raise LoadError(f"the model loaded but one inference failed: {type(exc).__name__}: {exc}") from exc
    if not np.isfinite(array).all():
        raise LoadError("the model loaded but its output on a test input has NaN or infinite values")
    return list(array.shape)
