"""EditDistanceDataModule: what a coder's bank of neighbour lists may draw on."""

from __future__ import annotations

from pathlib import Path

from neurohash.data.cleaning import Cleaning
from neurohash.data.datamodule import EditDistanceDataModule
from neurohash.data.splits import ClusterSplit, RandomSplit


def datamodule(path: Path, split: object, tmp_path: Path) -> EditDistanceDataModule:
    """500 of the 2,000 real V4 reads, 400 / 50 / 50."""
    dm = EditDistanceDataModule(
        str(path),
        split,
        cleaning=Cleaning(min_len=100, max_len=152),
        max_len=152,
        max_seqs=500,
        eval_size=50,
        cache_dir=str(tmp_path),
    )
    dm.setup()
    return dm


def test_a_coders_bank_reaches_outside_the_sample_under_a_random_split(
    v4_small: Path, tmp_path: Path
) -> None:
    """The training split first, then reads of the source outside the run's sample (repeatably),
    never a validation or test read, none twice."""
    dm = datamodule(v4_small, RandomSplit(), tmp_path)
    train = dm.seqs["train"]
    assert len(train) == 400 and dm.bank_sequences(300) == train
    bank = dm.bank_sequences(1000)
    assert len(bank) == 1000 and bank[:400] == train and len(set(bank)) == 1000
    assert not set(bank) & (set(dm.seqs["val"]) | set(dm.seqs["test"]))
    assert datamodule(v4_small, RandomSplit(), tmp_path / "again").bank_sequences(1000) == bank


def test_a_coders_bank_stays_in_the_training_split_under_a_cluster_split(
    v4_small: Path, tmp_path: Path
) -> None:
    """Outside the sample a read may be a relative of a held-out one: the bank keeps to the
    training split."""
    dm = datamodule(v4_small, ClusterSplit(depth=2), tmp_path)
    assert dm.bank_sequences(1000) == dm.seqs["train"]
