"""Deterministic, content-anchored choice of the regions of a long sequence that get embedded.

A genome of megabases cannot be embedded whole, and embedding every window is wasteful. Regions are
therefore anchored on **local hash minima** (the minimizer idea of winnowing / minimap2): every
candidate start position ``i`` (one where a full window fits) is given a stable 64-bit hash of the
k-mer that starts there, and ``i`` becomes a region start when its hash is the smallest within
``span = 1000 / density`` bases centred on it. The choice depends only on the sequence near
``i``, so two related genomes pick the same anchors wherever they agree locally, whatever their
lengths or the shifts that indels elsewhere cause; and a position is the minimum of its span with
probability ~1 / span, which makes ``density`` the expected number of regions per kb.

The hash is a seeded murmur3 finaliser of the k-mer's 2-bit code (A=0, C=1, G=2, T=3), never
Python's ``hash()`` (salted per process). k-mers holding N never anchor a region. Only the forward
strand is read. Identical k-mers tie: of a k-mer that recurs within one span (a homopolymer,
a tandem repeat) only the first occurrence anchors a region, so a 433 kb run of one base (an N
run replaced at cleaning) is one region, not one per base.
"""

from __future__ import annotations

import numpy as np

MAX_HASH = np.uint64(np.iinfo(np.uint64).max)
_CODE = np.full(256, 255, dtype=np.uint8)
for _i, _base in enumerate("ACGT"):
    _CODE[ord(_base)] = _i
    _CODE[ord(_base.lower())] = _i


def mix64(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """Murmur3's 64-bit finaliser of ``x ^ seed``: a fast, stable, well-spread integer hash."""
    with np.errstate(over="ignore"):
        x = np.asarray(x, dtype=np.uint64) ^ np.uint64(seed & 0xFFFFFFFFFFFFFFFF)
        x = x ^ (x >> np.uint64(33))
        x = x * np.uint64(0xFF51AFD7ED558CCD)
        x = x ^ (x >> np.uint64(33))
        x = x * np.uint64(0xC4CEB9FE1A85EC53)
        return x ^ (x >> np.uint64(33))


def kmer_hashes(seq: str, k: int, n: int, seed: int = 0) -> np.ndarray:
    """Hashes (uint64) of the ``n`` k-mers starting at 0..n-1; MAX_HASH where a k-mer holds N."""
    if not 1 <= k <= 32:
        raise ValueError(f"k must be in 1..32 (a 2-bit k-mer fits 64 bits), got {k}")
    codes = _CODE[np.frombuffer(seq.encode("ascii"), dtype=np.uint8)]
    bits = (codes & 3).astype(np.uint64)
    kmers = np.zeros(n, dtype=np.uint64)
    for j in range(k):  # k in-place passes: kmer = kmer * 4 + code
        kmers <<= np.uint64(2)
        kmers |= bits[j : j + n]
    hashes = mix64(kmers, seed)
    invalid = codes == 255
    if invalid.any():
        count = np.concatenate([[0], np.cumsum(invalid, dtype=np.int64)])
        hashes[count[k : k + n] - count[:n] > 0] = MAX_HASH
    return hashes


def sliding_min(x: np.ndarray, size: int) -> np.ndarray:
    """Minimum of ``x`` over the centred window of odd ``size`` at every position, in O(n).

    Van Herk / Gil-Werman: block-wise prefix and suffix minima; positions past the ends count as
    MAX_HASH, so a minimum near an end is taken over what exists.
    """
    half = size // 2
    width = 2 * half + 1
    n = len(x)
    blocks = -(-(n + 2 * half) // width)
    padded = np.full(blocks * width, MAX_HASH, dtype=np.uint64)
    padded[half : half + n] = x
    grid = padded.reshape(blocks, width)
    prefix = np.minimum.accumulate(grid, axis=1).ravel()
    suffix = np.minimum.accumulate(grid[:, ::-1], axis=1)[:, ::-1].ravel()
    return np.minimum(suffix[:n], prefix[width - 1 : width - 1 + n])


def first_of_repeats(starts: np.ndarray, hashes: np.ndarray, span: int) -> np.ndarray:
    """The anchors (sorted ``starts``) whose k-mer did not anchor fewer than ``span`` bases
    before: repeats of one k-mer anchor once per run, as a homopolymer would otherwise anchor at
    every base."""
    order = np.lexsort((starts, hashes))
    same = np.diff(hashes[order]) == 0
    near = np.diff(starts[order]) < span
    repeat = np.zeros(len(order), dtype=bool)
    repeat[1:] = same & near
    return np.sort(starts[order[~repeat]])


def sample_regions(
    seq: str, window: int, density: float = 1.0, k: int = 15, seed: int = 0
) -> list[tuple[int, int]]:
    """Half-open regions ``(start, end)`` of ``seq`` to embed, sorted by start.

    A sequence of at most ``window`` bases is one region ``(0, len)``; a longer one gets windows of
    exactly ``window`` bases starting at the local hash minima described in the module docstring,
    about ``density`` per kb (at least one).
    """
    if window < 1 or density <= 0:
        raise ValueError(f"need window >= 1 and density > 0, got {window} and {density}")
    if len(seq) <= window:
        return [(0, len(seq))]
    if k > window:
        raise ValueError(f"k ({k}) must not exceed the window ({window})")
    n = len(seq) - window + 1  # starts where a full window fits
    hashes = kmer_hashes(seq, k, n, seed)
    span = max(1, round(1000.0 / density))
    starts = np.flatnonzero((hashes == sliding_min(hashes, span | 1)) & (hashes != MAX_HASH))
    starts = first_of_repeats(starts, hashes[starts], span)
    if len(starts) == 0:  # every k-mer holds N: no content to anchor on, space them evenly
        starts = np.arange(0, n, span)
    return [(int(s), int(s) + window) for s in starts]
