from __future__ import annotations

import torch

from neurohash.data.kmers import kmer_frequencies
from neurohash.models.encoders.base import Encoder


class KmerEncoder(Encoder):
    """The alignment-free baseline: k-mer frequency vectors, nothing to train: 4**k dims, or
    ``segments`` * 4**k with one profile per equal part of the sequence (positional profiles;
    see ``kmer_frequencies``).

    Only the geometry's output scale is fitted (in closed form, least squares, at fit start).
    """

    def __init__(
        self, max_len: int, k: int = 5, segments: int = 1, embedding_dim: int | None = None
    ) -> None:
        super().__init__(segments * 4**k, max_len)
        self.k, self.segments = k, segments

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return kmer_frequencies(tokens, self.k, self.segments)
