"""Genome windows: a data source over any FASTA files (complete genomes, contigs, MAGs).

Each file is one genome. Its records are cleaned whole (N and IUPAC codes become N by default)
and cut into windows of ``max_len`` bases every ``stride`` bases; windows with more than
``max_n`` N are skipped and counted. Whole files are held out for validation and test, so no
genome has windows on both sides.

Training triplets are drawn each epoch, in rows of ``TripletSampler``'s format, by a seeded,
epoch- and rank-aware sampler: random anchor windows, and as partners mutants of the anchor at a
spread of rates (near to far targets), other windows of its genome, or windows of other genomes.
``TripletCollate`` computes the exact distances, as for every source; with ``strand_weight`` > 0
the batch also carries the reverse complements of the anchors, whose embeddings the module pulls
onto the anchors' (a window means the same on either strand). Validation and test are fixed
seeded sets of held-out windows and their mutants, with exact distance matrices.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch.utils.data import DataLoader

from neurohash.data.cleaning import Cleaning, CleaningStats, clean_records
from neurohash.data.datamodule import EditDistanceDataModule
from neurohash.data.fasta import iter_records, reverse_complement
from neurohash.data.mutation import MutationRates, mutate
from neurohash.data.sources import expand_inputs
from neurohash.data.tokens import encode
from neurohash.data.triplets import NO_MUTATION, TripletCollate, TripletDataset, TripletSampler

log = logging.getLogger(__name__)

PARTS = ("train", "val", "test")


@dataclass
class RateSpread:
    """Mutants at a total edit rate per base drawn from ``rates`` for each mutant, so targets
    run from near to far; ``indel_share`` of the edits are insertions and deletions (half each),
    the rest substitutions."""

    rates: Sequence[float] = (0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3)
    indel_share: float = 0.2

    def mutant(self, seq: str, seed: int, max_len: int) -> str:
        """The mutant of ``seq`` made with ``seed`` (rate and edits both drawn from it)."""
        rng = np.random.default_rng(seed)
        rate = float(self.rates[int(rng.integers(len(self.rates)))])
        indel = rate * self.indel_share / 2
        return mutate(seq, MutationRates(rate - 2 * indel, indel, indel), rng, max_len)


@dataclass
class WindowPairs:
    """Per epoch ``anchors`` triplets; each partner is a mutant of the anchor, another window of
    its genome, or (the rest) a window of another genome."""

    anchors: int = 4096
    mutant_fraction: float = 0.5
    same_genome_fraction: float = 0.25
    cross_pairs: int = 4
    spread: RateSpread = field(default_factory=RateSpread)


@dataclass
class GenomeSplit:
    """Which files (genomes) are held out: ``val`` and ``test`` each name files (by file name) or
    give how many to draw with ``seed``; the other files train. No file is in two parts."""

    val: int | Sequence[str] = 1
    test: int | Sequence[str] = 1
    seed: int = 0

    def __call__(self, files: Sequence[str]) -> dict[str, list[str]]:
        names = [os.path.basename(f) for f in files]
        free = list(range(len(files)))
        rng = np.random.default_rng(self.seed)
        parts: dict[str, list[str]] = {}
        for part, want in (("val", self.val), ("test", self.test)):
            if isinstance(want, int):
                if want > len(free) - 1:
                    raise ValueError(f"cannot hold out {want} of {len(files)} genomes for {part}")
                picked = [free[i] for i in rng.choice(len(free), size=want, replace=False)]
            else:
                unknown = [name for name in want if name not in names]
                if unknown:
                    raise ValueError(f"{part} genomes not among the input files: {unknown}")
                picked = [names.index(name) for name in want]
            if not set(picked) <= set(free):
                raise ValueError(f"{part} genomes are already held out: {sorted(picked)}")
            free = [i for i in free if i not in picked]
            parts[part] = [files[i] for i in sorted(picked)]
        if not free:
            raise ValueError("no genome left for training")
        return {"train": [files[i] for i in free], **parts}


class GenomeWindows(Sequence[str]):
    """Windows of ``length`` bases cut on demand from ``records``: window i starts at
    ``start[i]`` of record ``record[i]``, of genome ``genome[i]``; ordered by genome, so each
    genome's windows are one block."""

    def __init__(
        self,
        records: list[str],
        record: np.ndarray,
        start: np.ndarray,
        genome: np.ndarray,
        length: int,
    ) -> None:
        self.records, self.record, self.start, self.genome = records, record, start, genome
        self.length = length

    def __len__(self) -> int:
        return len(self.start)

    def __getitem__(self, i: int) -> str:  # one window (no slices)
        begin = int(self.start[i])
        return self.records[self.record[i]][begin : begin + self.length]


