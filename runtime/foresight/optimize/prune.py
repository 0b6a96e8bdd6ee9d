"""Global magnitude (L1) pruning of Linear / LSTM / GRU / attention weights, made permanent.

Unstructured zeros do not make dense CPU kernels faster by themselves; what pruning buys is a
smaller compressed artifact and a model to fine-tune or sparsify further. The report says the
sparsity reached so nobody mistakes it for a speed-up.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.utils import prune

__all__ = ["PruneResult", "prunable_parameters", "prune_model"]


@dataclass(frozen=True)
class PruneResult:
    requested_sparsity: float
    #: Zeros / elements over the pruned weights (after ``prune.remove``).
    sparsity: float
    #: Zeros / elements over every parameter of the model (biases included).
    model_sparsity: float
    pruned_parameters: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def prunable_parameters(model: nn.Module) -> list[tuple[nn.Module, str, str]]:
    """(module, parameter name, qualified name) of every weight matrix that pruning considers."""
    found: list[tuple[nn.Module, str, str]] = []
    for module_name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            names = ["weight"]
        elif isinstance(module, nn.LSTM | nn.GRU | nn.RNN):
            names = [n for n, _ in module.named_parameters(recurse=False) if n.startswith("weight_")]
        elif isinstance(module, nn.MultiheadAttention) and module.in_proj_weight is not None:
            names = ["in_proj_weight"]  # out_proj is an nn.Linear, found above
        else:
            continue
        found.extend((module, n, f"{module_name}.{n}" if module_name else n) for n in names)
    return found


def prune_model(model: nn.Module, sparsity: float) -> PruneResult:
    """Zero the ``sparsity`` fraction of smallest-magnitude weights across the model, in place."""
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(
            f"prune sparsity must be in [0, 1), got {sparsity}: e.g. 0.5 zeroes half the weights"
        )
    targets = prunable_parameters(model)
    if not targets:
        raise ValueError(f"{type(model).__name__} has no Linear / LSTM / GRU / attention weights to prune")
    prune.global_unstructured(
        [(module, name) for module, name, _ in targets], pruning_method=prune.L1Unstructured, amount=sparsity
    )
    for module, name, _ in targets:
        prune.remove(module, name)  # bake the mask into the weight, drop weight_orig / weight_mask
    if any(isinstance(m, nn.LSTM | nn.GRU | nn.RNN) for m, _, _ in targets):
        for module, _, _ in targets:
            if isinstance(module, nn.LSTM | nn.GRU | nn.RNN):
                module.flatten_parameters()
    with torch.no_grad():
        zeros = sum(int((getattr(m, n) == 0).sum()) for m, n, _ in targets)
        total = sum(getattr(m, n).numel() for m, n, _ in targets)
        all_zeros = sum(int((p == 0).sum()) for p in model.parameters())
        all_total = sum(p.numel() for p in model.parameters())
    return PruneResult(
        requested_sparsity=sparsity,
        sparsity=zeros / total,
        model_sparsity=all_zeros / all_total,
        pruned_parameters=[q for _, _, q in targets],
    )
