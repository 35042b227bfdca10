"""Synthetic relatives of real sequences: random substitutions, insertions and deletions.

The exact distance of a mutant to its source is recomputed afterwards (an insertion next to a
deletion can cancel), so the target is always a true edit distance, never the edit count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BASES = np.frombuffer(b"ACGT", dtype=np.uint8)


@dataclass
class MutationRates:
    """Per-base probabilities of each edit type."""

    substitution: float = 0.02
    insertion: float = 0.005
    deletion: float = 0.005


def mutate(
    seq: str, rates: MutationRates, rng: np.random.Generator, max_len: int | None = None
) -> str:
    """Return a mutated copy of ``seq`` (never longer than ``max_len``, never empty)."""
    src = np.frombuffer(seq.encode("ascii"), dtype=np.uint8).copy()
    n = len(src)
    subs = rng.random(n) < rates.substitution
    # a substitution draws among the 3 other bases
    shift = rng.integers(1, 4, size=int(subs.sum()))
    idx = np.searchsorted(BASES, src[subs])
    idx = np.where(idx < 4, idx, 0)
    src[subs] = BASES[(idx + shift) % 4]
    keep = rng.random(n) >= rates.deletion
    if not keep.any():
        keep[int(rng.integers(0, n))] = True
    ins = rng.random(n) < rates.insertion
    inserted = BASES[rng.integers(0, 4, size=n)]
    # interleave each base with the base inserted after it, then keep what survives
    merged = np.stack([src, inserted], axis=1).ravel()
    mask = np.stack([keep, ins], axis=1).ravel()
    out = merged[mask].tobytes().decode("ascii")
    return out[:max_len] if max_len is not None else out
