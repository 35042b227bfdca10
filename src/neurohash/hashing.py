"""Binary hash codes of embeddings, whose Hamming distance tracks edit distance.

- ``LearnedHash``: a linear hash head trained with the embedding. Codes are relaxed as
  tanh(beta * head(e)); the relaxed Hamming fraction (1 - <c_i, c_j> / bits) / 2, times a learned
  scale, is fitted to ED / L by MSE, and a quantisation penalty mean((|c| - 1)^2) pulls the relaxed
  codes to +-1 so that taking signs at inference changes little.
- ``SignHash``: SimHash, the untrained baseline: signs of a fixed seeded Gaussian projection of the
  geometry-projected embedding; the Hamming fraction estimates the angle between embeddings, which
  orders neighbours like cosine (and sphere-projected hyperbolic) distance.

Codes are bool tensors (B, bits); ``pack_codes`` turns them into bytes for storage and FAISS.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn


class HashCoder(nn.Module):
    """Interface: ``codes`` (bool, B x bits) and a training ``loss`` (zero when untrained)."""

    bits: int

    def codes(self, emb: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def loss(self, emb_a: torch.Tensor, emb_b: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
        return emb_a.new_zeros(())


class LearnedHash(HashCoder):
    def __init__(
        self,
        embedding_dim: int,
        bits: int = 128,
        weight: float = 1.0,
        quantization: float = 0.1,
        beta: float = 1.0,
    ) -> None:
        super().__init__()
        self.bits, self.weight, self.quantization, self.beta = bits, weight, quantization, beta
        self.head = nn.Linear(embedding_dim, bits)
        self.log_scale = nn.Parameter(torch.tensor(0.0))

    def relaxed(self, emb: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.beta * self.head(emb.float()))

    def codes(self, emb: torch.Tensor) -> torch.Tensor:
        return self.head(emb.float()) > 0

    def loss(self, emb_a: torch.Tensor, emb_b: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
        ca, cb = self.relaxed(emb_a), self.relaxed(emb_b)
        hamming = (1 - (ca * cb).sum(-1) / self.bits) / 2
        fit = torch.mean((self.log_scale.exp() * hamming - true) ** 2)
        quant = torch.mean((ca.abs() - 1) ** 2) + torch.mean((cb.abs() - 1) ** 2)
        return self.weight * fit + self.quantization * quant / 2


class SignHash(HashCoder):
    """SimHash of the embedding; ``project`` is the geometry's map into its space (if any)."""

    def __init__(self, embedding_dim: int, bits: int = 128, seed: int = 0) -> None:
        super().__init__()
        self.bits = bits
        gen = torch.Generator().manual_seed(seed)
        planes = torch.randn(embedding_dim, bits, generator=gen) / math.sqrt(embedding_dim)
        self.register_buffer("planes", planes)

    def codes(self, emb: torch.Tensor) -> torch.Tensor:
        return emb.float() @ self.planes > 0


def pack_codes(codes: torch.Tensor) -> np.ndarray:
    """(B, bits) bool -> (B, bits / 8) uint8, most significant bit first (FAISS binary layout)."""
    return np.packbits(codes.cpu().numpy().astype(np.uint8), axis=1)


def hamming_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) Hamming distances between packed uint8 codes (brute force, for tests and checks)."""
    x = np.bitwise_xor(a[:, None, :], b[None, :, :])
    return np.unpackbits(x, axis=2).sum(axis=2)
