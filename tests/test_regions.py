"""Region sampling of long sequences: deterministic, content-anchored, about `density` per kb,
and shared between a real influenza segment and a mutant of it."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from neurohash.data.fasta import iter_records, reverse_complement
from neurohash.data.mutation import MutationRates, mutate
from neurohash.data.regions import (
    MAX_HASH,
    kmer_hashes,
    mix64,
    sample_regions,
    sliding_min,
    tiled_regions,
)
from tests.helpers import INFLUENZA_FILE

K = 15


@pytest.fixture(scope="module")
def segments(shared_data: Path) -> list[str]:
    """Eight real influenza A segments (825-2,373 bp) without N or IUPAC codes."""
    records = iter_records(shared_data / INFLUENZA_FILE)
    clean = (r.seq.upper() for r in records if set(r.seq.upper()) <= set("ACGT"))
    return list(itertools.islice(clean, 8))


def anchors(seq: str, regions: list[tuple[int, int]]) -> set[str]:
    """The k-mers that anchored the regions: comparable across sequences of different lengths."""
    return {seq[start : start + K] for start, _ in regions}


def test_short_sequences_are_one_region(segments: list[str]) -> None:
    seq = segments[0]
    assert sample_regions(seq, window=len(seq), density=50) == [(0, len(seq))]
    assert sample_regions(seq[:100], window=160) == [(0, 100)]
    assert sample_regions("ACG", window=160, k=31) == [(0, 3)]


def test_windows_are_full_sorted_and_inside(segments: list[str]) -> None:
    for seq in segments:
        regions = sample_regions(seq, window=160, density=10, k=K)
        starts = [start for start, _ in regions]
        assert starts == sorted(set(starts)) and len(regions) >= 1
        assert all(end - start == 160 and start >= 0 and end <= len(seq) for start, end in regions)


def test_deterministic_across_processes(segments: list[str]) -> None:
    """Same regions on every call and in a fresh interpreter (no salted Python hash())."""
    seq = "".join(segments)
    here = sample_regions(seq, 200, 4.0, K, seed=7)
    assert here == sample_regions(seq, 200, 4.0, K, seed=7)
    code = (
        "import sys; from neurohash.data.regions import sample_regions; "
        "print(sample_regions(sys.stdin.read(), 200, 4.0, 15, seed=7))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        input=seq,
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "123", "PATH": ""},
    )
    assert result.stdout.strip() == str(here)
    assert sample_regions(seq, 200, 4.0, K, seed=8) != here  # the seed does change the choice


def test_density_is_regions_per_kb(segments: list[str]) -> None:
    genome = "".join(segments)  # ~14 kb of real sequence
    for density in (2.0, 10.0):
        found = len(sample_regions(genome, 160, density, K)) / (len(genome) / 1000)
        assert 0.7 * density < found < 1.3 * density, (density, found)


def test_related_sequences_share_most_regions(segments: list[str]) -> None:
    """A mutant (~1.4% edits, indels shift every later position) keeps most anchors; an
    unrelated segment shares none."""
    rng = np.random.default_rng(0)
    rates = MutationRates(substitution=0.01, insertion=0.002, deletion=0.002)
    shared = []
    for seq in segments:
        mutant = mutate(seq, rates, rng)
        a = anchors(seq, sample_regions(seq, 160, 10.0, K))
        b = anchors(mutant, sample_regions(mutant, 160, 10.0, K))
        shared.append(len(a & b) / len(a))
    assert np.mean(shared) > 0.6 and min(shared) > 0.3, shared
    first, other = segments[0], segments[3]
    unrelated = anchors(first, sample_regions(first, 160, 10.0, K)) & anchors(
        other, sample_regions(other, 160, 10.0, K)
    )
    assert len(unrelated) <= 1


def test_regions_survive_an_edit_far_away(segments: list[str]) -> None:
    """Anchors depend on local content only: an insertion shifts later regions, never moves them."""
    seq = segments[1]
    edited = seq[:50] + "GATTACA" + seq[50:]
    before = sample_regions(seq, 160, 10.0, K)
    after = sample_regions(edited, 160, 10.0, K)
    late_before = {(s + 7, e + 7) for s, e in before if s > 50 + 500}
    late_after = {(s, e) for s, e in after if s > 57 + 500}
    assert late_before == late_after and late_before


def test_kmers_with_n_never_anchor() -> None:
    rng = np.random.default_rng(1)
    seq = "".join(rng.choice(list("ACGT"), size=3000))
    seq = seq[:1000] + "N" * 600 + seq[1600:]
    for start, _ in sample_regions(seq, 160, 20.0, K):
        assert "N" not in seq[start : start + K]
    assert sample_regions("N" * 500, 160, 5.0, K) == [(0, 160), (200, 360)]  # evenly spaced


def test_kmer_hashes_match_a_python_reference() -> None:
    seq = "ACGTTGCAACGTNACGTACGGT"
    code = {"A": 0, "C": 1, "G": 2, "T": 3}
    hashes, forward = kmer_hashes(seq, 4, len(seq) - 3, seed=5)
    assert forward.all()
    for i, value in enumerate(hashes):
        kmer = seq[i : i + 4]
        if "N" in kmer:
            assert value == MAX_HASH
        else:
            packed = sum(code[c] << (2 * (3 - j)) for j, c in enumerate(kmer))
            assert value == mix64(np.array([packed], dtype=np.uint64), seed=5)[0]


@pytest.mark.parametrize("size", [1, 3, 7, 51, 1001])
def test_sliding_min_matches_brute_force(size: int) -> None:
    x = np.random.default_rng(size).integers(0, 2**63, size=300, dtype=np.uint64)
    half = size // 2
    expected = [x[max(0, i - half) : i + half + 1].min() for i in range(len(x))]
    assert (sliding_min(x, size) == np.array(expected, dtype=np.uint64)).all()


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="density"):
        sample_regions("ACGT" * 100, 160, density=0)
    with pytest.raises(ValueError, match="k must be"):
        sample_regions("ACGT" * 100, 160, k=33)
    with pytest.raises(ValueError, match="exceed the window"):
        sample_regions("ACGT" * 100, 10, k=15)
    with pytest.raises(ValueError, match="odd k"):
        sample_regions("ACGT" * 100, 160, k=16, canonical=True)


def test_a_run_of_one_base_anchors_once_not_at_every_base() -> None:
    """A 433 kb N run (replaced by one base at cleaning) once became 433k identical regions."""
    rng = np.random.default_rng(0)
    genome = "".join(rng.choice(list("ACGT"), size=50_000))
    plain = sample_regions(genome, 152, 1.0)
    with_run = sample_regions(genome[:20_000] + "A" * 433_000 + genome[20_000:], 152, 1.0)
    assert len(plain) - 3 <= len(with_run) <= len(plain) + 3
    assert len(sample_regions("AT" * 20_000, 152, 1.0)) == 1  # a tandem repeat: once per run


def mirrored(regions: list[tuple[int, int]], length: int) -> list[tuple[int, int]]:
    """Regions of the reverse complement, in the coordinates of the forward strand."""
    return sorted((length - end, length - start) for start, end in regions)


def test_canonical_hashes_are_the_same_on_both_strands() -> None:
    seq = "ACGTTGCAACGTACGTACGGTTTAGC"
    hashes, forward = kmer_hashes(seq, 5, len(seq) - 4, canonical=True)
    rc_hashes, rc_forward = kmer_hashes(reverse_complement(seq), 5, len(seq) - 4, canonical=True)
    assert (hashes == rc_hashes[::-1]).all() and (forward == ~rc_forward[::-1]).all()


def test_canonical_anchors_are_the_same_on_a_sequence_and_its_reverse_complement(
    segments: list[str],
) -> None:
    """Each region of the reverse complement is exactly the reverse complement of a region of
    the sequence (influenza segments, and a genome with a homopolymer run and an N run)."""
    rng = np.random.default_rng(2)
    genome = "".join(rng.choice(list("ACGT"), size=30_000))
    genome = genome[:9_000] + "A" * 5_000 + genome[9_000:20_000] + "N" * 700 + genome[20_000:]
    for seq in [*segments, genome]:
        for window, density in ((160, 10.0), (1001, 2.0)):
            forward = sample_regions(seq, window, density, K, canonical=True)
            reverse = sample_regions(reverse_complement(seq), window, density, K, canonical=True)
            assert forward == mirrored(reverse, len(seq))
            if len(seq) > window:
                assert all(end - start == window for start, end in forward)
    forward_only = sample_regions(genome, 160, 10.0, K)
    assert forward_only != mirrored(
        sample_regions(reverse_complement(genome), 160, 10.0, K), 35_700
    )


def test_canonical_regions_keep_density_and_share_anchors_with_a_mutant(
    segments: list[str],
) -> None:
    genome = "".join(segments)
    found = len(sample_regions(genome, 160, 5.0, K, canonical=True)) / (len(genome) / 1000)
    assert 0.7 * 5.0 < found < 1.3 * 5.0, found
    rng = np.random.default_rng(0)
    rates = MutationRates(substitution=0.01, insertion=0.002, deletion=0.002)
    mutant = mutate(genome, rates, rng)
    ours = {genome[s : s + 160] for s, _ in sample_regions(genome, 160, 5.0, K, canonical=True)}
    theirs = sample_regions(reverse_complement(mutant), 160, 5.0, K, canonical=True)
    theirs = {reverse_complement(mutant)[s : s + 160] for s, _ in theirs}
    # the mutant's reverse-strand windows are the reverse complements of windows near ours
    near = [any(reverse_complement(t)[70:90] in o for o in ours) for t in theirs]
    assert np.mean(near) > 0.5, np.mean(near)


def test_tiles_step_through_the_sequence_and_end_flush_with_it() -> None:
    assert tiled_regions(1000, 100, 300) == [(0, 100), (300, 400), (600, 700), (900, 1000)]
    tiles = tiled_regions(1001, 100, 10)
    assert tiles[-1] == (901, 1001) and tiles[-2] == (900, 1000)
    assert all(end - start == 100 for start, end in tiles)
    assert tiled_regions(80, 100, 10) == [(0, 80)]
    with pytest.raises(ValueError, match="step"):
        tiled_regions(1000, 100, 0)


def test_a_stride_tiles_instead_of_anchoring(segments: list[str]) -> None:
    seq = segments[0]
    tiled = sample_regions(seq, 100, density=50.0, k=K, canonical=True, stride=40)
    assert tiled == tiled_regions(len(seq), 100, 40)
    for start in range(len(seq) - 140 + 1):  # every read of window + stride holds one
        assert any(start <= a and b <= start + 140 for a, b in tiled)
