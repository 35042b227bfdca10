"""Where sequences come from: the built-in Greengenes 13_8 reference or any FASTA/FASTQ file.

Loading streams the file through cleaning and keeps at most ``max_seqs`` records by seeded
reservoir sampling, so memory is bounded by the sample, not by the file.
"""

from __future__ import annotations

import glob
import logging
import os

import numpy as np

from neurohash.data.cleaning import Cleaning, CleaningStats, clean_records
from neurohash.data.fasta import SequenceFileError, SequenceRecord, iter_records

log = logging.getLogger(__name__)


def greengenes_sequences() -> str:
    """Path of Greengenes 13_8 97% OTU representative sequences (99,322 full-length 16S)."""
    import qiime_default_reference

    return qiime_default_reference.get_reference_sequences()


def greengenes_tree() -> str:
    """Path of the Greengenes 13_8 97% OTU Newick tree over the same ids."""
    import qiime_default_reference

    return qiime_default_reference.get_reference_tree()


def expand_inputs(path_or_glob: str) -> list[str]:
    """Files named by a path or a glob pattern, sorted; an unmatched pattern is an error.

    The name ``greengenes`` stands for the built-in Greengenes 13_8 sequences.
    """
    if path_or_glob == "greengenes":
        return [greengenes_sequences()]
    if any(ch in path_or_glob for ch in "*?["):
        files = sorted(glob.glob(path_or_glob))
        if not files:
            raise SequenceFileError(f"{path_or_glob}: pattern matches no file")
        return files
    return [path_or_glob]


def load_records(
    path: str | os.PathLike,
    cleaning: Cleaning,
    max_seqs: int | None = None,
    seed: int = 0,
) -> tuple[list[SequenceRecord], CleaningStats]:
    """Read, clean and (if ``max_seqs``) uniformly subsample records, in file order."""
    stats = CleaningStats()
    rng = np.random.default_rng(seed)
    sample: list[tuple[int, SequenceRecord]] = []
    # one cleaning stream over all files, so exact duplicates are dropped across files too
    raw = (rec for file in expand_inputs(os.fspath(path)) for rec in iter_records(file))
    for rec in clean_records(raw, cleaning, stats):
        n = stats.kept
        if max_seqs is None or len(sample) < max_seqs:
            sample.append((n, rec))
        else:
            j = int(rng.integers(0, n))
            if j < max_seqs:
                sample[j] = (n, rec)
    if not sample:
        raise SequenceFileError(f"{path}: no record survived cleaning ({stats.dropped})")
    sample.sort(key=lambda item: item[0])
    log.info(
        "loaded %d of %d records from %s (dropped: %s)",
        len(sample),
        stats.seen,
        path,
        stats.dropped,
    )
    return [rec for _, rec in sample], stats
