"""Database builds on Spark: ``neurohash spark-index INPUTS -o DB_DIR --ckpt CKPT [--master URL]``.

The same result as ``python predict.py`` followed by ``neurohash index``, with Spark doing the
distributed work (``local[*]`` unless ``--master`` or ``spark-submit`` names a cluster):

1. **regions**: one task per input file reads it with neurohash's own FASTA/FASTQ reader (Spark
   has none) and cleans and cuts every record with ``index.job.record_regions``; a count per file
   then turns (file, position) into the predict loop's global record number, hence its shard;
2. **counts**: rows, kept and dropped records per shard, for the shards' markers;
3. **embedding**: regions are numbered in the predict loop's order and grouped into its batches
   of ``batch_size``; each batch is embedded in an executor's Python worker by
   ``index.job.hash_tokens``, the model loaded once per worker. Same batches, same arithmetic: codes
   and embeddings are bit-identical to a single-process predict run (``num_workers`` 0 or 1, one
   device) with the same batch size, whatever the partitioning;
4. **shards**: one task per shard writes it and its marker with the predict loop's own writer, and
   the driver writes the manifest (``index.shards.write_manifest``): the shard directory is exactly
   what ``python predict.py`` writes, finished shards are skipped when a killed build is rerun;
5. **database**: segment by segment, Spark de-duplicates the codes (a group-by on the code) and
   numbers them in byte order; ``index.database.build_database`` (or ``append_database``)
   verifies the shards and writes the segments and model, as ``neurohash index`` does.

Executors run the driver's Python (``sys.executable``) unless ``PYSPARK_PYTHON`` says otherwise;
on a cluster, neurohash must be installed there, and the inputs, checkpoint and shard directory
must be on a file system that the driver and every executor see (as for predict under SLURM).
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import torch
from omegaconf import DictConfig, OmegaConf

from neurohash.checkpoint import load_module, model_fingerprint
from neurohash.data.fasta import SequenceFileError, iter_records
from neurohash.data.tokens import encode
from neurohash.errors import NeurohashError
from neurohash.hydra_app import CONFIG_DIR
from neurohash.index.database import (
    SEGMENT_REGIONS,
    append_database,
    build_database,
    check_destination,
)
from neurohash.index.job import (
    PredictJob,
    build_job,
    hash_tokens,
    input_files,
    job_schema,
    manifest_base,
    record_regions,
)
from neurohash.index.segment import code_matrix
from neurohash.index.shards import (
    ShardProgress,
    finished_shards,
    prediction_table,
    shards_manifest,
    write_manifest,
    write_shard,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from neurohash.module import DistanceEmbeddingModule

APP_NAME = "neurohash-spark-index"
READ_CHUNK = 4096  # records per pandas frame while reading a file
# one row per region; a record that cleaning drops keeps one row with no region and the reason
REGIONS = (
    "file int, position long, seq_id string, source string, region_start int, region_end int, "
    "sequence string, dropped string"
)
EMBEDDED = (
    "shard long, record long, seq_id string, source string, region_start int, region_end int, "
    "sequence string, code binary"
)
SHARD_KEYS = "record long, region_start int, code binary"  # all that de-duplication reads
REGION_COLUMNS = [part.split()[0] for part in REGIONS.split(", ")]


class SparkBuildError(NeurohashError, RuntimeError):
    """Spark cannot run here (no Java) or the build went wrong; the message says what to do."""


# the job ----------------------------------------------------------------------------------------


JOB_KEYS = ("batch_size", "shard_size", "store_embeddings", "store_sequences", "regions")


def job_config(
    inputs: str, ckpt: str | os.PathLike, shards_dir: str | os.PathLike, **settings: Any
) -> DictConfig:
    """The settings of a predict run: ``conf/predict.yaml``'s defaults, as ``python predict.py``
    has them, with ``settings`` (its keys; ``regions`` a dict of its keys) where not None.

    ``index.job.build_job`` then decides cleaning, regions and the job's identity for Spark exactly
    as for Lightning.
    """
    defaults = OmegaConf.load(CONFIG_DIR / "predict.yaml")
    cfg = OmegaConf.create({key: defaults[key] for key in JOB_KEYS})
    given = {key: value for key, value in settings.items() if value is not None}
    given["regions"] = {k: v for k, v in (given.get("regions") or {}).items() if v is not None}
    unknown = set(given) - set(JOB_KEYS)
    if unknown:
        raise TypeError(f"job_config: unknown settings {sorted(unknown)}")
    cfg = OmegaConf.merge(cfg, given)
    cfg.update(ckpt_path=str(ckpt), input=inputs, output_dir=str(shards_dir))
    return cfg


def default_shards_dir(db_dir: str | os.PathLike) -> Path:
    """``DB_DIR.shards`` beside the database (the database directory itself is replaced whole)."""
    db_dir = Path(db_dir)
    return db_dir.with_name(db_dir.name + ".shards")


def spark_index(
    cfg: DictConfig,
    db_dir: str | os.PathLike,
    index: str = "auto",
    overwrite: bool = False,
    master: str | None = None,
    conf: dict[str, str] | None = None,
    device: str = "auto",
    append: bool = False,
    segment_regions: int = SEGMENT_REGIONS,
) -> dict[str, Any]:
    """Write the hash shards of ``cfg.input`` to ``cfg.output_dir`` and build the database in
    ``db_dir`` (or, with ``append``, add them to it as new segments), all on Spark; return the
    database manifest."""
    require_java()  # fail before any work
    check_destination(Path(db_dir), overwrite or append, (str(cfg.output_dir),))
    files = input_files(str(cfg.input))
    job = build_job(cfg, load_module(str(cfg.ckpt_path)), files)
    shards_dir = Path(str(cfg.output_dir))
    shards_dir.mkdir(parents=True, exist_ok=True)
    with spark_session(master, conf or {}) as spark, executor_errors():
        write_shards(spark, job, shards_dir, str(cfg.ckpt_path), device)
        write_manifest(shards_dir, job.key, manifest_base(cfg, job))
        dedupe = functools.partial(spark_dedupe, spark, shards_dir)
        if append:
            return append_database(shards_dir, db_dir, index, dedupe, segment_regions)
        return build_database(
            shards_dir, db_dir, index, cfg.ckpt_path, overwrite, dedupe, segment_regions
        )


def require_java() -> None:
    """Spark runs on a JVM: say so plainly rather than with a gateway error."""
    if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
        raise SparkBuildError(
            "Spark needs a Java runtime (17 or newer) and none is on PATH or in JAVA_HOME; "
            "install one, e.g. `apt-get install default-jre-headless`"
        )


@contextlib.contextmanager
def spark_session(master: str | None, conf: dict[str, str]) -> Iterator[SparkSession]:
    """A Spark session (``master`` None: local[*], or the one spark-submit was given), stopped
    afterwards."""
    require_java()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # executors need neurohash
    try:
        from pyspark.errors import PySparkRuntimeError
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise SparkBuildError("pyspark is not installed: pip install 'neurohash[spark]'") from exc

    builder = SparkSession.builder.appName(APP_NAME)
    if master:
        builder = builder.master(master)
    for key, value in conf.items():
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except PySparkRuntimeError as exc:  # the JVM did not start: Java too old, or broken
        raise SparkBuildError(f"Spark could not start (it needs Java 17 or newer): {exc}") from exc
    try:
        yield spark
    finally:
        spark.stop()


@contextlib.contextmanager
def executor_errors() -> Iterator[None]:
    """Re-raise an input error thrown in an executor as itself (it names the file and record),
    not as a Java stack trace."""
    from pyspark.errors import PythonException

    try:
        yield
    except PythonException as exc:
        found = re.search(rf"{SequenceFileError.__module__}\.SequenceFileError: (.*)", str(exc))
        if found:
            raise SequenceFileError(found.group(1).strip()) from exc
        raise


# stages -----------------------------------------------------------------------------------------


def write_shards(
    spark: SparkSession, job: PredictJob, shards_dir: Path, ckpt: str, device: str
) -> None:
    """Read, clean, cut, embed and write every shard not finished yet (all work in executors)."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    files = spark.range(len(job.files), numPartitions=len(job.files))  # one task per file
    cut = files.mapInPandas(functools.partial(read_regions, job), REGIONS)
    cut = cut.persist(StorageLevel.MEMORY_AND_DISK)
    offsets, n_records = file_offsets(cut, len(job.files))
    first = F.create_map(*(F.lit(x) for pair in offsets.items() for x in pair))[F.col("file")]
    record = (first + F.col("position")).alias("record")
    # shard i holds records [i * shard_size, (i + 1) * shard_size), as in the predict loop
    regions = cut.select(record, "*").withColumn("shard", F.expr(f"record div {job.shard_size}"))
    done = frozenset(finished_shards(shards_dir, job.key))
    regions = regions.where(~F.col("shard").isin(list(done))) if done else regions
    infos = shard_infos(shard_counts(regions), job, n_records, done)
    if infos:
        embedded = embed(spark, regions, infos, job, ckpt, device)
        write = functools.partial(write_shard_group, job, str(shards_dir), infos)
        pending = spark.createDataFrame([(shard,) for shard in infos], "shard long")
        groups = embedded.groupBy("shard").cogroup(pending.groupBy("shard"))
        groups.applyInPandas(write, "shard long, rows long").collect()
    cut.unpersist()


