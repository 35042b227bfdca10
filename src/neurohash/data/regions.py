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
Python's ``hash()`` (salted per process). k-mers holding N never anchor a region. Identical k-mers
tie: of a k-mer that recurs within one span (a homopolymer, a tandem repeat) only the first
occurrence anchors a region, so a 433 kb run of one base (an N run replaced at cleaning) is one
region, not one per base.

**Both strands** (``canonical=True``, the default of ``predict.py``): a k-mer is hashed as the
smaller of its code and its reverse complement's (minimap2's canonical k-mers), every k-mer
position is a candidate, and the window is centred on the anchoring k-mer (moved inside the
sequence at its ends). A sequence and its reverse complement then anchor the same k-mers, and
each region of one is exactly the reverse complement of a region of the other: a read from
either strand of a stored genome is cut where the genome was. A recurring k-mer anchors at the
first and the last occurrence of its run, which reads the same from both ends. Without
``canonical`` (databases built before it) windows start at the anchor, forward strand only.

**Tiles** (``tiled_regions``): an anchor is lost where a mutation hits its k-mer, or where a new
k-mer hashes lower within its span, and a query cut at its own anchors then misses the stored
region (at 10% divergence a 15-mer survives with probability 0.9^15 = 0.2). Windows every
``step`` bases of the query do not depend on its k-mers: every stored region that lies inside
the query is then within ``step / 2`` bases of one of them. A database can be tiled too
(``stride``): anchors a ``span`` apart on average leave longer gaps here and there, so a read of
a window plus ``span`` bases holds a whole anchored region only most of the time (84% of 150 bp
reads at 20 regions of 100 bp per kb), while windows every ``stride`` bases hold one in every
read of a window plus ``stride`` bases, at the same number of regions. Such a database has no
anchors for a query to meet: every query is tiled (``neurohash.index.search.tile_step``).
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


def kmer_codes(bits: np.ndarray, k: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """2-bit codes (uint64) of the ``n`` k-mers starting at 0..n-1, and of their reverse
    complements (the complement of code c is 3 - c, read backwards)."""
    kmers = np.zeros(n, dtype=np.uint64)
    reverse = np.zeros(n, dtype=np.uint64)
    for j in range(k):  # k in-place passes: kmer = kmer * 4 + code
        kmers <<= np.uint64(2)
        kmers |= bits[j : j + n]
        reverse |= (np.uint64(3) - bits[j : j + n]) << np.uint64(2 * j)
    return kmers, reverse


def kmer_hashes(
    seq: str, k: int, n: int, seed: int = 0, canonical: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Hashes (uint64) of the ``n`` k-mers starting at 0..n-1 (MAX_HASH where a k-mer holds N),
    and whether each k-mer is read forward: its code is not above its reverse complement's
    (always True unless ``canonical``, where the smaller of the two codes is hashed)."""
    if not 1 <= k <= 32:
        raise ValueError(f"k must be in 1..32 (a 2-bit k-mer fits 64 bits), got {k}")
    codes = _CODE[np.frombuffer(seq.encode("ascii"), dtype=np.uint8)]
    kmers, reverse = kmer_codes((codes & 3).astype(np.uint64), k, n)
    forward = kmers <= reverse if canonical else np.ones(n, dtype=bool)
    hashes = mix64(np.minimum(kmers, reverse) if canonical else kmers, seed)
    invalid = codes == 255
    if invalid.any():
        count = np.concatenate([[0], np.cumsum(invalid, dtype=np.int64)])
        hashes[count[k : k + n] - count[:n] > 0] = MAX_HASH
    return hashes, forward


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


def ends_of_repeats(
    starts: np.ndarray, hashes: np.ndarray, span: int, last: bool = False
) -> np.ndarray:
    """The anchors (sorted ``starts``) that begin a run of one k-mer (repeats fewer than
    ``span`` bases apart), and with ``last`` also those that end one: a homopolymer would
    otherwise anchor at every base."""
    order = np.lexsort((starts, hashes))
    chained = np.diff(hashes[order]) == 0
    chained &= np.diff(starts[order]) < span
    keep = np.ones(len(order), dtype=bool)
    keep[1:] = ~chained
    if last:
        keep[:-1] |= ~chained
    return np.sort(starts[order[keep]])


def sample_regions(
    seq: str,
    window: int,
    density: float = 1.0,
    k: int = 15,
    seed: int = 0,
    canonical: bool = False,
    stride: int | None = None,
) -> list[tuple[int, int]]:
    """Half-open regions ``(start, end)`` of ``seq`` to embed, sorted by start.

    A sequence of at most ``window`` bases is one region ``(0, len)``; a longer one gets windows of
    exactly ``window`` bases at the local hash minima described in the module docstring, about
    ``density`` per kb (at least one); with ``canonical`` the same on both strands. With a
    ``stride`` it gets windows every ``stride`` bases instead (``tiled_regions``; ``density``,
    ``k``, ``seed`` and ``canonical`` unused).
    """
    if window < 1 or density <= 0:
        raise ValueError(f"need window >= 1 and density > 0, got {window} and {density}")
    if stride is not None:
        return tiled_regions(len(seq), window, stride)
    if len(seq) <= window:
        return [(0, len(seq))]
    if k > window:
        raise ValueError(f"k ({k}) must not exceed the window ({window})")
    if canonical and k % 2 == 0:
        raise ValueError(
            f"canonical anchors need an odd k (got {k}): an even k-mer can be its "
            "own reverse complement, which no strand can tell apart"
        )
    span = max(1, round(1000.0 / density))
    # forward: starts where a full window fits; canonical: every k-mer, its window centred on it
    n = len(seq) - k + 1 if canonical else len(seq) - window + 1
    hashes, forward = kmer_hashes(seq, k, n, seed, canonical)
    starts = np.flatnonzero((hashes == sliding_min(hashes, span | 1)) & (hashes != MAX_HASH))
    starts = ends_of_repeats(starts, hashes[starts], span, last=canonical)
    if len(starts) == 0:  # every k-mer holds N: no content to anchor on, space them evenly
        return [(int(s), int(s) + window) for s in range(0, len(seq) - window + 1, span)]
    if canonical:
        starts = centred_starts(starts, forward[starts], k, window, len(seq))
    return [(int(s), int(s) + window) for s in starts]


def tiled_regions(length: int, window: int, step: int) -> list[tuple[int, int]]:
    """Windows of ``window`` bases every ``step`` bases of a sequence of ``length``, the last one
    flush with its end (one window ``(0, length)`` if it is no longer than ``window``)."""
    if window < 1 or step < 1:
        raise ValueError(f"need window >= 1 and step >= 1, got {window} and {step}")
    if length <= window:
        return [(0, length)]
    starts = list(range(0, length - window + 1, step))
    if starts[-1] != length - window:
        starts.append(length - window)
    return [(s, s + window) for s in starts]


def centred_starts(
    anchors: np.ndarray, forward: np.ndarray, k: int, window: int, length: int
) -> np.ndarray:
    """Starts of the windows centred on the k-mers at ``anchors``, inside the sequence, unique.

    Twice the offset of a centre is ``2 * anchor + k``; when a window cannot be centred exactly
    it is rounded down for a k-mer read forward and up for one read reverse-complemented, so
    that on the other strand (where the k-mer's direction flips) the window is its mirror.
    """
    doubled = 2 * anchors.astype(np.int64) + k - window
    starts = np.where(forward, np.floor_divide(doubled, 2), -np.floor_divide(-doubled, 2))
    return np.unique(np.clip(starts, 0, length - window))
