"""Explicit, configurable cleaning of raw records into the A/C/G/T(/N) alphabet the models read."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal

from neurohash.data.fasta import SequenceFileError, SequenceRecord

IUPAC = set("ACGTURYSWKMBDHVN")
_NON_ACGT = re.compile(r"[^ACGT]")


@dataclass
class Cleaning:
    """How raw sequences become model input.

    ambiguous: what to do with N and other IUPAC codes: ``drop`` the record, ``replace`` each
    ambiguous base with ``replacement`` (one of A/C/G/T), or ``keep`` them as a fifth symbol N.
    """

    uppercase: bool = True
    rna_to_dna: bool = True
    ambiguous: Literal["drop", "replace", "keep"] = "drop"
    replacement: str = "A"
    min_len: int = 1
    max_len: int | None = None
    dedupe: bool = True


def inference_cleaning(cleaning: Cleaning) -> Cleaning:
    """The training cleaning, minus everything that would silently drop a record at inference.

    Prediction and search answer for every record: no length limits (long records are cut into
    regions, short ones are one region), no de-duplication (every id keeps its rows), and
    ambiguous bases are replaced (or kept, if the model reads N) instead of the record dropped,
    so a genome with N runs is still stored. Empty records are still reported and skipped.
    """
    ambiguous = "replace" if cleaning.ambiguous == "drop" else cleaning.ambiguous
    return dataclasses.replace(cleaning, min_len=1, max_len=None, dedupe=False, ambiguous=ambiguous)


@dataclass
class CleaningStats:
    """Counts of what cleaning did, reported so that nothing is dropped silently."""

    seen: int = 0
    kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)

    def drop(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1


def clean_sequence(rec: SequenceRecord, cfg: Cleaning) -> tuple[str | None, str]:
    """Return (cleaned sequence or None, reason) for one record; raise on non-nucleotide input."""
    seq = rec.seq.upper() if cfg.uppercase else rec.seq
    if cfg.rna_to_dna:
        seq = seq.replace("U", "T")
    if not seq:
        return None, "empty"
    bad = set(seq.upper()) - IUPAC
    if bad:
        raise SequenceFileError(
            f"{rec.source}: record '{rec.id}' holds non-nucleotide characters {sorted(bad)[:5]}"
        )
    if _NON_ACGT.search(seq):
        if cfg.ambiguous == "drop":
            return None, "ambiguous"
        seq = _NON_ACGT.sub(cfg.replacement if cfg.ambiguous == "replace" else "N", seq)
    if len(seq) < cfg.min_len:
        return None, "too_short"
    if cfg.max_len is not None and len(seq) > cfg.max_len:
        return None, "too_long"
    return seq, "kept"


def clean_records(
    records: Iterable[SequenceRecord], cfg: Cleaning, stats: CleaningStats | None = None
) -> Iterator[SequenceRecord]:
    """Stream cleaned records; exact duplicates (after cleaning) are dropped when ``cfg.dedupe``."""
    stats = stats if stats is not None else CleaningStats()
    seen_seqs: set[bytes] = set()
    for rec in records:
        stats.seen += 1
        seq, reason = clean_sequence(rec, cfg)
        if seq is None:
            stats.drop(reason)
            continue
        if cfg.dedupe:
            key = hashlib.blake2b(seq.encode(), digest_size=16).digest()
            if key in seen_seqs:
                stats.drop("duplicate")
                continue
            seen_seqs.add(key)
        stats.kept += 1
        yield SequenceRecord(rec.id, seq, rec.source)
