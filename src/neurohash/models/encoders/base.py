"""Shared input handling: padding tokens become all-zero one-hot rows and a False mask."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from neurohash.data.tokens import PAD, VOCAB_SIZE

N_SYMBOLS = VOCAB_SIZE - 1  # A, C, G, T, N


def one_hot(tokens: torch.Tensor) -> torch.Tensor:
    """(B, L) tokens -> (B, L, 5) float one-hot with padding rows all zero."""
    return F.one_hot(tokens, VOCAB_SIZE)[..., 1:].float()


class Encoder(nn.Module):
    """An encoder reads sequences padded to ``max_len`` and emits ``embedding_dim`` floats."""

    def __init__(self, embedding_dim: int, max_len: int) -> None:
        super().__init__()
        self.embedding_dim, self.max_len = embedding_dim, max_len

    @staticmethod
    def mask(tokens: torch.Tensor) -> torch.Tensor:
        return tokens != PAD
