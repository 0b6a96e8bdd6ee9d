"""``classifier``: a small CNN trained on a folder of labelled images (``root/<label>/*.png|jpg``).

Images are loaded with Pillow, converted to RGB, resized to ``imageSize`` (64) and scaled to
[0, 1]; one image in ``valEvery`` (5) per label, by sorted file name, is held out for
validation. The exported artifact is ``model.onnx`` (input ``image`` float32 ``(N, 3, S, S)``,
output ``logits``) for the ClassifierService ``onnx`` backend, plus ``model.pt``, ``labels.json``
and ``model.json`` (preprocessing and architecture) so it can be fine-tuned again.

:func:`make_shapes_dataset` writes a synthetic labelled set (coloured circles, squares and
triangles on noisy backgrounds) for tests and demos.
"""

from __future__ import annotations

import json
import math
import pickle
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import nn
from torch.utils.data import DataLoader, Dataset

from foresight.api.trainingjob import DatasetQuality

from ..errors import DatasetError
from ..quality import QualityReport, image_folder_quality

__all__ = [
    "IMAGE_SUFFIXES",
    "ClassifierTask",
    "ImageFolder",
    "SmallCNN",
    "load_classifier",
    "make_shapes_dataset",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


class SmallCNN(nn.Module):
    """Three conv blocks, global average pooling, a linear head (no BatchNorm: DDP ranks stay equal)."""

    def __init__(self, n_classes: int, channels: int = 16, dropout: float = 0.1) -> None:
        """
        Args:
            n_classes: output logits.
            channels: width of the first conv block (doubled per block).
            dropout: dropout before the head.
        """
        super().__init__()
        c = channels
        self.features = nn.Sequential(
            nn.Conv2d(3, c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c, 2 * c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(2 * c, 4 * c, 3, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )  # fmt: skip
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(4 * c, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, S, S)`` in [0, 1] -> ``(N, n_classes)`` logits."""
        return self.head(self.features(x))


def _load_image(path: Path, size: int) -> torch.Tensor:
    with Image.open(path) as img:
        rgb = img.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
        arr = np.asarray(rgb, dtype=np.float32) / 255.0
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


class ImageFolder(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """``(image, label index)`` pairs, read from disk on access (the set may not fit in memory)."""

    def __init__(self, items: Sequence[tuple[Path, int]], size: int) -> None:
        self.items = list(items)
        self.size = size

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        path, label = self.items[index]
        return _load_image(path, self.size), torch.tensor(label, dtype=torch.long)


def scan_image_folder(root: Path) -> tuple[list[str], dict[str, list[Path]]]:
    """Labels (sorted sub-directory names) and each label's image files (sorted)."""
    if not root.is_dir():
        raise DatasetError(f"classifier dataset {root} is not a directory of <label>/<image> folders")
    files = {
        d.name: sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        for d in sorted(root.iterdir())
        if d.is_dir() and not d.name.startswith(".")
    }
    files = {k: v for k, v in files.items() if v}
    if len(files) < 2:
        raise DatasetError(
            f"classifier dataset {root} has {len(files)} label folder(s) with images ({sorted(files)}); "
            f"it needs at least 2, each holding {'/'.join(IMAGE_SUFFIXES)} files"
        )
    return sorted(files), files


class ClassifierTask:
    """Hyperparameters: ``imageSize`` (64), ``channels`` (16), ``dropout`` (0.1), ``valEvery`` (5)."""

    name = "classifier"

    def __init__(self, root: Path, hparams: Mapping[str, Any]) -> None:
        self.root = root
        self.hparams = dict(hparams)
        self.size = int(self.hparams.get("imageSize", 64))
        self.labels, self._files = scan_image_folder(root)

    def quality_report(self, quality: DatasetQuality | None) -> QualityReport:
        """The image folder's quality report (:mod:`foresight.training.quality`)."""
        return image_folder_quality(self._files, quality)

    def architecture(self, hparams: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "labels": self.labels,
            "channels": int(hparams.get("channels", 16)),
            "imageSize": int(hparams.get("imageSize", 64)),
        }

    def build_model(self, hparams: Mapping[str, Any]) -> nn.Module:
        return SmallCNN(
            len(self.labels), int(hparams.get("channels", 16)), float(hparams.get("dropout", 0.1))
        )

    def datasets(self) -> tuple[Dataset[Any], Dataset[Any]]:
        every = max(2, int(self.hparams.get("valEvery", 5)))
        train: list[tuple[Path, int]] = []
        val: list[tuple[Path, int]] = []
        for idx, label in enumerate(self.labels):
            for i, path in enumerate(self._files[label]):
                (val if i % every == every - 1 else train).append((path, idx))
        return ImageFolder(train, self.size), ImageFolder(val, self.size)

    def loss(self, model: nn.Module, batch: Any) -> torch.Tensor:
        x, y = batch
        return nn.functional.cross_entropy(model(x), y)

    def evaluate(self, model: nn.Module, val: Dataset[Any]) -> dict[str, float]:
        device = next(model.parameters()).device
        total, correct, n = 0.0, 0, 0
        for x, y in DataLoader(val, batch_size=64):
            logits = model(x.to(device))
            y = y.to(device)
            total += float(nn.functional.cross_entropy(logits, y, reduction="sum"))
            correct += int((logits.argmax(1) == y).sum())
            n += len(y)
        if n == 0:
            return {"val_loss": math.nan, "accuracy": math.nan}
        return {"val_loss": total / n, "accuracy": correct / n}

    def export(self, model: nn.Module, directory: Path) -> str:
        torch.save(model.state_dict(), directory / "model.pt")
        (directory / "labels.json").write_text(json.dumps(self.labels, ensure_ascii=False))
        (directory / "model.json").write_text(
            json.dumps(
                {
                    "task": self.name,
                    "architecture": "SmallCNN",
                    **self.architecture(self.hparams),
                    "input": {"name": "image", "layout": "NCHW", "range": [0.0, 1.0], "color": "RGB"},
                    "output": {"name": "logits"},
                },
                ensure_ascii=False,
                indent=2,
            )
        )
        model.eval()
        example = torch.zeros(1, 3, self.size, self.size, device=next(model.parameters()).device)
        # The TorchScript exporter: no onnxscript needed, and a CNN has no control flow to trace.
        torch.onnx.export(
            model,
            (example,),
            str(directory / "model.onnx"),
            dynamo=False,
            input_names=["image"],
            output_names=["logits"],
            dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
        )
        return "model.onnx"


def load_classifier(directory: Path) -> tuple[SmallCNN, list[str], int]:
    """``(model in eval mode, labels, imageSize)`` of a model directory :meth:`ClassifierTask.export`
    wrote (``model.json``, ``model.pt``; the labels from ``model.json``, else ``labels.json``).

    The one reader of this task's artifacts (a distillation's teacher, a ModelVersion's verify
    step). Weights are read with ``weights_only=True``: an artifact is data, never code. Raises
    ``ValueError`` naming the part that is missing or does not fit.
    """
    try:
        desc = json.loads((directory / "model.json").read_text())
        if not isinstance(desc, dict) or desc.get("task") != "classifier":
            task = desc.get("task") if isinstance(desc, dict) else None
            raise ValueError(f"model.json names task {task!r}, not classifier")
        labels = desc.get("labels")
        if labels is None:
            labels = json.loads((directory / "labels.json").read_text())
        model = SmallCNN(len(labels), int(desc.get("channels", 16)), 0.0)
        state = torch.load(directory / "model.pt", map_location="cpu", weights_only=True)
    except (OSError, KeyError, TypeError, RuntimeError, pickle.UnpicklingError) as exc:
        raise ValueError(f"{type(exc).__name__}: {exc}") from exc
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ValueError(f"model.pt does not fit the architecture model.json describes: {exc}") from exc
    return model.eval(), [str(label) for label in labels], int(desc.get("imageSize", 64))


def make_shapes_dataset(
    root: str | Path,
    *,
    labels: Sequence[str] = ("circle", "square", "triangle"),
    per_label: int = 20,
    size: int = 64,
    seed: int = 0,
    fmt: str = "png",
) -> Path:
    """Write ``per_label`` images of each shape under ``root/<label>/``; returns ``root``.

    Shapes get a random colour, size and position on a random-colour noisy background, so the
    classifier must learn the shape, not a colour. Synthetic: for tests and demos only.
    """
    rng = random.Random(seed)
    out = Path(root)
    for label in labels:
        (out / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_label):
            bg = tuple(rng.randrange(0, 256) for _ in range(3))
            img = Image.new("RGB", (size, size), bg)
            px = img.load()
            assert px is not None
            for _ in range(size * size // 20):  # speckle noise
                px[rng.randrange(size), rng.randrange(size)] = tuple(rng.randrange(0, 256) for _ in range(3))
            draw = ImageDraw.Draw(img)
            colour = tuple((c + 128 + rng.randrange(-40, 40)) % 256 for c in bg)
            r = rng.uniform(0.2, 0.35) * size
            cx, cy = rng.uniform(r, size - r), rng.uniform(r, size - r)
            if label == "circle":
                draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
            elif label == "square":
                draw.rectangle((cx - r, cy - r, cx + r, cy + r), fill=colour)
            elif label == "triangle":
                draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=colour)
            else:
                # Unknown label names: a regular polygon with a label-specific number of sides.
                sides = 5 + sum(map(ord, label)) % 4
                pts = [
                    (cx + r * math.cos(2 * math.pi * k / sides), cy + r * math.sin(2 * math.pi * k / sides))
                    for k in range(sides)
                ]
                draw.polygon(pts, fill=colour)
            img.save(out / label / f"{label}-{i:04d}.{fmt}")
    return out
