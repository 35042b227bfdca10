"""neurohash.data.triplets and .mutation: seeded, rank-aware triplets with exact distances."""

from __future__ import annotations

import edlib
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from neurohash.data.fasta import SequenceRecord
from neurohash.data.kmers import nearest_relatives
from neurohash.data.mutation import MutationRates, mutate
from neurohash.data.tokens import PAD, encode
from neurohash.data.triplets import (
    NO_MUTATION,
    PairSampling,
    TripletCollate,
    TripletDataset,
    TripletSampler,
)

MAX_LEN = 160
DECODE = dict(enumerate("ACGTN", start=1))


def edlib_distance(a: str, b: str) -> int:
    return edlib.align(a, b, task="distance")["editDistance"]


def decode(tokens: torch.Tensor) -> str:
    return "".join(DECODE[int(t)] for t in tokens if int(t) != PAD)


@pytest.fixture(scope="module")
def seqs(v4_records: list[SequenceRecord]) -> list[str]:
    return [r.seq for r in v4_records[:200]]


@pytest.fixture(scope="module")
def neighbours(seqs: list[str]) -> np.ndarray:
    return nearest_relatives(seqs, 8)


def make_sampler(n: int, neighbours: np.ndarray, seed: int = 0, **kwargs) -> TripletSampler:
    return TripletSampler(n, neighbours, PairSampling(neighbours=8, **kwargs), seed)


# ---- sampler ------------------------------------------------------------------------------------


def test_sampler_deterministic_per_seed_and_epoch(seqs: list[str], neighbours: np.ndarray) -> None:
    a, b = make_sampler(len(seqs), neighbours), make_sampler(len(seqs), neighbours)
    assert np.array_equal(a.rows(), b.rows())
    assert list(a) == list(b)
    epoch0 = a.rows()
    a.set_epoch(1)
    b.set_epoch(1)
    assert np.array_equal(a.rows(), b.rows())
    assert not np.array_equal(a.rows(), epoch0)
    a.set_epoch(0)
    assert np.array_equal(a.rows(), epoch0)  # going back repeats the epoch exactly
    other_seed = make_sampler(len(seqs), neighbours, seed=1)
    assert not np.array_equal(other_seed.rows(), epoch0)


def test_sampler_rows_structure(seqs: list[str], neighbours: np.ndarray) -> None:
    n = len(seqs)
    sampler = make_sampler(n, neighbours, multiplicity=5, near_fraction=0.3, mutant_fraction=0.2)
    rows = sampler.rows()
    assert rows.shape == (5 * n, 5) and len(sampler) == 5 * n
    anchors = rows[:, 0]
    assert np.array_equal(np.bincount(anchors, minlength=n), np.full(n, 5))  # each anchor 5 times
    assert not np.array_equal(anchors, np.sort(anchors))  # shuffled
    for partner, seed in ((rows[:, 1], rows[:, 2]), (rows[:, 3], rows[:, 4])):
        assert ((partner >= 0) & (partner < n)).all()
        mutant = seed != NO_MUTATION
        assert (seed[mutant] >= 0).all()
        assert np.array_equal(partner[mutant], anchors[mutant])  # a mutant of the anchor itself
        assert abs(mutant.mean() - 0.2) < 0.03
        near = np.array([p in neighbours[a] for a, p in zip(anchors, partner, strict=True)])
        # near partners (30%) plus random ones that happen to be neighbours
        assert 0.27 < (near & ~mutant).mean() < 0.4
    assert list(sampler) == [tuple(int(v) for v in row) for row in rows]


def test_sampler_without_near_or_mutants(seqs: list[str], neighbours: np.ndarray) -> None:
    empty = np.zeros((len(seqs), 0), dtype=np.int64)
    rows = make_sampler(len(seqs), empty, near_fraction=0.5, mutant_fraction=0.0).rows()
    assert (rows[:, [2, 4]] == NO_MUTATION).all()
    only_mutants = make_sampler(
        len(seqs), neighbours, near_fraction=0.0, mutant_fraction=1.0
    ).rows()
    assert (only_mutants[:, [2, 4]] >= 0).all()
    assert (only_mutants[:, 1] == only_mutants[:, 0]).all()


