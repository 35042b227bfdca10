"""The hash database: a directory of immutable segments and a manifest that lists them.

``neurohash index SHARDS -o DB`` builds it from the predict loop's Parquet shards, streaming: at
most ``segment_regions`` regions (whole shards) are read and built at a time, so peak memory
depends on the segment size, not on the collection::

    DB/
      manifest.json       what made it (model fingerprint, code bits, region settings, the shard
                          runs it holds), its segments in order with their counts, and the model
      model.ckpt          the checkpoint that made the codes, so queries are embedded by that model
      segments/seg-000000/  one segment (``neurohash.index.segment``): codes, postings, FAISS
                          index, compact sequence store, optional int8 embeddings

A database grows by ``--append`` (new segments, then a new manifest: one atomic rename) and
``neurohash compact`` merges small segments into larger ones (identical codes are stored once
within a segment). A stored sequence is one *target*; targets are numbered across segments in
the order they were added (``target_base`` of each segment). A new database is written under a
temporary name and renamed into place; a build, append or compaction killed at any point leaves
the previous database as it was.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import math
import os
import shutil
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from neurohash import __version__
from neurohash.files import file_sha256, write_json
from neurohash.index.segment import (
    ROW_COLUMNS,
    SEGMENT_MANIFEST,
    DatabaseError,
    Dedupe,
    Segment,
    build_segment,
    dedupe_in_memory,
    part_sizes,
    segment_rows,
)
from neurohash.index.shards import (
    ShardError,
    manifest_format,
    read_manifest,
    read_shards,
    shards_manifest,
    verify_shard,
)

if TYPE_CHECKING:
    from neurohash.module import DistanceEmbeddingModule

__all__ = ["Database", "DatabaseError", "build_database", "append_database", "compact_database"]

FORMAT = "neurohash-db"
FORMAT_VERSION = 2
MANIFEST = "manifest.json"
MODEL_FILE = "model.ckpt"
SEGMENTS_DIR = "segments"
SEGMENT_REGIONS = 500_000  # regions per segment a build reads and indexes at once


# the model ----------------------------------------------------------------------------------------


def edits_per_bit(module: DistanceEmbeddingModule) -> float | None:
    """Edits per differing bit of a learned hash (exp(log_scale) * L / bits), else None.

    LearnedHash (and RankHash) fit exp(log_scale) * hamming / bits to ED / L, so this turns a
    Hamming distance into an estimated edit distance; SimHash and ITQ codes have no such scale.
    """
    log_scale = getattr(module.hashing, "log_scale", None)
    if log_scale is None:
        return None
    return math.exp(float(log_scale.detach())) * float(module.normaliser) / module.hashing.bits


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


# building segments from shards ------------------------------------------------------------------


def read_json(path: Path) -> dict[str, Any]:
    """A database manifest (a JSON object); errors name the file."""
    try:
        return read_manifest(path)
    except ShardError as exc:
        raise DatabaseError(str(exc)) from exc


def segment_groups(shards: list[dict[str, Any]], segment_regions: int) -> list[list[dict]]:
    """Consecutive shards in groups of at most ``segment_regions`` rows (a larger shard is a
    group of its own): each group becomes one segment."""
    if segment_regions < 1:
        raise DatabaseError(f"segment size must be at least 1 region, got {segment_regions}")
    groups: list[list[dict]] = [[]]
    rows = 0
    for entry in shards:
        if groups[-1] and rows + int(entry["rows"]) > segment_regions:
            groups.append([])
            rows = 0
        groups[-1].append(entry)
        rows += int(entry["rows"])
    return groups


def stored_columns(schema: pa.Schema) -> dict[str, Any]:
    """Whether rows hold sequences, and the width of their embeddings (None: not stored);
    every segment of a database stores the same."""
    dim = schema.field("embedding").type.list_size if "embedding" in schema.names else None
    return {"sequences": "sequence" in schema.names, "embeddings": dim}


def shards_stored(shards_dir: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """``stored_columns`` of the first shard (the others are checked as they are read)."""
    import pyarrow.parquet as pq

    return stored_columns(pq.read_schema(verify_shard(shards_dir, manifest["shards"][0])))


def database_stored(db: dict[str, Any]) -> dict[str, Any]:
    """``stored_columns`` of a database, from its manifest."""
    return {
        "sequences": db["has_sequences"],
        "embeddings": db["embedding_dim"] if db["has_embeddings"] else None,
    }


def segment_name(number: int) -> str:
    return f"seg-{number:06d}"


def build_segments(
    shards_dir: Path,
    manifest: dict[str, Any],
    segments_dir: Path,
    first: int,
    target_base: int,
    options: BuildOptions,
    stored: dict[str, Any],
) -> list[dict[str, Any]]:
    """Segments of the shards, numbered from ``first`` and written under temporary names in
    ``segments_dir``, then renamed (a listed segment is always whole). Returns their entries."""
    entries = []
    for number, group in enumerate(segment_groups(manifest["shards"], options.segment_regions)):
        rows = read_shards(shards_dir, {**manifest, "shards": group}, ROW_COLUMNS)
        if stored["embeddings"] is None and "embedding" in rows.column_names:
            rows = rows.drop_columns(["embedding"])
        if stored_columns(rows.schema) != stored:
            raise DatabaseError(
                f"{shards_dir / group[0]['file']}: stores sequences/embeddings unlike the rest "
                f"of the database ({stored})"
            )
        name = segment_name(first + number)
        tmp = segments_dir / f".{name}.tmp"
        description = build_segment(
            rows, tmp, int(manifest["code_bits"]) // 8, options.index, options.dedupe
        )
        del rows
        tmp.rename(segments_dir / name)
        entries.append(segment_entry(name, description, target_base, segments_dir))
        target_base += int(description["counts"]["records"])
    return entries


def segment_entry(
    name: str, description: dict[str, Any], target_base: int, segments_dir: Path
) -> dict[str, Any]:
    """The manifest's line for a segment: its counts, bytes by part, first target, checksum."""
    return {
        "name": name,
        "target_base": target_base,
        **description["counts"],
        "bytes": part_sizes(description["files"]),
        "index": description["index"]["kind"],
        "sha256": file_sha256(segments_dir / name / SEGMENT_MANIFEST),
    }


