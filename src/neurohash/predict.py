"""The predict loop behind the root ``predict.py``: FASTA/FASTQ in, Parquet hash shards out.

``python predict.py ckpt_path=CKPT input=PATH_OR_GLOB output_dir=DIR`` streams the input records,
cleans them as the checkpoint's training data was cleaned, minus anything that would drop a
record (``inference_cleaning``: long records are cut into regions, see ``neurohash.data.regions``,
ambiguous bases are replaced), embeds every region with Lightning's
``trainer.predict`` and writes one row per region::

    DIR/shard-000000.parquet        seq_id, source, record, region_start, region_end,
                                    code (fixed_size_binary), [embedding], [sequence]
    DIR/shard-000000.done.json      marker: rows, sha256, record range, cleaning counts
    DIR/manifest.json               model fingerprint, code bits, shards, inputs, settings

Work is split into shards of ``shard_size`` consecutive input records (shard i holds records
[i * shard_size, (i + 1) * shard_size) of the stream, over all files in sorted order). Shard i is
owned by exactly one data-loading slot ``global_rank * num_workers + worker_id`` (i modulo the
number of slots): Lightning injects no sampler for an IterableDataset, so the dataset shards
itself. Every slot reads the whole stream but cleans, cuts and embeds only its own records.

Rows carry their ids through the batch (never batch indices). A batch also carries the shards its
slot has finished; the writer then writes that shard under a temporary name, renames it into
place, and writes its marker the same way. A shard counts as finished when its file matches the
sha256 in its marker, so a killed run, started again, skips finished shards and redoes the rest;
a partial shard is never visible under its final name. Rank 0 writes the manifest once all ranks
are done. Memory is bounded by the shards in flight (one per slot), not by the input.

Exact duplicates are *not* removed here (unlike training): every record keeps its rows, so the
database can list every sequence id that carries a code.
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import hashlib
import json
import logging
import os
import re
import signal
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from neurohash import __version__
from neurohash.checkpoint import load_module, model_fingerprint, stored_cleaning
from neurohash.data.cleaning import Cleaning, clean_sequence, inference_cleaning
from neurohash.data.fasta import SequenceRecord, iter_records
from neurohash.data.regions import sample_regions
from neurohash.data.sources import expand_inputs
from neurohash.data.tokens import encode
from neurohash.errors import NeurohashError
from neurohash.files import TMP_SUFFIX, file_sha256, replace_atomically, temporary, write_json
from neurohash.hashing import pack_codes
from neurohash.module import DistanceEmbeddingModule

log = logging.getLogger(__name__)

FORMAT = "neurohash-shards"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MARKER_SUFFIX = ".done.json"
PARQUET_COMPRESSION = "zstd"
PR_SET_PDEATHSIG = 1  # prctl option: the signal a process gets when its parent dies


class PredictError(NeurohashError, ValueError):
    """Settings or an output directory a predict run cannot use; the message says which."""


def shard_name(shard: int) -> str:
    return f"shard-{shard:06d}.parquet"


def marker_name(shard: int) -> str:
    return f"shard-{shard:06d}{MARKER_SUFFIX}"


# settings ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegionSettings:
    """Region sampling of long sequences (see ``neurohash.data.regions.sample_regions``)."""

    window: int
    density: float
    k: int
    seed: int


@dataclass(frozen=True)
class PredictJob:
    """Everything that decides what the shards hold; picklable, so it travels to every rank."""

    files: tuple[str, ...]
    cleaning: Cleaning
    regions: RegionSettings
    max_len: int
    shard_size: int
    batch_size: int
    store_embeddings: bool
    store_sequences: bool
    fingerprint: str
    code_bits: int
    embedding_dim: int

    @functools.cached_property
    def key(self) -> str:
        """Identity of the job: shards written under another key must not be mixed in. It covers
        every input file's sha256, so a resumed run never keeps codes of an input edited in place
        (hashing runs at ~1.5 GB/s, far faster than embedding the same bases)."""
        fields = dataclasses.asdict(self)
        fields.pop("batch_size")  # batching changes no row
        fields["file_sha256"] = [file_sha256(f) for f in self.files]  # content, not size
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def input_files(pattern: str) -> list[str]:
    """The files of a path or glob, each checked readable as FASTA/FASTQ up to its first record.

    Fails here, in the launching process and before any model work, with the file's name.
    """
    files = expand_inputs(pattern)
    for path in files:
        next(iter(iter_records(path)))  # raises SequenceFileError naming the file
    return files


def prediction_cleaning(module: DistanceEmbeddingModule, ckpt_path: str) -> tuple[Cleaning, int]:
    """The checkpoint's cleaning as inference applies it (``inference_cleaning``) and max_len."""
    cleaning, max_len = stored_cleaning(module, ckpt_path)
    return inference_cleaning(cleaning), max_len


