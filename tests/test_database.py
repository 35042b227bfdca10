"""The hash database built from shards written here with the predict loop's exact schema:
de-duplication, checksums, atomic writes, index kinds and statistics."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from neurohash import database
from neurohash.database import (
    CODES_FILE,
    DATA_FILES,
    INDEX_FILE,
    POSTINGS_FILE,
    Database,
    DatabaseError,
    build_database,
    choose_index,
    verify_database,
)
from neurohash.index.shards import ShardError
from neurohash.search import search

BITS = 32
FINGERPRINT = "f" * 64


def shard_table(rows: dict[str, list], bits: int, embedding_dim: int | None = None) -> pa.Table:
    """A shard with the predict loop's schema (code: fixed_size_binary(bits/8), MSB first)."""
    columns = {
        "seq_id": pa.array(rows["seq_id"], pa.string()),
        "source": pa.array(rows["source"], pa.string()),
        "record": pa.array(rows["record"], pa.int64()),
        "region_start": pa.array(rows["region_start"], pa.int32()),
        "region_end": pa.array(rows["region_end"], pa.int32()),
        "code": pa.array([bytes(c) for c in rows["code"]], pa.binary(bits // 8)),
    }
    if "embedding" in rows:
        emb = np.asarray(rows["embedding"], dtype=np.float16)
        embedding_dim = emb.shape[1]
    elif embedding_dim:
        emb = np.zeros((len(rows["seq_id"]), embedding_dim), dtype=np.float16)
    if embedding_dim:
        columns["embedding"] = pa.FixedSizeListArray.from_arrays(
            pa.array(emb.ravel()), embedding_dim
        )
    if "sequence" in rows:
        columns["sequence"] = pa.array(rows["sequence"], pa.string())
    return pa.table(columns)


def write_shards(
    directory: Path,
    rows: dict[str, list],
    bits: int = BITS,
    fingerprint: str = FINGERPRINT,
    n_shards: int = 2,
    max_len: int = 160,
    **manifest_extra: object,
) -> Path:
    """Split ``rows`` into ``n_shards`` zstd Parquet shards plus manifest.json in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    n = len(rows["seq_id"])
    entries = []
    for i, part in enumerate(np.array_split(np.arange(n), n_shards)):
        table = shard_table({k: [v[j] for j in part] for k, v in rows.items()}, bits)
        name = f"shard-{i:05d}.parquet"
        pq.write_table(table, directory / name, compression="zstd")
        digest = hashlib.sha256((directory / name).read_bytes()).hexdigest()
        entries.append({"file": name, "rows": len(part), "sha256": digest})
    manifest = {
        "model_fingerprint": fingerprint,
        "code_bits": bits,
        "embedding_dim": 8,
        "max_len": max_len,
        "shards": entries,
        "inputs": ["synthetic"],
        "regions": {},
        "neurohash_version": "test",
        **manifest_extra,
    }
    (directory / "manifest.json").write_text(json.dumps(manifest))
    return directory


def synthetic_rows(n: int = 300, n_codes: int = 60, bits: int = BITS, seed: int = 0) -> dict:
    """``n`` regions over ~n/3 sequences in two source files, drawing codes from a small pool
    (so many regions share a code) and carrying random DNA as the region sequence."""
    rng = np.random.default_rng(seed)
    pool = rng.integers(0, 256, size=(n_codes, bits // 8), dtype=np.uint8)
    seq_number = rng.integers(0, max(1, n // 3), size=n)
    starts = rng.integers(0, 1000, size=n)
    return {
        "seq_id": [f"s{i}" for i in seq_number],
        "source": [f"file{i % 2}.fa" for i in seq_number],
        "record": [int(i) for i in seq_number],
        "region_start": [int(s) for s in starts],
        "region_end": [int(s) + 100 for s in starts],
        "code": [pool[i] for i in rng.integers(0, n_codes, size=n)],
        "sequence": ["".join(rng.choice(list("ACGT"), size=30)) for _ in range(n)],
    }


def posting_set(table: pa.Table, code_of: dict[int, bytes] | None = None) -> set[tuple]:
    """Rows as (seq_id, source, start, end, code bytes) tuples."""
    cols = table.to_pydict()
    codes = (
        [code_of[c] for c in cols["code_id"]]
        if code_of is not None
        else [bytes(c) for c in cols["code"]]
    )
    return set(
        zip(
            cols["seq_id"],
            cols["source"],
            cols["region_start"],
            cols["region_end"],
            codes,
            strict=True,
        )
    )


@pytest.fixture
def shards(tmp_path: Path) -> Path:
    return write_shards(tmp_path / "shards", synthetic_rows())


def test_dedup_keeps_every_region_once_under_its_code(shards: Path, tmp_path: Path) -> None:
    rows = synthetic_rows()
    manifest = build_database(shards, tmp_path / "db", index="flat")
    db = Database.open(tmp_path / "db")
    distinct = {bytes(c) for c in rows["code"]}
    assert len(db.codes) == len(distinct) == manifest["counts"]["unique_codes"]
    assert len({bytes(c) for c in db.codes}) == len(db.codes)  # stored once each
    code_of = {i: bytes(c) for i, c in enumerate(db.codes)}
    original = pa.table({k: v for k, v in rows.items() if k != "sequence"})
    original = original.set_column(5, "code", pa.array([bytes(c) for c in rows["code"]]))
    assert db.postings.num_rows == len(rows["seq_id"])
    assert posting_set(db.postings, code_of) == posting_set(original)
    counts = pq.read_table(tmp_path / "db" / CODES_FILE).column("n_postings").to_numpy()
    assert counts.sum() == len(rows["seq_id"]) and (counts >= 1).all()
    for code_id in range(len(db.codes)):  # each code's postings are one contiguous slice
        ids = db.postings.column("code_id").to_numpy()[
            db.offsets[code_id] : db.offsets[code_id + 1]
        ]
        assert (ids == code_id).all() and len(ids) == counts[code_id]


def test_sequences_of_regions_follow_their_postings(shards: Path, tmp_path: Path) -> None:
    rows = synthetic_rows()
    build_database(shards, tmp_path / "db")
    db = Database.open(tmp_path / "db")
    expected = {
        (s, src, a): seq
        for s, src, a, seq in zip(
            rows["seq_id"], rows["source"], rows["region_start"], rows["sequence"], strict=True
        )
    }
    cols = db.postings.to_pydict()
    got = zip(cols["seq_id"], cols["source"], cols["region_start"], db.sequences(), strict=True)
    assert all(expected[(s, src, a)] == seq for s, src, a, seq in got)


def test_embeddings_follow_their_postings(tmp_path: Path) -> None:
    rows = synthetic_rows(n=120, n_codes=30)
    emb = np.random.default_rng(3).normal(size=(120, 8)).astype(np.float16)
    rows["embedding"] = list(emb)
    build_database(write_shards(tmp_path / "shards", rows), tmp_path / "db")
    db = Database.open(tmp_path / "db")
    assert db.has_embeddings and db.embeddings.shape == (120, 8)
    row_of = {
        key: i
        for i, key in enumerate(
            zip(rows["source"], rows["seq_id"], rows["region_start"], strict=True)
        )
    }
    cols = db.postings.select(["source", "seq_id", "region_start"]).to_pydict()
    for p, key in enumerate(zip(cols["source"], cols["seq_id"], cols["region_start"], strict=True)):
        assert np.array_equal(db.embeddings[p], emb[row_of[key]])


def test_stats_count_sequences_regions_codes_and_bytes(shards: Path, tmp_path: Path) -> None:
    rows = synthetic_rows()
    build_database(shards, tmp_path / "db")
    stats = Database.open(tmp_path / "db").stats()
    assert stats["sequences"] == len(set(zip(rows["source"], rows["seq_id"], strict=True)))
    assert stats["regions"] == len(rows["seq_id"])
    assert stats["unique_codes"] == len({bytes(c) for c in rows["code"]})
    on_disk = sum((tmp_path / "db" / name).stat().st_size for name in DATA_FILES)
    assert stats["bytes_data"] == on_disk
    assert stats["bytes_per_region"] == pytest.approx(on_disk / len(rows["seq_id"]))
    assert stats["bytes_model"] == 0 and stats["has_sequences"] and stats["index"] == "flat"


def test_same_id_in_two_files_is_two_sequences(tmp_path: Path) -> None:
    rows = synthetic_rows(n=4)
    rows.update(seq_id=["a", "a", "a", "b"], source=["x.fa", "y.fa", "x.fa", "x.fa"])
    rows.update(record=[0, 1, 0, 2])  # rows 0 and 2: two regions of one record
    build_database(write_shards(tmp_path / "shards", rows, n_shards=1), tmp_path / "db")
    assert Database.open(tmp_path / "db").stats()["sequences"] == 3


def test_records_sharing_an_id_stay_apart(tmp_path: Path) -> None:
    """100 records named `dup` are 100 targets (they were once merged into one), and a search
    returns k distinct hits among them."""
    rows = synthetic_rows(n=100)
    rows.update(seq_id=["dup"] * 100, source=["x.fa"] * 100, record=list(range(100)))
    build_database(write_shards(tmp_path / "shards", rows, n_shards=2), tmp_path / "db")
    db = Database.open(tmp_path / "db")
    assert db.stats()["sequences"] == 100
    hits = search(db, np.stack(rows["code"][:3]), k=10)
    assert all(len(per_query) == 10 for per_query in hits)
    assert all(len({h.target for h in per_query}) == 10 for per_query in hits)


def test_corrupt_shard_is_refused_and_nothing_is_left(shards: Path, tmp_path: Path) -> None:
    shard = shards / "shard-00001.parquet"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(ShardError, match=r"shard-00001\.parquet.*sha256"):
        build_database(shards, tmp_path / "db")
    assert not (tmp_path / "db").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".db")]  # no temp dirs


def test_missing_shard_and_wrong_row_count_are_refused(shards: Path, tmp_path: Path) -> None:
    manifest = json.loads((shards / "manifest.json").read_text())
    manifest["shards"][0]["rows"] += 1
    (shards / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ShardError, match="rows, the manifest says"):
        build_database(shards, tmp_path / "db")
    (shards / "shard-00000.parquet").unlink()
    with pytest.raises(ShardError, match="missing"):
        build_database(shards, tmp_path / "db")
    with pytest.raises(ShardError, match="no such shards directory"):
        build_database(tmp_path / "nowhere", tmp_path / "db")


def test_existing_database_needs_overwrite(shards: Path, tmp_path: Path) -> None:
    db_dir = tmp_path / "db"
    db_dir.mkdir()  # an empty directory may be used
    build_database(shards, db_dir)
    with pytest.raises(DatabaseError, match="already there"):
        build_database(shards, db_dir)
    build_database(shards, db_dir, index="hnsw", overwrite=True)
    assert Database.open(db_dir).stats()["index"] == "hnsw"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["db", "shards"]
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(DatabaseError, match="not a neurohash database"):
        build_database(shards, other, overwrite=True)
    assert (other / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_every_index_kind_finds_stored_codes(shards: Path, tmp_path: Path, kind: str) -> None:
    build_database(shards, tmp_path / "db", index=kind)
    db = Database.open(tmp_path / "db")
    assert db.manifest["index"]["kind"] == kind and (tmp_path / "db" / INDEX_FILE).is_file()
    distances, ids = db.index.search(db.codes, 1)
    assert (distances[:, 0] == 0).all()
    assert (ids[:, 0] == np.arange(len(db.codes))).all()


def test_auto_index_turns_approximate_for_large_collections() -> None:
    assert choose_index("auto", 1000) == "flat"
    assert choose_index("auto", 300_000) == "hnsw"
    assert choose_index("ivf", 10) == "ivf"
    with pytest.raises(DatabaseError, match="unknown index kind"):
        choose_index("lsh", 10)


def test_shards_without_sequences_build_but_cannot_rerank(tmp_path: Path) -> None:
    rows = synthetic_rows()
    del rows["sequence"]
    build_database(write_shards(tmp_path / "shards", rows), tmp_path / "db")
    db = Database.open(tmp_path / "db")
    assert not db.has_sequences and "sequence" not in db.postings.column_names
    with pytest.raises(DatabaseError, match="no region sequences"):
        db.sequences()


def test_code_width_must_match_manifest(tmp_path: Path) -> None:
    shards = write_shards(tmp_path / "shards", synthetic_rows(bits=16), bits=16)
    manifest = json.loads((shards / "manifest.json").read_text())
    manifest["code_bits"] = 32
    (shards / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ShardError, match="fixed_size_binary"):
        build_database(shards, tmp_path / "db")


def test_open_refuses_what_is_not_a_database(tmp_path: Path, shards: Path) -> None:
    with pytest.raises(DatabaseError, match="no such database"):
        Database.open(tmp_path / "nothing")
    with pytest.raises(DatabaseError, match="not a neurohash database"):
        Database.open(shards)
    build_database(shards, tmp_path / "db")
    (tmp_path / "db" / POSTINGS_FILE).unlink()
    with pytest.raises(DatabaseError, match="postings.parquet: missing"):
        Database.open(tmp_path / "db")


def test_truncated_file_is_refused_on_open(shards: Path, tmp_path: Path) -> None:
    build_database(shards, tmp_path / "db")
    index = tmp_path / "db" / INDEX_FILE
    index.write_bytes(index.read_bytes()[:-10])
    with pytest.raises(DatabaseError, match=r"index\.faiss: \d+ bytes, the manifest says"):
        Database.open(tmp_path / "db")


def test_force_never_deletes_shards_or_what_is_not_a_database(shards: Path, tmp_path: Path) -> None:
    """`index S -o S --force` once deleted its own input: a shard directory has a manifest too."""
    before = sorted(p.name for p in shards.iterdir())
    with pytest.raises(DatabaseError, match="overlaps the build's input"):
        build_database(shards, shards, overwrite=True)
    with pytest.raises(DatabaseError, match="overlaps the build's input"):
        build_database(shards, shards / "db", overwrite=True)
    other_shards = write_shards(tmp_path / "other_shards", synthetic_rows(seed=1))
    with pytest.raises(DatabaseError, match="not a neurohash database"):
        build_database(shards, other_shards, overwrite=True)
    assert sorted(p.name for p in shards.iterdir()) == before
    assert (other_shards / "manifest.json").is_file()


@pytest.mark.parametrize("exchange_works", [True, False])
def test_replacing_a_database_always_leaves_one_under_the_name(
    shards: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exchange_works: bool
) -> None:
    """A crash at any step of `index --force` leaves the old or the new database under the
    name; the next build cleans (or restores) what the crash left hidden."""
    db_dir = tmp_path / "db"
    build_database(shards, db_dir, index="flat")
    if not exchange_works:  # a file system without renameat2's exchange: two renames
        monkeypatch.setattr(database, "exchange", lambda a, b: False)
    real_rename = Path.rename

    def crash_after_first_rename(self: Path, target: Path) -> Path:
        moved = real_rename(self, target)
        if self.name == "db" or (exchange_works and ".tmp-" in self.name):
            raise KeyboardInterrupt("killed")
        return moved

    monkeypatch.setattr(Path, "rename", crash_after_first_rename)
    with pytest.raises(KeyboardInterrupt):
        build_database(shards, db_dir, index="hnsw", overwrite=True)
    monkeypatch.setattr(Path, "rename", real_rename)
    hidden = [p.name for p in tmp_path.iterdir() if p.name.startswith(".db.")]
    if exchange_works:  # swapped atomically: the new one is in place, the old one hidden
        assert Database.open(db_dir).stats()["index"] == "hnsw"
    else:  # between the two renames: no database under the name until the next build
        assert not db_dir.exists() and hidden
    build_database(shards, db_dir, index="ivf", overwrite=True)
    assert Database.open(db_dir).stats()["index"] == "ivf"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["db", "shards"]


def test_a_killed_build_leaves_a_temporary_the_next_build_removes(
    shards: Path, tmp_path: Path
) -> None:
    stale = tmp_path / ".db.tmp-deadbeef"
    stale.mkdir()
    (stale / CODES_FILE).write_bytes(b"half")
    build_database(shards, tmp_path / "db")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["db", "shards"]


def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("name", [INDEX_FILE, CODES_FILE, POSTINGS_FILE])
def test_a_flipped_byte_of_the_right_size_is_refused(
    shards: Path, tmp_path: Path, name: str
) -> None:
    """A corrupted index.faiss of the right size once gave other hits with exit status 0."""
    build_database(shards, tmp_path / "db")
    path = tmp_path / "db" / name
    flip_byte(path, path.stat().st_size // 2)
    with pytest.raises(DatabaseError, match=rf"{name}: sha256 does not match"):
        Database.open(tmp_path / "db")
    with pytest.raises(DatabaseError, match=rf"{name}: sha256 does not match"):
        verify_database(tmp_path / "db")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m["counts"].update(regions=m["counts"]["regions"] * 2), "counts regions"),
        (lambda m: m["counts"].update(sequences=1), "counts sequences"),
        (lambda m: m["counts"].update(unique_codes=7), "counts unique_codes"),
        (lambda m: m.update(code_bits=64), "code_bits 64, but codes.parquet"),
        (lambda m: m.update(code_bits=12), "not a multiple of 8"),
        (lambda m: m["index"].update(kind="hnsw"), "does not describe index.faiss"),
        (lambda m: m.pop("files"), "records no files"),
    ],
    ids=["regions", "sequences", "codes", "code-bits", "odd-bits", "index-kind", "no-files"],
)
def test_a_hand_edited_manifest_is_refused(
    shards: Path, tmp_path: Path, edit, message: str
) -> None:
    build_database(shards, tmp_path / "db", index="flat")
    path = tmp_path / "db" / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))
    with pytest.raises(DatabaseError, match=message):
        Database.open(tmp_path / "db")


def test_verify_reports_what_it_checked(shards: Path, tmp_path: Path) -> None:
    build_database(shards, tmp_path / "db")
    report = verify_database(tmp_path / "db")
    assert report["files"] == sorted(DATA_FILES) and report["model"] is False
    assert report["regions"] == Database.open(tmp_path / "db").postings.num_rows
