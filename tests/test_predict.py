"""The predict loop end to end on real reads: a tiny model is trained once, then writes hash
shards of V4 reads (gz FASTA) and influenza segments (longer than the model's max_len, so they
are cut into regions). Round trip, workers and ranks, resume after a kill, and bad inputs."""

from __future__ import annotations

import gzip
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from omegaconf import DictConfig, OmegaConf

from neurohash.checkpoint import load_module, model_fingerprint
from neurohash.cli import main
from neurohash.data.fasta import SequenceFileError, iter_records, reverse_complement
from neurohash.data.regions import sample_regions
from neurohash.data.tokens import encode
from neurohash.files import file_sha256
from neurohash.hashing import pack_codes
from neurohash.index.database import Database, build_database
from neurohash.index.job import PredictError, hash_tokens, stores_embeddings
from neurohash.index.shards import MANIFEST, ShardError, shard_schema
from neurohash.predict import predict
from tests.helpers import INFLUENZA_FILE, V4_FILE, compose_app

ROOT = Path(__file__).resolve().parents[1]
MAX_LEN = 160
N_READS = 150
SHARD_SIZE = 40
DENSITY = 5.0
ROW_KEYS = ("seq_id", "source", "record", "region_start", "region_end", "code", "sequence")
ID_KEYS = tuple(k for k in ROW_KEYS if k != "code")
FAST = (
    f"shard_size={SHARD_SIZE}",
    "batch_size=32",
    "num_workers=0",
    f"regions.density={DENSITY}",
    "trainer.accelerator=cpu",
    "trainer.enable_progress_bar=false",
)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """a_reads.fasta.gz: the first 150 real V4 reads; b_flu.fasta: 6 influenza segments
    (~1-2.3 kb) and one holding IUPAC codes (stored, its ambiguous bases replaced by A)."""
    folder = tmp_path_factory.mktemp("predict_inputs")
    reads = itertools.islice(iter_records(shared_data / V4_FILE), N_READS)
    with gzip.open(folder / "a_reads.fasta.gz", "wt") as handle:
        handle.writelines(f">{r.id} sample read\n{r.seq}\n" for r in reads)
    flu = list(itertools.islice(iter_records(shared_data / INFLUENZA_FILE), 300))
    clean = [r for r in flu if set(r.seq) <= set("ACGT")][:6]
    ambiguous = next(r for r in flu if not set(r.seq) <= set("ACGTN"))
    with open(folder / "b_flu.fasta", "w") as handle:
        handle.writelines(f">{r.id}\n{r.seq}\n" for r in [*clean[:3], ambiguous, *clean[3:]])
    return folder


def compose_predict(run_dir: Path, *overrides: str) -> DictConfig:
    """Compose `python predict.py OVERRIDES` with Hydra's runtime set as @hydra.main does."""
    return compose_app("predict", run_dir, *overrides)


def run_predict(checkpoint: Path, inputs: Path, out: Path, *overrides: str) -> dict:
    cfg = compose_predict(
        out.parent / f"{out.name}_hydra",
        f"ckpt_path={checkpoint}",
        f"input={inputs}/*.fasta*",
        f"output_dir={out}",
        *FAST,
        *overrides,
    )
    return predict(cfg)


def read_rows(out: Path) -> pa.Table:
    """All rows of a shard directory, in shard order, checked against the manifest."""
    manifest = json.loads((out / MANIFEST).read_text())
    tables = []
    for entry in manifest["shards"]:
        path = out / entry["file"]
        assert file_sha256(path) == entry["sha256"]
        table = pq.read_table(path)
        assert table.num_rows == entry["rows"]
        tables.append(table)
    return pa.concat_tables(tables)


def row_set(table: pa.Table, keys: tuple[str, ...] = ID_KEYS) -> set[tuple]:
    rows = {tuple(row[k] for k in keys) for row in table.to_pylist()}
    assert len(rows) == table.num_rows  # no duplicated row
    return rows


def code_matrix(table: pa.Table) -> np.ndarray:
    return np.frombuffer(b"".join(table.column("code").to_pylist()), np.uint8).reshape(-1, 16)