def region_settings(cfg: DictConfig, max_len: int) -> RegionSettings:
    window = int(cfg.window) if cfg.get("window") is not None else max_len
    if not 1 <= window <= max_len:
        raise PredictError(f"regions.window={window} must be in 1..{max_len} (the model's max_len)")
    return RegionSettings(window, float(cfg.density), int(cfg.k), int(cfg.get("seed", 0)))


def build_job(cfg: DictConfig, module: DistanceEmbeddingModule, files: list[str]) -> PredictJob:
    cleaning, max_len = prediction_cleaning(module, str(cfg.ckpt_path))
    if int(cfg.shard_size) < 1 or int(cfg.batch_size) < 1:
        raise PredictError("shard_size and batch_size must be positive")
    return PredictJob(
        files=tuple(files),
        cleaning=cleaning,
        regions=region_settings(cfg.regions, max_len),
        max_len=max_len,
        shard_size=int(cfg.shard_size),
        batch_size=int(cfg.batch_size),
        store_embeddings=bool(cfg.store_embeddings),
        store_sequences=bool(cfg.store_sequences),
        fingerprint=model_fingerprint(module),
        code_bits=int(module.hashing.bits),
        embedding_dim=int(module.encoder.embedding_dim),
    )


# the streaming dataset --------------------------------------------------------------------------


def numbered_records(files: tuple[str, ...]) -> Iterator[tuple[int, SequenceRecord]]:
    """(global record index, record) over all files in order, streaming."""
    index = 0
    for path in files:
        for rec in iter_records(path):
            yield index, rec
            index += 1


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


# seq_id, source, record, shard, region_start, region_end, region sequence
Row = tuple[str, str, int, int, int, int, str]


@dataclass
class PendingBatch:
    """Regions waiting to be emitted as one batch, plus the shards finished meanwhile."""

    rows: list[Row] = field(default_factory=list)
    completed: list[dict[str, Any]] = field(default_factory=list)

    def emit(self, max_len: int) -> dict[str, Any]:
        cols = list(zip(*self.rows, strict=True)) if self.rows else [()] * 7
        seq_id, source, record, shard, start, end, seqs = cols
        return {
            "tokens": encode(list(seqs), max_len, torch.uint8),
            "seq_id": list(seq_id),
            "source": list(source),
            "record": np.asarray(record, dtype=np.int64),
            "shard": np.asarray(shard, dtype=np.int64),
            "region_start": np.asarray(start, dtype=np.int32),
            "region_end": np.asarray(end, dtype=np.int32),
            "sequence": list(seqs),
            "completed": self.completed,
        }


class RegionStream(IterableDataset):
    """Batches of regions of the shards owned by this (rank, worker) slot, in record order."""

    def __init__(
        self, job: PredictJob, done: frozenset[int], rank: int = 0, world_size: int = 1
    ) -> None:
        super().__init__()
        self.job, self.done, self.rank, self.world_size = job, done, rank, world_size

    def slot(self) -> tuple[int, int]:
        """(this slot, number of slots) = (rank * workers + worker id, world size * workers)."""
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        return self.rank * workers + worker, self.world_size * workers

    def owns(self, shard: int, slot: int, slots: int) -> bool:
        return shard % slots == slot and shard not in self.done

    def __iter__(self) -> Iterator[dict[str, Any]]:
        slot, slots = self.slot()
        job, pending = self.job, PendingBatch()
        current: ShardProgress | None = None
        end = 0
        for index, rec in numbered_records(job.files):
            end, shard = index + 1, index // job.shard_size
            if current is not None and shard != current.shard:
                # all its rows are queued or gone: its marker may ride with the next batch
                pending.completed.append(current.finish(index, last=False))
                current = None
            if not self.owns(shard, slot, slots):
                continue
            current = current or ShardProgress(shard, index)
            for row in self.regions_of(index, rec, current):
                pending.rows.append(row)
                if len(pending.rows) == job.batch_size:
                    yield pending.emit(job.max_len)
                    pending = PendingBatch()
        if current is not None:
            pending.completed.append(current.finish(end, last=True))
        if pending.rows or pending.completed:
            yield pending.emit(job.max_len)

    def regions_of(self, index: int, rec: SequenceRecord, progress: ShardProgress) -> Iterator[Row]:
        """Clean one record and yield its region rows (or count why it was dropped)."""
        progress.seen += 1
        seq, reason, regions = record_regions(rec, self.job)
        if seq is None:
            progress.dropped[reason] = progress.dropped.get(reason, 0) + 1
            return
        progress.kept += 1
        for start, end in regions:
            progress.rows += 1
            yield rec.id, rec.source, index, progress.shard, start, end, seq[start:end]


