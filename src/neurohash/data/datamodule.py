"""The LightningDataModule: load and clean records, split them, and serve triplets and eval sets."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict

import lightning as L
import numpy as np
from torch.utils.data import DataLoader, Dataset, Sampler

from neurohash.data.cleaning import Cleaning
from neurohash.data.edit_distance import cached_distance_matrix
from neurohash.data.fasta import SequenceRecord
from neurohash.data.kmers import nearest_relatives
from neurohash.data.sources import load_records
from neurohash.data.splits import RandomSplit, Split
from neurohash.data.triplets import (
    PairSampling,
    SequenceCollate,
    SequenceDataset,
    TripletCollate,
    TripletDataset,
    TripletSampler,
)

log = logging.getLogger(__name__)


class EditDistanceDataModule(L.LightningDataModule):
    """Sequences of one FASTA/FASTQ source, split leakage-free, with exact distance targets.

    ``max_len`` is both the padding length and the normaliser L of NeuroSEED's targets ED / L.
    Validation and test use at most ``eval_size`` sequences each; their exact distance matrices
    are computed once and cached by content hash.
    """

    def __init__(
        self,
        path: str,
        split: Callable[[list[SequenceRecord]], Split],
        cleaning: Cleaning | None = None,
        pairs: PairSampling | None = None,
        max_len: int = 1600,
        max_seqs: int | None = None,
        eval_size: int = 1000,
        batch_size: int = 64,
        eval_batch_size: int = 256,
        num_workers: int = 0,
        seed: int = 0,
        cache_dir: str | None = None,
    ) -> None:
        super().__init__()
        self.path, self.split_fn = path, split
        self.cleaning = cleaning or Cleaning(max_len=max_len)
        if self.cleaning.max_len is None or self.cleaning.max_len > max_len:
            self.cleaning.max_len = max_len
        self.pairs = pairs or PairSampling()
        self.max_len, self.max_seqs, self.eval_size = max_len, max_seqs, eval_size
        self.batch_size, self.eval_batch_size, self.num_workers = (
            batch_size,
            eval_batch_size,
            num_workers,
        )
        self.seed, self.cache_dir = seed, cache_dir
        self.records: list[SequenceRecord] = []
        self.split: Split | None = None
        self.seqs: dict[str, list[str]] = {}
        self.exact: dict[str, np.ndarray] = {}
        self.banks: dict[int, list[str]] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.split is not None:
            return
        self.records, stats = load_records(self.path, self.cleaning, self.max_seqs, self.seed)
        self.cleaning_stats = asdict(stats)
        self.split = self.split_fn(self.records)
        for part in ("train", "val", "test"):
            index = getattr(self.split, part)
            if part != "train":
                index = index[: self.eval_size]
            self.seqs[part] = [self.records[i].seq for i in index]
        log.info("split sizes: %s", {k: len(v) for k, v in self.seqs.items()})
        self.neighbours = nearest_relatives(self.seqs["train"], self.pairs.neighbours)

    def bank_sequences(self, size: int) -> Sequence[str]:
        """Up to ``size`` sequences for a coder's bank of neighbour lists (``hashing=neighbours``):
        the training split, then records of the source outside this run's sample
        (``outside_sample``), never a validation or test sequence. The codes must tell apart a
        query's nearest among tens of thousands of relatives, and a bank of the default 4,800
        training sequences finds far fewer of them (bench/codes.py: 0.39 of the exact top 10 by
        Hamming alone, against 0.56 from a bank of 30,000). Only a random split reaches outside:
        under a clade, cluster or group split a record outside the sample may be a relative of
        a held-out one."""
        train = self.seqs["train"]
        if size <= len(train) or not isinstance(self.split_fn, RandomSplit):
            return train
        if size not in self.banks:  # filled again at every epoch of a trainable encoder
            taken = set(train) | set(self.seqs["val"]) | set(self.seqs["test"])
            extra = [rec.seq for rec in outside_sample(self.path, self.cleaning, size, self.seed)]
            extra = [seq for seq in dict.fromkeys(extra) if seq not in taken]
            self.banks[size] = list(train) + extra[: size - len(train)]
            log.info(
                "coder bank: %d training sequences, %d from outside the sample",
                len(train),
                len(self.banks[size]) - len(train),
            )
        return self.banks[size]

    def exact_distances(self, part: str) -> np.ndarray:
        """Exact edit-distance matrix of the val or test sequences (cached)."""
        if part not in self.exact:
            self.exact[part] = cached_distance_matrix(self.seqs[part], self.cache_dir)
        return self.exact[part]

    def train_dataloader(self) -> DataLoader:
        return self.triplet_loader(
            TripletDataset(self.seqs["train"], self.pairs.mutation, self.max_len),
            TripletSampler(len(self.seqs["train"]), self.neighbours, self.pairs, self.seed),
            TripletCollate(self.max_len, self.pairs.cross_pairs),
        )

    def triplet_loader(
        self, dataset: Dataset, sampler: Sampler, collate: Callable[[list], dict]
    ) -> DataLoader:
        """Training batches: the sampler decides every triplet, the collate their exact targets."""
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            collate_fn=collate,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            drop_last=True,
        )

    def sequence_loader(self, seqs: list[str]) -> DataLoader:
        return DataLoader(
            SequenceDataset(seqs),
            batch_size=self.eval_batch_size,
            collate_fn=SequenceCollate(self.max_len),
            num_workers=self.num_workers,
        )

    def val_dataloader(self) -> DataLoader:
        return self.sequence_loader(self.seqs["val"])

    def test_dataloader(self) -> DataLoader:
        return self.sequence_loader(self.seqs["test"])


def outside_sample(path: str, cleaning: Cleaning, size: int, seed: int) -> list[SequenceRecord]:
    """A second seeded sample of ``size`` records of the source (seed + 1), from which a coder's
    bank draws beyond the run's own sample; benchmarks hold their queries out of it too."""
    return load_records(path, cleaning, size, seed + 1)[0]