@dataclass(frozen=True)
class BuildOptions:
    """How segments are built: FAISS index kind, regions per segment, code de-duplication."""

    index: str = "auto"
    segment_regions: int = SEGMENT_REGIONS
    dedupe: Dedupe = dedupe_in_memory


def source_record(shards_dir: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """What one shard run brought to the database: its job and the bytes of its input files."""
    inputs = [Path(p) for p in manifest.get("input_files") or []]
    return {
        "shards_dir": str(shards_dir.resolve()),
        "job": manifest.get("job"),
        "regions": int(manifest.get("rows", 0)),
        "input_files": [str(p) for p in inputs],
        "input_bytes": sum(p.stat().st_size for p in inputs if p.is_file()),
    }


def database_manifest(
    shards: dict[str, Any],
    segments: list[dict[str, Any]],
    sources: list[dict[str, Any]],
    stored: dict[str, Any],
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
        "embedding_dim": stored["embeddings"],
        "max_len": shards.get("max_len"),
        "regions": shards.get("regions"),
        "cleaning": shards.get("cleaning"),
        "has_sequences": stored["sequences"],
        "has_embeddings": stored["embeddings"] is not None,
        "sources": sources,
        "segments": segments,
        "next_segment": next_segment(segments),
        "counts": totals(segments),
        "model": model,
    }


def next_segment(segments: list[dict[str, Any]]) -> int:
    return max((int(s["name"].split("-")[1]) for s in segments), default=-1) + 1


def totals(segments: list[dict[str, Any]]) -> dict[str, int]:
    """Sequences (targets), regions and stored unique codes over all segments."""
    return {
        "sequences": sum(int(s["records"]) for s in segments),
        "regions": sum(int(s["regions"]) for s in segments),
        "unique_codes": sum(int(s["unique_codes"]) for s in segments),
        "segments": len(segments),
    }


def build_database(
    shards_dir: str | os.PathLike,
    db_dir: str | os.PathLike,
    index: str = "auto",
    checkpoint: str | os.PathLike | None = None,
    overwrite: bool = False,
    dedupe: Dedupe = dedupe_in_memory,
    segment_regions: int = SEGMENT_REGIONS,
    embeddings: bool = True,
) -> dict[str, Any]:
    """Build the database of ``shards_dir`` in ``db_dir`` (atomically) and return its manifest.

    ``dedupe`` finds the unique codes of each segment's verified rows: in memory by default, on
    a cluster for ``neurohash spark-index``; everything else is built here either way.
    ``embeddings=False`` leaves the shards' embeddings out (no ``--refine``, a smaller database).
    """
    shards_dir, db_dir = Path(shards_dir), Path(db_dir)
    manifest = shards_manifest(shards_dir)
    check_destination(db_dir, overwrite, (shards_dir,))
    ckpt = resolve_checkpoint(checkpoint, manifest)
    model = model_record(ckpt, manifest) if ckpt is not None else None
    options = BuildOptions(index, segment_regions, dedupe)
    stored = shards_stored(shards_dir, manifest)
    if not embeddings:
        stored["embeddings"] = None
    with build_lock(db_dir):
        tmp = db_dir.parent / f".{db_dir.name}.tmp-{uuid.uuid4().hex[:8]}"
        try:
            (tmp / SEGMENTS_DIR).mkdir(parents=True)
            segments = build_segments(
                shards_dir, manifest, tmp / SEGMENTS_DIR, 0, 0, options, stored
            )
            if ckpt is not None:
                shutil.copyfile(ckpt, tmp / MODEL_FILE)
            sources = [source_record(shards_dir, manifest)]
            db_manifest = database_manifest(manifest, segments, sources, stored, model)
            write_json(tmp / MANIFEST, db_manifest)
            move_into_place(tmp, db_dir)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return db_manifest


# growing and compacting -------------------------------------------------------------------------


def database_of(db_dir: Path) -> dict[str, Any]:
    """The manifest of an existing database this neurohash can change."""
    if not db_dir.is_dir():
        raise DatabaseError(f"{db_dir}: no such database directory")
    manifest = read_json(db_dir / MANIFEST)
    check_format(db_dir, manifest)
    return manifest


def check_compatible(db_dir: Path, db: dict[str, Any], shards_dir: Path, shards: dict) -> None:
    """Refuse shards another model made, or made with other region or cleaning settings, or
    shards already in the database."""
    if shards["model_fingerprint"] != db["model_fingerprint"]:
        raise DatabaseError(
            f"{shards_dir}: made by another model (fingerprint "
            f"{str(shards['model_fingerprint'])[:16]}) than database {db_dir} "
            f"({str(db['model_fingerprint'])[:16]}); embed them with the database's model"
        )
    for key in ("code_bits", "regions", "cleaning"):
        given, stored, hint = shards.get(key), db.get(key), ""
        if key == "regions" and given and stored:  # made before canonical anchors or strides
            given, stored = ({"canonical": False, "stride": None, **r} for r in (given, stored))
            if given["canonical"] != stored["canonical"]:
                hint = f"; embed them with predict.py regions.canonical={stored['canonical']}"
        if given != stored:
            raise DatabaseError(
                f"{shards_dir}: {key} {given!r} differ from database {db_dir} ({stored!r}){hint}"
            )
    if any(s.get("job") == shards.get("job") for s in db["sources"]):
        raise DatabaseError(f"{shards_dir}: these shards are already in database {db_dir}")


def append_database(
    shards_dir: str | os.PathLike,
    db_dir: str | os.PathLike,
    index: str = "auto",
    dedupe: Dedupe = dedupe_in_memory,
    segment_regions: int = SEGMENT_REGIONS,
) -> dict[str, Any]:
    """Add the shards of ``shards_dir`` to the database as new segments. The new manifest
    replaces the old one in one rename, so a kill leaves the old database whole."""
    shards_dir, db_dir = Path(shards_dir), Path(db_dir)
    shards = shards_manifest(shards_dir)
    check_destination(db_dir, True, (shards_dir,))
    with build_lock(db_dir):
        db = database_of(db_dir)
        remove_unlisted_segments(db_dir, db)
        check_compatible(db_dir, db, shards_dir, shards)
        stored = database_stored(db)
        given = shards_stored(shards_dir, shards)
        if stored["embeddings"] is None:  # the database keeps none: leave the shards' out
            given["embeddings"] = None
        if given != stored:
            raise DatabaseError(
                f"{shards_dir}: stores sequences/embeddings unlike database {db_dir} ({stored})"
            )
        options = BuildOptions(index, segment_regions, dedupe)
        base = int(db["counts"]["sequences"])
        added = build_segments(
            shards_dir, shards, db_dir / SEGMENTS_DIR, db["next_segment"], base, options, stored
        )
        sources = [*db["sources"], source_record(shards_dir, shards)]
        return replace_manifest(db_dir, db, [*db["segments"], *added], sources)


def replace_manifest(
    db_dir: Path, db: dict[str, Any], segments: list[dict[str, Any]], sources: list[dict]
) -> dict[str, Any]:
    """Write the manifest of the changed database (atomically) and drop unlisted segments."""
    manifest = {
        **db,
        "segments": segments,
        "sources": sources,
        "next_segment": max(db["next_segment"], next_segment(segments)),
        "counts": totals(segments),
        "modified": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    write_json(db_dir / MANIFEST, manifest)
    remove_unlisted_segments(db_dir, manifest)
    return manifest


def remove_unlisted_segments(db_dir: Path, manifest: dict[str, Any]) -> None:
    """Segments no manifest lists: what a killed append or compaction left, or what a
    compaction replaced. Only called with the build lock held."""
    listed = {s["name"] for s in manifest["segments"]}
    for path in (db_dir / SEGMENTS_DIR).iterdir():
        if path.name not in listed:
            shutil.rmtree(path, ignore_errors=True)


def compaction_runs(segments: list[dict[str, Any]], segment_regions: int) -> list[list[int]]:
    """Runs of consecutive segments that together hold at most ``segment_regions`` regions
    (runs of one segment are left as they are)."""
    runs: list[list[int]] = [[]]
    size = 0
    for i, segment in enumerate(segments):
        regions = int(segment["regions"])
        if runs[-1] and size + regions > segment_regions:
            runs.append([])
            size = 0
        runs[-1].append(i)
        size += regions
    return [run for run in runs if len(run) > 1]


def compact_database(
    db_dir: str | os.PathLike,
    index: str = "auto",
    dedupe: Dedupe = dedupe_in_memory,
    segment_regions: int = SEGMENT_REGIONS,
) -> dict[str, Any]:
    """Merge runs of consecutive small segments into segments of up to ``segment_regions``
    regions, each with its codes de-duplicated; targets keep their numbers. A database that
    fits one segment ends as one segment."""
    db_dir = Path(db_dir)
    with build_lock(db_dir):
        db = database_of(db_dir)
        remove_unlisted_segments(db_dir, db)
        runs = compaction_runs(db["segments"], segment_regions)
        if not runs:
            return db
        opened = Database.open(db_dir)
        segments_dir, number = db_dir / SEGMENTS_DIR, db["next_segment"]
        merged: dict[int, dict[str, Any]] = {}
        for run in runs:
            rows = pa.concat_tables([segment_rows(opened.segments[i]) for i in run])
            name = segment_name(number)
            tmp = segments_dir / f".{name}.tmp"
            code_bytes = int(db["code_bits"]) // 8
            description = build_segment(rows, tmp, code_bytes, index, dedupe)
            tmp.rename(segments_dir / name)
            base = int(db["segments"][run[0]]["target_base"])
            merged[run[0]] = segment_entry(name, description, base, segments_dir)
            number += 1
        replaced = {i for run in runs for i in run}
        segments = [
            merged.get(i, s)
            for i, s in enumerate(db["segments"])
            if i in merged or i not in replaced
        ]
        return replace_manifest(db_dir, db, segments, db["sources"])


# opening ----------------------------------------------------------------------------------------


def check_format(db_dir: Path, manifest: dict[str, Any]) -> None:
    """A database manifest of the format this neurohash reads; older formats say how to
    rebuild."""
    if manifest.get("format") != FORMAT:
        raise DatabaseError(f"{db_dir}: not a neurohash database (manifest format)")
    version = int(manifest.get("format_version", 0))
    if version > FORMAT_VERSION:
        raise DatabaseError(f"{db_dir}: made by a newer neurohash (format {version})")
    if version < FORMAT_VERSION:
        raise DatabaseError(
            f"{db_dir}: a format-{version} database (one codes/postings file, from before "
            f"segments); this neurohash reads format {FORMAT_VERSION}. Rebuild it from its "
            f"shards: neurohash index {manifest.get('shards_dir', 'SHARDS')} -o {db_dir} --force"
        )
    if not isinstance(manifest.get("segments"), list) or not isinstance(
        manifest.get("code_bits"), int
    ):
        raise DatabaseError(f"{db_dir / MANIFEST}: lists no segments or code_bits")
    if manifest["code_bits"] <= 0 or manifest["code_bits"] % 8:
        raise DatabaseError(
            f"{db_dir / MANIFEST}: code_bits {manifest['code_bits']} is not a multiple of 8"
        )


@dataclass
class Database:
    """An opened database: its segments, and every posting numbered across them.

    Posting row ``p`` of the database is row ``p - posting_base[s]`` of segment ``s``;
    ``target_of[p]`` is its target (stored sequence) number.
    """

    path: Path
    manifest: dict[str, Any]
    segments: list[Segment]
    posting_base: np.ndarray
    target_of: np.ndarray
    skipped: list[str]

    @classmethod
    def open(
        cls, db_dir: str | os.PathLike, skip_bad_segments: bool = False, check: bool = True
    ) -> Database:
        """Open ``db_dir`` read-only, after checking every segment's files against their size
        and (with ``check``) sha256, and their counts against the data. A bad segment is an
        error naming its file, unless ``skip_bad_segments`` (then it is left out and named on
        stderr)."""
        path = Path(db_dir)
        manifest = database_of(path)
        check_files(path, manifest, check)
        segments, skipped = [], []
        for entry in manifest["segments"]:
            try:
                segments.append(open_segment(path, manifest, entry, check))
            except DatabaseError as exc:
                if not skip_bad_segments:
                    raise
                print(f"neurohash: skipping segment {entry.get('name')}: {exc}", file=sys.stderr)
                skipped.append(str(entry.get("name")))
        sizes = [s.regions for s in segments]
        posting_base = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])
        target_of = np.concatenate(
            [np.zeros(0, np.int64)] + [s.record.astype(np.int64) + s.target_base for s in segments]
        )
        return cls(path, manifest, segments, posting_base, target_of, skipped)

    @property
    def code_bits(self) -> int:
        return int(self.manifest["code_bits"])

    @property
    def regions(self) -> int:
        return int(self.posting_base[-1])

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
        return bool(self.manifest.get("has_embeddings"))

    @property
    def has_sequences(self) -> bool:
        return bool(self.manifest.get("has_sequences"))

    def split(self, rows: np.ndarray) -> Iterator[tuple[np.ndarray, Segment, np.ndarray]]:
        """(positions in ``rows``, segment, its local rows) for each segment ``rows`` reach."""
        rows = np.asarray(rows, dtype=np.int64)
        owner = np.searchsorted(self.posting_base, rows, side="right") - 1
        for s in np.unique(owner).tolist():
            where = np.flatnonzero(owner == s)
            yield where, self.segments[s], rows[where] - self.posting_base[s]

    def region_sequences(self, rows: np.ndarray) -> list[str]:
        """Bases of the regions of the given posting rows (for exact re-ranking)."""
        if not self.has_sequences:
            raise DatabaseError(
                f"{self.path}: stores no region sequences, so exact re-ranking is impossible "
                "(write shards with sequences and rebuild)"
            )
        out: list[str] = [""] * len(rows)
        for where, segment, local in self.split(rows):
            for i, seq in zip(where.tolist(), segment.sequences(local), strict=True):
                out[i] = seq
        return out

    def sequences(self) -> list[str]:
        """Region sequences of all postings, in posting order."""
        return self.region_sequences(np.arange(self.regions))

    def embeddings(self, rows: np.ndarray) -> np.ndarray:
        """(len(rows), D) float32 region embeddings of posting rows (for refining)."""
        if not self.has_embeddings:
            raise DatabaseError(f"{self.path}: stores no region embeddings")
        out = np.zeros((len(rows), int(self.manifest["embedding_dim"])), dtype=np.float32)
        for where, segment, local in self.split(rows):
            out[where] = segment.embeddings(local)
        return out

    def codes(self, rows: np.ndarray) -> np.ndarray:
        """(len(rows), bits / 8) packed codes of posting rows (for refining by codes)."""
        out = np.zeros((len(rows), self.code_bits // 8), dtype=np.uint8)
        for where, segment, local in self.split(rows):
            out[where] = segment.codes(local)
        return out

    def target_ids(self) -> list[str]:
        """The seq_id of every target number ('' for the targets of skipped segments)."""
        ids = [""] * int(self.manifest["counts"]["sequences"])
        for segment in self.segments:
            names = segment.records.table().column("seq_id").to_pylist()
            ids[segment.target_base : segment.target_base + len(names)] = names
        return ids

    def region_of(self, row: int) -> tuple[int, int]:
        """(start, end) of the region of posting ``row``."""
        ((_, segment, local),) = self.split(np.array([row]))
        return int(segment.region_start[local[0]]), int(segment.region_end[local[0]])

    def record_names(self, rows: np.ndarray) -> list[tuple[str, str]]:
        """(seq_id, source) of the records of posting ``rows``."""
        out: list[tuple[str, str]] = [("", "")] * len(rows)
        for where, segment, local in self.split(rows):
            names = segment.records.rows(segment.record[local])
            for i, name in zip(where.tolist(), names, strict=True):
                out[i] = name
        return out

    def stats(self) -> dict[str, Any]:
        """Counts, and bytes on disk per kind and per region, with the compression ratio
        against the input files (as they were when the shards were indexed)."""
        counts = self.manifest["counts"]
        sizes = {"codes_postings": 0, "sequences": 0, "embeddings": 0}
        for segment in self.segments:
            for name, value in segment.sizes().items():
                sizes[name] += value
        regions = int(counts["regions"])
        data = sum(sizes.values())
        input_bytes = sum(int(s.get("input_bytes", 0)) for s in self.manifest["sources"])
        model = self.model_path
        per_region = {f"{k}_per_region": v / regions if regions else 0.0 for k, v in sizes.items()}
        return {
            "database": str(self.path),
            "sequences": int(counts["sequences"]),
            "regions": regions,
            "unique_codes": int(counts["unique_codes"]),
            "segments": len(self.manifest["segments"]),
            "code_bits": self.code_bits,
            "index": ",".join(sorted({s["index"] for s in self.manifest["segments"]})),
            "has_sequences": self.has_sequences,
            "has_embeddings": self.has_embeddings,
            "bytes_data": data,
            "bytes_per_region": data / regions if regions else 0.0,
            **{f"bytes_{k}": v for k, v in sizes.items()},
            **{f"bytes_{k}": v for k, v in per_region.items()},
            "bytes_model": model.stat().st_size if model and model.is_file() else 0,
            "input_bytes": input_bytes,
            "compression_ratio": input_bytes / data if data and input_bytes else None,
            "model_fingerprint": self.manifest["model_fingerprint"],
        }


def open_segment(path: Path, manifest: dict[str, Any], entry: dict, check: bool) -> Segment:
    """One listed segment, checked against its manifest line."""
    segment_dir = path / SEGMENTS_DIR / str(entry.get("name"))
    file = segment_dir / SEGMENT_MANIFEST
    if not file.is_file():
        raise DatabaseError(f"{file}: missing from the database")
    if check and file_sha256(file) != entry.get("sha256"):
        raise DatabaseError(f"{file}: sha256 does not match {path / MANIFEST} (corrupted)")
    segment = Segment.open(segment_dir, manifest["code_bits"], int(entry["target_base"]), check)
    for name in ("regions", "unique_codes", "records"):
        if segment.description["counts"].get(name) != entry.get(name):
            raise DatabaseError(f"{path / MANIFEST}: counts of segment {entry['name']} edited")
    return segment


def check_files(path: Path, manifest: dict[str, Any], check: bool) -> None:
    """The stored model of the size and sha256 the manifest recorded, and the counts its
    segments add up to."""
    model = manifest.get("model")
    if model:
        file = path / model["file"]
        if not file.is_file():
            raise DatabaseError(f"{file}: missing from the database")
        if check and file_sha256(file) != model.get("sha256"):
            raise DatabaseError(
                f"{file}: sha256 does not match the manifest (corrupted; rebuild the database)"
            )
    if manifest.get("counts") != totals(manifest["segments"]):
        raise DatabaseError(
            f"{path / MANIFEST}: counts {manifest.get('counts')!r} are not what its segments "
            f"hold ({totals(manifest['segments'])}); edited: rebuild the database"
        )


def verify_database(db_dir: str | os.PathLike) -> dict[str, Any]:
    """``neurohash verify``: every check of ``Database.open`` (size and sha256 of every file of
    every segment, counts and settings against the data) and the stored model (its weights
    digest, and that it made the codes). Returns what was checked; any failure is a
    DatabaseError or CheckpointError naming the file."""
    db = Database.open(db_dir)
    if db.model_path is not None:
        db.load_model()
    files = [
        f"{SEGMENTS_DIR}/{s.path.name}/{name}"
        for s in db.segments
        for name in s.description["files"]
    ]
    return {
        "database": str(db.path),
        "files": files,
        "model": db.model_path is not None,
        **db.manifest["counts"],
    }


# the directory ----------------------------------------------------------------------------------


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