def record_regions(
    rec: SequenceRecord, job: PredictJob
) -> tuple[str | None, str, list[tuple[int, int]]]:
    """(cleaned sequence or None, cleaning verdict, regions) of one record.

    The one place that decides which rows a record gets, shared by this loop and the Spark build
    (``neurohash.spark``) so both write the same shards.
    """
    seq, reason = clean_sequence(rec, job.cleaning)
    if seq is None:
        return None, reason, []
    r = job.regions
    return seq, reason, sample_regions(seq, r.window, r.density, r.k, r.seed)


def as_is(batch: dict[str, Any]) -> dict[str, Any]:
    """The DataLoader's collate for ready-made batches (default_convert would tensorise ids)."""
    return batch


class RegionDataModule(L.LightningDataModule):
    """Builds the stream in each rank's process, where the rank and world size are known."""

    def __init__(self, job: PredictJob, done: frozenset[int], num_workers: int = 0) -> None:
        super().__init__()
        self.job, self.done, self.num_workers = job, done, num_workers

    def predict_dataloader(self) -> DataLoader:
        rank, world = self.trainer.global_rank, self.trainer.world_size
        stream = RegionStream(self.job, self.done, rank, world)
        return DataLoader(
            stream,
            batch_size=None,
            num_workers=self.num_workers,
            collate_fn=as_is,
            worker_init_fn=functools.partial(exit_with_parent, os.getpid()),
        )


def exit_with_parent(parent: int, worker_id: int = 0) -> None:
    """Make this DataLoader worker die with ``parent``, the process that started it: a killed
    predict.py would otherwise leave its workers running with no parent (PR_SET_PDEATHSIG)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: nothing to arm
        return
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)


# the model step ---------------------------------------------------------------------------------


class HashPredictor(L.LightningModule):
    """Wraps a trained module for ``trainer.predict``: codes (and embeddings) plus the batch ids."""

    def __init__(self, module: DistanceEmbeddingModule, store_embeddings: bool = False) -> None:
        super().__init__()
        self.model, self.store_embeddings = module, store_embeddings

    def on_predict_start(self) -> None:
        # ids travel inside the batches; Lightning's batch indices are neither needed nor known
        warnings.filterwarnings("ignore", message="Couldn't infer the batch indices")

    def predict_step(self, batch: dict[str, Any], batch_idx: int = 0) -> dict[str, Any]:
        out = {key: value for key, value in batch.items() if key != "tokens"}
        out.update(hash_tokens(self.model, batch["tokens"], self.store_embeddings))
        return out


def hash_tokens(
    model: DistanceEmbeddingModule, tokens: torch.Tensor, store_embeddings: bool
) -> dict[str, np.ndarray]:
    """Packed codes (and float16 embeddings) of one batch of encoded regions.

    The one definition of a row's code and embedding, shared by this loop and the Spark build;
    the caller runs it in inference mode. An empty batch (one that only reports finished shards)
    gives empty arrays.
    """
    bits, dim = model.hashing.bits, model.encoder.embedding_dim
    if len(tokens) == 0:
        return {
            "code": np.zeros((0, bits // 8), dtype=np.uint8),
            "embedding": np.zeros((0, dim), dtype=np.float16),
        }
    emb = model(tokens)
    out = {"code": pack_codes(model.codes_of(emb))}  # the module's own definition
    if store_embeddings:
        out["embedding"] = emb.float().cpu().numpy().astype(np.float16)
    return out


# writing shards ---------------------------------------------------------------------------------


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


def job_schema(job: PredictJob) -> pa.Schema:
    dim = job.embedding_dim if job.store_embeddings else None
    return shard_schema(job.code_bits, dim, job.store_sequences)


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


class ShardWriter(BasePredictionWriter):
    """Collects each rank's rows per shard, writes a shard once its slot reports it finished, and
    has rank 0 write the manifest after every rank is done."""

    def __init__(self, output_dir: str | os.PathLike, job: PredictJob, manifest: dict[str, Any]):
        super().__init__(write_interval="batch")
        self.output_dir, self.job, self.manifest = Path(output_dir), job, manifest
        self.schema = job_schema(job)
        self.buffers: dict[int, list[pa.Table]] = {}
        self.written: list[int] = []

    def write_on_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        prediction: dict[str, Any],
        batch_indices: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        table = prediction_table(prediction, self.schema)
        shards = np.asarray(prediction["shard"])
        for shard in np.unique(shards):
            rows = table.take(pa.array(np.flatnonzero(shards == shard)))
            self.buffers.setdefault(int(shard), []).append(rows)
        for info in prediction["completed"]:
            self.finish(info)

    def finish(self, info: dict[str, Any]) -> None:
        parts = self.buffers.pop(info["shard"], [])
        table = pa.concat_tables(parts) if parts else self.schema.empty_table()
        if table.num_rows != info["rows"]:
            raise RuntimeError(
                f"shard {info['shard']}: received {table.num_rows} rows, expected {info['rows']}"
            )
        write_shard(self.output_dir, table, info, self.job.key)
        self.written.append(info["shard"])

    def on_predict_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.buffers:
            raise RuntimeError(f"shards {sorted(self.buffers)} got rows but were never finished")
        log.info("rank %d wrote %d shards", trainer.global_rank, len(self.written))
        trainer.strategy.barrier("neurohash-shards-written")
        if trainer.is_global_zero:
            write_manifest(self.output_dir, self.job, self.manifest)
        trainer.strategy.barrier("neurohash-manifest-written")  # every rank may read it now


# resume and manifest ----------------------------------------------------------------------------


def check_output_dir(output_dir: Path) -> None:
    """Refuse a directory holding anything but a predict run's own files: a database's manifest
    or a user's files would otherwise be overwritten (or mixed into the shards)."""
    if not output_dir.exists():
        return
    if not output_dir.is_dir():
        raise PredictError(f"{output_dir}: exists and is not a directory")
    own = re.compile(rf"shard-\d+(\.parquet|{re.escape(MARKER_SUFFIX)})({re.escape(TMP_SUFFIX)})?")
    for path in output_dir.iterdir():
        if path.name in (MANIFEST, MANIFEST + TMP_SUFFIX) and is_shards_manifest(path):
            continue
        if not own.fullmatch(path.name):
            raise PredictError(
                f"{output_dir}: holds {path.name}, which no predict run writes; give an empty or "
                "new output_dir"
            )