def assert_codes_match(got: np.ndarray, expected: np.ndarray) -> None:
    """Equal codes, up to a rare flipped bit: float sums differ in the last place between batch
    compositions, which can flip a projection within ~1e-7 of zero."""
    flips = np.unpackbits(got ^ expected, axis=1).sum(axis=1)
    assert flips.max() <= 2 and (flips > 0).mean() <= 0.01, flips[flips > 0]


def assert_same_rows(table: pa.Table, reference: pa.Table, keys: tuple[str, ...]) -> None:
    """The same rows (ids, regions, sequences exactly; codes up to rare flips), in any order."""
    assert row_set(table, keys) == row_set(reference, keys)
    order = [table.column(k).to_pylist() for k in ("record", "region_start")]
    ref_order = [reference.column(k).to_pylist() for k in ("record", "region_start")]
    got = code_matrix(table)[np.lexsort(order[::-1])]
    assert_codes_match(got, code_matrix(reference)[np.lexsort(ref_order[::-1])])


@pytest.fixture(scope="module")
def baseline(checkpoint: Path, inputs: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One in-process run (one rank, no workers): the reference output."""
    out = tmp_path_factory.mktemp("baseline") / "shards"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_predict(checkpoint, inputs, out)
    finally:
        torch.set_num_threads(threads)
    return out


def expected_regions(inputs: Path) -> list[tuple]:
    """(seq_id, source, record, start, end, sequence) computed independently of the loop."""
    rows, record = [], 0
    for path in sorted(inputs.glob("*.fasta*")):
        for rec in iter_records(path):
            seq = re.sub("[^ACGT]", "A", rec.seq.upper())  # the stored cleaning's replacement
            for start, end in sample_regions(seq, MAX_LEN, DENSITY, 15, 0, canonical=True):
                rows.append((rec.id, str(path), record, start, end, seq[start:end]))
            record += 1
    return rows


def test_round_trip_codes_ids_regions(baseline: Path, checkpoint: Path, inputs: Path) -> None:
    manifest = json.loads((baseline / MANIFEST).read_text())
    table = read_rows(baseline)
    module = load_module(checkpoint)
    dim = module.encoder.embedding_dim  # embeddings are stored by default (search refines by them)
    assert table.schema == shard_schema(128, dim, store_sequences=True)
    got = list(zip(*(table.column(k).to_pylist() for k in ID_KEYS), strict=True))
    assert got == expected_regions(inputs)  # ids, sources, record numbers, regions, in order
    seqs = table.column("sequence").to_pylist()
    with torch.no_grad():
        tokens = encode(seqs, MAX_LEN)
        codes = pack_codes(module.codes_of(tokens, module(tokens)))
    assert_codes_match(code_matrix(table), codes)
    assert manifest["model_fingerprint"] == model_fingerprint(module)
    assert manifest["code_bits"] == 128 and manifest["max_len"] == MAX_LEN
    assert manifest["embedding_dim"] == module.encoder.embedding_dim
    assert manifest["rows"] == table.num_rows == sum(s["rows"] for s in manifest["shards"])
    assert manifest["records"] == manifest["records_kept"] == N_READS + 7
    assert manifest["dropped"] == {}  # inference drops no record: ambiguous bases are replaced
    assert len(manifest["shards"]) == -(-(N_READS + 7) // SHARD_SIZE)
    assert manifest["regions"] == {
        "window": MAX_LEN,
        "density": DENSITY,
        "k": 15,
        "seed": 0,
        "canonical": True,
        "stride": None,
    }
    assert manifest["input_files"] == [str(p) for p in sorted(inputs.glob("*.fasta*"))]
    assert manifest["checkpoint"] == os.path.abspath(checkpoint)
    flu_rows = [r for r in got if r[1].endswith("b_flu.fasta")]
    assert len(flu_rows) > 6 * 3  # long segments were cut into several regions each


def test_workers_and_embeddings(baseline: Path, checkpoint: Path, inputs: Path, tmp_path) -> None:
    """Two loader workers own alternate shards: the same rows; embeddings left out on request."""
    out = tmp_path / "shards"
    manifest = run_predict(
        checkpoint, inputs, out, "num_workers=2", "store_embeddings=false", "store_sequences=false"
    )
    table = read_rows(out)
    assert table.schema == shard_schema(128, None, store_sequences=False)
    assert manifest["embedding_dim"] == load_module(checkpoint).encoder.embedding_dim
    assert_same_rows(table, read_rows(baseline), ID_KEYS[:-1])
    baseline_rows = read_rows(baseline)  # stored by default, as float16
    seqs = baseline_rows.column("sequence").to_pylist()
    module = load_module(checkpoint)
    with torch.no_grad():
        expected = module(encode(seqs, MAX_LEN)).numpy()
    stored = np.array(baseline_rows.column("embedding").to_pylist(), dtype=np.float32)
    np.testing.assert_allclose(stored, expected, rtol=2e-3, atol=2e-3)


@pytest.mark.slow
def test_two_ranks_same_rows(baseline: Path, checkpoint: Path, inputs: Path, tmp_path) -> None:
    """ddp_spawn on 2 CPU processes: each rank writes its own shards, none lost or duplicated."""
    out = tmp_path / "shards"
    overrides = ("trainer.strategy=ddp_spawn", "trainer.devices=2")
    manifest = run_predict(checkpoint, inputs, out, *overrides)
    assert_same_rows(read_rows(out), read_rows(baseline), ID_KEYS)
    reference = json.loads((baseline / MANIFEST).read_text())
    assert [(s["file"], s["rows"]) for s in manifest["shards"]] == [
        (s["file"], s["rows"]) for s in reference["shards"]
    ]


def test_resume_after_kill(baseline: Path, checkpoint: Path, inputs: Path, tmp_path) -> None:
    """A killed run leaves a missing shard, a shard without marker and a half-written temp file;
    the rerun redoes exactly those and leaves finished shards untouched."""
    out = tmp_path / "shards"
    shutil.copytree(baseline, out)
    (out / MANIFEST).unlink()
    (out / "shard-000001.parquet").unlink()
    (out / "shard-000001.done.json").unlink()
    (out / "shard-000001.parquet.tmp").write_bytes(b"PAR1 half a shard")
    (out / "shard-000003.done.json").unlink()  # killed between the rename and the marker
    past = 1_000_000_000
    for path in out.iterdir():
        os.utime(path, (past, past))
    manifest = run_predict(checkpoint, inputs, out)
    assert_same_rows(read_rows(out), read_rows(baseline), ID_KEYS)
    assert len(manifest["shards"]) == 4
    for shard in range(4):
        touched = (out / f"shard-{shard:06d}.parquet").stat().st_mtime != past
        assert touched == (shard in (1, 3)), shard
    assert not list(out.glob("*.tmp"))
    for path in out.glob("shard-*"):
        os.utime(path, (past, past))
    run_predict(checkpoint, inputs, out)  # nothing left to do: nothing rewritten
    assert all(path.stat().st_mtime == past for path in out.glob("shard-*"))


def test_other_job_in_output_dir_is_refused(baseline: Path, checkpoint: Path, inputs: Path):
    with pytest.raises(ShardError, match="another job"):
        run_predict(checkpoint, inputs, baseline, "regions.density=2")


def test_an_input_edited_in_place_is_not_resumed(
    baseline: Path, checkpoint: Path, inputs: Path, tmp_path: Path
) -> None:
    """Resume once trusted finished shards by the inputs' sizes: an input edited in place (same
    size) kept its stale codes."""
    edited, out = tmp_path / "inputs", tmp_path / "shards"
    shutil.copytree(inputs, edited)
    shutil.copytree(baseline, out)
    flu = edited / "b_flu.fasta"
    text = flu.read_text()
    first_base = text.index("\n") + 1
    swapped = "C" if text[first_base] != "C" else "G"
    flu.write_text(text[:first_base] + swapped + text[first_base + 1 :])
    assert flu.stat().st_size == (inputs / "b_flu.fasta").stat().st_size
    with pytest.raises(ShardError, match="input content"):
        run_predict(checkpoint, edited, out)


def test_a_database_or_other_files_are_never_overwritten(
    checkpoint: Path, inputs: Path, tmp_path: Path, baseline: Path
) -> None:
    """`output_dir=` pointed at a database once overwrote its manifest.json (exit 0)."""
    db_dir = tmp_path / "db"
    build_database(baseline, db_dir)
    manifest = (db_dir / MANIFEST).read_text()
    with pytest.raises(ShardError, match=f"{db_dir}: holds"):
        run_predict(checkpoint, inputs, db_dir)
    assert (db_dir / MANIFEST).read_text() == manifest
    Database.open(db_dir)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    with pytest.raises(ShardError, match="notes.txt"):
        run_predict(checkpoint, inputs, mine)
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]


def children_of(pid: int) -> list[int]:
    """Live (not zombie) processes whose parent is ``pid``."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines())
        except (OSError, ValueError):
            continue
        if fields.get("PPid", "").strip() == str(pid) and not fields["State"].startswith("Z"):
            found.append(int(status.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        return not (Path(f"/proc/{pid}/status").read_text().split("State:\t")[1].startswith("Z"))
    except (OSError, IndexError):
        return False


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs Linux /proc")
def test_workers_die_with_a_killed_predict(checkpoint: Path, shared_data: Path, tmp_path: Path):
    """kill -9 of predict.py once left its data-loading worker running with no parent."""
    command = [
        sys.executable,
        "predict.py",
        f"ckpt_path={checkpoint}",
        f"input={shared_data / V4_FILE}",
        f"output_dir={tmp_path / 'shards'}",
        f"hydra.run.dir={tmp_path / 'run'}",
        "num_workers=1",
        "trainer.accelerator=cpu",
        "trainer.enable_progress_bar=false",
    ]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    workers: list[int] = []
    while not workers and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.5)
        workers = children_of(process.pid)
    assert workers, "predict.py started no worker"
    time.sleep(2)  # the worker is streaming records now
    process.kill()
    process.wait()
    deadline = time.monotonic() + 30
    while any(alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    orphans = [w for w in workers if alive(w)]
    for pid in orphans:  # leave nothing behind, even when the test fails
        os.kill(pid, signal.SIGKILL)
    assert not orphans


def test_codes_of_features_without_embeddings_skip_the_encoder() -> None:
    """A row's code from a coder with features of its own is the same whether or not its
    embedding is stored, and without it the encoder never runs."""
    from neurohash.hashing import Features, LearnedHash
    from neurohash.losses import MSEDistanceLoss
    from neurohash.models.encoders import KmerEncoder
    from neurohash.models.encoders.linear import LinearEncoder
    from neurohash.models.geometry import Cosine, Euclidean
    from neurohash.module import DistanceEmbeddingModule

    torch.manual_seed(0)
    features = Features(KmerEncoder(12, k=2, segments=2), Cosine(learn_scale=False))
    model = DistanceEmbeddingModule(
        LinearEncoder(4, 12),
        Euclidean(),
        MSEDistanceLoss(),
        12,
        hashing=LearnedHash(4, 16, features=features),
    ).eval()
    tokens = torch.randint(0, 4, (8, 12))
    with torch.inference_mode():
        full = hash_tokens(model, tokens, store_embeddings=True)
        calls: list[int] = []
        model.encoder.register_forward_hook(lambda *_: calls.append(1))
        lean = hash_tokens(model, tokens, store_embeddings=False)
    assert not calls and set(lean) == {"code"} and full["embedding"].shape == (8, 4)
    assert np.array_equal(lean["code"], full["code"])


def test_embeddings_are_stored_by_default_only_when_narrow_and_the_codes_read_them() -> None:
    """store_embeddings=auto (the default) keeps a learned embedding its codes are made of, not a
    7-mer profile nor one beside codes read from features of their own."""
    assert OmegaConf.load(ROOT / "conf" / "predict.yaml").store_embeddings == "auto"
    assert stores_embeddings("auto", 128, False) and not stores_embeddings("auto", 4**7, False)
    assert not stores_embeddings("auto", 128, True)
    assert stores_embeddings(True, 4**7, True) and not stores_embeddings(False, 128, False)
    with pytest.raises(PredictError, match="store_embeddings=sometimes: expected true, false"):
        stores_embeddings("sometimes", 128, False)


def test_missing_input(checkpoint: Path, tmp_path: Path) -> None:
    missing = tmp_path / "missing.fasta.gz"
    cfg = compose_predict(
        tmp_path / "hydra", f"ckpt_path={checkpoint}", f"input={missing}", f"output_dir={tmp_path}"
    )
    with pytest.raises(SequenceFileError, match=f"{missing}: no such file"):
        predict(cfg)
    cfg.input = str(tmp_path / "*.fa")
    with pytest.raises(SequenceFileError, match="matches no file"):
        predict(cfg)


def test_not_fasta_and_bad_record(checkpoint: Path, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("these are my notes,\nnot sequences\n")
    out = tmp_path / "shards"
    cfg = compose_predict(
        tmp_path / "hydra", f"ckpt_path={checkpoint}", f"input={notes}", f"output_dir={out}"
    )
    with pytest.raises(SequenceFileError, match=f"{notes}.*FASTA"):
        predict(cfg)
    bad = tmp_path / "bad.fasta"
    bad.write_text(">r1\nACGTACGT\n>r2\nACGT\n>r3\nACGXYZ\n")
    cfg.input, cfg.trainer.accelerator = str(bad), "cpu"
    with pytest.raises(SequenceFileError, match=f"{bad}: record 'r3'"):
        predict(cfg)
    assert not list(out.glob("*.parquet"))  # the failed shard was never written


def test_predict_script(checkpoint: Path, inputs: Path, tmp_path: Path) -> None:
    """`python predict.py ...` as a user runs it; the Hydra run dir holds the composed config."""
    out, run_dir = tmp_path / "shards", tmp_path / "run"
    command = [
        sys.executable,
        "predict.py",
        f"ckpt_path={checkpoint}",
        f"input={inputs}/a_reads.fasta.gz",
        f"output_dir={out}",
        f"hydra.run.dir={run_dir}",
        "shard_size=100",
        "trainer.enable_progress_bar=false",
    ]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["rows"] == N_READS and len(manifest["shards"]) == 2
    composed = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    assert composed.output_dir == str(out) and composed.shard_size == 100


def test_reads_of_a_stored_genome_are_found_on_both_strands(
    checkpoint: Path, shared_data: Path, tmp_path: Path, capsys
) -> None:
    """20 kb of a real genome through predict -> index -> search: 60 bp reads from inside its
    regions, half of them reverse-complemented, are found at semi-global distance 0 (``auto``
    alignment: shorter than half the window), each on the strand it came from."""
    genome = next(iter_records(shared_data / "genomes" / "shew_os185.fa.gz"))
    piece = genome.seq[100_000:120_000]
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "genome.fasta").write_text(f">{genome.id}\n{piece}\n")
    shards, db = tmp_path / "shards", tmp_path / "db"
    run_predict(checkpoint, tmp_path / "in", shards, "regions.density=20")
    assert main(["index", str(shards), "-o", str(db)]) == 0
    table = read_rows(shards)
    rng = np.random.default_rng(0)
    reads, origins = [], []
    for i, row in enumerate(rng.choice(table.num_rows, size=10, replace=False).tolist()):
        start = table.column("region_start")[row].as_py() + int(rng.integers(0, MAX_LEN - 60))
        read = piece[start : start + 60]
        reads.append(f">r{i}\n{reverse_complement(read) if i % 2 else read}\n")
        origins.append(start)
    (tmp_path / "reads.fasta").write_text("".join(reads))
    capsys.readouterr()
    args = ["search", str(db), str(tmp_path / "reads.fasta"), "--rerank"]
    assert main([*args, "-k", "1", "--candidates", str(table.num_rows)]) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()[1:]]
    assert [(r[1], r[2], r[8], r[9]) for r in rows] == [
        (genome.id, "-" if i % 2 else "+", "0", "infix") for i in range(10)
    ]
    for row, start in zip(rows, origins, strict=True):  # the hit's region holds the read
        assert int(row[6]) <= start and start + 60 <= int(row[7])
    assert main([*args, "-k", "3", "--by-region", "--candidates", str(table.num_rows)]) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()[1:]]
    assert len(rows) == 30 and {r[1] for r in rows} == {genome.id}  # one genome, 3 regions
    for i in range(10):
        regions = [(r[6], r[7]) for r in rows[3 * i : 3 * i + 3]]
        distances = [int(r[8]) for r in rows[3 * i : 3 * i + 3]]
        assert len(set(regions)) == 3 and distances == sorted(distances) and distances[0] == 0


