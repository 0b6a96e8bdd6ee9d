"""LSTM encoder: the last hidden state of a stacked LSTM summarises the input window."""

from __future__ import annotations

import torch
from torch import nn

from .neural import NeuralModel

__all__ = ["LSTMEncoder", "LSTMModel"]


class LSTMEncoder(nn.Module):
    def __init__(self, n_features: int, hidden_size: int = 64, layers: int = 2) -> None:
        """
        Args:
            n_features: inputs per time step.
            hidden_size: LSTM width (also the output size).
            layers: stacked LSTM layers.
        """
        super().__init__()
        self.rnn = nn.LSTM(n_features, hidden_size, num_layers=layers, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, L, F)`` -> ``(B, hidden_size)``: the top layer's output at the last step."""
        out, _ = self.rnn(x)
        return out[:, -1, :]


class LSTMModel(NeuralModel):
    name = "lstm"

    def make_encoder(self, n_features: int) -> nn.Module:
        return LSTMEncoder(n_features, self.hidden_size, self.layers)
