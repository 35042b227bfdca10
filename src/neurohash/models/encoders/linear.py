from __future__ import annotations

import torch
from torch import nn

from neurohash.models.encoders.base import N_SYMBOLS, Encoder, one_hot


class LinearEncoder(Encoder):
    """NeuroSEED's linear baseline: one linear map of the flattened one-hot sequence."""

    def __init__(self, embedding_dim: int, max_len: int) -> None:
        super().__init__(embedding_dim, max_len)
        self.proj = nn.Linear(max_len * N_SYMBOLS, embedding_dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.proj(one_hot(tokens).flatten(1))
