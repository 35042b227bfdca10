"""The compact sequence store: every stored base once, 2-bit packed, for exact re-ranking.

Re-ranking needs the bases of a few candidate regions, never all of them, so a segment keeps its
sequences in a store read piece by piece rather than as one string per region::

    sequences.bin       the packed bases of all pieces, cut into blocks of BLOCK_BYTES that are
                        zstd-compressed one by one (a read decompresses only the blocks it needs)
    sequences.parquet   one row per piece: where its bases start in the packed stream, its length,
                        and the runs that 2 bits cannot hold (as UCSC's .2bit keeps them):
                        ``other_*`` runs of one symbol outside ACGT (N, IUPAC codes) and
                        ``lower_*`` runs of lowercase (soft-masked) bases

A *piece* is a stretch of one input record covered by its regions: overlapping regions of a
genome share one piece (``pieces_of_regions``) and identical pieces are stored once, so a region
is a piece number and an offset into it. Bases are A=0, C=1, G=2, T=3, four to a byte, the first
base in the high bits; each piece starts on a byte.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

BASES_FILE = "sequences.bin"
TABLE_FILE = "sequences.parquet"
BLOCK_BYTES = 1 << 15  # packed bytes per zstd block: 128 kb of bases
CACHED_BLOCKS = 256  # decompressed blocks a reader keeps (8 MB)
CODEC = "zstd"
ZSTD_LEVEL = 19

_CODE = np.full(256, 255, dtype=np.uint8)
for _i, _base in enumerate(b"ACGT"):
    _CODE[_base] = _i
_LETTERS = np.frombuffer(b"ACGT", dtype=np.uint8)
_SHIFTS = np.array([6, 4, 2, 0], dtype=np.uint8)


class StoreError(ValueError):
    """Regions whose bases do not fit their coordinates, or a store whose files disagree."""


# one sequence -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Packed:
    """One piece: packed bases and the runs of what 2 bits cannot hold."""

    bases: bytes
    length: int
    other_start: np.ndarray
    other_length: np.ndarray
    other_symbol: bytes
    lower_start: np.ndarray
    lower_length: np.ndarray


def runs(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(start, length) of the runs of equal non-zero values of ``keys``."""
    if not len(keys):
        return np.zeros(0, np.int32), np.zeros(0, np.int32)
    edge = np.flatnonzero(np.diff(keys.astype(np.int16))) + 1
    starts = np.concatenate([[0], edge])
    ends = np.concatenate([edge, [len(keys)]])
    keep = keys[starts] != 0
    return starts[keep].astype(np.int32), (ends - starts)[keep].astype(np.int32)


