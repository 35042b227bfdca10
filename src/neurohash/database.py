"""The hash database: unique codes, their postings, and a FAISS binary index over them.

``build_database`` turns the Parquet hash shards of the predict loop into a self-contained
directory (``neurohash index``)::

    DB_DIR/
      manifest.json    what made it: the shards' manifest (model fingerprint, code bits), counts,
                       index kind, file sizes and checksums
      codes.parquet    code_id, code (fixed-size binary), n_postings; one row per unique code,
                       code_id = row = FAISS id
      postings.parquet code_id, seq_id, source, [record], region_start, region_end, [sequence];
                       sorted by code_id, so a code's postings are one contiguous slice
      index.faiss      faiss.IndexBinaryFlat (exact), IndexBinaryHNSW or IndexBinaryIVF
      model.ckpt       the checkpoint that made the codes, so queries are embedded by that model

Identical codes are stored once (many regions of related genomes hash alike), so the index holds
unique codes and search expands each hit through its postings. The directory is written under a
temporary name and renamed into place: a crash never leaves a half-built database.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import functools
import json
import math
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from neurohash import __version__
from neurohash.errors import NeurohashError, one_line
from neurohash.files import file_sha256
from neurohash.index.shards import (
    ShardError,
    manifest_format,
    read_manifest,
    read_shards,
    shards_manifest,
)

if TYPE_CHECKING:
    import faiss

    from neurohash.module import DistanceEmbeddingModule

FORMAT = "neurohash-db"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
CODES_FILE = "codes.parquet"
POSTINGS_FILE = "postings.parquet"
INDEX_FILE = "index.faiss"
MODEL_FILE = "model.ckpt"
DATA_FILES = (CODES_FILE, POSTINGS_FILE, INDEX_FILE)
INDEX_KINDS = ("auto", "flat", "hnsw", "ivf")
AUTO_APPROXIMATE_ABOVE = 200_000  # unique codes; a flat scan beyond this gets slow per query
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128
IVF_NPROBE = 16
POSTING_COLUMNS = (
    "seq_id",
    "source",
    "record",
    "region_start",
    "region_end",
    "sequence",
    "embedding",
)
PARQUET_OPTIONS: dict[str, Any] = {"compression": "zstd", "compression_level": 9}


class DatabaseError(NeurohashError, ValueError):
    """Shards or a database that cannot be used as asked (bad checksum, wrong model, ...)."""


# the model ----------------------------------------------------------------------------------------


def edits_per_bit(module: DistanceEmbeddingModule) -> float | None:
    """Edits per differing bit of a learned hash (exp(log_scale) * L / bits), else None.

    LearnedHash fits exp(log_scale) * hamming / bits to ED / L, so this turns a Hamming distance
    into an estimated edit distance; SimHash codes have no such scale.
    """
    log_scale = getattr(module.hashing, "log_scale", None)
    if log_scale is None:
        return None
    return math.exp(float(log_scale.detach())) * float(module.normaliser) / module.hashing.bits


# reading shards ---------------------------------------------------------------------------------


def read_json(path: Path) -> dict[str, Any]:
    """A database manifest (a JSON object); errors name the file."""
    try:
        return read_manifest(path)
    except ShardError as exc:
        raise DatabaseError(str(exc)) from exc


def code_matrix(column: pa.ChunkedArray | pa.Array, code_bytes: int) -> np.ndarray:
    """(N, code_bytes) uint8 view of a fixed_size_binary column (packed codes)."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    data = np.frombuffer(array.buffers()[1], dtype=np.uint8)
    start = array.offset * code_bytes
    return data[start : start + len(array) * code_bytes].reshape(len(array), code_bytes).copy()


# de-duplication ---------------------------------------------------------------------------------


