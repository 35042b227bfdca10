"""Training examples drawn on the fly: (anchor, positive, negative) triplets with exact distances.

A seeded sampler (in the main process, epoch-aware, rank-aware) decides every triplet, so runs
repeat exactly whatever the number of DataLoader workers. Partners are random sequences, near
relatives (k-mer candidates re-ranked exactly), or mutants of the anchor made with a per-example
seed. The collate function computes, with rapidfuzz, the exact distances of each triplet's three
pairs plus ``cross_pairs`` more per sequence across the batch (sequence i with i+1, ..., i+k of
the shuffled batch), so one forward pass of 3B sequences supervises 3B(1 + k) pairs. Exact
distances of 1.5 kb sequences cost ~0.2 ms a pair, so k balances supervision against CPU time.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import Dataset, Sampler

from neurohash.data.edit_distance import paired_distances
from neurohash.data.mutation import MutationRates, mutate
from neurohash.data.tokens import encode

NO_MUTATION = -1


@dataclass
class PairSampling:
    """How partners are chosen: per anchor and epoch ``multiplicity`` triplets are drawn."""

    multiplicity: int = 4
    near_fraction: float = 0.3
    mutant_fraction: float = 0.2
    neighbours: int = 16
    cross_pairs: int = 4
    mutation: MutationRates = field(default_factory=MutationRates)


class TripletSampler(Sampler):
    """Yields (anchor, partner1, seed1, partner2, seed2) rows; a seed >= 0 means "mutate it".

    Deterministic in (seed, epoch); under torch.distributed each rank takes every world_size-th
    row of the same global permutation, so ranks never see the same example.
    """

    def __init__(self, n: int, neighbours: np.ndarray, cfg: PairSampling, seed: int) -> None:
        self.n, self.neighbours, self.cfg, self.seed = n, neighbours, cfg, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _rank(self) -> tuple[int, int]:
        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
        return 0, 1

    def _partners(
        self, anchors: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        m = len(anchors)
        partner = rng.integers(0, self.n, size=m)
        draw = rng.random(m)
        near = draw < self.cfg.near_fraction
        if self.neighbours.shape[1] and near.any():
            pick = rng.integers(0, self.neighbours.shape[1], size=int(near.sum()))
            partner[near] = self.neighbours[anchors[near], pick]
        mutant = (draw >= self.cfg.near_fraction) & (
            draw < self.cfg.near_fraction + self.cfg.mutant_fraction
        )
        partner[mutant] = anchors[mutant]
        seeds = np.where(mutant, rng.integers(0, 2**31 - 1, size=m), NO_MUTATION)
        return partner, seeds

    def rows(self) -> np.ndarray:
        rng = np.random.default_rng([self.seed, self.epoch])
        anchors = np.tile(np.arange(self.n), self.cfg.multiplicity)
        rng.shuffle(anchors)
        p1, s1 = self._partners(anchors, rng)
        p2, s2 = self._partners(anchors, rng)
        return np.stack([anchors, p1, s1, p2, s2], axis=1)

    def __iter__(self) -> Iterator[tuple[int, ...]]:
        rank, world = self._rank()
        for row in self.rows()[rank::world][: len(self)]:
            yield tuple(int(v) for v in row)

    def __len__(self) -> int:
        _, world = self._rank()
        return (self.n * self.cfg.multiplicity) // world


class TripletDataset(Dataset):
    """Materialises a sampler row into three sequences (mutants made with their own seed)."""

    def __init__(self, seqs: Sequence[str], rates: MutationRates, max_len: int) -> None:
        self.seqs, self.rates, self.max_len = seqs, rates, max_len

    def __len__(self) -> int:
        return len(self.seqs)

    def _partner(self, index: int, seed: int) -> str:
        seq = self.seqs[index]
        if seed == NO_MUTATION:
            return seq
        return mutate(seq, self.rates, np.random.default_rng(seed), self.max_len)

    def __getitem__(self, row: tuple[int, ...]) -> tuple[str, str, str]:
        anchor, p1, s1, p2, s2 = row
        return self.seqs[anchor], self._partner(p1, s1), self._partner(p2, s2)


def batch_pairs(n_triplets: int, cross_pairs: int) -> torch.Tensor:
    """(P, 2) indices into a batch's 3B sequences [anchors; partners1; partners2]: first the B
    (anchor, partner1) pairs, then B (anchor, partner2), B (partner1, partner2), then for every
    sequence i the pairs (i, i + s mod 3B) for s = 1..cross_pairs (skipping repeats)."""
    b, n = n_triplets, 3 * n_triplets
    idx = torch.arange(b)
    pairs = [torch.stack([idx, idx + b], 1), torch.stack([idx, idx + 2 * b], 1)]
    pairs.append(torch.stack([idx + b, idx + 2 * b], 1))
    seq = torch.arange(n)
    for shift in range(1, min(cross_pairs, n // 2) + 1):
        if shift % b == 0:  # these pairs are already the triplet pairs
            continue
        pairs.append(torch.stack([seq, (seq + shift) % n], 1))
    return torch.cat(pairs)


@dataclass
class TripletCollate:
    """Tokenises a batch of B triplets as 3B sequences ordered [anchors; partners1; partners2]
    and attaches ``pairs`` (see ``batch_pairs``) with their exact ``edit_distance``."""

    max_len: int
    cross_pairs: int = 0

    def __call__(self, batch: list[tuple[str, str, str]]) -> dict[str, torch.Tensor]:
        seqs = [seq for column in zip(*batch, strict=True) for seq in column]
        pairs = batch_pairs(len(batch), self.cross_pairs)
        left, right = pairs.numpy().T
        distances = paired_distances([seqs[i] for i in left], [seqs[j] for j in right], workers=1)
        return {
            "tokens": encode(seqs, self.max_len),
            "pairs": pairs,
            "edit_distance": torch.from_numpy(distances).float(),
        }


class SequenceDataset(Dataset):
    """Indexed sequences for evaluation and prediction: yields (index, sequence)."""

    def __init__(self, seqs: Sequence[str]) -> None:
        self.seqs = seqs

    def __len__(self) -> int:
        return len(self.seqs)

    def __getitem__(self, i: int) -> tuple[int, str]:
        return i, self.seqs[i]


@dataclass
class SequenceCollate:
    max_len: int

    def __call__(self, batch: list[tuple[int, str]]) -> dict[str, torch.Tensor]:
        index, seqs = zip(*batch, strict=True)
        return {"index": torch.tensor(index), "tokens": encode(list(seqs), self.max_len)}
