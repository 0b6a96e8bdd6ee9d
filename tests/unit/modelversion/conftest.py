"""A tiny published toy model in a local artifact store, as a TrainingJob leaves it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from foresight.artifacts import LocalArtifactStore
from foresight.training.tasks.toy import ToyRegressionTask


def publish_toy(root: Path, prefix: str = "models/default/toy", hidden: int = 8, seed: int = 0) -> str:
    """Train nothing, just export a seeded toy MLP into ``root/prefix`` with a manifest; return its URI."""
    torch.manual_seed(seed)
    task = ToyRegressionTask({"hidden": hidden}, seed=seed)
    model = task.build_model({"hidden": hidden})
    src = root.parent / f"src-{seed}-{hidden}"
    src.mkdir(parents=True)
    task.export(model, src)
    info = LocalArtifactStore(root).put_dir(src, prefix)
    return info.uri


@pytest.fixture
def store_root(tmp_path: Path) -> Path:
    root = tmp_path / "store"
    root.mkdir()
    return root
