"""Transformer encoder: self-attention over the input window, read out at the last step."""

from __future__ import annotations

import math

import torch
from torch import nn

from .neural import NeuralModel

__all__ = ["TransformerEncoder", "TransformerModel"]


class TransformerEncoder(nn.Module):
    def __init__(
        self, n_features: int, d_model: int = 64, layers: int = 2, heads: int = 4, max_len: int = 4096
    ) -> None:
        """
        Args:
            n_features: inputs per time step.
            d_model: model width (also the output size); must divide by ``heads``.
            layers: encoder layers.
            heads: attention heads.
            max_len: longest input window (size of the positional table).
        """
        super().__init__()
        self.proj = nn.Linear(n_features, d_model)
        # Fixed sinusoidal positions: nothing to learn, works for any window up to max_len.
        pos = torch.arange(max_len).unsqueeze(1)
        div = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, d_model)
        pe[:, 0::2] = torch.sin(pos * div)
        pe[:, 1::2] = torch.cos(pos * div)
        self.register_buffer("pe", pe, persistent=False)
        layer = nn.TransformerEncoderLayer(d_model, heads, dim_feedforward=2 * d_model, dropout=0.0,
                                           batch_first=True, norm_first=True)  # fmt: skip
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, L, F)`` -> ``(B, d_model)``: the encoded last step (it attends to the whole window)."""
        pe: torch.Tensor = self.pe  # type: ignore[assignment]
        h = self.proj(x) + pe[-x.shape[1] :]
        return self.norm(self.encoder(h)[:, -1, :])


class TransformerModel(NeuralModel):
    name = "transformer"

    def make_encoder(self, n_features: int) -> nn.Module:
        heads = 4 if self.hidden_size % 4 == 0 else 1
        return TransformerEncoder(
            n_features, self.hidden_size, self.layers, heads, max(self.input_window, 16)
        )
