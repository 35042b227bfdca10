"""k-mer frequency profiles: a cheap, alignment-free way to find a sequence's likely relatives."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from sklearn.neighbors import NearestNeighbors

from neurohash.data.edit_distance import paired_distances
from neurohash.data.tokens import PAD, encode


def kmer_codes(tokens: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """For every start position of (B, L) tokens, the k-mer's index in [0, 4**k) and whether it is
    valid (no padding, no N). Shapes (B, L - k + 1)."""
    codes = tokens - 1  # A,C,G,T -> 0..3; N -> 4 and padding -> -1 are invalid
    windows = codes.unfold(1, k, 1)
    valid = ((windows >= 0) & (windows < 4)).all(-1)
    weights = 4 ** torch.arange(k - 1, -1, -1, device=tokens.device)
    return (windows.clamp(0, 3) * weights).sum(-1), valid


def kmer_frequencies(tokens: torch.Tensor, k: int, segments: int = 1) -> torch.Tensor:
    """(B, segments * 4**k) k-mer frequencies of (B, L) tokens; k-mers with padding or N are
    skipped. With ``segments`` > 1 each sequence is cut into that many equal parts by position
    and every part has its own profile (frequencies still sum to 1 over the whole sequence): for
    sequences that span the same locus (full-length 16S, one amplicon) where a k-mer occurs says
    much about which relatives share it."""
    codes, valid = kmer_codes(tokens, k)
    if segments > 1:
        starts = ((tokens != PAD).sum(1, keepdim=True) - k + 1).clamp_min(1)
        position = torch.arange(codes.shape[1], device=tokens.device)
        part = torch.clamp(position * segments // starts, max=segments - 1)
        codes = part * 4**k + codes
    counts = torch.zeros(len(tokens), segments * 4**k, device=tokens.device)
    counts.scatter_add_(1, codes, valid.float())
    return counts / counts.sum(1, keepdim=True).clamp_min(1)


def kmer_profiles(seqs: Sequence[str], k: int, batch: int = 1024) -> np.ndarray:
    """(N, 4**k) float32 k-mer frequencies of cleaned sequences, computed in batches."""
    out = np.zeros((len(seqs), 4**k), dtype=np.float32)
    for start in range(0, len(seqs), batch):
        chunk = seqs[start : start + batch]
        tokens = encode(chunk, max(k, *(len(s) for s in chunk)))
        out[start : start + len(chunk)] = kmer_frequencies(tokens, k).numpy()
    return out


def nearest_relatives(seqs: Sequence[str], n: int, k: int = 5, candidates: int = 4) -> np.ndarray:
    """For each sequence, the indices of its ``n`` nearest others by exact edit distance.

    Candidates come from k-mer profile cosine neighbours (``candidates * n`` of them) and are
    re-ranked exactly, so the answer is exact within the candidate pool.
    """
    n = min(n, len(seqs) - 1)
    if n <= 0:
        return np.zeros((len(seqs), 0), dtype=np.int64)
    pool = min(len(seqs) - 1, max(n, candidates * n))
    index = NearestNeighbors(n_neighbors=pool, metric="cosine").fit(kmer_profiles(seqs, k))
    cand = index.kneighbors(n_neighbors=pool, return_distance=False)
    rows = np.repeat(np.arange(len(seqs)), pool)
    dist = paired_distances([seqs[i] for i in rows], [seqs[j] for j in cand.ravel()])
    order = np.argsort(dist.reshape(len(seqs), pool), axis=1, kind="stable")[:, :n]
    return np.take_along_axis(cand, order, axis=1)