def read_regions(job: PredictJob, batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """Region rows of the files whose numbers arrive, each record cleaned and cut as the predict
    loop does (``index.job.record_regions``); a dropped record keeps one row without a region."""
    for batch in batches:
        for file in batch["id"].tolist():
            rows: list[tuple] = []
            for position, rec in enumerate(iter_records(job.files[file])):
                seq, verdict, regions = record_regions(rec, job)
                head = (file, position, rec.id, rec.source)
                if seq is None:
                    rows.append((*head, None, None, None, verdict))
                rows.extend((*head, start, end, seq[start:end], None) for start, end in regions)
                if len(rows) >= READ_CHUNK:
                    yield region_frame(rows)
                    rows = []
            if rows:
                yield region_frame(rows)


def region_frame(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=REGION_COLUMNS)
    return frame.astype({"region_start": "Int32", "region_end": "Int32"})


def file_offsets(regions: DataFrame, n_files: int) -> tuple[dict[int, int], int]:
    """Global number of each file's first record (records are numbered over all files in order,
    as in the predict loop), and the number of records. Every record has a row, so a file holds
    its last row's position + 1 records."""
    from pyspark.sql import functions as F

    counts = dict(regions.groupBy("file").agg(F.max("position") + 1).collect())
    sizes = np.array([counts[file] for file in range(n_files)], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)])
    return {file: int(starts[file]) for file in range(n_files)}, int(starts[-1])


