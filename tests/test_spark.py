"""The Spark build (``neurohash spark-index``) in local mode against the Lightning predict build
of the same real input: the same shards, the same (id, region, code) rows, the same database and
the same search results. Needs Java: installed from Debian when absent (CI runs as root)."""

from __future__ import annotations

import gzip
import itertools
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from neurohash import cli
from neurohash.data.fasta import iter_records
from neurohash.data.sources import expand_inputs
from neurohash.errors import EXIT_USER_ERROR
from neurohash.index.database import Database, build_database
from neurohash.index.segment import POSTINGS_FILE, RECORDS_FILE, index_codes
from neurohash.index.shards import MANIFEST
from neurohash.predict import predict
from tests.helpers import INFLUENZA_FILE, V4_FILE, compose_app

pytestmark = pytest.mark.slow

SHARD_SIZE = 40
BATCH_SIZE = 32
DENSITY = 5.0
ROW_KEYS = ("seq_id", "source", "region_start", "region_end", "code")
SPARK_CONF = (
    "spark.driver.memory=1g",
    "spark.ui.enabled=false",
    "spark.ui.showConsoleProgress=false",
    "spark.sql.shuffle.partitions=4",
)


@pytest.fixture(scope="module")
def java() -> str:
    """A Java runtime for Spark; installs Debian's default-jre-headless when there is none."""
    found = java_binary()
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.fail("Spark needs Java 17+: none found, and apt-get cannot install one here")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update"],
        ["apt-get", "install", "-y", "--no-install-recommends", "default-jre-headless"],
    ):
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
        if result.returncode != 0:
            pytest.fail(f"`{' '.join(command)}` failed; Spark needs Java:\n{result.stderr[-3000:]}")
    found = java_binary()
    if not found:
        pytest.fail("default-jre-headless was installed but no java is on PATH")
    return found


@pytest.fixture(scope="module", autouse=True)
def stop_jvm() -> Iterator[None]:
    """Stop the JVM that the in-process Spark runs start, so it does not outlive this module."""
    yield
    from pyspark import SparkContext

    gateway = SparkContext._gateway
    if gateway is not None:
        gateway.shutdown()
        gateway.proc.kill()  # the child process pyspark started for its gateway
        gateway.proc.wait(timeout=60)
        SparkContext._gateway = SparkContext._jvm = None


def java_binary() -> str | None:
    home = os.environ.get("JAVA_HOME")
    if home and os.access(Path(home) / "bin" / "java", os.X_OK):
        return str(Path(home) / "bin" / "java")
    return shutil.which("java")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """Three files: 200 real V4 reads (gz) split over two files, one of them holding an empty
    record (dropped by cleaning); influenza segments (1-2.3 kb, cut into several regions), one
    with IUPAC codes, and one 9 kb concatenation of segments."""
    folder = tmp_path_factory.mktemp("spark_inputs")
    reads = list(itertools.islice(iter_records(shared_data / V4_FILE), 200))
    with gzip.open(folder / "a_reads.fasta.gz", "wt") as handle:
        handle.writelines(f">{r.id} read\n{r.seq}\n" for r in reads[:120])
    with open(folder / "b_reads.fasta", "w") as handle:
        handle.writelines(f">{r.id}\n{r.seq}\n" for r in reads[120:150])
        handle.write(">empty_record\n\n")
        handle.writelines(f">{r.id}\n{r.seq}\n" for r in reads[150:])
    flu = list(itertools.islice(iter_records(shared_data / INFLUENZA_FILE), 300))
    clean = [r for r in flu if set(r.seq) <= set("ACGT")][:8]
    ambiguous = next(r for r in flu if not set(r.seq) <= set("ACGTN"))
    long_seq = "".join(r.seq for r in clean[2:8])
    with open(folder / "c_flu.fasta", "w") as handle:
        handle.writelines(f">{r.id}\n{r.seq}\n" for r in [*clean[:2], ambiguous])
        handle.write(f">concatenated\n{long_seq}\n")
    return folder


