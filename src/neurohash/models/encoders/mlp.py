from __future__ import annotations

import torch
from torch import nn

from neurohash.models.encoders.base import N_SYMBOLS, Encoder, one_hot


def mlp(sizes: list[int], batch_norm: bool = False, dropout: float = 0.0) -> nn.Sequential:
    """Linear -> ReLU -> [BatchNorm] -> [Dropout] between consecutive sizes; last layer linear."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
            if batch_norm:
                layers.append(nn.BatchNorm1d(b))
            if dropout:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class MLPEncoder(Encoder):
    """Feed-forward network on the flattened one-hot sequence."""

    def __init__(
        self,
        embedding_dim: int,
        max_len: int,
        hidden: int = 256,
        layers: int = 2,
        batch_norm: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(embedding_dim, max_len)
        sizes = [max_len * N_SYMBOLS] + [hidden] * (layers - 1) + [embedding_dim]
        self.net = mlp(sizes, batch_norm, dropout)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.net(one_hot(tokens).flatten(1))
