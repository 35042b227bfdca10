from __future__ import annotations

import torch

from neurohash.models.encoders.base import Encoder


def kmer_codes(tokens: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """For every start position, the k-mer's index in [0, 4**k) and whether it is valid
    (no padding, no N). Shapes (B, L - k + 1)."""
    codes = tokens - 1  # A,C,G,T -> 0..3; N -> 4 and padding -> -1 are invalid
    windows = codes.unfold(1, k, 1)
    valid = ((windows >= 0) & (windows < 4)).all(-1)
    weights = 4 ** torch.arange(k - 1, -1, -1, device=tokens.device)
    return (windows.clamp(0, 3) * weights).sum(-1), valid


class KmerEncoder(Encoder):
    """The alignment-free baseline: k-mer frequency vectors (4**k dims), nothing to train.

    Only the geometry's output scale is fitted (in closed form, least squares, at fit start).
    """

    def __init__(self, max_len: int, k: int = 5, embedding_dim: int | None = None) -> None:
        super().__init__(4**k, max_len)
        self.k = k

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        codes, valid = kmer_codes(tokens, self.k)
        counts = torch.zeros(len(tokens), 4**self.k, device=tokens.device)
        counts.scatter_add_(1, codes, valid.float())
        return counts / counts.sum(1, keepdim=True).clamp_min(1)
