"""One immutable segment of a database: the unique codes of a bounded number of regions, their
postings, a FAISS binary index, the regions' bases and (optionally) their embeddings::

    SEGMENT/
      segment.json        counts, index parameters, size and sha256 of every file
      index.faiss         FAISS binary index over the unique codes (FAISS id = code_id); the codes
                          themselves live only here
      postings.parquet    code_id, record, region_start, region_length, [piece, piece_start];
                          sorted by code, so a code's postings are one contiguous slice; codes
                          are numbered in record order, so every column is delta-encoded small
                          (a length, and the record position where a region's piece of the
                          store begins, repeat from row to row where an end and an offset in
                          the piece would not; segments written before hold region_end and
                          piece_offset, and open as they were)
      records.parquet     seq_id and source of each record (row = the segment's record number),
                          in row groups read only when a hit names one of their records
      sequences.*         the compact sequence store (``neurohash.index.store``)
      embeddings.parquet  int8 region embeddings and a float32 scale per row, in posting order

A segment is built from whole records (the rows of whole shards), so one stored sequence lives
in one segment. Identical codes are stored once within a segment; the database merges hits
across segments at search time and ``neurohash compact`` merges segments.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from neurohash.errors import NeurohashError, one_line
from neurohash.files import file_sha256, write_json
from neurohash.index.store import (
    BASES_FILE,
    TABLE_FILE,
    SequenceStore,
    StoreError,
    dedupe_pieces,
    pieces_of_regions,
    write_store,
)

if TYPE_CHECKING:
    import faiss

SEGMENT_MANIFEST = "segment.json"
INDEX_FILE = "index.faiss"
POSTINGS_FILE = "postings.parquet"
RECORDS_FILE = "records.parquet"
EMBEDDINGS_FILE = "embeddings.parquet"
CODES_AND_POSTINGS = (INDEX_FILE, POSTINGS_FILE, RECORDS_FILE)
STORE_FILES = (BASES_FILE, TABLE_FILE)
INDEX_KINDS = ("auto", "flat", "hnsw", "ivf")
# unique codes per segment: a flat scan of a default segment (500k regions) is as fast as HNSW
# (bench/search_scale.py at 1M regions: 795 against 772 Hamming queries/s) and HNSW's graph
# adds ~264 bytes per code, 16 times the code itself
AUTO_APPROXIMATE_ABOVE = 1_000_000
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128
IVF_NPROBE = 16
ROW_COLUMNS = ("seq_id", "source", "record", "region_start", "region_end", "sequence", "embedding")
PARQUET_OPTIONS: dict[str, Any] = {"compression": "zstd", "compression_level": 9}
RECORDS_ROW_GROUP = 65_536  # records read together to name hits


class DatabaseError(NeurohashError, ValueError):
    """Shards or a database that cannot be used as asked (bad checksum, wrong model, ...)."""


# codes ------------------------------------------------------------------------------------------


def code_matrix(column: pa.ChunkedArray | pa.Array, code_bytes: int) -> np.ndarray:
    """(N, code_bytes) uint8 copy of a fixed_size_binary column (packed codes)."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    data = np.frombuffer(array.buffers()[1], dtype=np.uint8)
    start = array.offset * code_bytes
    return data[start : start + len(array) * code_bytes].reshape(len(array), code_bytes).copy()


def code_column(codes: np.ndarray) -> pa.FixedSizeBinaryArray:
    """Packed codes (N, width) as a fixed_size_binary column."""
    width = codes.shape[1]
    buffer = pa.py_buffer(np.ascontiguousarray(codes).tobytes())
    return pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), len(codes), [None, buffer])