def shard_counts(regions: DataFrame) -> list[tuple[int, str | None, int, int]]:
    """(shard, drop reason or None, rows, distinct records) of every unfinished shard."""
    from pyspark.sql import functions as F

    counts = regions.groupBy("shard", "dropped").agg(
        F.count("*").alias("rows"), F.countDistinct("record").alias("records")
    )
    return [tuple(row) for row in counts.collect()]


def shard_infos(
    counts: list[tuple[int, str | None, int, int]],
    job: PredictJob,
    n_records: int,
    done: frozenset[int],
) -> dict[int, dict[str, Any]]:
    """The marker facts of every unfinished shard (records, rows, cleaning), as the predict loop
    records them; shards whose records were all dropped are there too, with no rows."""
    n_shards = -(-n_records // job.shard_size)
    progress = {s: ShardProgress(s, s * job.shard_size) for s in range(n_shards) if s not in done}
    for shard, dropped, rows, records in counts:
        shard_progress = progress[shard]
        shard_progress.seen += records
        if dropped is None:
            shard_progress.kept += records
            shard_progress.rows += rows
        else:
            shard_progress.dropped[dropped] = rows
    return {
        s: p.finish(min(p.first + job.shard_size, n_records), last=s == n_shards - 1)
        for s, p in sorted(progress.items())
    }


def embed(
    spark: SparkSession,
    regions: DataFrame,
    infos: dict[int, dict[str, Any]],
    job: PredictJob,
    ckpt: str,
    device: str,
) -> DataFrame:
    """Codes (and embeddings) of all kept regions, computed in the predict loop's batches.

    The predict loop fills batches of ``batch_size`` with the regions of its unfinished shards in
    record order; numbering the regions the same way (rows of earlier shards, then the rank
    within the shard) puts every region in the same batch here.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    first_rows = np.cumsum([0, *(info["rows"] for info in infos.values())])[:-1]
    starts = spark.createDataFrame(
        [(shard, int(first)) for shard, first in zip(infos, first_rows, strict=True)],
        "shard long, first_row long",
    )
    in_shard = Window.partitionBy("shard").orderBy("record", "region_start")
    number = F.col("first_row") + F.row_number().over(in_shard) - 1
    numbered = (
        regions.where(F.col("dropped").isNull())
        .join(F.broadcast(starts), "shard")
        .withColumn("batch", F.floor(number / job.batch_size))
    )
    # an explicit repartition: adaptive execution would coalesce the small shuffle of sequences
    # into one partition, and one Python worker would embed everything on one core
    batches = -(-sum(info["rows"] for info in infos.values()) // job.batch_size)
    tasks = max(1, min(batches, 2 * spark.sparkContext.defaultParallelism))
    numbered = numbered.repartition(tasks, "batch")
    schema = EMBEDDED + (", embedding array<float>" if job.store_embeddings else "")

    def embed_group(batch: pd.DataFrame) -> pd.DataFrame:  # typed, so Spark needs no guess
        return embed_batch(job, ckpt, device, batch)

    return numbered.groupBy("batch").applyInPandas(embed_group, schema)


def embed_batch(job: PredictJob, ckpt: str, device: str, batch: pd.DataFrame) -> pd.DataFrame:
    """One predict batch, in the predict loop's order, through ``index.job.hash_tokens``."""
    batch = batch.sort_values(["record", "region_start"], ignore_index=True)
    model = worker_model(ckpt, job.fingerprint, device)
    tokens = encode(batch["sequence"].tolist(), job.max_len, torch.uint8).to(model.device)
    with torch.inference_mode():
        hashed = hash_tokens(model, tokens, job.store_embeddings)
    out = batch.drop(columns=["batch", "first_row", "dropped", "file", "position"])
    out["code"] = [row.tobytes() for row in hashed["code"]]
    if job.store_embeddings:  # float16 values travel exactly as float32
        out["embedding"] = list(hashed["embedding"].astype(np.float32))
    return out


_MODELS: dict[tuple[str, str, str], DistanceEmbeddingModule] = {}


def worker_model(ckpt: str, fingerprint: str, device: str) -> DistanceEmbeddingModule:
    """The model, loaded once per Python worker (Spark reuses workers across tasks) and checked
    to be the one the driver planned with; torch gets the task's CPUs, no more."""
    key = (ckpt, fingerprint, device)
    if key not in _MODELS:
        from pyspark import TaskContext

        module = load_module(ckpt)
        if model_fingerprint(module) != fingerprint:
            raise SparkBuildError(
                f"{ckpt}: on this executor the file holds another model than on the driver"
            )
        context = TaskContext.get()
        torch.set_num_threads(max(1, context.cpus() if context else 1))
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        _MODELS[key] = module.to(device).eval()
    return _MODELS[key]


def write_shard_group(
    job: PredictJob,
    shards_dir: str,
    infos: dict[int, dict[str, Any]],
    rows: pd.DataFrame,
    key: pd.DataFrame,
) -> pd.DataFrame:
    """Write one shard (its rows in record order) and its marker with the predict loop's writer."""
    shard = int(key["shard"].iloc[0])
    info = infos[shard]
    table = shard_table(rows, job)
    if table.num_rows != info["rows"]:
        raise SparkBuildError(
            f"shard {shard}: received {table.num_rows} rows, expected {info['rows']}"
        )
    write_shard(Path(shards_dir), table, info, job.key)
    return pd.DataFrame({"shard": [shard], "rows": [table.num_rows]})


def shard_table(rows: pd.DataFrame, job: PredictJob) -> pa.Table:
    """Embedded region rows as an Arrow table of the predict loop's shard schema."""
    schema = job_schema(job)
    if rows.empty:
        return schema.empty_table()
    rows = rows.sort_values(["record", "region_start"], ignore_index=True)
    prediction = {name: rows[name].tolist() for name in ("seq_id", "source", "sequence")}
    for name in ("record", "region_start", "region_end"):
        prediction[name] = rows[name].to_numpy()
    width = job.code_bits // 8
    prediction["code"] = np.frombuffer(b"".join(rows["code"]), np.uint8).reshape(-1, width)
    if job.store_embeddings:
        prediction["embedding"] = np.stack(rows["embedding"].to_list()).astype(np.float16)
    return prediction_table(prediction, schema)


# de-duplication ---------------------------------------------------------------------------------


def spark_dedupe(
    spark: SparkSession, shards_dir: Path, rows: pa.Table, code_bytes: int
) -> tuple[np.ndarray, np.ndarray]:
    """``database.Dedupe`` on Spark: unique codes in byte order and the code_id of every row.

    Spark reads the shards itself, keeps the records of ``rows`` (one segment's consecutive
    shards), groups by code and numbers the codes in byte order (as ``dedupe_in_memory`` does;
    ``build_segment`` then renumbers both in record order); the code ids come back in shard row
    order (record, region), and are checked against the verified ``rows`` that the segment is
    built from.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    paths = [str(shards_dir / entry["file"]) for entry in shards_manifest(shards_dir)["shards"]]
    record = rows.column("record").to_numpy()
    first, last = (int(record.min()), int(record.max())) if len(record) else (0, -1)
    keys = spark.read.schema(SHARD_KEYS).parquet(*paths).where(F.col("record").between(first, last))
    codes = keys.select("code").distinct()  # the de-duplication: a group-by on the code
    codes = codes.withColumn("code_id", F.row_number().over(Window.orderBy("code")) - 1).cache()
    unique = codes.orderBy("code_id").select("code").toArrow().column("code")
    postings = keys.join(codes, "code").orderBy("record", "region_start").toArrow()
    codes.unpersist()
    matrix = code_matrix(unique.cast(pa.binary(code_bytes)), code_bytes)
    code_id = postings.column("code_id").to_numpy().astype(np.int64)
    if len(code_id) != rows.num_rows or not np.array_equal(
        matrix[code_id], code_matrix(rows.column("code"), code_bytes)
    ):
        raise SparkBuildError(f"{shards_dir}: Spark read other codes than the verified shards")
    return matrix, code_id


if __name__ == "__main__":  # spark-submit neurohash/spark.py INPUTS -o DB_DIR --ckpt CKPT
    from neurohash.__main__ import main

    sys.exit(main(["spark-index", *sys.argv[1:]]))
