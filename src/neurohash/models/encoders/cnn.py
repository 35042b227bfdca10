from __future__ import annotations

import torch
from torch import nn

from neurohash.models.encoders.base import N_SYMBOLS, Encoder, one_hot
from neurohash.models.encoders.mlp import mlp


class CNNEncoder(Encoder):
    """NeuroSEED's CNN: per-base linear, then [Conv1d, BatchNorm, ReLU, AvgPool(2)] x layers,
    flatten and an MLP readout. Padding positions are zeroed after every block."""

    def __init__(
        self,
        embedding_dim: int,
        max_len: int,
        channels: int = 32,
        layers: int = 4,
        kernel_size: int = 5,
        readout_layers: int = 1,
        readout_hidden: int = 256,
    ) -> None:
        super().__init__(embedding_dim, max_len)
        self.embed = nn.Linear(N_SYMBOLS, channels)
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.Conv1d(channels, channels, kernel_size, padding=kernel_size // 2),
                nn.BatchNorm1d(channels),
                nn.ReLU(),
            )
            for _ in range(layers)
        )
        self.pool = nn.AvgPool1d(2, ceil_mode=True)
        length = max_len
        for _ in range(layers):
            length = -(-length // 2)
        sizes = [channels * length] + [readout_hidden] * (readout_layers - 1) + [embedding_dim]
        self.readout = mlp(sizes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        mask = self.mask(tokens).float()[:, None, :]
        x = self.embed(one_hot(tokens)).transpose(1, 2) * mask
        for block in self.blocks:
            x = self.pool(block(x) * mask)
            mask = (self.pool(mask) > 0).float()
        return self.readout(x.flatten(1))
