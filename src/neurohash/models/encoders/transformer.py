from __future__ import annotations

import math

import torch
from torch import nn

from neurohash.data.kmers import kmer_codes
from neurohash.models.encoders.base import Encoder


def band_mask(tokens: int, window: int) -> torch.Tensor:
    """Boolean (T, T) mask, True where attention is *blocked*: |i - j| > window."""
    pos = torch.arange(tokens)
    return (pos[:, None] - pos[None, :]).abs() > window


class TransformerEncoder(Encoder):
    """Patch transformer (NeuroSEED's segment transformer, made length-aware).

    The sequence is cut into ``n_patches`` patches of ``patch_size`` = ceil(max_len / n_patches)
    bases; a patch token is a linear map of the patch's ``kmer``-mer profile (unit length, plus a
    learned position). Unlike a linear embedding of the patch's bases, which changes completely
    when an indel shifts them, k-mer composition barely moves, and the cost of the layers does not
    grow with the sequence length; pre-norm attention layers mix them, globally or within a band of
    ``window`` patches (``attention: local``). Patches made only of padding are masked out of
    attention. The readout projects each patch to ``readout_dim`` floats and flattens them
    (padding patches zeroed), which keeps positional information that mean pooling would lose.
    """

    def __init__(
        self,
        embedding_dim: int,
        max_len: int,
        n_patches: int = 32,
        d_model: int = 128,
        layers: int = 4,
        heads: int = 4,
        ff_mult: int = 4,
        dropout: float = 0.0,
        attention: str = "global",
        window: int = 4,
        readout_dim: int = 16,
        kmer: int = 5,
    ) -> None:
        super().__init__(embedding_dim, max_len)
        if attention not in ("global", "local"):
            raise ValueError(f"attention must be 'global' or 'local', got {attention!r}")
        self.patch_size = math.ceil(max_len / n_patches)
        self.n_patches = math.ceil(max_len / self.patch_size)
        self.kmer = kmer
        # the normalised profile is sparse and small; LayerNorm puts the token on the same scale
        # as the positions, which would otherwise drown it at initialisation
        self.patch = nn.Sequential(nn.Linear(4**kmer, d_model), nn.LayerNorm(d_model))
        self.position = nn.Parameter(torch.randn(self.n_patches, d_model) * 0.02)
        layer = nn.TransformerEncoderLayer(
            d_model,
            heads,
            ff_mult * d_model,
            dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.layers = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.token_readout = nn.Linear(d_model, readout_dim)
        self.readout = nn.Linear(self.n_patches * readout_dim, embedding_dim)
        self.heads = heads
        blocked = band_mask(self.n_patches, window) if attention == "local" else None
        self.register_buffer("band", blocked, persistent=False)

    def attention_mask(self, keep: torch.Tensor) -> torch.Tensor:
        """(B * heads, T, T) mask, True = blocked: padding keys, keys outside the band (local
        attention), but never a token's own position, so no row is fully blocked (which would
        give NaN for padding patches and for short sequences under a narrow band)."""
        blocked = ~keep[:, None, :]
        if self.band is not None:
            blocked = blocked | self.band
        blocked = blocked & ~torch.eye(self.n_patches, dtype=torch.bool, device=keep.device)
        return blocked.repeat_interleave(self.heads, 0)

    def needs_mask(self, keep: torch.Tensor) -> bool:
        """Whether any key is blocked. A batch of full-length sequences under global attention
        blocks none, and passing no mask lets PyTorch pick its fused kernels (FlashAttention on
        GPU), which any explicit mask rules out."""
        return self.band is not None or not bool(keep.all())

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        batch, length = tokens.shape
        pad = self.n_patches * self.patch_size - length
        tokens = nn.functional.pad(tokens, (0, pad + self.kmer - 1))
        codes, valid = kmer_codes(tokens, self.kmer)
        patch = torch.arange(codes.shape[1], device=tokens.device) // self.patch_size
        counts = torch.zeros(batch, (self.n_patches + 1) * 4**self.kmer, device=tokens.device)
        counts.scatter_add_(1, patch * 4**self.kmer + codes, valid.float())
        counts = counts.view(batch, self.n_patches + 1, -1)[:, : self.n_patches]
        keep = counts.sum(-1) > 0
        h = self.patch(nn.functional.normalize(counts, dim=-1)) + self.position
        h = self.layers(h, mask=self.attention_mask(keep) if self.needs_mask(keep) else None)
        h = self.token_readout(self.norm(h)) * keep[..., None]
        return self.readout(h.flatten(1))
