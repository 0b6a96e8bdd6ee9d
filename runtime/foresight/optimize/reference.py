"""Reference models for the optimisation toolkit's tests and benchmark.

``ReferenceLSTM`` is the model FACTS.md measured (LSTM 1->64, 2 layers, then Linear 64->6 over
the last step); the GRU and Transformer encoder variants cover the other neural forecasters.
All take ``(batch, window, features)`` and return ``(batch, outputs)``.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ReferenceGRU", "ReferenceLSTM", "ReferenceTransformer", "example_input"]


class ReferenceLSTM(nn.Module):
    def __init__(self, n_features: int = 1, hidden_size: int = 64, layers: int = 2, outputs: int = 6) -> None:
        """
        Args:
            n_features: inputs per time step.
            hidden_size: LSTM width.
            layers: stacked LSTM layers.
            outputs: values predicted per window (horizon steps or quantiles).
        """
        super().__init__()
        self.rnn = nn.LSTM(n_features, hidden_size, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden_size, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return self.head(out[:, -1, :])


class ReferenceGRU(nn.Module):
    def __init__(self, n_features: int = 1, hidden_size: int = 32, layers: int = 2, outputs: int = 6) -> None:
        """Same arguments as :class:`ReferenceLSTM`, with a GRU."""
        super().__init__()
        self.rnn = nn.GRU(n_features, hidden_size, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden_size, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return self.head(out[:, -1, :])


class ReferenceTransformer(nn.Module):
    def __init__(
        self, n_features: int = 1, d_model: int = 32, heads: int = 4, layers: int = 2, outputs: int = 6
    ) -> None:
        """
        Args:
            n_features: inputs per time step.
            d_model: embedding width.
            heads: attention heads.
            layers: encoder layers.
            outputs: values predicted per window.
        """
        super().__init__()
        self.embed = nn.Linear(n_features, d_model)
        layer = nn.TransformerEncoderLayer(d_model, heads, 2 * d_model, dropout=0.0, batch_first=True)
        # enable_nested_tensor only matters with padding masks, which forecasting windows do not use.
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(self.embed(x))[:, -1, :])


def example_input(batch: int = 1, window: int = 48, n_features: int = 1, seed: int = 0) -> torch.Tensor:
    """A deterministic ``(batch, window, n_features)`` input."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, window, n_features, generator=generator)
