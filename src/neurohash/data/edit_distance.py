"""Exact edit (Levenshtein) distances: the ground truth every model is trained and judged against.

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


def distance_matrix(
    queries: Sequence[str],
    references: Sequence[str] | None = None,
    workers: int = -1,
    block: int = 256,
    progress: bool = False,
) -> np.ndarray:
    """All edit distances between queries and references (default: queries themselves), int32."""
    refs = queries if references is None else references
    out = np.empty((len(queries), len(refs)), dtype=np.int32)
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("exact edit distances", total=len(queries))
        for start in range(0, len(queries), block):
            rows = queries[start : start + block]
            out[start : start + len(rows)] = process.cdist(
                rows, refs, scorer=Levenshtein.distance, dtype=np.int32, workers=workers
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
    all-pairs scan is what a cluster split of thousands of 1.5 kb sequences spends minutes on)."""
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


def nearest_by_edit_distance(seqs: Sequence[str], n: int, block: int = 256) -> np.ndarray:
    """For each sequence, the indices of its ``n`` nearest others by exact edit distance (ties
    broken by index). All pairs are computed, in row blocks, so memory stays O(block x N)."""
    n = min(n, len(seqs) - 1)
    out = np.zeros((len(seqs), max(n, 0)), dtype=np.int64)
    if n <= 0:
        return out
    with Progress(transient=True) as bar:
        task = bar.add_task("nearest relatives (exact)", total=len(seqs))
        for start in range(0, len(seqs), block):
            rows = distance_matrix(seqs[start : start + block], seqs).astype(np.int64)
            rows[np.arange(len(rows)), np.arange(start, start + len(rows))] = np.iinfo(np.int64).max
            out[start : start + len(rows)] = np.argsort(rows, axis=1, kind="stable")[:, :n]
            bar.advance(task, len(rows))
    return out
