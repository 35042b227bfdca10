"""neurohash.data.edit_distance: exact Levenshtein distances, checked against edlib."""

from __future__ import annotations

from pathlib import Path

import edlib
import numpy as np
import pytest

from neurohash.data import edit_distance
from neurohash.data.edit_distance import (
    cached_distance_matrix,
    content_hash,
    distance_matrix,
    infix_distances,
    paired_distances,
)
from neurohash.data.fasta import SequenceRecord


def edlib_distance(a: str, b: str) -> int:
    return edlib.align(a, b, task="distance")["editDistance"]


def edlib_matrix(queries: list[str], refs: list[str]) -> np.ndarray:
    return np.array([[edlib_distance(q, r) for r in refs] for q in queries], dtype=np.int64)


def random_seqs(rng: np.random.Generator, n: int, lo: int, hi: int) -> list[str]:
    return ["".join(rng.choice(list("ACGT"), size=int(rng.integers(lo, hi + 1)))) for _ in range(n)]


EDGE_PAIRS = [
    ("", ""),
    ("", "ACGT"),
    ("ACGT", ""),
    ("A", "A"),
    ("A", "C"),
    ("A", ""),
    ("ACGTACGT", "ACGTACGT"),
    ("ACGT", "TGCA"),
    ("AAAA", "TTTT"),
    ("A", "ACGT" * 100),
    ("G" * 300, "GA"),
    ("ACGTN", "ACGTA"),
    ("ACGTACGTTT", "CGTACGTTTA"),  # shift: one deletion + one insertion
]


def test_paired_edge_cases() -> None:
    a, b = zip(*EDGE_PAIRS, strict=True)
    out = paired_distances(list(a), list(b))
    assert out.dtype == np.int32
    assert out.tolist() == [edlib_distance(x, y) for x, y in EDGE_PAIRS]
    assert out.tolist()[:6] == [0, 4, 4, 0, 1, 1]


def test_paired_random_vs_edlib() -> None:
    rng = np.random.default_rng(0)
    a = random_seqs(rng, 300, 0, 120)
    b = random_seqs(rng, 300, 0, 120)
    out = paired_distances(a, b)
    assert out.tolist() == [edlib_distance(x, y) for x, y in zip(a, b, strict=True)]
    # single worker gives the same answer
    assert np.array_equal(paired_distances(a, b, workers=1), out)


def test_paired_empty_and_mismatched() -> None:
    out = paired_distances([], [])
    assert out.shape == (0,) and out.dtype == np.int32
    with pytest.raises(ValueError, match="equal lengths"):
        paired_distances(["A", "C"], ["A"])


def test_distance_matrix_vs_edlib_with_blocks() -> None:
    rng = np.random.default_rng(1)
    queries = random_seqs(rng, 23, 0, 60)
    refs = random_seqs(rng, 17, 1, 80)
    expected = edlib_matrix(queries, refs)
    for block in (1, 5, 256):  # row blocks must not change the answer
        out = distance_matrix(queries, refs, block=block)
        assert out.shape == (23, 17) and out.dtype == np.int32
        assert np.array_equal(out, expected)


def test_distance_matrix_square_default_is_symmetric() -> None:
    rng = np.random.default_rng(2)
    seqs = random_seqs(rng, 30, 1, 50)
    out = distance_matrix(seqs, block=7)
    assert np.array_equal(out, edlib_matrix(seqs, seqs))
    assert np.array_equal(out, out.T)
    assert (np.diag(out) == 0).all()


def test_distance_matrix_empty() -> None:
    assert distance_matrix([]).shape == (0, 0)
    assert distance_matrix([], ["ACGT"]).shape == (0, 1)


def test_real_v4_reads_vs_edlib(v4_records: list[SequenceRecord]) -> None:
    seqs = [r.seq for r in v4_records[:40]]
    out = distance_matrix(seqs, block=16)
    assert np.array_equal(out, edlib_matrix(seqs, seqs))
    # distances of real reads: positive between distinct reads, bounded by the longer length
    lengths = np.array([len(s) for s in seqs])
    off = ~np.eye(len(seqs), dtype=bool)
    assert (out[off] > 0).all()
    assert (out <= np.maximum.outer(lengths, lengths)).all()
    assert (out >= np.abs(np.subtract.outer(lengths, lengths))).all()
    pairs = paired_distances(seqs[:-1], seqs[1:])
    assert np.array_equal(pairs, np.diag(out, k=1))


def test_content_hash_is_order_and_content_sensitive() -> None:
    h = content_hash(["ACGT", "GG"])
    assert h == content_hash(["ACGT", "GG"]) and len(h) == 24
    assert h != content_hash(["GG", "ACGT"])
    assert h != content_hash(["ACG", "TGG"])  # boundaries count, not just the concatenation
    assert h != content_hash(["ACGT", "GG", ""])


def test_cached_matrix_written_once_and_reused(
    v4_records: list[SequenceRecord], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seqs = [r.seq for r in v4_records[:60]]
    cache = tmp_path / "cache" / "nested"  # created on demand
    first = cached_distance_matrix(seqs, cache)
    files = list(cache.iterdir())
    assert [f.name for f in files] == [f"edit_distance_{content_hash(seqs)}.npy"]
    assert np.array_equal(first, distance_matrix(seqs)) and first.dtype == np.int32
    stamp = files[0].stat().st_mtime_ns

    calls: list[int] = []
    real = edit_distance.distance_matrix

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(edit_distance, "distance_matrix", counting)
    again = cached_distance_matrix(seqs, cache)
    assert calls == []  # read from the cache, nothing recomputed
    assert again.dtype == np.int32 and np.array_equal(again, first)
    assert files[0].stat().st_mtime_ns == stamp and list(cache.iterdir()) == files

    other = cached_distance_matrix(seqs[::-1], cache)  # different content -> new entry
    assert calls == [1]
    assert np.array_equal(other, first[::-1, ::-1])
    assert len(list(cache.iterdir())) == 2
    assert not list(cache.glob("*.tmp*"))  # no temporary files left behind


def test_cached_matrix_without_cache_dir() -> None:
    seqs = ["ACGT", "AGT", "TTTT"]
    assert np.array_equal(cached_distance_matrix(seqs, None), edlib_matrix(seqs, seqs))


def test_cached_matrix_keeps_distances_beyond_uint16(tmp_path: Path) -> None:
    seqs = ["A" * 70_000, "C" * 70_000, ""]
    first = cached_distance_matrix(seqs, tmp_path)
    again = cached_distance_matrix(seqs, tmp_path)
    expected = [[0, 70_000, 70_000], [70_000, 0, 70_000], [70_000, 70_000, 0]]
    assert first.tolist() == again.tolist() == expected


def test_infix_distance_finds_a_read_inside_a_region() -> None:
    """A read copied into a region is at distance 0 (its edits only, once mutated); the global
    distance would count every other base of the region."""
    rng = np.random.default_rng(3)
    region = "".join(rng.choice(list("ACGT"), size=1600))
    read = region[700:850]
    mutated = read[:40] + "T" + read[41:100] + read[101:]  # one substitution or match, one deletion
    out = infix_distances([read, mutated, read], [region, region, region[:700]])
    assert out[0] == 0 and 1 <= out[1] <= 2 and out[2] > 40
    assert paired_distances([read], [region])[0] >= 1450