def unique_codes(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(unique codes in byte order, code_id of every input row)."""
    width = codes.shape[1]
    keys = np.ascontiguousarray(codes).view(f"V{width}").ravel()
    uniq, inverse = np.unique(keys, return_inverse=True)
    return np.frombuffer(uniq.tobytes(), dtype=np.uint8).reshape(-1, width), inverse.ravel()


# (shard rows, code bytes) -> (unique codes in byte order, code_id of every row)
Dedupe = Callable[[pa.Table, int], tuple[np.ndarray, np.ndarray]]


def dedupe_in_memory(rows: pa.Table, code_bytes: int) -> tuple[np.ndarray, np.ndarray]:
    """The default de-duplication, with numpy on this machine (``neurohash.spark`` has Spark's)."""
    return unique_codes(code_matrix(rows.column("code"), code_bytes))


def postings_table(rows: pa.Table, code_id: np.ndarray) -> pa.Table:
    """Postings sorted by code then sequence and region, so each code's rows are contiguous."""
    columns = {"code_id": pa.array(code_id, type=pa.int64())}
    columns.update(
        {name: rows.column(name) for name in POSTING_COLUMNS if name in rows.schema.names}
    )
    table = pa.table(columns)
    keys = [("code_id", "ascending"), ("source", "ascending"), ("seq_id", "ascending")]
    return table.sort_by([*keys, ("region_start", "ascending"), ("region_end", "ascending")])


def codes_table(codes: np.ndarray, code_id: np.ndarray) -> pa.Table:
    """One row per unique code: its id (= FAISS id), bytes and number of postings."""
    width = codes.shape[1]
    counts = np.bincount(code_id, minlength=len(codes)).astype(np.int32)
    binary = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(width), len(codes), [None, pa.py_buffer(codes.tobytes())]
    )
    return pa.table(
        {
            "code_id": pa.array(np.arange(len(codes)), pa.int64()),
            "code": binary,
            "n_postings": counts,
        }
    )


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
    params: dict[str, Any] = {"kind": kind, "file": INDEX_FILE}
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


# building ---------------------------------------------------------------------------------------


def resolve_checkpoint(
    checkpoint: str | os.PathLike | None, manifest: dict[str, Any]
) -> Path | None:
    """The checkpoint to store: the one given, else one the shards' manifest names, if it exists."""
    if checkpoint is not None:
        if not Path(checkpoint).is_file():
            raise DatabaseError(f"{checkpoint}: no such checkpoint")
        return Path(checkpoint)
    for key in ("checkpoint", "ckpt_path"):
        named = manifest.get(key)
        if isinstance(named, str) and Path(named).is_file():
            return Path(named)
    return None


def model_record(checkpoint: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Load the checkpoint, refuse it unless it made the shards, and describe it."""
    from neurohash.checkpoint import load_module, model_fingerprint

    module = load_module(checkpoint)
    fingerprint = model_fingerprint(module)
    if fingerprint != manifest["model_fingerprint"]:
        raise DatabaseError(
            f"{checkpoint}: this model (fingerprint {fingerprint[:16]}) did not make these shards "
            f"(made by {str(manifest['model_fingerprint'])[:16]}); give the checkpoint that made "
            "them"
        )
    if module.hashing.bits != int(manifest["code_bits"]):
        raise DatabaseError(
            f"{checkpoint}: model emits {module.hashing.bits}-bit codes, shards hold "
            f"{manifest['code_bits']}-bit codes"
        )
    return {
        "file": MODEL_FILE,
        "source": str(checkpoint.resolve()),
        "sha256": file_sha256(checkpoint),
        "edits_per_bit": edits_per_bit(module),
    }


def write_parquet(table: pa.Table, path: Path) -> None:
    pq.write_table(table, path, **PARQUET_OPTIONS)


def build_database(
    shards_dir: str | os.PathLike,
    db_dir: str | os.PathLike,
    index: str = "auto",
    checkpoint: str | os.PathLike | None = None,
    overwrite: bool = False,
    dedupe: Dedupe = dedupe_in_memory,
) -> dict[str, Any]:
    """Build the database of ``shards_dir`` in ``db_dir`` (atomically) and return its manifest.

    ``dedupe`` finds the unique codes of the verified shard rows: in memory by default, on a
    cluster for ``neurohash spark-index``; everything else is built here either way.
    """
    manifest = shards_manifest(shards_dir)
    db_dir = Path(db_dir)
    check_destination(db_dir, overwrite, (shards_dir,))
    ckpt = resolve_checkpoint(checkpoint, manifest)
    model = model_record(ckpt, manifest) if ckpt is not None else None
    rows = read_shards(shards_dir, manifest, POSTING_COLUMNS)
    codes, code_id = dedupe(rows, int(manifest["code_bits"]) // 8)
    postings = postings_table(rows, code_id)
    kind = choose_index(index, len(codes))
    with build_lock(db_dir):
        return write_database(
            db_dir, shards_dir, manifest, codes, code_id, postings, kind, ckpt, model
        )


def write_database(
    db_dir: Path,
    shards_dir: str | os.PathLike,
    manifest: dict[str, Any],
    codes: np.ndarray,
    code_id: np.ndarray,
    postings: pa.Table,
    kind: str,
    ckpt: Path | None,
    model: dict[str, Any] | None,
) -> dict[str, Any]:
    """Write every file under a temporary name beside ``db_dir``, then move it into place."""
    tmp = db_dir.parent / f".{db_dir.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        write_parquet(codes_table(codes, code_id), tmp / CODES_FILE)
        write_parquet(postings, tmp / POSTINGS_FILE)
        faiss_index, index_params = build_index(codes, kind)
        write_index(faiss_index, tmp / INDEX_FILE)
        if ckpt is not None:
            shutil.copyfile(ckpt, tmp / MODEL_FILE)
        db_manifest = database_manifest(shards_dir, manifest, postings, codes, index_params, model)
        db_manifest["files"] = file_records(tmp)
        (tmp / MANIFEST).write_text(json.dumps(db_manifest, indent=2) + "\n")
        move_into_place(tmp, db_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return db_manifest


def write_index(index: faiss.IndexBinary, path: Path) -> None:
    import faiss

    faiss.write_index_binary(index, str(path))


def target_keys(postings: pa.Table) -> pa.ChunkedArray:
    """What makes a stored sequence one target: its input record (shards number every record),
    else its source and id. Two records that share an id are two targets, never merged."""
    if "record" in postings.column_names:
        return postings["record"]
    return pc.binary_join_element_wise(postings["source"], postings["seq_id"], "\x00")


def count_sequences(postings: pa.Table) -> int:
    """Distinct targets: the same id in two files, or twice in one file, is two sequences."""
    return len(pc.unique(target_keys(postings)))


def database_manifest(
    shards_dir: str | os.PathLike,
    shards: dict[str, Any],
    postings: pa.Table,
    codes: np.ndarray,
    index_params: dict[str, Any],
    model: dict[str, Any] | None,
) -> dict[str, Any]:
    """What the database holds and what made it."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "neurohash_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "model_fingerprint": shards["model_fingerprint"],
        "code_bits": int(shards["code_bits"]),
        "embedding_dim": shards.get("embedding_dim"),
        "max_len": shards.get("max_len"),
        "shards_dir": str(Path(shards_dir).resolve()),
        "shards_manifest": shards,
        "counts": {
            "sequences": count_sequences(postings),
            "regions": postings.num_rows,
            "unique_codes": len(codes),
        },
        "has_sequences": "sequence" in postings.column_names,
        "index": index_params,
        "model": model,
    }


def file_records(directory: Path) -> dict[str, dict[str, Any]]:
    """Size and sha256 of every file written so far (the manifest itself excluded)."""
    return {
        path.name: {"bytes": path.stat().st_size, "sha256": file_sha256(path)}
        for path in sorted(directory.iterdir())
        if path.name != MANIFEST
    }


def is_database(path: Path) -> bool:
    """A directory whose manifest says it is a neurohash database (shard directories have a
    manifest too, of another format)."""
    return manifest_format(path / MANIFEST) == FORMAT


def check_destination(
    db_dir: Path, overwrite: bool, inputs: tuple[str | os.PathLike, ...] = ()
) -> None:
    """Refuse to clobber anything but an empty directory or (with overwrite) a database, and
    never a directory that holds, or lies inside, one of the build's ``inputs``."""
    target = db_dir.resolve()
    for source in inputs:
        source = Path(source).resolve()
        if target == source or target in source.parents or source in target.parents:
            raise DatabaseError(f"{db_dir}: is or overlaps the build's input {source}")
    if not db_dir.exists():
        return
    if not db_dir.is_dir():
        raise DatabaseError(f"{db_dir}: exists and is not a directory")
    if not any(db_dir.iterdir()):
        return
    if not is_database(db_dir):
        raise DatabaseError(f"{db_dir}: exists, is not empty and is not a neurohash database")
    if not overwrite:
        raise DatabaseError(f"{db_dir}: a database is already there (use --force to replace it)")


@contextlib.contextmanager
def build_lock(db_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on the database's parent directory for the whole build, and clean
    what killed builds of the same name left: with the lock held, no other build is running, so
    every ``.NAME.tmp-*`` is stale, and a ``.NAME.old-*`` is a database a crash left hidden."""
    parent = db_dir.parent
    parent.mkdir(parents=True, exist_ok=True)
    handle = os.open(parent, os.O_RDONLY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        clean_leftovers(db_dir)
        yield
    finally:
        os.close(handle)  # releases the lock


def clean_leftovers(db_dir: Path) -> None:
    """Remove temporary directories of killed builds; put back a hidden old database where a
    crash left no database under the name (only possible without an atomic exchange)."""
    for tmp in db_dir.parent.glob(f".{db_dir.name}.tmp-*"):
        shutil.rmtree(tmp, ignore_errors=True)
    for old in sorted(db_dir.parent.glob(f".{db_dir.name}.old-*")):
        if not db_dir.exists() and is_database(old):
            old.rename(db_dir)
        else:
            shutil.rmtree(old, ignore_errors=True)


def exchange(a: Path, b: Path) -> bool:
    """Swap two directories in one atomic step (Linux renameat2 RENAME_EXCHANGE); False where
    the system or file system cannot."""
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    done = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0
    if not done and ctypes.get_errno() not in (errno.EINVAL, errno.ENOSYS, errno.EXDEV):
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), str(b))
    return done


def move_into_place(tmp: Path, db_dir: Path) -> None:
    """Put the finished temporary directory under ``db_dir``: readers see the old database or
    the new one, never none. An existing database is swapped out atomically and then removed."""
    if db_dir.exists() and not any(db_dir.iterdir()):
        db_dir.rmdir()
    if not db_dir.exists():
        tmp.rename(db_dir)
        return
    old = db_dir.parent / f".{db_dir.name}.old-{uuid.uuid4().hex[:8]}"
    if exchange(tmp, db_dir):
        tmp.rename(old)  # the old database, now under the temporary name
    else:  # two renames: a crash between them is repaired by the next build (clean_leftovers)
        db_dir.rename(old)
        tmp.rename(db_dir)
    shutil.rmtree(old, ignore_errors=True)


# opening ----------------------------------------------------------------------------------------


@dataclass
class Database:
    """An opened database: codes, postings, the FAISS index and per-posting target numbers.

    A *target* is one stored sequence (one input record, see ``target_keys``); ``target_of[p]``
    is the target of posting row ``p``, ``offsets[c]:offsets[c + 1]`` the posting rows of code
    ``c``.
    """

    path: Path
    manifest: dict[str, Any]
    codes: np.ndarray
    postings: pa.Table
    index: faiss.IndexBinary
    offsets: np.ndarray
    target_of: np.ndarray

    @classmethod
    def open(cls, db_dir: str | os.PathLike) -> Database:
        """Open ``db_dir`` read-only, after checking every file against the sha256 and size the
        manifest recorded and the manifest's counts and settings against the data (errors name
        the file at fault)."""
        path = Path(db_dir)
        if not path.is_dir():
            raise DatabaseError(f"{db_dir}: no such database directory")
        manifest = read_json(path / MANIFEST)
        if manifest.get("format") != FORMAT:
            raise DatabaseError(f"{db_dir}: not a neurohash database (manifest format)")
        if int(manifest.get("format_version", 0)) > FORMAT_VERSION:
            raise DatabaseError(f"{db_dir}: made by a newer neurohash (format {FORMAT_VERSION})")
        check_files(path, manifest)
        code_bytes = manifest_code_bytes(path, manifest)
        code_column = read_parquet(path / CODES_FILE).column("code")
        if code_column.type != pa.binary(code_bytes):
            raise DatabaseError(
                f"{path / MANIFEST}: code_bits {manifest['code_bits']}, but {CODES_FILE} holds "
                f"codes of type {code_column.type}"
            )
        codes = code_matrix(code_column, code_bytes)
        postings = read_parquet(path / POSTINGS_FILE).combine_chunks()
        offsets = posting_offsets(postings, len(codes), path)
        target_of = pc.dictionary_encode(target_keys(postings)).combine_chunks().indices.to_numpy()
        index = read_index(path / INDEX_FILE, manifest.get("index"))
        check_counts(
            path, manifest, index, len(codes), postings.num_rows, int(target_of.max(initial=-1)) + 1
        )
        return cls(path, manifest, codes, postings, index, offsets, target_of.astype(np.int64))

    @property
    def code_bits(self) -> int:
        return int(self.manifest["code_bits"])

    @property
    def model_path(self) -> Path | None:
        """The stored checkpoint that embeds queries, if the database has one."""
        model = self.manifest.get("model")
        return self.path / model["file"] if model else None

    def load_model(self) -> DistanceEmbeddingModule:
        """The stored checkpoint's model, refused unless it is the one that made the codes."""
        from neurohash.checkpoint import load_module, model_fingerprint

        path = self.model_path
        if path is None or not path.is_file():
            raise DatabaseError(
                f"{self.path}: holds no model checkpoint to embed queries (rebuild it with --ckpt)"
            )
        module = load_module(path)
        if model_fingerprint(module) != self.manifest["model_fingerprint"]:
            raise DatabaseError(f"{path}: does not match the database manifest's model fingerprint")
        return module

    @property
    def edits_per_bit(self) -> float | None:
        model = self.manifest.get("model") or {}
        return model.get("edits_per_bit")

    @property
    def has_embeddings(self) -> bool:
        return "embedding" in self.postings.column_names

    @functools.cached_property
    def embeddings(self) -> np.ndarray:
        """(postings, D) float16 region embeddings, for refining Hamming candidates."""
        if not self.has_embeddings:
            raise DatabaseError(f"{self.path}: stores no region embeddings")
        column = self.postings.column("embedding").combine_chunks()
        dim = column.type.list_size
        return column.flatten().to_numpy(zero_copy_only=False).reshape(-1, dim)

    @property
    def has_sequences(self) -> bool:
        return "sequence" in self.postings.column_names

    def sequences(self) -> list[str]:
        """Region sequences of all postings, in posting order."""
        return self.region_sequences(np.arange(self.postings.num_rows))

    def region_sequences(self, rows: np.ndarray) -> list[str]:
        """Region sequences of the given posting rows (for exact re-ranking)."""
        if not self.has_sequences:
            raise DatabaseError(
                f"{self.path}: stores no region sequences, so exact re-ranking is impossible "
                "(write shards with sequences and rebuild)"
            )
        column = self.postings.column("sequence")
        return column.take(pa.array(np.asarray(rows, dtype=np.int64))).to_pylist()

    def stats(self) -> dict[str, Any]:
        """Sequences, regions, unique codes and on-disk bytes (per region: data files only)."""
        counts = self.manifest["counts"]
        sizes = {name: (self.path / name).stat().st_size for name in DATA_FILES}
        model = self.model_path
        data_bytes = sum(sizes.values())
        regions = int(counts["regions"])
        return {
            "database": str(self.path),
            "sequences": int(counts["sequences"]),
            "regions": regions,
            "unique_codes": int(counts["unique_codes"]),
            "code_bits": self.code_bits,
            "index": self.manifest["index"]["kind"],
            "has_sequences": self.has_sequences,
            "bytes_data": data_bytes,
            "bytes_per_region": data_bytes / regions if regions else 0.0,
            "bytes_index": sizes[INDEX_FILE],
            "bytes_codes": sizes[CODES_FILE],
            "bytes_postings": sizes[POSTINGS_FILE],
            "bytes_model": model.stat().st_size if model and model.is_file() else 0,
            "model_fingerprint": self.manifest["model_fingerprint"],
        }


def verify_database(db_dir: str | os.PathLike) -> dict[str, Any]:
    """``neurohash verify``: every check of ``Database.open`` (sha256 and size of every file,
    counts and settings against the data) and the stored model (its weights digest, and that
    it made the codes). Returns what was checked; any failure is a DatabaseError or
    CheckpointError naming the file."""
    db = Database.open(db_dir)
    if db.model_path is not None:
        db.load_model()
    return {
        "database": str(db.path),
        "files": sorted(db.manifest["files"]),
        "model": db.model_path is not None,
        **db.manifest["counts"],
    }


def check_files(path: Path, manifest: dict[str, Any]) -> None:
    """Every data file present, and every recorded file (the model too) of the size and sha256
    the manifest recorded: a flipped byte would otherwise give other hits with exit status 0.
    Hashing runs at about 1.5 GB/s, a fraction of the time reading the postings takes."""
    recorded = manifest.get("files")
    if not isinstance(recorded, dict):
        raise DatabaseError(f"{path / MANIFEST}: records no files")
    for name in DATA_FILES:
        if name not in recorded:
            raise DatabaseError(f"{path / MANIFEST}: does not record {name}")
    for name, record in sorted(recorded.items()):
        file = path / name
        if not file.is_file():
            raise DatabaseError(f"{file}: missing from the database")
        if file.stat().st_size != int(record["bytes"]):
            raise DatabaseError(
                f"{file}: {file.stat().st_size} bytes, the manifest says {record['bytes']} "
                "(truncated or replaced; rebuild the database)"
            )
        if file_sha256(file) != record["sha256"]:
            raise DatabaseError(
                f"{file}: sha256 does not match the manifest (corrupted; rebuild the database)"
            )


def manifest_code_bytes(path: Path, manifest: dict[str, Any]) -> int:
    """Bytes per code, from a manifest whose code_bits must be a positive multiple of 8."""
    bits = manifest.get("code_bits")
    if not isinstance(bits, int) or bits <= 0 or bits % 8:
        raise DatabaseError(f"{path / MANIFEST}: code_bits {bits!r} is not a multiple of 8")
    return bits // 8


def read_parquet(path: Path) -> pa.Table:
    """A database table; a file Parquet cannot decode is a DatabaseError naming it."""
    try:
        return pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise DatabaseError(f"{path}: unreadable ({one_line(exc)}); rebuild the database") from exc


def check_counts(
    path: Path,
    manifest: dict[str, Any],
    index: faiss.IndexBinary,
    codes: int,
    regions: int,
    sequences: int,
) -> None:
    """The manifest's counts and code width against the data itself (a hand-edited manifest
    must not be reported as true)."""
    if index.ntotal != codes or index.d != int(manifest["code_bits"]):
        raise DatabaseError(
            f"{path / INDEX_FILE}: holds {index.ntotal} codes of {index.d} bits, the codes table "
            f"{codes} of {manifest['code_bits']}"
        )
    counts = manifest.get("counts") or {}
    actual = {"sequences": sequences, "regions": regions, "unique_codes": codes}
    for name, value in actual.items():
        if counts.get(name) != value:
            raise DatabaseError(
                f"{path / MANIFEST}: counts {name} = {counts.get(name)!r}, the data holds {value} "
                "(edited, or counted by an older neurohash: rebuild the database)"
            )


def posting_offsets(postings: pa.Table, n_codes: int, path: Path) -> np.ndarray:
    """Start of each code's postings (postings are sorted by code_id; checked)."""
    code_id = postings.column("code_id").to_numpy()
    if len(code_id) and (np.any(np.diff(code_id) < 0) or code_id[0] < 0 or code_id[-1] >= n_codes):
        raise DatabaseError(f"{path / POSTINGS_FILE}: postings are not sorted by valid code ids")
    offsets = np.zeros(n_codes + 1, dtype=np.int64)
    np.cumsum(np.bincount(code_id, minlength=n_codes), out=offsets[1:])
    return offsets


def read_index(path: Path, params: dict[str, Any]) -> faiss.IndexBinary:
    """Read the FAISS index and restore its search-time parameters."""
    import faiss

    try:
        index = faiss.read_index_binary(str(path))
    except RuntimeError as exc:
        raise DatabaseError(f"{path}: unreadable FAISS index ({one_line(exc)})") from exc
    # read_index_binary returns the concrete class (downcasting again would free it under us)
    kind = {
        faiss.IndexBinaryFlat: "flat",
        faiss.IndexBinaryHNSW: "hnsw",
        faiss.IndexBinaryIVF: "ivf",
    }.get(type(index))
    if not isinstance(params, dict) or params.get("kind") != kind:
        raise DatabaseError(
            f"{path.parent / MANIFEST}: index {params!r} does not describe {path.name} ({kind})"
        )
    if kind == "hnsw":
        index.hnsw.efSearch = int(params.get("ef_search", HNSW_EF_SEARCH))
    elif kind == "ivf":
        index.nprobe = int(params.get("nprobe", IVF_NPROBE))
    return index
