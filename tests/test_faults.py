"""kill -9 at random points of `neurohash index --force`, `index --append`, `neurohash compact`
and `python predict.py`: afterwards the old or the new state is intact, and a rerun finishes the
job. Seeded delays, a bounded number of
tries (each a real subprocess killed as a user's crash or an OOM killer would)."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from neurohash.index.database import Database, build_database
from neurohash.index.shards import MANIFEST
from neurohash.predict import predict
from tests.helpers import V4_FILE, compose_app

ROOT = Path(__file__).resolve().parents[1]
TRIES = 3
PREDICT = ("shard_size=100", "batch_size=32", "trainer.accelerator=cpu")


def killed_at_random(command: list[str], rng: random.Random, longest: float) -> bool:
    """Run ``command`` and SIGKILL it after a random delay up to ``longest`` seconds; True when
    it was killed before it finished."""
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        process.wait(timeout=rng.uniform(0.5, longest))
        return False
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return True


def timed(command: list[str]) -> float:
    start = time.monotonic()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return time.monotonic() - start


@pytest.fixture(scope="module")
def reads(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 400 V4 reads, plain FASTA."""
    from itertools import islice

    from neurohash.data.fasta import iter_records

    path = tmp_path_factory.mktemp("faults") / "reads.fasta"
    records = islice(iter_records(shared_data / V4_FILE), 400)
    path.write_text("".join(f">{r.id}\n{r.seq}\n" for r in records))
    return path


def predict_command(checkpoint: Path, reads: Path, out: Path) -> list[str]:
    run_dir = f"hydra.run.dir={out.parent / 'hydra'}"
    overrides = [f"ckpt_path={checkpoint}", f"input={reads}", f"output_dir={out}", run_dir]
    return [sys.executable, "predict.py", *overrides, *PREDICT, "trainer.enable_progress_bar=false"]


@pytest.mark.slow
def test_killed_index_force_leaves_the_old_or_the_new_database(
    checkpoint: Path, reads: Path, tmp_path: Path
) -> None:
    shards, db_dir = tmp_path / "shards", tmp_path / "db"
    overrides = (f"ckpt_path={checkpoint}", f"input={reads}", f"output_dir={shards}", *PREDICT)
    predict(compose_app("predict", tmp_path / "hydra", *overrides))
    build_database(shards, db_dir, index="flat")
    command = [sys.executable, "-m", "neurohash", "index", str(shards), "-o", str(db_dir)]
    command += ["--force", "--index", "hnsw"]
    longest = timed(command)
    rng = random.Random(0)
    for _ in range(TRIES):
        killed_at_random(command, rng, longest)
        assert Database.open(db_dir).stats()["index"] in ("flat", "hnsw")
    timed([*command[:-1], "ivf"])
    assert Database.open(db_dir).stats()["index"] == "ivf"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".db")) == []


@pytest.mark.slow
def test_killed_append_and_compact_leave_a_searchable_database(
    checkpoint: Path, reads: Path, tmp_path: Path
) -> None:
    """Two predict runs (the reads, then their first half again as a new input file); the
    second is appended to the first's database and the segments are compacted, each killed at
    random first: every kill leaves the database before or after the change, never between."""
    half = tmp_path / "half.fasta"
    half.write_text("".join(reads.read_text().splitlines(keepends=True)[:400]))
    runs = {}
    for name, fasta in (("first", reads), ("second", half)):
        runs[name] = tmp_path / name
        overrides = (f"ckpt_path={checkpoint}", f"input={fasta}", f"output_dir={runs[name]}")
        predict(compose_app("predict", tmp_path / f"hydra-{name}", *overrides, *PREDICT))
    db_dir, rehearsal = tmp_path / "db", tmp_path / "rehearsal"
    small = ["--segment-regions", "100"]
    build_database(runs["first"], db_dir, segment_regions=100)
    build_database(runs["first"], rehearsal, segment_regions=100)
    before = Database.open(db_dir).regions
    added = before + json.loads((runs["second"] / MANIFEST).read_text())["rows"]
    neurohash = [sys.executable, "-m", "neurohash"]
    append = [*neurohash, "index", "--append", str(runs["second"]), str(db_dir), *small]
    compact = [*neurohash, "compact", str(db_dir)]
    appended = lambda db: db.regions == added  # noqa: E731
    compacted = lambda db: len(db.segments) == 1  # noqa: E731
    rng = random.Random(2)
    for command, states, done in (
        (append, (before, added), appended),
        (compact, (added,), compacted),
    ):
        rehearsed = [str(rehearsal) if part == str(db_dir) else part for part in command]
        longest = timed(rehearsed)
        for _ in range(TRIES):
            killed_at_random(command, rng, longest)
            assert Database.open(db_dir).regions in states
        if not done(Database.open(db_dir)):
            timed(command)
    db = Database.open(db_dir)
    assert db.regions == added and len(db.segments) == 1
    assert db.region_sequences(np.arange(db.regions)) == Database.open(rehearsal).sequences()
    listed = {s["name"] for s in db.manifest["segments"]}
    assert {p.name for p in (db_dir / "segments").iterdir()} == listed


@pytest.mark.slow
def test_killed_predict_resumes_to_the_same_rows(
    checkpoint: Path, reads: Path, tmp_path: Path
) -> None:
    reference, out = tmp_path / "reference" / "shards", tmp_path / "resumed" / "shards"
    longest = timed(predict_command(checkpoint, reads, reference))
    rng = random.Random(1)
    for _ in range(TRIES):
        if not killed_at_random(predict_command(checkpoint, reads, out), rng, longest):
            break
    timed(predict_command(checkpoint, reads, out))
    assert (out / MANIFEST).is_file() and not list(out.glob("*.tmp"))
    order = [("record", "ascending"), ("region_start", "ascending")]
    got, expected = (
        pa.concat_tables(pq.read_table(f) for f in sorted(d.glob("shard-*.parquet"))).sort_by(order)
        for d in (out, reference)
    )
    assert got.equals(expected)