def read_genomes(
    files: Sequence[str], cleaning: Cleaning, stats: CleaningStats
) -> tuple[list[str], list[int]]:
    """Cleaned records of ``files`` and the genome (position in ``files``) of each."""
    seqs, genome = [], []
    for g, path in enumerate(files):
        for rec in clean_records(iter_records(path), cleaning, stats):
            seqs.append(rec.seq)
            genome.append(g)
    return seqs, genome


def tile(
    records: list[str], genome: list[int], length: int, stride: int, max_n: float
) -> tuple[GenomeWindows, int]:
    """Windows every ``stride`` bases of each record, and how many were skipped for holding more
    than a ``max_n`` fraction of N (records shorter than a window give none)."""
    rec_ids, starts, skipped = [], [], 0
    for r, seq in enumerate(records):
        grid = np.arange(0, len(seq) - length + 1, stride)
        is_n = np.frombuffer(seq.encode("ascii"), dtype=np.uint8) == ord("N")
        n_before = np.concatenate([[0], np.cumsum(is_n)])
        keep = n_before[grid + length] - n_before[grid] <= max_n * length
        skipped += int((~keep).sum())
        starts.append(grid[keep])
        rec_ids.append(np.full(int(keep.sum()), r, dtype=np.int32))
    record = np.concatenate(rec_ids) if rec_ids else np.zeros(0, dtype=np.int32)
    start = np.concatenate(starts) if starts else np.zeros(0, dtype=np.int64)
    windows = GenomeWindows(records, record, start, np.asarray(genome)[record], length)
    return windows, skipped


