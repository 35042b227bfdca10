"""k-mer frequency profiles: a cheap, alignment-free way to find a sequence's likely relatives."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.neighbors import NearestNeighbors

from neurohash.data.edit_distance import paired_distances

_CODE = np.full(256, -1, dtype=np.int64)
for _i, _base in enumerate("ACGT"):
    _CODE[ord(_base)] = _i


def kmer_profiles(seqs: Sequence[str], k: int) -> np.ndarray:
    """(N, 4**k) float32 k-mer frequencies; k-mers containing N are skipped."""
    out = np.zeros((len(seqs), 4**k), dtype=np.float32)
    weights = 4 ** np.arange(k - 1, -1, -1)
    for row, seq in enumerate(seqs):
        codes = _CODE[np.frombuffer(seq.encode("ascii"), dtype=np.uint8)]
        if len(codes) < k:
            continue
        windows = np.lib.stride_tricks.sliding_window_view(codes, k)
        valid = (windows >= 0).all(axis=1)
        counts = np.bincount(windows[valid] @ weights, minlength=4**k)
        out[row] = counts / max(1, counts.sum())
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
