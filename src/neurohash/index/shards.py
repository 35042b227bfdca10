"""The hash-shard format, written by the predict loop (``neurohash.predict``) and by the Spark
build (``neurohash.spark``) alike, and read by ``neurohash index``::

    DIR/shard-000000.parquet        seq_id, source, record, region_start, region_end,
                                    code (fixed_size_binary), [embedding], [sequence]
    DIR/shard-000000.done.json      marker: rows, sha256, record range, cleaning counts, job key
    DIR/manifest.json               model fingerprint, code bits, shards, inputs, settings

Each shard holds the rows of a range of consecutive input records. A shard and its marker are
each written under a temporary name and renamed into place; a shard counts as finished when its
file matches the sha256 in its marker and the marker names the same job, so a rerun skips it.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from neurohash.errors import NeurohashError
from neurohash.files import TMP_SUFFIX, file_sha256, replace_atomically, temporary, write_json

FORMAT = "neurohash-shards"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MARKER_SUFFIX = ".done.json"
PARQUET_COMPRESSION = "zstd"


REQUIRED_COLUMNS = ("seq_id", "source", "region_start", "region_end", "code")


class ShardError(NeurohashError, ValueError):
    """A shard directory a run cannot use or read (another job's shards, someone else's files,
    a shard that does not match its manifest)."""


def shard_name(shard: int) -> str:
    return f"shard-{shard:06d}.parquet"


def marker_name(shard: int) -> str:
    return f"shard-{shard:06d}{MARKER_SUFFIX}"


@dataclass
class ShardProgress:
    """What one slot has done with one shard so far; becomes the shard's marker facts."""

    shard: int
    first: int
    seen: int = 0
    kept: int = 0
    rows: int = 0
    dropped: dict[str, int] = field(default_factory=dict)

    def finish(self, end: int, last: bool) -> dict[str, Any]:
        return {
            "shard": self.shard,
            "records": [self.first, end],
            "last": last,
            "rows": self.rows,
            "cleaning": {"seen": self.seen, "kept": self.kept, "dropped": dict(self.dropped)},
        }


