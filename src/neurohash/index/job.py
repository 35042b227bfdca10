"""What a predict job is, for the predict loop and the Spark build alike: its settings and
identity (``PredictJob``), which regions a record gets (``record_regions``) and which code and
embedding a region gets (``hash_tokens``), so both write the same shards."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from omegaconf import DictConfig

from neurohash import __version__
from neurohash.checkpoint import model_fingerprint, stored_cleaning
from neurohash.data.cleaning import Cleaning, clean_sequence, inference_cleaning
from neurohash.data.fasta import SequenceRecord, iter_records
from neurohash.data.regions import sample_regions
from neurohash.data.sources import expand_inputs
from neurohash.errors import NeurohashError
from neurohash.files import file_sha256
from neurohash.hashing import pack_codes
from neurohash.index.shards import FORMAT, FORMAT_VERSION, shard_schema
from neurohash.module import DistanceEmbeddingModule


class PredictError(NeurohashError, ValueError):
    """Settings or an output directory a predict run cannot use; the message says which."""


@dataclass(frozen=True)
class RegionSettings:
    """Region sampling of long sequences (see ``neurohash.data.regions.sample_regions``)."""

    window: int
    density: float
    k: int
    seed: int
    canonical: bool = False  # both strands anchor the same regions (False: shards made before)
    stride: int | None = None  # windows every stride bases instead of anchored ones


@dataclass(frozen=True)
class PredictJob:
    """Everything that decides what the shards hold; picklable, so it travels to every rank."""

    files: tuple[str, ...]
    file_sha256: tuple[str, ...]  # the inputs' content: an input edited in place is another job
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
        every input file's sha256, so a resumed run never keeps codes of an input edited in
        place."""
        fields = dataclasses.asdict(self)
        fields.pop("batch_size")  # batching changes no row
        if self.regions.stride is None:  # the key of an anchored job made before strides existed
            fields["regions"].pop("stride")
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
    return RegionSettings(
        window,
        float(cfg.density),
        int(cfg.k),
        int(cfg.get("seed", 0)),
        bool(cfg.get("canonical", False)),
        stride(cfg.get("stride")),
    )


def stride(value: Any) -> int | None:
    """``regions.stride``: None (anchored regions) or a number of bases of at least 1."""
    if value is None:
        return None
    if int(value) < 1:
        raise PredictError(f"regions.stride={value} must be at least 1 (or null: anchored regions)")
    return int(value)


WIDEST_STORED_EMBEDDING = 1024  # float16: 2 KB per region; a 7-mer profile would take 32 KB


def stores_embeddings(setting: Any, dim: int, codes_have_features: bool) -> bool:
    """``store_embeddings``: true, false or auto, which stores embeddings of at most
    WIDEST_STORED_EMBEDDING dimensions whose codes are made from them: a learned embedding is
    worth its bytes to refine a shortlist of its own codes, a k-mer profile
    (``experiment=codes_kmer``) is not, and codes read from features of their own (the default
    ``hashing=neighbours``) refine their shortlist better by their query-weighted Hamming
    distance (README: ``make demo``, 5,000 stored: recall@10 after the re-rank 0.958 refined by
    the transformer's embedding, 0.977 with no refine at all)."""
    if isinstance(setting, bool):
        return setting
    if str(setting).lower() == "auto":
        return dim <= WIDEST_STORED_EMBEDDING and not codes_have_features
    raise PredictError(f"store_embeddings={setting}: expected true, false or auto")


def build_job(cfg: DictConfig, module: DistanceEmbeddingModule, files: list[str]) -> PredictJob:
    cleaning, max_len = prediction_cleaning(module, str(cfg.ckpt_path))
    if int(cfg.shard_size) < 1 or int(cfg.batch_size) < 1:
        raise PredictError("shard_size and batch_size must be positive")
    return PredictJob(
        files=tuple(files),
        # hashed once, where the job is built (~1.5 GB/s, far faster than embedding the bases)
        file_sha256=tuple(file_sha256(f) for f in files),
        cleaning=cleaning,
        regions=region_settings(cfg.regions, max_len),
        max_len=max_len,
        shard_size=int(cfg.shard_size),
        batch_size=int(cfg.batch_size),
        store_embeddings=stores_embeddings(
            cfg.store_embeddings, module.encoder.embedding_dim, module.hashing.features is not None
        ),
        store_sequences=bool(cfg.store_sequences),
        fingerprint=model_fingerprint(module),
        code_bits=int(module.hashing.bits),
        embedding_dim=int(module.encoder.embedding_dim),
    )


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
    return seq, reason, sample_regions(seq, r.window, r.density, r.k, r.seed, r.canonical, r.stride)


def job_schema(job: PredictJob) -> pa.Schema:
    dim = job.embedding_dim if job.store_embeddings else None
    return shard_schema(job.code_bits, dim, job.store_sequences)


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
    if not store_embeddings:  # codes of features of their own need no forward of the encoder
        return {"code": pack_codes(model.codes_of(tokens))}  # the module's own definition
    emb = model(tokens)
    return {
        "code": pack_codes(model.codes_of(tokens, emb)),
        "embedding": emb.float().cpu().numpy().astype(np.float16),
    }
