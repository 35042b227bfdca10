"""Exact edit (Levenshtein) distances: the ground truth every model is trained and judged against.

A read shorter than a stored region is judged by its semi-global (infix) distance instead: the
read against its best-matching substring of the region, free gaps at the region's ends (edlib's
``HW`` mode); the global distance of a 150 bp read to a 1,600 bp region is at least 1,450
whatever it matches.

rapidfuzz's bit-parallel Levenshtein runs in C across all cores (``workers=-1``); no Python loop
touches a pair. Full matrices are computed in row blocks (with a progress bar) and cached on disk
keyed by the content hash of the sequences, so a rerun on the same data skips the work.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import edlib
import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein
from rich.progress import Progress

log = logging.getLogger(__name__)


def paired_distances(a: Sequence[str], b: Sequence[str], workers: int = -1) -> np.ndarray:
    """Edit distance of a[i] to b[i] for every i, as int32."""
    if len(a) != len(b):
        raise ValueError(f"paired_distances needs equal lengths, got {len(a)} and {len(b)}")
    if not a:
        return np.zeros(0, dtype=np.int32)
    return process.cpdist(a, b, scorer=Levenshtein.distance, dtype=np.int32, workers=workers)


def infix_distances(reads: Sequence[str], regions: Sequence[str]) -> np.ndarray:
    """Semi-global edit distance of reads[i] inside regions[i] for every i, as int32."""
    if len(reads) != len(regions):
        raise ValueError(
            f"infix_distances needs equal lengths, got {len(reads)} and {len(regions)}"
        )
    return np.fromiter(
        (
            edlib.align(r, t, mode="HW", task="distance")["editDistance"]
            for r, t in zip(reads, regions, strict=True)
        ),
        dtype=np.int32,
        count=len(reads),
    )


def distance_matrix(
    queries: Sequence[str],
    references: Sequence[str] | None = None,
    workers: int = -1,
    block: int = 256,
    progress: bool = False,
    cutoff: int | None = None,
) -> np.ndarray:
    """All edit distances between queries and references (default: queries themselves), int32.

    With ``cutoff``, a distance above it comes back as ``cutoff + 1``; rapidfuzz then skips pairs
    whose lengths differ by more and aligns the rest within a narrow band, far faster."""
    refs = queries if references is None else references
    out = np.empty((len(queries), len(refs)), dtype=np.int32)
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("exact edit distances", total=len(queries))
        for start in range(0, len(queries), block):
            rows = queries[start : start + block]
            out[start : start + len(rows)] = process.cdist(
                rows,
                refs,
                scorer=Levenshtein.distance,
                dtype=np.int32,
                workers=workers,
                score_cutoff=cutoff,
            )
            bar.advance(task, len(rows))
    return out


def content_hash(seqs: Sequence[str]) -> str:
    """A stable fingerprint of an ordered list of sequences."""
    digest = hashlib.sha256()
    for seq in seqs:
        digest.update(seq.encode())
        digest.update(b"\n")
    return digest.hexdigest()[:24]


def cached_distance_matrix(seqs: Sequence[str], cache_dir: str | os.PathLike | None) -> np.ndarray:
    """The square edit-distance matrix of ``seqs``, read from or written atomically to the cache."""
    name = f"edit_distance_{content_hash(seqs)}"
    return cached_array(cache_dir, name, lambda: distance_matrix(seqs, progress=True)).astype(
        np.int32
    )


def cached_nearest(seqs: Sequence[str], n: int, cache_dir: str | os.PathLike | None) -> np.ndarray:
    """``nearest_by_edit_distance(seqs, n)``, read from or written atomically to the cache (its
    all-pairs scan is the slow part of a cluster split of thousands of 1.5 kb sequences)."""
    return cached_array(
        cache_dir, f"nearest{n}_{content_hash(seqs)}", lambda: nearest_by_edit_distance(seqs, n)
    ).astype(np.int64)


def cached_array(
    cache_dir: str | os.PathLike | None, name: str, compute: Callable[[], np.ndarray]
) -> np.ndarray:
    """``compute()``, kept as ``cache_dir/name.npy`` (as uint16 when its values fit)."""
    if cache_dir is None:
        return compute()
    path = Path(cache_dir) / f"{name}.npy"
    if path.exists():
        log.info("read from cache %s", path)
        return np.load(path)
    array = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}.npy")
    dtype = np.uint16 if array.size and array.min() >= 0 and array.max() < 2**16 else array.dtype
    np.save(tmp, array.astype(dtype))
    os.replace(tmp, path)
    return array


def nearest_by_edit_distance(
    seqs: Sequence[str], n: int, block: int = 256, first_cutoff: int | None = 32
) -> np.ndarray:
    """For each sequence, the indices of its ``n`` nearest others by exact edit distance (ties
    broken by index), in row blocks, so memory stays O(block x N).

    Aligning two ~2 kb influenza segments in full takes hundreds of microseconds, and a cluster
    split needs all pairs; but the nearest few are usually close. So a block is scanned with a
    small ``cutoff`` first (``first_cutoff``, or more where the previous block needed more), and
    only its rows with fewer than ``n`` others within it are scanned again at twice the cutoff
    (the last time with none). Every distance above the cutoff reads ``cutoff + 1``, larger than
    all those within it, so a row that has ``n`` within it gets the same ``n`` as a full scan
    (``first_cutoff=None``)."""
    n = min(n, len(seqs) - 1)
    out = np.zeros((len(seqs), max(n, 0)), dtype=np.int64)
    if n <= 0:
        return out
    longest = max(map(len, seqs))  # no edit distance exceeds it: a cutoff there is none
    first_cutoff = cutoff = longest if first_cutoff is None else first_cutoff
    with Progress(transient=True) as bar:
        task = bar.add_task("nearest relatives (exact)", total=len(seqs))
        for start in range(0, len(seqs), block):
            rows = np.arange(start, min(start + block, len(seqs)))
            out[rows], typical = _nearest_rows(seqs, rows, n, cutoff, longest)
            # Rows of one data set need similar cutoffs, and a pass that finishes few rows is
            # wasted: the next block starts where this one's median row finished (half that
            # when it finished at once, so the start can come down again).
            cutoff = max(first_cutoff, typical // 2 if typical == cutoff else typical)
            bar.advance(task, len(rows))
    return out


def _nearest_rows(
    seqs: Sequence[str], rows: np.ndarray, n: int, cutoff: int, longest: int
) -> tuple[np.ndarray, int]:
    """``nearest_by_edit_distance`` of ``seqs[rows]``, widening the cutoff until every row has
    ``n`` others within it (no edit distance exceeds the longest sequence); also the cutoff at
    which the median row was done."""
    nearest = np.empty((len(rows), n), dtype=np.int64)
    needed = np.empty(len(rows), dtype=np.int64)
    todo = np.arange(len(rows))
    while todo.size:
        limit = cutoff if cutoff < longest else None
        queries = [seqs[i] for i in rows[todo]]
        dist = distance_matrix(queries, seqs, cutoff=limit).astype(np.int64)
        dist[np.arange(len(todo)), rows[todo]] = np.iinfo(np.int64).max  # not its own relative
        done = (dist <= cutoff).sum(axis=1) >= n if limit is not None else np.ones(len(todo), bool)
        nearest[todo[done]] = np.argsort(dist[done], axis=1, kind="stable")[:, :n]
        needed[todo[done]] = cutoff
        todo, cutoff = todo[~done], cutoff * 2
    return nearest, int(np.median(needed))