def unique_codes(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(unique codes in byte order, code_id of every input row)."""
    width = codes.shape[1]
    keys = np.ascontiguousarray(codes).view(f"V{width}").ravel()
    uniq, inverse = np.unique(keys, return_inverse=True)
    return np.frombuffer(uniq.tobytes(), dtype=np.uint8).reshape(-1, width), inverse.ravel()


# (rows, code bytes) -> (unique codes in byte order, code_id of every row)
Dedupe = Callable[[pa.Table, int], tuple[np.ndarray, np.ndarray]]


def dedupe_in_memory(rows: pa.Table, code_bytes: int) -> tuple[np.ndarray, np.ndarray]:
    """The default de-duplication, with numpy on this machine (``neurohash.spark`` has Spark's)."""
    return unique_codes(code_matrix(rows.column("code"), code_bytes))


# the FAISS index --------------------------------------------------------------------------------


def choose_index(kind: str, n_codes: int) -> str:
    """``auto`` -> exact flat search up to AUTO_APPROXIMATE_ABOVE unique codes, HNSW beyond."""
    if kind not in INDEX_KINDS:
        raise DatabaseError(f"unknown index kind '{kind}' (choose from {', '.join(INDEX_KINDS)})")
    if kind != "auto":
        return kind
    return "hnsw" if n_codes > AUTO_APPROXIMATE_ABOVE else "flat"


def ivf_lists(n_codes: int) -> int:
    """Inverted lists: ~4 sqrt(N), but enough training points per list (FAISS wants >= 39)."""
    return max(1, min(int(4 * math.sqrt(n_codes)), n_codes // 39))


def build_index(codes: np.ndarray, kind: str) -> tuple[faiss.IndexBinary, dict[str, Any]]:
    """A FAISS binary index over ``codes`` (FAISS id = row) and the parameters used."""
    import faiss

    bits = codes.shape[1] * 8
    params: dict[str, Any] = {"kind": kind}
    if kind == "flat":
        index = faiss.IndexBinaryFlat(bits)
    elif kind == "hnsw":
        index = faiss.IndexBinaryHNSW(bits, HNSW_M)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        params.update(M=HNSW_M, ef_construction=HNSW_EF_CONSTRUCTION, ef_search=HNSW_EF_SEARCH)
    elif kind == "ivf":
        nlist = ivf_lists(len(codes))
        index = faiss.IndexBinaryIVF(faiss.IndexBinaryFlat(bits), bits, nlist)
        index.train(codes)
        params.update(nlist=nlist, nprobe=min(nlist, IVF_NPROBE))
    else:
        raise DatabaseError(f"unknown index kind '{kind}'")
    index.add(codes)
    return index, params


def read_index(path: Path, params: dict[str, Any]) -> faiss.IndexBinary:
    """Read a FAISS index memory-mapped where FAISS can (IVF lists; flat and HNSW indexes are
    read into memory, 16 bytes per 128-bit code) and restore its search-time parameters."""
    import faiss

    try:
        index = faiss.read_index_binary(str(path), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
    except RuntimeError as exc:
        raise DatabaseError(f"{path}: unreadable FAISS index ({one_line(exc)})") from exc
    # read_index_binary returns the concrete class (downcasting again would free it under us)
    kind = {
        faiss.IndexBinaryFlat: "flat",
        faiss.IndexBinaryHNSW: "hnsw",
        faiss.IndexBinaryIVF: "ivf",
    }.get(type(index))
    if not isinstance(params, dict) or params.get("kind") != kind:
        raise DatabaseError(f"{path}: the segment describes index {params!r}, the file is {kind}")
    if kind == "hnsw":
        index.hnsw.efSearch = int(params.get("ef_search", HNSW_EF_SEARCH))
    elif kind == "ivf":
        index.nprobe = int(params.get("nprobe", IVF_NPROBE))
    return index


def index_codes(index: faiss.IndexBinary) -> np.ndarray:
    """Every code of an index, in FAISS id order (codes are stored only in the index)."""
    import faiss

    if isinstance(index, faiss.IndexBinaryIVF):
        index.make_direct_map()
    if index.ntotal == 0:
        return np.zeros((0, index.code_size), dtype=np.uint8)
    return index.reconstruct_n(0, index.ntotal).reshape(index.ntotal, index.code_size)


# embeddings -------------------------------------------------------------------------------------


def quantise(embedding: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 per row: (values, float32 scale) with embedding ~= values * scale."""
    embedding = np.asarray(embedding, dtype=np.float32)
    scale = np.abs(embedding).max(axis=1, initial=0.0) / 127.0
    safe = np.where(scale > 0, scale, 1.0)[:, None]
    values = np.clip(np.rint(embedding / safe), -127, 127).astype(np.int8)
    return values, scale.astype(np.float32)


def embedding_matrix(column: pa.ChunkedArray) -> np.ndarray:
    """(N, D) array of a fixed_size_list column."""
    array = column.combine_chunks()
    dim = array.type.list_size
    return array.flatten().to_numpy(zero_copy_only=False).reshape(-1, dim)


# building ---------------------------------------------------------------------------------------


def write_parquet(table: pa.Table, path: Path, **options: Any) -> None:
    pq.write_table(table, path, **PARQUET_OPTIONS, **options)


def number_in_record_order(
    codes: np.ndarray, code_id: np.ndarray, record: np.ndarray, start: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Renumber the unique ``codes`` by the first region (in record, then start order) that
    has each. Postings sorted by code are then nearly sorted by record and position too, so
    their delta-encoded columns take about 1.3 bytes per region instead of 12 (Greengenes)."""
    _, first = np.unique(code_id[np.lexsort((start, record))], return_index=True)
    by_first = np.argsort(first, kind="stable")
    renumbered = np.empty_like(by_first)
    renumbered[by_first] = np.arange(len(by_first))
    return codes[by_first], renumbered[code_id]


def local_records(rows: pa.Table) -> tuple[np.ndarray, pa.Table]:
    """The segment's record number of every row (records numbered in input order), and the
    records table (seq_id, source)."""
    record = rows.column("record").to_numpy()
    numbers, first, local = np.unique(record, return_index=True, return_inverse=True)
    del numbers
    taken = pa.array(first, pa.int64())
    records = pa.table(
        {
            "seq_id": rows.column("seq_id").take(taken),
            "source": rows.column("source").take(taken).dictionary_encode(),
        }
    )
    return local.astype(np.int64), records


def build_segment(
    rows: pa.Table, directory: Path, code_bytes: int, index: str, dedupe: Dedupe
) -> dict[str, Any]:
    """Write a segment of ``rows`` (shard rows of whole records) into the new ``directory``;
    return its description (also written to segment.json, last, so that a segment without it
    is known unfinished)."""
    directory.mkdir(parents=True)
    record, records = local_records(rows)
    start = rows.column("region_start").to_numpy().astype(np.int64)
    end = rows.column("region_end").to_numpy().astype(np.int64)
    codes, code_id = number_in_record_order(*dedupe(rows, code_bytes), record, start)
    order = np.lexsort((end, start, record, code_id))
    postings: dict[str, np.ndarray] = {
        "code_id": code_id[order],
        "record": record[order],
        "region_start": start[order],
        "region_length": (end - start)[order],
    }
    counts = {"regions": rows.num_rows, "unique_codes": len(codes), "records": records.num_rows}
    if "sequence" in rows.column_names:
        counts.update(write_sequences(rows, record, start, end, order, postings, directory))
    write_parquet(
        pa.table({k: pa.array(v, pa.int32()) for k, v in postings.items()}),
        directory / POSTINGS_FILE,
        use_dictionary=False,
        column_encoding=dict.fromkeys(postings, "DELTA_BINARY_PACKED"),
    )
    write_parquet(
        records,
        directory / RECORDS_FILE,
        row_group_size=RECORDS_ROW_GROUP,
        use_dictionary=["source"],
        column_encoding={"seq_id": "DELTA_LENGTH_BYTE_ARRAY"},
    )
    if "embedding" in rows.column_names:
        write_embeddings(stored_embeddings(rows, order), directory)
    faiss_index, params = build_index(codes, choose_index(index, len(codes)))
    write_faiss(faiss_index, directory / INDEX_FILE)
    description = {"counts": counts, "index": params, "files": file_records(directory)}
    write_json(directory / SEGMENT_MANIFEST, description)
    return description


def write_sequences(
    rows: pa.Table,
    record: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    order: np.ndarray,
    postings: dict[str, np.ndarray],
    directory: Path,
) -> dict[str, int]:
    """The store of the rows' bases; adds each posting's piece and the record position where the
    piece begins. Returns counts."""
    sequence = rows.column("sequence").to_pylist()
    try:
        pieces, piece_of, offset = pieces_of_regions(record, start, end, sequence)
    except StoreError as exc:
        raise DatabaseError(f"{directory.name}: {exc}") from exc
    unique, number = dedupe_pieces(pieces)
    write_store(directory, unique)
    postings["piece"] = number[piece_of][order]
    postings["piece_start"] = (start - offset)[order]
    return {"pieces": len(unique), "bases": sum(map(len, unique))}


def stored_embeddings(rows: pa.Table, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(int8 values, scale) of the rows' embeddings in posting ``order``: quantised here from
    shard rows, taken as they are from a segment's rows (``segment_rows``)."""
    matrix = embedding_matrix(rows.column("embedding"))[order]
    if "embedding_scale" in rows.column_names:
        return matrix, rows.column("embedding_scale").to_numpy()[order]
    return quantise(matrix)


def write_embeddings(quantised: tuple[np.ndarray, np.ndarray], directory: Path) -> None:
    values, scale = quantised
    column = pa.FixedSizeListArray.from_arrays(pa.array(values.ravel(), pa.int8()), values.shape[1])
    write_parquet(pa.table({"embedding": column, "scale": scale}), directory / EMBEDDINGS_FILE)


def write_faiss(index: faiss.IndexBinary, path: Path) -> None:
    import faiss

    faiss.write_index_binary(index, str(path))


def file_records(directory: Path) -> dict[str, dict[str, Any]]:
    """Size and sha256 of every file in ``directory`` (its manifest excluded)."""
    return {
        path.name: {"bytes": path.stat().st_size, "sha256": file_sha256(path)}
        for path in sorted(directory.iterdir())
        if path.name != SEGMENT_MANIFEST
    }


# reading back (compaction) ----------------------------------------------------------------------


def segment_rows(segment: Segment) -> pa.Table:
    """The segment's regions as shard rows (records numbered from its target base), so that
    segments can be built again from them."""
    record = segment.record.astype(np.int64) + segment.target_base
    records = segment.records.table()
    codes = segment.codes(np.arange(segment.regions))
    columns: dict[str, Any] = {
        "seq_id": records.column("seq_id").take(pa.array(segment.record)),
        "source": records.column("source").take(pa.array(segment.record)).cast(pa.string()),
        "record": pa.array(record, pa.int64()),
        "region_start": pa.array(segment.region_start, pa.int32()),
        "region_end": pa.array(segment.region_end, pa.int32()),
        "code": code_column(codes),
    }
    if segment.store is not None:
        columns["sequence"] = pa.array(segment.sequences(np.arange(segment.regions)), pa.string())
    if segment.has_embeddings:  # kept quantised: a compaction does not quantise twice
        values, scale = segment.quantised_embeddings
        columns["embedding"] = pa.FixedSizeListArray.from_arrays(
            pa.array(values.ravel(), pa.int8()), values.shape[1]
        )
        columns["embedding_scale"] = pa.array(scale, pa.float32())
    return pa.table(columns)


# opening ----------------------------------------------------------------------------------------


def region_columns(
    columns: dict[str, np.ndarray],
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Each posting's region start and end and its offset in its piece of the store (None
    without a store), from the postings' columns of this release or of segments written before."""
    start = columns["region_start"]
    length = columns.get("region_length")
    end = columns["region_end"] if length is None else start + length
    if "piece_start" in columns:
        return start, end, start - columns["piece_start"]
    return start, end, columns.get("piece_offset")


class RecordTable:
    """seq_id and source of a segment's records, read a row group at a time as hits need them
    and dropped after: a segment of reads has a record per region, too many to hold in RAM."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.file = pq.ParquetFile(path)
        except (OSError, pa.ArrowException) as exc:
            raise unreadable(path, exc) from exc
        meta = self.file.metadata
        self.num_rows = meta.num_rows
        sizes = [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]
        self.group_start = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])

    def rows(self, records: np.ndarray) -> list[tuple[str, str]]:
        """(seq_id, source) of each of ``records``; each row group they reach is read once."""
        records = np.asarray(records, dtype=np.int64)
        group_of = np.searchsorted(self.group_start, records, side="right") - 1
        out: list[tuple[str, str]] = [("", "")] * len(records)
        for number in np.unique(group_of).tolist():
            where = np.flatnonzero(group_of == number)
            at = pa.array(records[where] - self.group_start[number])
            try:
                group = self.file.read_row_group(number)
            except (OSError, pa.ArrowException) as exc:
                raise unreadable(self.path, exc) from exc
            ids = group.column("seq_id").take(at).to_pylist()
            sources = group.column("source").take(at).cast(pa.string()).to_pylist()
            for i, name in zip(where.tolist(), zip(ids, sources, strict=True), strict=True):
                out[i] = name
        return out

    def table(self) -> pa.Table:
        """Every record (compaction, bench truth)."""
        return read_parquet(self.path)


@dataclass
class Segment:
    """An opened segment. Posting row ``p`` holds code ``code_of[p]``, its record (the segment's
    number; the database's target is ``target_base + record``) and its region;
    ``offsets[c]:offsets[c + 1]`` are the posting rows of code ``c``."""

    path: Path
    description: dict[str, Any]
    index: faiss.IndexBinary
    code_of: np.ndarray
    offsets: np.ndarray
    record: np.ndarray
    region_start: np.ndarray
    region_end: np.ndarray
    piece: np.ndarray | None
    piece_offset: np.ndarray | None
    records: RecordTable
    store: SequenceStore | None
    target_base: int

    @classmethod
    def open(cls, path: Path, code_bits: int, target_base: int, check: bool = True) -> Segment:
        """Open the segment at ``path`` after checking its files against segment.json (size and
        sha256 with ``check``) and its counts against the data (errors name the file)."""
        from neurohash.index.shards import ShardError, read_manifest

        try:
            description = read_manifest(path / SEGMENT_MANIFEST)
        except ShardError as exc:
            raise DatabaseError(str(exc)) from exc
        check_files(path, description, check)
        postings = read_parquet(path / POSTINGS_FILE)
        records = RecordTable(path / RECORDS_FILE)
        index = read_index(path / INDEX_FILE, description.get("index"))
        # int32 in memory (ids within a segment and positions within a record fit): half the RAM
        columns = {
            name: postings.column(name).to_numpy().astype(np.int32, copy=False)
            for name in postings.column_names
        }
        code_of = columns["code_id"]
        offsets = posting_offsets(code_of, index.ntotal, path)
        start, end, piece_offset = region_columns(columns)
        try:
            store = SequenceStore(path) if (path / TABLE_FILE).is_file() else None
        except (StoreError, OSError, pa.ArrowException) as exc:
            raise DatabaseError(f"{path}: unreadable sequence store ({one_line(exc)})") from exc
        segment = cls(
            path,
            description,
            index,
            code_of,
            offsets,
            columns["record"],
            start,
            end,
            columns.get("piece"),
            piece_offset,
            records,
            store,
            target_base,
        )
        segment.check_counts(code_bits)
        return segment

    @property
    def regions(self) -> int:
        return len(self.record)

    @property
    def has_embeddings(self) -> bool:
        return (self.path / EMBEDDINGS_FILE).is_file()

    @functools.cached_property
    def unique_codes(self) -> np.ndarray:
        """Packed codes by code id, read out of the FAISS index once (for refining by codes)."""
        return index_codes(self.index)

    def codes(self, rows: np.ndarray) -> np.ndarray:
        """Packed codes of the segment's posting ``rows``."""
        return self.unique_codes[self.code_of[rows]]

    def check_counts(self, code_bits: int) -> None:
        """segment.json's counts and the index's code width against the data."""
        if self.index.d != code_bits:
            raise DatabaseError(
                f"{self.path / INDEX_FILE}: codes of {self.index.d} bits, the database has "
                f"{code_bits}"
            )
        counts = self.description.get("counts") or {}
        actual = {
            "regions": self.regions,
            "unique_codes": int(self.index.ntotal),
            "records": self.records.num_rows,
        }
        for name, value in actual.items():
            if counts.get(name) != value:
                raise DatabaseError(
                    f"{self.path / SEGMENT_MANIFEST}: counts {name} = {counts.get(name)!r}, the "
                    f"data holds {value} (edited or corrupted: rebuild the database)"
                )
        if self.regions and int(self.record.max()) >= self.records.num_rows:
            raise DatabaseError(f"{self.path / POSTINGS_FILE}: postings name unknown records")

    def sequences(self, rows: np.ndarray) -> list[str]:
        """Bases of the regions of posting ``rows`` (read from the store)."""
        if self.store is None or self.piece is None or self.piece_offset is None:
            raise DatabaseError(f"{self.path}: stores no sequences")
        lengths = self.region_end[rows] - self.region_start[rows]
        return self.store.read_many(self.piece[rows], self.piece_offset[rows], lengths)

    def embeddings(self, rows: np.ndarray) -> np.ndarray:
        """(len(rows), D) float32 embeddings of posting ``rows`` (dequantised)."""
        values, scale = self.quantised_embeddings
        return values[rows].astype(np.float32) * scale[rows, None]

    @functools.cached_property
    def quantised_embeddings(self) -> tuple[np.ndarray, np.ndarray]:
        """(int8 values, float32 scale) of every posting, read on first use (refining)."""
        table = read_parquet(self.path / EMBEDDINGS_FILE)
        return embedding_matrix(table.column("embedding")), table.column("scale").to_numpy()

    def sizes(self) -> dict[str, int]:
        return part_sizes(self.description["files"])


def part_sizes(files: dict[str, dict[str, Any]]) -> dict[str, int]:
    """Bytes on disk of a segment's files by part: codes and postings, the sequence store, the
    embeddings."""
    size = lambda names: sum(int(files[n]["bytes"]) for n in names if n in files)  # noqa: E731
    return {
        "codes_postings": size(CODES_AND_POSTINGS),
        "sequences": size(STORE_FILES),
        "embeddings": size((EMBEDDINGS_FILE,)),
    }


def check_files(path: Path, description: dict[str, Any], check: bool) -> None:
    """Every file of the segment present, of the size (and with ``check`` the sha256) recorded."""
    recorded = description.get("files")
    if not isinstance(recorded, dict) or not all(n in recorded for n in CODES_AND_POSTINGS):
        raise DatabaseError(f"{path / SEGMENT_MANIFEST}: does not record the segment's files")
    for name, record in sorted(recorded.items()):
        file = path / name
        if not file.is_file():
            raise DatabaseError(f"{file}: missing from the database")
        if file.stat().st_size != int(record["bytes"]):
            raise DatabaseError(
                f"{file}: {file.stat().st_size} bytes, the segment records {record['bytes']} "
                "(truncated or replaced; rebuild the database)"
            )
        if check and file_sha256(file) != record["sha256"]:
            raise DatabaseError(
                f"{file}: sha256 does not match the segment (corrupted; rebuild the database)"
            )


def read_parquet(path: Path) -> pa.Table:
    """A segment table; a file Parquet cannot decode is a DatabaseError naming it."""
    try:
        return pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise unreadable(path, exc) from exc


def unreadable(path: Path, exc: Exception) -> DatabaseError:
    """The error for a segment file Parquet cannot decode."""
    return DatabaseError(f"{path}: unreadable ({one_line(exc)}); rebuild the database")


def posting_offsets(code_id: np.ndarray, n_codes: int, path: Path) -> np.ndarray:
    """Start of each code's postings (postings are sorted by code_id; checked)."""
    if len(code_id) and (np.any(np.diff(code_id) < 0) or code_id[0] < 0 or code_id[-1] >= n_codes):
        raise DatabaseError(f"{path / POSTINGS_FILE}: postings are not sorted by valid code ids")
    offsets = np.zeros(n_codes + 1, dtype=np.int64)
    np.cumsum(np.bincount(code_id, minlength=n_codes), out=offsets[1:])
    return offsets