def test_a_fragment_of_a_repeat_is_found_once_at_each_copy(
    checkpoint: Path, shared_data: Path, tmp_path: Path, capsys
) -> None:
    """A long query's hits are loci: 20 kb of a real genome with 1.5 kb of it repeated 10 kb
    on, a base in 100 changed, tiled every 40 bases. A 1 kb piece of the first copy, on either
    strand, holds regions of it at distance 0 and of the second at 1 or 2; its two hits are one
    region of each copy, not two of the first."""
    genome = next(iter_records(shared_data / "genomes" / "shew_os185.fa.gz"))
    piece = genome.seq[100_000:120_000]
    repeat = list(piece[2_000:3_500])
    for i in range(50, len(repeat), 100):
        repeat[i] = {"A": "C"}.get(repeat[i], "A")
    stored = piece[:12_000] + "".join(repeat) + piece[12_000:]  # copies at 2,000 and 12,000
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "genome.fasta").write_text(f">{genome.id}\n{stored}\n")
    shards, db = tmp_path / "shards", tmp_path / "db"
    run_predict(checkpoint, tmp_path / "in", shards, "regions.stride=40")
    assert main(["index", str(shards), "-o", str(db)]) == 0
    query = piece[2_200:3_200]
    (tmp_path / "q.fasta").write_text(f">q\n{query}\n>rc\n{reverse_complement(query)}\n")
    capsys.readouterr()
    args = ["search", str(db), str(tmp_path / "q.fasta"), "--rerank", "--by-region", "-k", "2"]
    assert main(args) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()[1:]]
    assert [(r[0], r[2]) for r in rows] == [("q", "+")] * 2 + [("rc", "-")] * 2
    assert [r[8] for r in rows[::2]] == ["0", "0"] and all(int(r[8]) > 0 for r in rows[1::2])
    for pair in (rows[:2], rows[2:]):
        copies = sorted(int(r[6]) // 10_000 for r in pair)  # 2,200-3,200 or 12,200-13,200
        assert copies == [0, 1]
        assert all(int(r[6]) % 10_000 >= 2_200 and int(r[7]) % 10_000 <= 3_200 for r in pair)


def test_a_database_tiled_every_stride_bases_holds_every_read_of_window_plus_stride(
    checkpoint: Path, shared_data: Path, tmp_path: Path, capsys
) -> None:
    """``regions.stride``: windows every 40 bases of 20 kb of a real genome, whatever its
    k-mers; reads of a window plus 40 bases from anywhere, on either strand, each hold a whole
    stored region, which a query tile meets at global distance 0."""
    stride = 40
    genome = next(iter_records(shared_data / "genomes" / "shew_os185.fa.gz"))
    piece = genome.seq[100_000:120_000]
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "genome.fasta").write_text(f">{genome.id}\n{piece}\n")
    shards, db = tmp_path / "shards", tmp_path / "db"
    manifest = run_predict(checkpoint, tmp_path / "in", shards, f"regions.stride={stride}")
    assert manifest["regions"]["stride"] == stride
    assert main(["index", str(shards), "-o", str(db)]) == 0
    starts = read_rows(shards).column("region_start").to_numpy()
    assert np.array_equal(starts, np.arange(0, len(piece) - MAX_LEN + 1, stride))
    rng = np.random.default_rng(0)
    reads, origins = [], rng.integers(0, len(piece) - MAX_LEN - stride, size=8).tolist()
    for i, start in enumerate(origins):
        read = piece[start : start + MAX_LEN + stride]
        reads.append(f">r{i}\n{reverse_complement(read) if i % 2 else read}\n")
    (tmp_path / "reads.fasta").write_text("".join(reads))
    capsys.readouterr()
    args = ["search", str(db), str(tmp_path / "reads.fasta"), "--rerank", "--step", "1"]
    assert main([*args, "-k", "1", "--candidates", str(len(starts))]) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()[1:]]
    assert [(r[1], r[2], r[8], r[9]) for r in rows] == [
        (genome.id, "-" if i % 2 else "+", "0", "global") for i in range(8)
    ]
    for row, start in zip(rows, origins, strict=True):  # the read holds the hit's region
        assert start <= int(row[6]) and int(row[7]) <= start + MAX_LEN + stride
