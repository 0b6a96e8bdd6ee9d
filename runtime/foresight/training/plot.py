"""A PNG of a training run's curves (matplotlib, headless ``Agg`` backend), published with the model.

One panel for the losses (``loss``, ``val_loss`` and any other ``*loss`` metric, log scale when
they span more than a decade) and one for every other metric the task reports (accuracy, MASE...),
per epoch; a dashed line marks the epoch a resumed run continued from. Pure output: it reads the
history and writes one file.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["plot_training_curves"]


def plot_training_curves(
    history: Sequence[Mapping[str, float]],
    path: str | Path,
    *,
    title: str,
    resumed_from_epoch: int | None = None,
) -> Path:
    """Write the curves of ``history`` (one ``{"epoch": e, metric: value...}`` per epoch) to ``path``.

    Raises ``ValueError`` for an empty history (there is nothing to draw).
    """
    if not history:
        raise ValueError("no epochs in the history: nothing to plot")
    import matplotlib

    matplotlib.use("Agg")  # headless: no display in pods and CI
    import matplotlib.pyplot as plt

    epochs = [float(h["epoch"]) for h in history]
    names = sorted({k for h in history for k in h if k != "epoch"})
    losses = [n for n in names if n.endswith("loss")]
    others = [n for n in names if n not in losses]
    panels = [("loss", losses)] + ([("metric", others)] if others else [])
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 3.2 * len(panels)), squeeze=False, sharex=True)
    for ax, (label, keys) in zip(axes[:, 0], panels, strict=True):
        finite: list[float] = []
        for key in keys:
            values = [float(h.get(key, math.nan)) for h in history]
            finite += [v for v in values if math.isfinite(v)]
            ax.plot(epochs, values, marker="o", ms=3, lw=1.4, label=key)
        if label == "loss" and finite and min(finite) > 0 and max(finite) / min(finite) > 10:
            ax.set_yscale("log")
        if resumed_from_epoch:
            label_text = f"resumed after {resumed_from_epoch}"
            ax.axvline(resumed_from_epoch, color="grey", ls="--", lw=1, label=label_text)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[-1, 0].set_xlabel("epoch")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out