def eval_windows(
    windows: GenomeWindows,
    size: int,
    mutants: int,
    spread: RateSpread,
    max_len: int,
    seed: int | Sequence[int],
) -> list[str]:
    """A fixed set of ``size`` sequences: windows drawn without replacement, each with
    ``mutants`` mutants of its own (so near distances appear), in a seeded random order."""
    rng = np.random.default_rng(seed)
    base = min(size // (1 + mutants), len(windows))
    seqs = []
    for i in rng.choice(len(windows), size=base, replace=False):
        seqs.append(windows[i])
        seeds = rng.integers(0, 2**31 - 1, size=mutants)
        seqs.extend(spread.mutant(windows[i], int(s), max_len) for s in seeds)
    return [seqs[k] for k in rng.permutation(len(seqs))]


class WindowSampler(TripletSampler):
    """``TripletSampler``'s rows over genome windows: each epoch ``cfg.anchors`` anchors drawn
    uniformly, and partners as ``WindowPairs`` says (a seed >= 0 means "mutate the anchor")."""

    def __init__(self, genome: np.ndarray, cfg: WindowPairs, seed: int) -> None:
        self.n, self.cfg, self.seed, self.epoch = len(genome), cfg, seed, 0
        self.genome = genome
        self.bounds = np.searchsorted(genome, np.arange(int(genome.max()) + 2))

    def _partners(
        self, anchors: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        m, g = len(anchors), self.genome[anchors]
        first, size = self.bounds[g], self.bounds[g + 1] - self.bounds[g]
        same = first + (rng.random(m) * size).astype(np.int64)
        # uniform over the windows of all other genomes: skip over the anchor's block
        other = (rng.random(m) * (self.n - size)).astype(np.int64)
        other = np.where(other >= first, other + size, other)
        other = np.where(size < self.n, other, same)  # a single training genome has no other
        draw = rng.random(m)
        mutant = draw < self.cfg.mutant_fraction
        near = draw < self.cfg.mutant_fraction + self.cfg.same_genome_fraction
        partner = np.where(mutant, anchors, np.where(near, same, other))
        seeds = np.where(mutant, rng.integers(0, 2**31 - 1, size=m), NO_MUTATION)
        return partner, seeds

    def rows(self) -> np.ndarray:
        rng = np.random.default_rng([self.seed, self.epoch])
        anchors = rng.integers(0, self.n, size=self.cfg.anchors)
        p1, s1 = self._partners(anchors, rng)
        p2, s2 = self._partners(anchors, rng)
        return np.stack([anchors, p1, s1, p2, s2], axis=1)

    def __len__(self) -> int:
        _, world = self._rank()
        return self.cfg.anchors // world


class WindowTripletDataset(TripletDataset):
    """``TripletDataset`` over genome windows whose mutants take their rate from ``spread``."""

    def __init__(self, windows: GenomeWindows, spread: RateSpread, max_len: int) -> None:
        self.seqs, self.spread, self.max_len = windows, spread, max_len

    def _partner(self, index: int, seed: int) -> str:
        seq = self.seqs[index]
        return seq if seed == NO_MUTATION else self.spread.mutant(seq, seed, self.max_len)


@dataclass
class StrandCollate(TripletCollate):
    """``TripletCollate``, plus (when ``strand_weight`` > 0) the reverse complements of the
    anchors as ``strand_tokens`` and the weight of their distance to the anchors in the loss."""

    strand_weight: float = 0.0

    def __call__(self, batch: list[tuple[str, str, str]]) -> dict[str, torch.Tensor]:
        out = super().__call__(batch)
        if self.strand_weight > 0:
            anchors = [reverse_complement(anchor) for anchor, _, _ in batch]
            out["strand_tokens"] = encode(anchors, self.max_len)
            out["strand_weight"] = torch.tensor(self.strand_weight)
        return out


class GenomeWindowDataModule(EditDistanceDataModule):
    """Windows of the genomes named by ``path`` (a file or a glob), split by genome.

    ``max_len`` is the window length, the padding length and the normaliser L of ED / L.
    Validation and test hold ``eval_size`` sequences each: held-out windows and ``eval_mutants``
    mutants of each. ``window_stats`` counts, per part, the windows tiled, kept and skipped.
    """

    def __init__(
        self,
        path: str,
        split: GenomeSplit,
        cleaning: Cleaning | None = None,
        pairs: WindowPairs | None = None,
        max_len: int = 1000,
        stride: int = 100,
        max_n: float = 0.1,
        eval_size: int = 600,
        eval_mutants: int = 1,
        strand_weight: float = 0.1,
        batch_size: int = 32,
        eval_batch_size: int = 256,
        num_workers: int = 0,
        seed: int = 0,
        cache_dir: str | None = None,
    ) -> None:
        super().__init__(
            path,
            split,  # a GenomeSplit: it splits files, not records
            max_len=max_len,
            eval_size=eval_size,
            batch_size=batch_size,
            eval_batch_size=eval_batch_size,
            num_workers=num_workers,
            seed=seed,
            cache_dir=cache_dir,
        )
        # whole records are read (no upper length limit) and cut into windows of max_len
        self.cleaning = cleaning or Cleaning(ambiguous="keep", min_len=max_len, dedupe=False)
        self.pairs = pairs or WindowPairs()
        self.stride, self.max_n, self.eval_mutants = stride, max_n, eval_mutants
        self.strand_weight = strand_weight
        self.files: dict[str, list[str]] = {}
        self.windows: dict[str, GenomeWindows] = {}
        self.window_stats: dict[str, dict] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.windows:
            return
        self.files = self.split_fn(expand_inputs(self.path))
        stats = CleaningStats()
        for part in PARTS:
            records, genome = read_genomes(self.files[part], self.cleaning, stats)
            windows, skipped = tile(records, genome, self.max_len, self.stride, self.max_n)
            if not len(windows):
                raise ValueError(f"no window of {self.max_len} bases in the {part} genomes")
            self.windows[part] = windows
            tiled = CleaningStats(len(windows) + skipped, len(windows), {"mostly_n": skipped})
            self.window_stats[part] = asdict(tiled)
        self.cleaning_stats = asdict(stats)
        self.seqs["train"] = self.windows["train"]  # cut on demand, not held as strings
        for k, part in enumerate(PARTS[1:], start=1):
            self.seqs[part] = eval_windows(
                self.windows[part],
                self.eval_size,
                self.eval_mutants,
                self.pairs.spread,
                self.max_len,
                seed=(self.seed, k),
            )
        for part in PARTS:
            names = [os.path.basename(f) for f in self.files[part]]
            log.info("%s genomes: %s; windows: %s", part, names, self.window_stats[part])
        log.info("records: %s", self.cleaning_stats)

    def train_dataloader(self) -> DataLoader:
        windows = self.windows["train"]
        return self.triplet_loader(
            WindowTripletDataset(windows, self.pairs.spread, self.max_len),
            WindowSampler(windows.genome, self.pairs, self.seed),
            StrandCollate(self.max_len, self.pairs.cross_pairs, self.strand_weight),
        )