def pack(seq: str) -> Packed:
    """A sequence (any ASCII letters) as 2-bit bases plus exception runs; ``unpack`` inverts it."""
    raw = np.frombuffer(seq.encode("ascii"), dtype=np.uint8)
    lower = (raw >= ord("a")) & (raw <= ord("z"))
    upper = np.where(lower, raw - 32, raw).astype(np.uint8)
    code = _CODE[upper]
    other = code == 255
    other_start, other_length = runs(np.where(other, upper, 0))
    lower_start, lower_length = runs(lower.view(np.uint8))
    code = np.where(other, 0, code).astype(np.uint8)
    padded = np.zeros(-(-len(code) // 4) * 4, dtype=np.uint8)
    padded[: len(code)] = code
    quads = padded.reshape(-1, 4) << _SHIFTS
    packed = np.bitwise_or.reduce(quads, axis=1).astype(np.uint8)
    return Packed(
        packed.tobytes(),
        len(seq),
        other_start,
        other_length,
        upper[other_start].tobytes(),
        lower_start,
        lower_length,
    )


def unpack(
    bases: np.ndarray,
    length: int,
    other: tuple[Sequence[int], Sequence[int], bytes] = ((), (), b""),
    lower: tuple[Sequence[int], Sequence[int]] = ((), ()),
) -> str:
    """The sequence of packed ``bases`` (uint8, at least ceil(length / 4) bytes) and its runs."""
    codes = (bases[: -(-length // 4)][:, None] >> _SHIFTS) & 3
    letters = _LETTERS[codes.ravel()[:length]]
    for start, size, symbol in zip(*other[:2], other[2], strict=True):
        letters[start : start + size] = symbol
    for start, size in zip(*lower, strict=True):
        letters[start : start + size] |= 32
    return letters.tobytes().decode("ascii")


# pieces of regions ------------------------------------------------------------------------------


def pieces_of_regions(
    record: np.ndarray, start: np.ndarray, end: np.ndarray, sequence: Sequence[str]
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Merge each record's overlapping or touching regions into pieces.

    Returns the pieces' sequences, and for every region its piece number and the offset of its
    first base in the piece. Overlapping regions agree on their shared bases (they are copies
    of one record), so each base is taken from whichever region holds it.
    """
    order = np.lexsort((start, record))
    piece_of = np.empty(len(record), dtype=np.int64)
    offset = np.empty(len(record), dtype=np.int64)
    pieces: list[str] = []
    parts: list[tuple[int, str]] = []
    piece_start = piece_end = -1
    current = None
    for row in order.tolist():
        rec, a, b = int(record[row]), int(start[row]), int(end[row])
        if len(sequence[row]) != b - a:
            raise StoreError(
                f"region {a}..{b} of record {rec} holds {len(sequence[row])} bases, not {b - a}"
            )
        if rec != current or a > piece_end:
            if parts:
                pieces.append(join_parts(parts, piece_start, piece_end))
            parts, current, piece_start, piece_end = [], rec, a, b
        parts.append((a, sequence[row]))
        piece_end = max(piece_end, b)
        piece_of[row] = len(pieces)
        offset[row] = a - piece_start
    if parts:
        pieces.append(join_parts(parts, piece_start, piece_end))
    return pieces, piece_of, offset


def join_parts(parts: list[tuple[int, str]], start: int, end: int) -> str:
    """One piece from regions (start, bases) that cover [start, end) without gaps."""
    if len(parts) == 1:
        return parts[0][1]
    buffer = bytearray(end - start)
    for a, seq in parts:
        buffer[a - start : a - start + len(seq)] = seq.encode("ascii")
    return buffer.decode("ascii")


def dedupe_pieces(pieces: list[str]) -> tuple[list[str], np.ndarray]:
    """Identical pieces stored once: (unique pieces in first-seen order, new number of each)."""
    number: dict[str, int] = {}
    mapping = np.fromiter(
        (number.setdefault(piece, len(number)) for piece in pieces), dtype=np.int64, count=-1
    )
    return list(number), mapping


# writing ----------------------------------------------------------------------------------------


def write_store(directory: Path, pieces: Sequence[str]) -> None:
    """``sequences.bin`` and ``sequences.parquet`` of ``pieces`` in ``directory``."""
    packed = [pack(piece) for piece in pieces]
    sizes = np.fromiter((len(p.bases) for p in packed), dtype=np.int64, count=len(packed))
    offsets = np.cumsum(sizes) - sizes
    stream = b"".join(p.bases for p in packed)
    compressed = []
    with open(directory / BASES_FILE, "wb") as handle:
        for first in range(0, len(stream), BLOCK_BYTES):
            block = pa.compress(stream[first : first + BLOCK_BYTES], codec=CODEC, asbytes=True)
            handle.write(block)
            compressed.append(len(block))
    ints = pa.list_(pa.int32())
    table = pa.table(
        {
            "offset": pa.array(offsets, pa.int64()),
            "length": pa.array([p.length for p in packed], pa.int64()),
            "other_start": pa.array([p.other_start for p in packed], ints),
            "other_length": pa.array([p.other_length for p in packed], ints),
            "other_symbol": pa.array([p.other_symbol for p in packed], pa.binary()),
            "lower_start": pa.array([p.lower_start for p in packed], ints),
            "lower_length": pa.array([p.lower_length for p in packed], ints),
        }
    )
    layout = {"block_bytes": BLOCK_BYTES, "stream_bytes": len(stream), "blocks": compressed}
    table = table.replace_schema_metadata({"neurohash_store": json.dumps(layout)})
    pq.write_table(table, directory / TABLE_FILE, compression="zstd", compression_level=9)


# reading ----------------------------------------------------------------------------------------


class SequenceStore:
    """Reads pieces, or stretches of them, from a segment's store; decompresses only the blocks
    a read needs and keeps the last CACHED_BLOCKS of them."""

    def __init__(self, directory: str | os.PathLike) -> None:
        directory = Path(directory)
        table = pq.read_table(directory / TABLE_FILE)
        layout = json.loads((table.schema.metadata or {}).get(b"neurohash_store", b"{}"))
        if not {"block_bytes", "stream_bytes", "blocks"} <= layout.keys():
            raise StoreError(f"{directory / TABLE_FILE}: lacks the store layout")
        self.block_bytes = int(layout["block_bytes"])
        self.stream_bytes = int(layout["stream_bytes"])
        sizes = np.asarray(layout["blocks"], dtype=np.int64)
        self.block_starts = np.concatenate([[0], np.cumsum(sizes)])
        path = directory / BASES_FILE
        empty = path.stat().st_size == 0  # (a store of empty pieces; mmap refuses empty files)
        self.bases = np.zeros(0, np.uint8) if empty else np.memmap(path, np.uint8, mode="r")
        if len(self.bases) != self.block_starts[-1]:
            raise StoreError(f"{directory / BASES_FILE}: size does not match {TABLE_FILE}")
        self.offset = table.column("offset").to_numpy()
        self.length = table.column("length").to_numpy()
        runs = [pc.list_value_length(table.column(c)) for c in ("other_start", "lower_start")]
        self.has_runs = (
            pc.add(*runs).to_numpy(zero_copy_only=False) > 0 if len(table) else np.zeros(0, bool)
        )
        # only the rows with runs stay as Arrow (few for reads), in piece order
        self.run_table = table.drop_columns(["offset", "length"]).filter(pa.array(self.has_runs))
        self.run_pieces = np.flatnonzero(self.has_runs)
        self.cache: OrderedDict[int, np.ndarray] = OrderedDict()

    def __len__(self) -> int:
        return len(self.offset)

    def block(self, number: int) -> np.ndarray:
        """Decompressed block ``number`` (uint8)."""
        cached = self.cache.get(number)
        if cached is not None:
            self.cache.move_to_end(number)
            return cached
        raw = self.bases[self.block_starts[number] : self.block_starts[number + 1]]
        size = min(self.block_bytes, self.stream_bytes - number * self.block_bytes)
        data = pa.decompress(raw.tobytes(), size, codec=CODEC, asbytes=True)
        block = np.frombuffer(data, dtype=np.uint8)
        self.cache[number] = block
        if len(self.cache) > CACHED_BLOCKS:
            self.cache.popitem(last=False)
        return block

    def packed(self, first: int, stop: int) -> np.ndarray:
        """Packed bytes [first, stop) of the stream."""
        blocks = range(first // self.block_bytes, (stop - 1) // self.block_bytes + 1)
        joined = np.concatenate([self.block(b) for b in blocks]) if len(blocks) > 1 else None
        data = joined if joined is not None else self.block(blocks[0])
        base = blocks[0] * self.block_bytes
        return data[first - base : stop - base]

    def read(self, piece: int, start: int = 0, length: int | None = None) -> str:
        """Bases [start, start + length) of ``piece`` (the whole piece by default)."""
        total = int(self.length[piece])
        length = total - start if length is None else length
        if start < 0 or length < 0 or start + length > total:
            raise StoreError(f"bases {start}..{start + length} outside piece {piece} ({total})")
        if length == 0:
            return ""
        first = int(self.offset[piece]) + start // 4
        packed = self.packed(first, int(self.offset[piece]) + -(-(start + length) // 4))
        skip = start % 4
        if not self.has_runs[piece]:
            return unpack(packed, skip + length)[skip:]
        text = unpack(packed, skip + length, *self.runs(piece, start - skip, skip + length))
        return text[skip:]

    def runs(
        self, piece: int, start: int, length: int
    ) -> tuple[tuple[list[int], list[int], bytes], tuple[list[int], list[int]]]:
        """The piece's exception runs, clipped to [start, start + length) and made relative."""
        table, at = self.run_table, int(np.searchsorted(self.run_pieces, piece))
        row = {name: table.column(name)[at].as_py() for name in table.column_names}
        other = clip(row["other_start"], row["other_length"], start, length)
        symbols = bytes(row["other_symbol"][i] for i in other[2])
        lower = clip(row["lower_start"], row["lower_length"], start, length)
        return (other[0], other[1], symbols), (lower[0], lower[1])

    def read_many(self, pieces: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> list[str]:
        """``read`` of many stretches, in block order so that each block is decompressed once."""
        order = np.argsort(self.offset[pieces] + starts // 4, kind="stable")
        out: list[str] = [""] * len(pieces)
        for i in order.tolist():
            out[i] = self.read(int(pieces[i]), int(starts[i]), int(lengths[i]))
        return out


def clip(
    starts: list[int], lengths: list[int], start: int, length: int
) -> tuple[list[int], list[int], list[int]]:
    """Runs overlapping [start, start + length), relative to ``start``, and their indices."""
    out_start, out_length, kept = [], [], []
    for i, (a, n) in enumerate(zip(starts, lengths, strict=True)):
        lo, hi = max(a, start), min(a + n, start + length)
        if lo < hi:
            out_start.append(lo - start)
            out_length.append(hi - lo)
            kept.append(i)
    return out_start, out_length, kept
