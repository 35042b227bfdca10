"""Streaming FASTA/FASTQ reading (plain or gzipped) with errors that name the file and record.

dnaio does the parsing; it is strict about format and raises on truncated gzip, where some faster
readers silently return a partial file. Every failure is re-raised as `SequenceFileError` with the
path and the last good record so a user can find the problem.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import dnaio

from neurohash.errors import NeurohashError


@dataclass(frozen=True)
class SequenceRecord:
    """One sequence as read from a file: its id (first word of the header) and residues."""

    id: str
    seq: str
    source: str = ""


_COMPLEMENT = str.maketrans("ACGTNacgtn", "TGCANtgcan")


def reverse_complement(seq: str) -> str:
    """The other strand of ``seq`` read 5' to 3' (A/C/G/T/N, either case; other symbols kept)."""
    return seq.translate(_COMPLEMENT)[::-1]


class SequenceFileError(NeurohashError, ValueError):
    """A sequence file is missing, unreadable or malformed."""


def _describe(path: str, count: int, last_id: str | None) -> str:
    where = f"after record {count} ('{last_id}')" if last_id else "before the first record"
    return f"{path}: {where}"


STDIN = "-"


def iter_records(path: str | os.PathLike) -> Iterator[SequenceRecord]:
    """Yield records of a FASTA or FASTQ file (format and gzip detected from content), streaming.

    ``-`` reads standard input (records then name ``-`` as their source)."""
    path = os.fspath(path)
    if path != STDIN and not os.path.exists(path):
        raise SequenceFileError(f"{path}: no such file")
    if os.path.isdir(path):
        raise SequenceFileError(f"{path}: is a directory, expected a FASTA/FASTQ file")
    count, last_id = 0, None
    try:
        with dnaio.open(sys.stdin.buffer if path == STDIN else path) as reader:
            for rec in reader:
                rid = rec.name.split(maxsplit=1)[0] if rec.name.strip() else ""
                if not rid:
                    raise SequenceFileError(
                        f"{_describe(path, count, last_id)}: record {count + 1} has an empty header"
                    )
                yield SequenceRecord(rid, rec.sequence, path)
                count, last_id = count + 1, rid
    except SequenceFileError:
        raise
    except (dnaio.UnknownFileFormat, dnaio.FileFormatError) as exc:
        raise SequenceFileError(
            f"{_describe(path, count, last_id)}: not valid FASTA/FASTQ: {exc}"
        ) from exc
    except EOFError as exc:
        raise SequenceFileError(
            f"{_describe(path, count, last_id)}: compressed file is truncated ({exc})"
        ) from exc
    except (UnicodeDecodeError, OSError) as exc:
        raise SequenceFileError(
            f"{_describe(path, count, last_id)}: unreadable, not a text FASTA/FASTQ file ({exc})"
        ) from exc
    if count == 0:
        raise SequenceFileError(f"{path}: contains no sequence records")