def shard_schema(code_bits: int, embedding_dim: int | None, store_sequences: bool) -> pa.Schema:
    """One row per region; ``embedding_dim`` None leaves the embedding column out."""
    fields = [
        pa.field("seq_id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("record", pa.int64(), nullable=False),
        pa.field("region_start", pa.int32(), nullable=False),
        pa.field("region_end", pa.int32(), nullable=False),
        pa.field("code", pa.binary(code_bits // 8), nullable=False),
    ]
    if embedding_dim is not None:
        fields.append(pa.field("embedding", pa.list_(pa.float16(), embedding_dim)))
    if store_sequences:
        fields.append(pa.field("sequence", pa.string(), nullable=False))
    return pa.schema(fields)


def prediction_table(prediction: dict[str, Any], schema: pa.Schema) -> pa.Table:
    """The rows of one predicted batch as an Arrow table of ``schema``."""
    code = np.ascontiguousarray(prediction["code"], dtype=np.uint8)
    n, width = code.shape
    columns: dict[str, pa.Array] = {
        "seq_id": pa.array(prediction["seq_id"], pa.string()),
        "source": pa.array(prediction["source"], pa.string()),
        "record": pa.array(prediction["record"], pa.int64()),
        "region_start": pa.array(prediction["region_start"], pa.int32()),
        "region_end": pa.array(prediction["region_end"], pa.int32()),
        "code": pa.FixedSizeBinaryArray.from_buffers(
            pa.binary(width), n, [None, pa.py_buffer(code.tobytes())]
        ),
    }
    if "embedding" in schema.names:
        emb = np.ascontiguousarray(prediction["embedding"], dtype=np.float16)
        columns["embedding"] = pa.FixedSizeListArray.from_arrays(
            pa.array(emb.reshape(-1), pa.float16()), emb.shape[1]
        )
    if "sequence" in schema.names:
        columns["sequence"] = pa.array(prediction["sequence"], pa.string())
    return pa.Table.from_pydict(columns, schema=schema)


def write_shard(output_dir: Path, table: pa.Table, info: dict[str, Any], job_key: str) -> None:
    """The shard's Parquet file, then its marker, each atomically (a temp name, then rename)."""
    path = output_dir / shard_name(info["shard"])
    tmp = temporary(path)
    pq.write_table(table, tmp, compression=PARQUET_COMPRESSION)
    replace_atomically(tmp, path)
    marker = {
        **info,
        "format": FORMAT,
        "job": job_key,
        "file": path.name,
        "rows": table.num_rows,
        "bytes": path.stat().st_size,
        "sha256": file_sha256(path),
    }
    write_json(output_dir / marker_name(info["shard"]), marker)


def check_output_dir(output_dir: Path) -> None:
    """Refuse a directory holding anything but a predict run's own files: a database's manifest
    or a user's files would otherwise be overwritten (or mixed into the shards)."""
    if not output_dir.exists():
        return
    if not output_dir.is_dir():
        raise ShardError(f"{output_dir}: exists and is not a directory")
    own = re.compile(rf"shard-\d+(\.parquet|{re.escape(MARKER_SUFFIX)})({re.escape(TMP_SUFFIX)})?")
    for path in output_dir.iterdir():
        if path.name in (MANIFEST, MANIFEST + TMP_SUFFIX) and manifest_format(path) == FORMAT:
            continue
        if not own.fullmatch(path.name):
            raise ShardError(
                f"{output_dir}: holds {path.name}, which no predict run writes; give an empty or "
                "new output_dir"
            )


def manifest_format(path: Path) -> str | None:
    """The ``format`` a manifest declares (shards, a database), or None for anything else."""
    try:
        return json.loads(path.read_text()).get("format")
    except (OSError, ValueError, AttributeError):
        return None


def read_markers(output_dir: Path, job_key: str) -> dict[int, dict[str, Any]]:
    """Markers of ``output_dir`` by shard; markers of another job are an error (never mixed)."""
    markers: dict[int, dict[str, Any]] = {}
    for path in sorted(output_dir.glob(f"shard-*{MARKER_SUFFIX}")):
        try:
            marker = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue  # unreadable: that shard is simply redone
        if marker.get("job") != job_key:
            raise ShardError(
                f"{output_dir}: holds shards of another job (different model, input content or "
                "settings: an input edited since they were written counts); use an empty "
                "output_dir"
            )
        markers[int(marker["shard"])] = marker
    return markers


def finished_shards(output_dir: Path, job_key: str) -> dict[int, dict[str, Any]]:
    """Markers of shards whose file is present and matches the marker's sha256."""
    finished = {}
    for shard, marker in read_markers(output_dir, job_key).items():
        path = output_dir / marker["file"]
        present = path.is_file() and path.stat().st_size == marker["bytes"]
        if present and file_sha256(path) == marker["sha256"]:
            finished[shard] = marker
    return finished


def shard_summary(markers: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """Shard list and totals; raises unless shards 0..n-1 are all there, the last one marked."""
    shards = sorted(markers)
    last = [s for s in shards if markers[s]["last"]]
    if not shards or shards != list(range(len(shards))) or last != [shards[-1]]:
        raise RuntimeError(f"incomplete shard set {shards} (last: {last})")
    dropped: dict[str, int] = {}
    for marker in markers.values():
        for reason, count in marker["cleaning"]["dropped"].items():
            dropped[reason] = dropped.get(reason, 0) + count
    entries = [
        {k: markers[s][k] for k in ("file", "rows", "sha256", "bytes", "records", "shard")}
        for s in shards
    ]
    return {
        "shards": entries,
        "rows": sum(e["rows"] for e in entries),
        "records": markers[shards[-1]]["records"][1],
        "records_kept": sum(m["cleaning"]["kept"] for m in markers.values()),
        "dropped": dropped,
    }


def write_manifest(output_dir: Path, job_key: str, base: dict[str, Any]) -> dict[str, Any]:
    """The run's manifest (atomically), built from the markers of all shards; stray temp files
    of killed runs are removed."""
    manifest = {**base, **shard_summary(finished_shards(output_dir, job_key))}
    manifest["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    write_json(output_dir / MANIFEST, manifest)
    for tmp in output_dir.glob(f"*{TMP_SUFFIX}"):
        tmp.unlink(missing_ok=True)
    return manifest


# reading (neurohash index) ----------------------------------------------------------------------


def read_manifest(path: Path) -> dict[str, Any]:
    """A manifest (a JSON object) from ``path``, with errors that name the file."""
    if not path.is_file():
        raise ShardError(f"{path}: no such file")
    try:
        value = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ShardError(f"{path}: not a readable JSON manifest ({exc})") from exc
    if not isinstance(value, dict):
        raise ShardError(f"{path}: manifest is not a JSON object")
    return value


def shards_manifest(shards_dir: str | os.PathLike) -> dict[str, Any]:
    """The predict loop's manifest, checked for the fields the database relies on."""
    path = Path(shards_dir) / MANIFEST
    if not Path(shards_dir).is_dir():
        raise ShardError(f"{shards_dir}: no such shards directory")
    manifest = read_manifest(path)
    for key in ("model_fingerprint", "code_bits", "shards"):
        if key not in manifest:
            raise ShardError(f"{path}: manifest lacks '{key}'")
    if int(manifest["code_bits"]) % 8:
        raise ShardError(f"{path}: code_bits {manifest['code_bits']} is not a multiple of 8")
    if not manifest["shards"]:
        raise ShardError(f"{path}: lists no shards")
    return manifest


def verify_shard(shards_dir: Path, entry: dict[str, Any]) -> Path:
    """The shard's path, after checking it exists and matches its manifest checksum and rows."""
    path = shards_dir / entry["file"]
    if not path.is_file():
        raise ShardError(f"{path}: listed in the manifest but missing")
    if file_sha256(path) != entry["sha256"]:
        raise ShardError(f"{path}: sha256 does not match the manifest (corrupt or replaced)")
    rows = pq.ParquetFile(path).metadata.num_rows
    if rows != int(entry["rows"]):
        raise ShardError(f"{path}: {rows} rows, the manifest says {entry['rows']}")
    return path


def read_shard(path: Path, code_bytes: int, columns: tuple[str, ...]) -> pa.Table:
    """The ``columns`` present (sequences and embeddings only where stored) and the codes of one
    shard, after checking the columns every shard has."""
    schema = pq.read_schema(path)
    missing = [name for name in REQUIRED_COLUMNS if name not in schema.names]
    if missing:
        raise ShardError(f"{path}: shard lacks columns {missing}")
    if schema.field("code").type != pa.binary(code_bytes):
        raise ShardError(
            f"{path}: code column is {schema.field('code').type}, expected "
            f"fixed_size_binary({code_bytes}) for the manifest's code_bits"
        )
    present = [name for name in (*columns, "code") if name in schema.names]
    table = pq.read_table(path, columns=present)
    if table.column("code").null_count:
        raise ShardError(f"{path}: {table.column('code').null_count} rows have no code")
    return table


def read_shards(
    shards_dir: str | os.PathLike, manifest: dict[str, Any], columns: tuple[str, ...]
) -> pa.Table:
    """``columns`` and codes of all verified shards as one table (the same columns in every
    shard, else an error)."""
    shards_dir = Path(shards_dir)
    code_bytes = int(manifest["code_bits"]) // 8
    tables = [
        read_shard(verify_shard(shards_dir, e), code_bytes, columns) for e in manifest["shards"]
    ]
    names = tables[0].column_names
    for entry, table in zip(manifest["shards"], tables, strict=True):
        if table.column_names != names:
            raise ShardError(
                f"{shards_dir / entry['file']}: columns {table.column_names} differ from {names}"
            )
    return pa.concat_tables(tables, promote_options="permissive")