@pytest.fixture(scope="module")
def lightning_build(
    checkpoint: Path, inputs: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The reference: `python predict.py` (one process) then `neurohash index`; returns its dir."""
    out = tmp_path_factory.mktemp("lightning")
    cfg = compose_app(
        "predict",
        out / "hydra",
        f"ckpt_path={checkpoint}",
        f"input={inputs}/*.fasta*",
        f"output_dir={out / 'shards'}",
        f"shard_size={SHARD_SIZE}",
        f"batch_size={BATCH_SIZE}",
        "num_workers=0",
        f"regions.density={DENSITY}",
        "store_embeddings=true",
        "store_sequences=true",
        "trainer.accelerator=cpu",
        "trainer.enable_progress_bar=false",
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each Spark task: one CPU
    try:
        predict(cfg)
    finally:
        torch.set_num_threads(threads)
    build_database(out / "shards", out / "db", checkpoint=checkpoint)
    return out


def spark_index(argv: list[str]) -> int:
    """`neurohash spark-index ARGV` in local mode on 2 cores, in this process: the JVM started
    by the first call serves the later ones."""
    conf = [arg for setting in SPARK_CONF for arg in ("--conf", setting)]
    return cli.main(["spark-index", *argv, "--master", "local[2]", *conf])


@pytest.fixture(scope="module")
def spark_build(
    java: str, checkpoint: Path, inputs: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """`neurohash spark-index` of the same input; returns its directory."""
    out = tmp_path_factory.mktemp("spark")
    argv = [
        *(f"{inputs}/*.fasta*", "-o", str(out / "db"), "--ckpt", str(checkpoint)),
        *("--shards", str(out / "shards"), "--shard-size", str(SHARD_SIZE)),
        *("--batch-size", str(BATCH_SIZE), "--density", str(DENSITY), "--device", "cpu"),
        "--json",
    ]
    assert spark_index(argv) == 0
    stats = Database.open(out / "db").stats()
    assert stats["regions"] > 0 and stats["index"] == "flat"
    return out


def manifest(directory: Path) -> dict:
    return json.loads((directory / MANIFEST).read_text())


def shard_rows(shards: Path) -> pa.Table:
    return pa.concat_tables(pq.read_table(shards / e["file"]) for e in manifest(shards)["shards"])


def row_set(table: pa.Table) -> set[tuple]:
    rows = set(zip(*(table.column(k).to_pylist() for k in ROW_KEYS), strict=True))
    assert len(rows) == table.num_rows
    return rows


def test_same_shards_as_the_predict_loop(lightning_build: Path, spark_build: Path) -> None:
    """The same job, shard for shard: markers, row counts, cleaning counts and file checksums."""
    reference, got = manifest(lightning_build / "shards"), manifest(spark_build / "shards")
    assert got["job"] == reference["job"]
    assert got["shards"] == reference["shards"]  # byte-identical Parquet files
    for key in ("rows", "records", "records_kept", "dropped", "regions", "cleaning"):
        assert got[key] == reference[key], key
    assert got["dropped"] == {"empty": 1}
    assert len(got["shards"]) == 6 and got["records"] == 205
    for marker in (spark_build / "shards").glob("shard-*.done.json"):
        assert json.loads(marker.read_text()) == json.loads(
            (lightning_build / "shards" / marker.name).read_text()
        )


def test_same_rows_and_codes(lightning_build: Path, spark_build: Path) -> None:
    reference = shard_rows(lightning_build / "shards")
    got = shard_rows(spark_build / "shards")
    assert row_set(got) == row_set(reference)
    assert got.equals(reference)  # also in the same order, with the same embeddings
    regions_per_record = reference.group_by("record").aggregate([("record", "count")])
    assert max(regions_per_record.column("record_count").to_pylist()) > 5  # long ones were cut


def test_same_database(lightning_build: Path, spark_build: Path) -> None:
    """Spark's de-duplication numbers the unique codes as `neurohash index` does."""
    reference, got = Database.open(lightning_build / "db"), Database.open(spark_build / "db")
    assert got.manifest["counts"] == reference.manifest["counts"]
    assert got.manifest["counts"]["unique_codes"] < got.manifest["counts"]["regions"]
    assert len(got.segments) == len(reference.segments)
    for ours, theirs in zip(got.segments, reference.segments, strict=True):
        assert np.array_equal(index_codes(ours.index), index_codes(theirs.index))
        for name in (POSTINGS_FILE, RECORDS_FILE):
            table = pq.read_table(ours.path / name)
            assert table.equals(pq.read_table(theirs.path / name)), name
    assert got.sequences() == reference.sequences()
    assert got.manifest["model"]["sha256"] == reference.manifest["model"]["sha256"]


def test_same_search_results(
    lightning_build: Path, spark_build: Path, inputs: Path, tmp_path: Path
) -> None:
    queries = tmp_path / "queries.fasta"
    records = [r for f in expand_inputs(f"{inputs}/*.fasta*") for r in iter_records(f) if r.seq]
    with open(queries, "w") as handle:
        for rec in records[::10]:
            handle.write(f">{rec.id}\n{rec.seq}\n>{rec.id}_mutated\n{rec.seq[5:-5]}\n")
    for flags in ([], ["--rerank"]):
        hits = []
        for build in (lightning_build, spark_build):
            out = tmp_path / f"{build.name}.tsv"
            argv = ["search", str(build / "db"), str(queries), "-o", str(out), *flags]
            assert cli.main(argv) == 0
            hits.append(out.read_text())
        assert hits[0] == hits[1]
        assert len(hits[0].splitlines()) > 2 * len(records[::10])


def test_no_java_is_a_clear_error(
    checkpoint: Path, inputs: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    argv = ["spark-index", f"{inputs}/*.fasta*", "-o", str(tmp_path / "db"), "--ckpt"]
    assert cli.main([*argv, str(checkpoint)]) == EXIT_USER_ERROR
    assert "Java runtime" in capsys.readouterr().err
    assert not (tmp_path / "db").exists()


def test_rerun_redoes_only_missing_shards(
    lightning_build: Path, spark_build: Path, inputs: Path, checkpoint: Path, tmp_path: Path
) -> None:
    """A killed build (a shard and the manifest missing) finishes with the rest untouched.

    Only ids and regions are compared: the redone shard's batches are not the first run's, so
    a float could round differently (as in the predict loop's own resume)."""
    shards = tmp_path / "shards"
    shutil.copytree(spark_build / "shards", shards)
    (shards / MANIFEST).unlink()
    (shards / "shard-000002.parquet").unlink()
    past = 1_000_000_000
    for path in shards.iterdir():
        os.utime(path, (past, past))
    argv = [f"{inputs}/*.fasta*", "-o", str(tmp_path / "db"), "--ckpt", str(checkpoint)]
    argv += ["--shards", str(shards), "--shard-size", str(SHARD_SIZE), "--density", str(DENSITY)]
    assert spark_index([*argv, "--batch-size", str(BATCH_SIZE)]) == 0
    touched = {p.name for p in shards.glob("shard-*") if p.stat().st_mtime != past}
    assert touched == {"shard-000002.parquet", "shard-000002.done.json"}
    facts = ("file", "rows", "records", "shard")
    for got, reference in zip(
        manifest(shards)["shards"], manifest(lightning_build / "shards")["shards"], strict=True
    ):
        assert {k: got[k] for k in facts} == {k: reference[k] for k in facts}
    ids = ["seq_id", "source", "record", "region_start", "region_end", "sequence"]
    redone = pq.read_table(shards / "shard-000002.parquet").select(ids)
    assert redone.equals(pq.read_table(lightning_build / "shards/shard-000002.parquet").select(ids))
    counts = Database.open(tmp_path / "db").manifest["counts"]
    reference_counts = Database.open(lightning_build / "db").manifest["counts"]
    assert counts["regions"] == reference_counts["regions"]
    assert counts["sequences"] == reference_counts["sequences"]


def test_bad_record_is_named(java: str, checkpoint: Path, tmp_path: Path, capsys) -> None:
    """An input error found in an executor reaches the user as one line naming file and record."""
    good, bad = tmp_path / "a.fasta", tmp_path / "b.fasta"
    good.write_text(">r1\nACGTACGTAC\n")
    bad.write_text(">r2\nACGTACGT\n>r3\nACGXYZ\n")
    argv = [f"{tmp_path}/*.fasta", "-o", str(tmp_path / "db"), "--ckpt", str(checkpoint)]
    assert spark_index(argv) == EXIT_USER_ERROR
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith(f"neurohash spark-index: error: {bad}: record 'r3'"), last
    assert not (tmp_path / "db").exists()


def test_append_adds_the_new_inputs_as_segments(
    spark_build: Path, checkpoint: Path, shared_data: Path, tmp_path: Path
) -> None:
    """`spark-index --append` embeds new files and adds them to an existing database, as
    `neurohash index --append` does; a database of another model's shards is refused."""
    more = tmp_path / "more.fasta"
    reads = itertools.islice(iter_records(shared_data / V4_FILE), 200, 230)
    more.write_text("".join(f">{r.id}\n{r.seq}\n" for r in reads))
    db = tmp_path / "db"
    shutil.copytree(spark_build / "db", db)
    before = Database.open(db)
    argv = [str(more), "-o", str(db), "--ckpt", str(checkpoint), "--append"]
    argv += ["--shards", str(tmp_path / "shards"), "--shard-size", str(SHARD_SIZE)]
    argv += ["--density", str(DENSITY), "--batch-size", str(BATCH_SIZE), "--device", "cpu"]
    assert spark_index(argv) == 0
    after = Database.open(db)
    assert after.regions == before.regions + 30
    assert len(after.segments) == len(before.segments) + 1
    assert after.region_sequences(np.arange(before.regions)) == before.sequences()
