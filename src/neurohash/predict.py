"""The predict loop behind the root ``predict.py``: FASTA/FASTQ in, Parquet hash shards out.

``python predict.py ckpt_path=CKPT input=PATH_OR_GLOB output_dir=DIR`` streams the input records,
cleans them as the checkpoint's training data was cleaned, minus anything that would drop a
record (``inference_cleaning``: long records are cut into regions, see ``neurohash.data.regions``,
ambiguous bases are replaced), embeds every region with Lightning's ``trainer.predict`` and
writes one row per region into hash shards (their format: ``neurohash.index.shards``; what a
job is: ``neurohash.index.job``).

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
import functools
import json
import logging
import os
import signal
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pyarrow as pa
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from neurohash.checkpoint import load_module
from neurohash.data.fasta import SequenceRecord, iter_records
from neurohash.data.tokens import encode
from neurohash.index.job import (
    PredictJob,
    build_job,
    hash_tokens,
    input_files,
    job_schema,
    manifest_base,
    record_regions,
)
from neurohash.index.shards import (
    MANIFEST,
    ShardProgress,
    check_output_dir,
    finished_shards,
    prediction_table,
    write_manifest,
    write_shard,
)
from neurohash.module import DistanceEmbeddingModule

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # prctl option: the signal a process gets when its parent dies


# the streaming dataset --------------------------------------------------------------------------


def numbered_records(files: tuple[str, ...]) -> Iterator[tuple[int, SequenceRecord]]:
    """(global record index, record) over all files in order, streaming."""
    index = 0
    for path in files:
        for rec in iter_records(path):
            yield index, rec
            index += 1


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
            write_manifest(self.output_dir, self.job.key, self.manifest)
        trainer.strategy.barrier("neurohash-manifest-written")  # every rank may read it now


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