def is_shards_manifest(path: Path) -> bool:
    try:
        return json.loads(path.read_text()).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def read_markers(output_dir: Path, job_key: str) -> dict[int, dict[str, Any]]:
    """Markers of ``output_dir`` by shard; markers of another job are an error (never mixed)."""
    markers: dict[int, dict[str, Any]] = {}
    for path in sorted(output_dir.glob(f"shard-*{MARKER_SUFFIX}")):
        try:
            marker = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue  # unreadable: that shard is simply redone
        if marker.get("job") != job_key:
            raise PredictError(
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


def write_manifest(output_dir: Path, job: PredictJob, base: dict[str, Any]) -> dict[str, Any]:
    """The run's manifest (atomically), built from the markers of all shards; stray temp files
    of killed runs are removed."""
    manifest = {**base, **shard_summary(finished_shards(output_dir, job.key))}
    manifest["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    write_json(output_dir / MANIFEST, manifest)
    for tmp in output_dir.glob(f"*{TMP_SUFFIX}"):
        tmp.unlink(missing_ok=True)
    return manifest


def manifest_base(cfg: DictConfig, job: PredictJob) -> dict[str, Any]:
    """The manifest's description of model, inputs and settings (shards are added at the end)."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "neurohash_version": __version__,
        "checkpoint": os.path.abspath(str(cfg.ckpt_path)),
        "model_fingerprint": job.fingerprint,
        "code_bits": job.code_bits,
        "embedding_dim": job.embedding_dim,
        "max_len": job.max_len,
        "store_embeddings": job.store_embeddings,
        "store_sequences": job.store_sequences,
        "input": str(cfg.input),
        "input_files": list(job.files),
        "regions": dataclasses.asdict(job.regions),
        "cleaning": dataclasses.asdict(job.cleaning),
        "shard_size": job.shard_size,
        "job": job.key,
    }


# the job ----------------------------------------------------------------------------------------


def predict(cfg: DictConfig) -> dict[str, Any]:
    """Write (or finish writing) the hash shards of ``cfg.input``; return the manifest."""
    files = input_files(str(cfg.input))
    module = load_module(str(cfg.ckpt_path))
    job = build_job(cfg, module, files)
    output_dir = Path(str(cfg.output_dir))
    check_output_dir(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    done = frozenset(finished_shards(output_dir, job.key))
    log.info("%d input files; %d shards already finished in %s", len(files), len(done), output_dir)
    trainer = L.Trainer(
        **OmegaConf.to_container(cfg.trainer, resolve=True),
        callbacks=[ShardWriter(output_dir, job, manifest_base(cfg, job))],
        logger=False,
        enable_checkpointing=False,
        use_distributed_sampler=False,
    )
    datamodule = RegionDataModule(job, done, int(cfg.num_workers))
    trainer.predict(
        HashPredictor(module, job.store_embeddings), datamodule=datamodule, return_predictions=False
    )
    manifest = json.loads((output_dir / MANIFEST).read_text())
    log.info("%d rows in %d shards: %s", manifest["rows"], len(manifest["shards"]), output_dir)
    return manifest
