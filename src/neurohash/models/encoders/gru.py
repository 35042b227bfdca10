from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from neurohash.models.encoders.base import N_SYMBOLS, Encoder, one_hot


class GRUEncoder(Encoder):
    """Bidirectional GRU over packed sequences: padding is never read (unlike NeuroSEED, whose
    GRU returned the state at the last padded step); final states of both directions -> linear."""

    def __init__(
        self, embedding_dim: int, max_len: int, hidden: int = 128, layers: int = 1
    ) -> None:
        super().__init__(embedding_dim, max_len)
        self.gru = nn.GRU(
            N_SYMBOLS, hidden, num_layers=layers, batch_first=True, bidirectional=True
        )
        self.readout = nn.Linear(2 * hidden, embedding_dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        lengths = self.mask(tokens).sum(1).clamp_min(1).cpu()
        packed = pack_padded_sequence(
            one_hot(tokens), lengths, batch_first=True, enforce_sorted=False
        )
        _, hidden = self.gru(packed)
        return self.readout(torch.cat([hidden[-2], hidden[-1]], dim=-1))
