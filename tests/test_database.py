"""The hash database built from shards written here with the predict loop's exact schema:
segments, de-duplication, appends and compaction, checksums, atomic writes, index kinds and
statistics."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from neurohash.files import file_sha256
from neurohash.index import database
from neurohash.index.database import (
    Database,
    DatabaseError,
    append_database,
    build_database,
    compact_database,
    verify_database,
)
from neurohash.index.search import search
from neurohash.index.segment import (
    INDEX_FILE,
    POSTINGS_FILE,
    choose_index,
    file_records,
    index_codes,
    segment_rows,
)
from neurohash.index.shards import ShardError

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
    job: str = "job-0",
    **manifest_extra: object,
) -> Path:
    """Split ``rows`` into ``n_shards`` zstd Parquet shards plus manifest.json in ``directory``
    (whole records per shard, as the predict loop writes them)."""
    directory.mkdir(parents=True, exist_ok=True)
    record = np.asarray(rows["record"])
    entries = []
    for i, records in enumerate(np.array_split(np.unique(record), n_shards)):
        part = np.flatnonzero(np.isin(record, records))
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
        "job": job,
        "neurohash_version": "test",
        **manifest_extra,
    }
    (directory / "manifest.json").write_text(json.dumps(manifest))
    return directory


def synthetic_rows(
    n: int = 300, n_codes: int = 60, bits: int = BITS, seed: int = 0, first_record: int = 0
) -> dict:
    """``n`` regions of 100 bases over ~n/3 records of 1 kb in two source files (regions
    overlap, as a genome's do), drawing codes from a small pool so many regions share a code;
    rows in record order, as shards hold them."""
    rng = np.random.default_rng(seed)
    pool = rng.integers(0, 256, size=(n_codes, bits // 8), dtype=np.uint8)
    n_records = max(1, n // 3)
    genomes = ["".join(rng.choice(list("ACGT"), size=1000)) for _ in range(n_records)]
    seq_number = np.sort(rng.integers(0, n_records, size=n))
    starts = rng.integers(0, 900, size=n)
    return {
        "seq_id": [f"s{i + first_record}" for i in seq_number],
        "source": [f"file{i % 2}.fa" for i in seq_number],
        "record": [int(i) + first_record for i in seq_number],
        "region_start": [int(s) for s in starts],
        "region_end": [int(s) + 100 for s in starts],
        "code": [pool[i] for i in rng.integers(0, n_codes, size=n)],
        "sequence": [genomes[i][s : s + 100] for i, s in zip(seq_number, starts, strict=True)],
    }


def stored_rows(db: Database) -> set[tuple]:
    """Every stored region as (seq_id, source, start, end, code bytes[, sequence])."""
    out = set()
    for segment in db.segments:
        cols = segment_rows(segment).to_pydict()
        keys = ("seq_id", "source", "region_start", "region_end", "code", "sequence")
        out |= set(zip(*(cols[k] for k in keys if k in cols), strict=True))
    return out


def input_rows(rows: dict) -> set[tuple]:
    keys = ("seq_id", "source", "region_start", "region_end", "code", "sequence")
    cols = [[bytes(c) for c in rows[k]] if k == "code" else rows[k] for k in keys if k in rows]
    return set(zip(*cols, strict=True))


@pytest.fixture
def shards(tmp_path: Path) -> Path:
    return write_shards(tmp_path / "shards", synthetic_rows())


def test_postings_follow_record_order_and_are_delta_encoded(tmp_path: Path) -> None:
    rows = synthetic_rows(n=300, n_codes=1_000_000)  # a pool this large: no code is shared
    build_database(write_shards(tmp_path / "shards", rows), tmp_path / "db")
    path = tmp_path / "db" / "segments" / "seg-000000" / "postings.parquet"
    postings = pq.read_table(path)
    record, start = (postings.column(k).to_numpy() for k in ("record", "region_start"))
    assert np.all(np.diff(postings.column("code_id").to_numpy()) == 1)
    assert np.array_equal(np.lexsort((start, record)), np.arange(len(record)))
    meta = pq.ParquetFile(path).metadata.row_group(0)
    assert all("DELTA_BINARY_PACKED" in meta.column(i).encodings for i in range(meta.num_columns))


def test_dedup_keeps_every_region_once_under_its_code(shards: Path, tmp_path: Path) -> None:
    rows = synthetic_rows()
    manifest = build_database(shards, tmp_path / "db", index="flat")
    db = Database.open(tmp_path / "db")
    assert len(db.segments) == 1
    segment = db.segments[0]
    codes = index_codes(segment.index)
    distinct = {bytes(c) for c in rows["code"]}
    assert len(codes) == len(distinct) == manifest["counts"]["unique_codes"]
    assert len({bytes(c) for c in codes}) == len(codes)  # stored once each
    assert stored_rows(db) == input_rows(rows)  # every region, its code and its bases
    assert db.regions == len(rows["seq_id"])
    for code_id in range(len(codes)):  # each code's postings are one contiguous slice
        ids = segment.code_of[segment.offsets[code_id] : segment.offsets[code_id + 1]]
        assert len(ids) >= 1 and (ids == code_id).all()


def test_overlapping_regions_share_their_bases_in_the_store(shards: Path, tmp_path: Path) -> None:
    """The store keeps each base that regions cover once, not once per region."""
    rows = synthetic_rows()
    covered: dict[int, set[int]] = {}
    for record, start in zip(rows["record"], rows["region_start"], strict=True):
        covered.setdefault(record, set()).update(range(start, start + 100))
    build_database(shards, tmp_path / "db")
    counts = Database.open(tmp_path / "db").segments[0].description["counts"]
    assert counts["bases"] == sum(map(len, covered.values())) < 300 * 100


def test_embeddings_are_kept_as_int8(tmp_path: Path) -> None:
    rows = synthetic_rows(n=120, n_codes=30)
    emb = np.random.default_rng(3).normal(size=(120, 8)).astype(np.float16)
    rows["embedding"] = list(emb)
    build_database(write_shards(tmp_path / "shards", rows), tmp_path / "db")
    db = Database.open(tmp_path / "db")
    assert db.has_embeddings
    segment = db.segments[0]
    assert segment.quantised_embeddings[0].dtype == np.int8
    back = segment_rows(segment).to_pydict()  # regions with their int8 values and scale
    expected = {
        (r, a, bytes(c)): e
        for r, a, c, e in zip(
            rows["seq_id"], rows["region_start"], rows["code"], emb.astype(np.float32), strict=True
        )
    }
    keys = zip(back["seq_id"], back["region_start"], back["code"], strict=True)
    for key, values, scale in zip(keys, back["embedding"], back["embedding_scale"], strict=True):
        want = expected[key]
        got = np.asarray(values, dtype=np.float32) * scale
        assert np.abs(got - want).max() <= np.abs(want).max() / 127 + 1e-6
    assert np.allclose(
        segment.embeddings(np.arange(3)),
        [
            np.asarray(v, np.float32) * s
            for v, s in zip(back["embedding"][:3], back["embedding_scale"][:3], strict=True)
        ],
    )


def test_stats_count_sequences_regions_codes_and_bytes(shards: Path, tmp_path: Path) -> None:
    rows = synthetic_rows()
    build_database(shards, tmp_path / "db")
    stats = Database.open(tmp_path / "db").stats()
    assert stats["sequences"] == len(set(rows["record"]))
    assert stats["regions"] == len(rows["seq_id"])
    assert stats["unique_codes"] == len({bytes(c) for c in rows["code"]})
    segment_dir = tmp_path / "db" / "segments" / "seg-000000"
    on_disk = sum(p.stat().st_size for p in segment_dir.iterdir() if p.name != "segment.json")
    assert stats["bytes_data"] == on_disk
    assert stats["bytes_per_region"] == pytest.approx(on_disk / len(rows["seq_id"]))
    parts = ("codes_postings", "sequences", "embeddings")
    assert sum(stats[f"bytes_{k}"] for k in parts) == on_disk and stats["bytes_embeddings"] == 0
    assert stats["bytes_model"] == 0 and stats["has_sequences"] and stats["index"] == "flat"
    assert stats["segments"] == 1 and stats["compression_ratio"] is None  # no input files


def test_same_id_in_two_files_is_two_sequences(tmp_path: Path) -> None:
    rows = synthetic_rows(n=4)
    rows.update(seq_id=["a", "a", "a", "b"], source=["x.fa", "x.fa", "y.fa", "x.fa"])
    rows.update(record=[0, 0, 1, 2])  # rows 0 and 1: two regions of one record
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


def test_regions_whose_bases_do_not_fit_are_refused(tmp_path: Path) -> None:
    rows = synthetic_rows(n=30)
    rows["sequence"][5] = rows["sequence"][5][:-1]
    with pytest.raises(DatabaseError, match="holds 99 bases, not 100"):
        build_database(write_shards(tmp_path / "shards", rows), tmp_path / "db")


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
    segment = Database.open(tmp_path / "db").segments[0]
    assert segment.description["index"]["kind"] == kind
    codes = index_codes(segment.index)
    distances, ids = segment.index.search(codes, 1)
    assert (distances[:, 0] == 0).all()
    assert (ids[:, 0] == np.arange(len(codes))).all()


def test_auto_index_turns_approximate_for_large_collections() -> None:
    assert choose_index("auto", 1000) == "flat"
    assert choose_index("auto", 500_000) == "flat"  # a default segment: compact and fast
    assert choose_index("auto", 2_000_000) == "hnsw"
    assert choose_index("ivf", 10) == "ivf"
    with pytest.raises(DatabaseError, match="unknown index kind"):
        choose_index("lsh", 10)


def test_shards_without_sequences_build_but_cannot_rerank(tmp_path: Path) -> None:
    rows = synthetic_rows()
    del rows["sequence"]
    build_database(write_shards(tmp_path / "shards", rows), tmp_path / "db")
    db = Database.open(tmp_path / "db")
    assert not db.has_sequences and db.segments[0].store is None
    assert stored_rows(db) == input_rows(rows)
    with pytest.raises(DatabaseError, match="no region sequences"):
        db.sequences()


def test_code_width_must_match_manifest(tmp_path: Path) -> None:
    shards = write_shards(tmp_path / "shards", synthetic_rows(bits=16), bits=16)
    manifest = json.loads((shards / "manifest.json").read_text())
    manifest["code_bits"] = 32
    (shards / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ShardError, match="fixed_size_binary"):
        build_database(shards, tmp_path / "db")


def segment_file(db_dir: Path, name: str, segment: int = 0) -> Path:
    return db_dir / "segments" / f"seg-{segment:06d}" / name


def test_open_refuses_what_is_not_a_database(tmp_path: Path, shards: Path) -> None:
    with pytest.raises(DatabaseError, match="no such database"):
        Database.open(tmp_path / "nothing")
    with pytest.raises(DatabaseError, match="not a neurohash database"):
        Database.open(shards)
    build_database(shards, tmp_path / "db")
    segment_file(tmp_path / "db", POSTINGS_FILE).unlink()
    with pytest.raises(DatabaseError, match="postings.parquet: missing"):
        Database.open(tmp_path / "db")


def test_truncated_file_is_refused_on_open(shards: Path, tmp_path: Path) -> None:
    build_database(shards, tmp_path / "db")
    index = segment_file(tmp_path / "db", INDEX_FILE)
    index.write_bytes(index.read_bytes()[:-10])
    with pytest.raises(DatabaseError, match=r"index\.faiss: \d+ bytes, the segment records"):
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
    (stale / "manifest.json").write_bytes(b"half")
    build_database(shards, tmp_path / "db")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["db", "shards"]


def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "name",
    [INDEX_FILE, POSTINGS_FILE, "records.parquet", "sequences.bin", "sequences.parquet"],
)
def test_a_flipped_byte_of_the_right_size_is_refused(
    shards: Path, tmp_path: Path, name: str
) -> None:
    """A corrupted index.faiss of the right size once gave other hits with exit status 0."""
    build_database(shards, tmp_path / "db")
    path = segment_file(tmp_path / "db", name)
    flip_byte(path, path.stat().st_size // 2)
    with pytest.raises(DatabaseError, match=rf"{name}: sha256 does not match"):
        Database.open(tmp_path / "db")
    with pytest.raises(DatabaseError, match=rf"{name}: sha256 does not match"):
        verify_database(tmp_path / "db")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m["counts"].update(regions=m["counts"]["regions"] * 2), "counts"),
        (lambda m: m["counts"].update(sequences=1), "counts"),
        (lambda m: m["segments"][0].update(regions=7), "counts"),
        (lambda m: m["segments"][0].update(sha256="0" * 64), r"segment\.json: sha256"),
        (lambda m: m.update(code_bits=64), "codes of 32 bits, the database has 64"),
        (lambda m: m.update(code_bits=12), "not a multiple of 8"),
        (lambda m: m.pop("segments"), "lists no segments"),
    ],
    ids=["regions", "sequences", "segment-counts", "segment-sha", "code-bits", "odd-bits", "none"],
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


def test_an_edited_segment_description_is_refused(shards: Path, tmp_path: Path) -> None:
    build_database(shards, tmp_path / "db", index="flat")
    path = segment_file(tmp_path / "db", "segment.json")
    description = json.loads(path.read_text())
    description["index"]["kind"] = "hnsw"
    path.write_text(json.dumps(description))
    with pytest.raises(DatabaseError, match=r"segment\.json: sha256 does not match"):
        Database.open(tmp_path / "db")


def test_verify_reports_what_it_checked(shards: Path, tmp_path: Path) -> None:
    build_database(shards, tmp_path / "db")
    report = verify_database(tmp_path / "db")
    assert "segments/seg-000000/index.faiss" in report["files"] and report["model"] is False
    assert report["regions"] == Database.open(tmp_path / "db").regions


def test_a_database_of_the_old_single_file_format_says_how_to_rebuild(tmp_path: Path) -> None:
    old = tmp_path / "old"
    old.mkdir()
    manifest = {"format": "neurohash-db", "format_version": 1, "shards_dir": "/data/shards"}
    (old / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DatabaseError, match=r"format-1 database.*neurohash index /data/shards"):
        Database.open(old)


# segments, appends, compaction ------------------------------------------------------------------


def hit_keys(hits: list) -> list[list[tuple]]:
    return [
        [(h.target, h.target_id, h.hamming, h.region_start, h.edit_distance) for h in per_query]
        for per_query in hits
    ]


@pytest.fixture
def six_shards(tmp_path: Path) -> Path:
    return write_shards(tmp_path / "six", synthetic_rows(n=600, n_codes=200), n_shards=6)


def queries_of(rows: dict, n: int = 12) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(7)
    codes = rng.integers(0, 256, size=(n, BITS // 8), dtype=np.uint8)
    return codes, [rows["sequence"][i] for i in range(n)]


@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_a_segmented_database_answers_as_one_segment(
    six_shards: Path, tmp_path: Path, kind: str
) -> None:
    rows = synthetic_rows(n=600, n_codes=200)
    build_database(six_shards, tmp_path / "one", index="flat")
    build_database(six_shards, tmp_path / "three", index=kind, segment_regions=200)
    one, three = Database.open(tmp_path / "one"), Database.open(tmp_path / "three")
    assert len(one.segments) == 1 and len(three.segments) >= 3
    assert all(s.regions <= 200 for s in three.segments)
    assert stored_rows(three) == stored_rows(one) == input_rows(rows)
    codes, seqs = queries_of(rows)
    for k in (1, 10, 40):
        assert hit_keys(search(one, codes, k)) == hit_keys(search(three, codes, k))
        exact_one = search(one, codes, k, rerank=True, query_seqs=seqs, candidates_factor=3)
        exact_three = search(three, codes, k, rerank=True, query_seqs=seqs, candidates_factor=3)
        assert hit_keys(exact_one) == hit_keys(exact_three)
        pairs = {"query_of": np.arange(len(codes)) // 2, "rerank": True, "query_seqs": seqs}
        assert hit_keys(search(one, codes, k, **pairs)) == hit_keys(
            search(three, codes, k, **pairs)
        )


def test_append_adds_segments_and_refuses_another_models_shards(
    shards: Path, tmp_path: Path
) -> None:
    first, second = synthetic_rows(), synthetic_rows(seed=5)  # both number records from 0
    build_database(shards, tmp_path / "db")
    more = write_shards(tmp_path / "more", second, job="job-1")
    append_database(more, tmp_path / "db")
    db = Database.open(tmp_path / "db")
    assert len(db.segments) == 2 and db.regions == 600
    assert stored_rows(db) == input_rows(first) | input_rows(second)
    assert db.stats()["sequences"] == len(set(first["record"])) + len(set(second["record"]))
    assert len(np.unique(db.target_of)) == db.stats()["sequences"]  # targets stay apart
    with pytest.raises(DatabaseError, match="already in database"):
        append_database(more, tmp_path / "db")
    other = write_shards(tmp_path / "other", second, fingerprint="e" * 64, job="job-2")
    with pytest.raises(DatabaseError, match="another model"):
        append_database(other, tmp_path / "db")
    windows = write_shards(tmp_path / "win", second, job="job-3", regions={"window": 50})
    with pytest.raises(DatabaseError, match="regions"):
        append_database(windows, tmp_path / "db")
    assert Database.open(tmp_path / "db").regions == 600  # refusals changed nothing


def test_append_to_a_database_made_before_canonical_anchors(tmp_path: Path) -> None:
    """Its manifest has no ``canonical`` (forward anchors): shards cut on canonical anchors are
    refused with the setting that matches, shards made with it are taken."""
    old = {"window": 50, "density": 1.0, "k": 15, "seed": 0}
    rows = synthetic_rows()
    build_database(write_shards(tmp_path / "s0", rows, regions=old), tmp_path / "db")
    new = write_shards(tmp_path / "s1", rows, job="job-1", regions={**old, "canonical": True})
    with pytest.raises(DatabaseError, match="regions.canonical=False"):
        append_database(new, tmp_path / "db")
    same = write_shards(tmp_path / "s2", rows, job="job-2", regions={**old, "canonical": False})
    append_database(same, tmp_path / "db")
    assert len(Database.open(tmp_path / "db").segments) == 2


def test_a_segment_written_before_region_lengths_opens_as_it_was(
    shards: Path, tmp_path: Path
) -> None:
    """Postings of earlier releases hold each region's end and its offset in its piece of the
    store, where a length and the piece's start now repeat from row to row."""
    build_database(shards, tmp_path / "db")
    expected = stored_rows(Database.open(tmp_path / "db"))
    path = segment_file(tmp_path / "db", POSTINGS_FILE)
    postings = pq.read_table(path)
    start = postings.column("region_start").to_numpy()
    earlier = {
        "region_end": start + postings.column("region_length").to_numpy(),
        "piece_offset": start - postings.column("piece_start").to_numpy(),
    }
    names = ["code_id", "record", "region_start", "region_end", "piece", "piece_offset"]
    pq.write_table(
        pa.table({n: earlier[n] if n in earlier else postings.column(n) for n in names}).cast(
            pa.schema([(n, pa.int32()) for n in names])
        ),
        path,
    )
    record_segment_files(tmp_path / "db")
    assert stored_rows(Database.open(tmp_path / "db")) == expected  # bases read back too


def record_segment_files(db_dir: Path) -> None:
    """Re-record sizes and checksums after a segment's file was rewritten on purpose."""
    description_path = segment_file(db_dir, "segment.json")
    description = json.loads(description_path.read_text())
    description["files"] = file_records(description_path.parent)
    description_path.write_text(json.dumps(description))
    manifest = json.loads((db_dir / "manifest.json").read_text())
    manifest["segments"][0]["sha256"] = file_sha256(description_path)
    (db_dir / "manifest.json").write_text(json.dumps(manifest))


def test_compaction_merges_segments_and_keeps_every_answer(
    six_shards: Path, tmp_path: Path
) -> None:
    rows = synthetic_rows(n=600, n_codes=200)
    build_database(six_shards, tmp_path / "db", segment_regions=100)
    before = Database.open(tmp_path / "db")
    codes, seqs = queries_of(rows)
    hits = hit_keys(search(before, codes, 10, rerank=True, query_seqs=seqs))
    assert len(before.segments) == 6
    compact_database(tmp_path / "db", segment_regions=300)
    middle = Database.open(tmp_path / "db")
    assert 2 <= len(middle.segments) < 6 and all(s.regions <= 300 for s in middle.segments)
    assert hit_keys(search(middle, codes, 10, rerank=True, query_seqs=seqs)) == hits
    compact_database(tmp_path / "db")
    after = Database.open(tmp_path / "db")
    assert len(after.segments) == 1
    assert after.manifest["counts"]["unique_codes"] == len({bytes(c) for c in rows["code"]})
    assert stored_rows(after) == input_rows(rows)
    assert hit_keys(search(after, codes, 10, rerank=True, query_seqs=seqs)) == hits
    names = [p.name for p in (tmp_path / "db" / "segments").iterdir()]
    assert names == [after.manifest["segments"][0]["name"]]  # the replaced ones are gone


def test_compaction_keeps_the_quantised_embeddings_exactly(tmp_path: Path) -> None:
    rows = synthetic_rows(n=120, n_codes=30)
    rows["embedding"] = list(np.random.default_rng(4).normal(size=(120, 8)).astype(np.float16))
    build_database(write_shards(tmp_path / "shards", rows), tmp_path / "db", segment_regions=50)
    before = Database.open(tmp_path / "db")
    embedded = before.embeddings(np.arange(before.regions))
    keys = stored_rows(before)
    compact_database(tmp_path / "db")
    after = Database.open(tmp_path / "db")
    assert len(after.segments) == 1 and stored_rows(after) == keys
    assert len(before.segments) > 1
    again = after.embeddings(np.arange(after.regions))
    assert sorted(map(tuple, embedded.tolist())) == sorted(map(tuple, again.tolist()))


def test_a_crash_before_the_new_manifest_leaves_the_database(
    shards: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_database(shards, tmp_path / "db", segment_regions=100)
    segments = len(Database.open(tmp_path / "db").segments)
    assert segments == 2  # one per shard
    more = write_shards(tmp_path / "more", synthetic_rows(seed=5), job="job-1")

    def killed(path: Path, payload: dict) -> None:
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(database, "write_json", killed)
    for change in (
        lambda: append_database(more, tmp_path / "db"),
        lambda: compact_database(tmp_path / "db"),
    ):
        with pytest.raises(KeyboardInterrupt):
            change()
        db = Database.open(tmp_path / "db")
        assert db.regions == 300 and len(db.segments) == segments
    monkeypatch.undo()
    append_database(more, tmp_path / "db")  # removes what the crashes left, then appends
    listed = {s["name"] for s in Database.open(tmp_path / "db").manifest["segments"]}
    assert {p.name for p in (tmp_path / "db" / "segments").iterdir()} == listed


def test_a_bad_segment_is_named_or_skipped_on_request(six_shards: Path, tmp_path: Path) -> None:
    build_database(six_shards, tmp_path / "db", segment_regions=200)
    flip_byte(segment_file(tmp_path / "db", POSTINGS_FILE, 1), 100)
    with pytest.raises(DatabaseError, match=r"seg-000001/postings\.parquet: sha256"):
        Database.open(tmp_path / "db")
    whole = json.loads((tmp_path / "db" / "manifest.json").read_text())["segments"]
    db = Database.open(tmp_path / "db", skip_bad_segments=True)
    assert db.skipped == ["seg-000001"] and len(db.segments) == len(whole) - 1
    assert db.regions == 600 - whole[1]["regions"]
    hits = search(db, np.stack(synthetic_rows(n=600, n_codes=200)["code"][:5]), k=5)
    assert all(len(per_query) == 5 for per_query in hits)


def test_embeddings_can_be_left_out_and_appends_follow_the_database(tmp_path: Path) -> None:
    rows = synthetic_rows(n=120, n_codes=30)
    rows["embedding"] = list(np.ones((120, 8), dtype=np.float16))
    shards = write_shards(tmp_path / "shards", rows)
    build_database(shards, tmp_path / "db", embeddings=False)
    db = Database.open(tmp_path / "db")
    assert not db.has_embeddings and db.stats()["bytes_embeddings"] == 0
    more = dict(rows, record=[r + 1000 for r in rows["record"]])
    append_database(write_shards(tmp_path / "more", more, job="job-1"), tmp_path / "db")
    assert not Database.open(tmp_path / "db").has_embeddings
    build_database(shards, tmp_path / "with")
    bare = write_shards(tmp_path / "bare", synthetic_rows(), job="job-2")
    with pytest.raises(DatabaseError, match="unlike database"):  # embeddings it cannot give
        append_database(bare, tmp_path / "with")


def test_shards_without_regions_make_an_empty_searchable_database(tmp_path: Path) -> None:
    """Every record dropped at cleaning: an empty database, not a crash."""
    empty = {name: [] for name in synthetic_rows(n=3)}
    build_database(write_shards(tmp_path / "shards", empty, n_shards=1), tmp_path / "db")
    db = Database.open(tmp_path / "db")
    assert db.regions == 0 and db.sequences() == []
    assert search(db, np.zeros((2, BITS // 8), np.uint8), k=3) == [[], []]