@pytest.mark.parametrize("world", [2, 3, 7])
def test_sampler_ranks_are_disjoint(
    seqs: list[str], neighbours: np.ndarray, world: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    n = len(seqs) + 1  # 201 anchors * 4 is not divisible by 3 or 7
    big = np.vstack([neighbours, neighbours[:1]])
    full = make_sampler(n, big).rows()
    per_rank = []
    for rank in range(world):
        sampler = make_sampler(n, big)
        monkeypatch.setattr(sampler, "_rank", lambda rank=rank: (rank, world))
        per_rank.append(np.array(list(sampler)))
        assert len(sampler) == len(per_rank[-1]) == (4 * n) // world
    # interleaving the ranks gives back the global sequence: every row seen by exactly one rank
    stacked = np.stack(per_rank, axis=1).reshape(-1, 5)
    assert np.array_equal(stacked, full[: len(stacked)])
    assert len(full) - len(stacked) < world


# ---- dataset and collate ------------------------------------------------------------------------


def test_dataset_materialises_rows(seqs: list[str]) -> None:
    rates = MutationRates()
    dataset = TripletDataset(seqs, rates, MAX_LEN)
    anchor, p1, p2 = dataset[(3, 7, NO_MUTATION, 3, 1234)]
    assert anchor == seqs[3] and p1 == seqs[7]
    assert p2 == mutate(seqs[3], rates, np.random.default_rng(1234), MAX_LEN)
    assert dataset[(3, 7, NO_MUTATION, 3, 1234)] == (anchor, p1, p2)


def test_collate_exact_distances_and_tokens(seqs: list[str]) -> None:
    rng = np.random.default_rng(0)
    dataset = TripletDataset(seqs, MutationRates(0.05, 0.02, 0.02), MAX_LEN)
    rows = [
        (int(a), int(b), NO_MUTATION, int(a), int(s))
        for a, b, s in zip(
            rng.integers(0, len(seqs), 16), rng.integers(0, len(seqs), 16), range(16), strict=True
        )
    ]
    batch = [dataset[row] for row in rows]
    out = TripletCollate(MAX_LEN, cross_pairs=3)(batch)
    assert out["tokens"].shape == (48, MAX_LEN) and out["tokens"].dtype == torch.long
    ordered = [t[k] for k in range(3) for t in batch]  # anchors, then partners1, then partners2
    assert [decode(row) for row in out["tokens"]] == ordered
    pairs = out["pairs"].tolist()
    assert len(pairs) == 3 * 16 + 3 * 48 and out["edit_distance"].dtype == torch.float32
    assert pairs[:16] == [[i, i + 16] for i in range(16)]  # (anchor, partner1) first
    assert pairs[16:32] == [[i, i + 32] for i in range(16)]  # then (anchor, partner2)
    for (i, j), d in zip(pairs, out["edit_distance"].tolist(), strict=True):
        assert d == edlib_distance(ordered[i], ordered[j])
    assert (out["edit_distance"][16:32] > 0).any()  # mutants differ from their anchors


def test_collate_handcrafted() -> None:
    out = TripletCollate(6)([("ACGT", "ACGT", "AGT"), ("NNAC", "", "ACGTAC")])
    # sequences: 0 ACGT, 1 NNAC, 2 ACGT, 3 "", 4 AGT, 5 ACGTAC
    assert out["pairs"].tolist() == [[0, 2], [1, 3], [0, 4], [1, 5], [2, 4], [3, 5]]
    assert out["edit_distance"].tolist() == [0, 4, 1, 4, 1, 6]
    assert out["tokens"][0].tolist() == [1, 2, 3, 4, 0, 0]
    assert out["tokens"][4].tolist() == [1, 3, 4, 0, 0, 0]
    assert out["tokens"][1].tolist() == [5, 5, 1, 2, 0, 0]
    with pytest.raises(ValueError, match="exceeds max_len"):
        TripletCollate(3)([("ACGT", "A", "A")])


def test_uint8_tokens_are_the_same_tokens(v4_records: list[SequenceRecord]) -> None:
    """The predict loop moves uint8 tokens (8x smaller); they must hold the same values, and
    anything that is not A/C/G/T/N (here a U and a gap) is padding, as in the long encoding."""
    seqs = [r.seq for r in v4_records[:20]] + ["ACUG-N", ""]
    wide, narrow = encode(seqs, MAX_LEN), encode(seqs, MAX_LEN, torch.uint8)
    assert wide.dtype == torch.long and narrow.dtype == torch.uint8
    assert torch.equal(narrow.long(), wide)
    assert wide[20, :7].tolist() == [1, 2, PAD, 3, PAD, 5, PAD]
    assert [decode(row) for row in wide[:20]] == seqs[:20]
    assert encode([], MAX_LEN).shape == (0, MAX_LEN)


# ---- mutants ------------------------------------------------------------------------------------


def test_mutants_deterministic_per_seed(seqs: list[str]) -> None:
    rates = MutationRates()
    for seed in range(20):
        a = mutate(seqs[seed], rates, np.random.default_rng(seed))
        b = mutate(seqs[seed], rates, np.random.default_rng(seed))
        assert a == b
    variants = {mutate(seqs[0], rates, np.random.default_rng(s)) for s in range(20)}
    assert len(variants) > 15


def test_mutant_distances_at_sensible_rates(seqs: list[str]) -> None:
    rates = MutationRates(substitution=0.05, insertion=0.02, deletion=0.02)
    mutants = [mutate(s, rates, np.random.default_rng(i)) for i, s in enumerate(seqs)]
    dist = np.array([edlib_distance(s, m) for s, m in zip(seqs, mutants, strict=True)])
    lengths = np.array([len(s) for s in seqs])
    assert (dist > 0).all()
    assert set("".join(mutants)) <= set("ACGT")
    # expected edits per base 0.09; the exact distance can only be lower (edits may cancel)
    ratio = dist.sum() / lengths.sum()
    assert 0.06 < ratio <= 0.1
    assert abs(np.mean([len(m) for m in mutants]) - lengths.mean()) < 2  # ins ~ del


def test_default_rates_mostly_change_the_sequence(seqs: list[str]) -> None:
    mutants = [mutate(s, MutationRates(), np.random.default_rng(i)) for i, s in enumerate(seqs)]
    dist = np.array([edlib_distance(s, m) for s, m in zip(seqs, mutants, strict=True)])
    assert (dist > 0).mean() > 0.9
    assert 0.015 < dist.sum() / sum(map(len, seqs)) < 0.035


def test_mutate_only_substitutions_keeps_length() -> None:
    seq = "ACGT" * 50
    out = mutate(seq, MutationRates(1.0, 0.0, 0.0), np.random.default_rng(0))
    assert len(out) == len(seq)
    assert all(a != b for a, b in zip(seq, out, strict=True))  # always a different base
    assert 0 < edlib_distance(seq, out) <= len(seq)  # Hamming 200; indels can do better


def test_mutate_limits() -> None:
    seq = "ACGT" * 40
    rng = np.random.default_rng(0)
    assert mutate(seq, MutationRates(0, 0, 0), rng) == seq
    longer = mutate(seq, MutationRates(0, 1.0, 0), np.random.default_rng(1), max_len=170)
    assert len(longer) == 170 and longer[::2] == seq[:85]
    one = mutate(seq, MutationRates(0, 0, 1.0), np.random.default_rng(2))
    assert len(one) == 1 and one in "ACGT"  # never empty


# ---- DataLoader workers -------------------------------------------------------------------------


def loader(seqs: list[str], neighbours: np.ndarray, workers: int, epoch: int) -> DataLoader:
    cfg = PairSampling(neighbours=8)
    sampler = TripletSampler(len(seqs), neighbours, cfg, seed=7)
    sampler.set_epoch(epoch)
    return DataLoader(
        TripletDataset(seqs, cfg.mutation, MAX_LEN),
        batch_size=32,
        sampler=sampler,
        collate_fn=TripletCollate(MAX_LEN),
        num_workers=workers,
        drop_last=True,
    )


def test_dataloader_workers_give_identical_batches(seqs: list[str], neighbours: np.ndarray) -> None:
    for epoch in (0, 1):
        single = list(loader(seqs, neighbours, 0, epoch))
        multi = list(loader(seqs, neighbours, 2, epoch))
        assert len(single) == len(multi) == (4 * len(seqs)) // 32
        for a, b in zip(single, multi, strict=True):
            assert torch.equal(a["tokens"], b["tokens"])
            assert torch.equal(a["edit_distance"], b["edit_distance"])
        if epoch == 0:
            first = single
    assert not torch.equal(first[0]["tokens"], single[0]["tokens"])
