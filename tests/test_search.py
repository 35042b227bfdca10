"""Search: exact Hamming neighbours (checked against brute force), exact re-ranking, and the
`neurohash index / search / stats` commands on a tiny real model trained on V4 reads."""

from __future__ import annotations

import io
import itertools
import json
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from rapidfuzz.distance import Levenshtein

from neurohash.checkpoint import (
    WEIGHTS_DIGEST,
    build_module,
    load_module,
    model_fingerprint,
    weights_sha256,
)
from neurohash.cli import main
from neurohash.data.fasta import SequenceRecord, iter_records, reverse_complement
from neurohash.data.regions import sample_regions
from neurohash.data.sources import load_records
from neurohash.hashing import hamming_matrix
from neurohash.index import search as search_module
from neurohash.index.database import Database, DatabaseError, build_database
from neurohash.index.search import (
    Candidates,
    Pairs,
    Refiner,
    embed_queries,
    infix_rows,
    long_queries,
    ordered,
    pair_distances,
    pair_loci,
    query_regions,
    record_batches,
    region_budgets,
    reranked,
    score_levels,
    search,
    tile_step,
)
from neurohash.index.segment import quantise
from neurohash.models.geometry import Cosine
from neurohash.module import code_inputs
from tests.helpers import INFLUENZA_FILE
from tests.test_database import synthetic_rows, write_shards

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
V4 = DATA / "study550_v4_amplicons.fasta.gz"
MAX_LEN = 160
N_DB = 200


def brute_force(db_rows: dict, queries: np.ndarray) -> list[dict[tuple[str, str], int]]:
    """Per query: every target (source, seq_id) -> its least Hamming distance over its regions."""
    codes = np.stack(db_rows["code"])
    ham = hamming_matrix(queries, codes)
    keys = list(zip(db_rows["source"], db_rows["seq_id"], strict=True))
    out = []
    for row in ham:
        best: dict[tuple[str, str], int] = {}
        for key, h in zip(keys, row.tolist(), strict=True):
            best[key] = min(h, best.get(key, h))
        out.append(best)
    return out


def random_queries(n: int, bits: int = 32, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, bits // 8), dtype=np.uint8)


@pytest.fixture
def synthetic_db(tmp_path: Path) -> tuple[Database, dict]:
    rows = synthetic_rows(n=300, n_codes=120)
    build_database(write_shards(tmp_path / "shards", rows), tmp_path / "db", index="flat")
    return Database.open(tmp_path / "db"), rows


# exact Hamming search ---------------------------------------------------------------------------


def test_search_returns_the_exact_hamming_nearest(synthetic_db: tuple[Database, dict]) -> None:
    db, rows = synthetic_db
    queries = np.concatenate([random_queries(20), np.stack(rows["code"][:5])])
    truth = brute_force(rows, queries)
    for q, hits in enumerate(search(db, queries, k=7)):
        assert [h.rank for h in hits] == list(range(1, 8))
        keys = [(h.source, h.target_id) for h in hits]
        assert len(set(keys)) == 7  # one hit per target
        assert all(truth[q][key] == h.hamming for key, h in zip(keys, hits, strict=True))
        assert [h.hamming for h in hits] == sorted(truth[q].values())[:7]
        assert all(h.est_distance == h.hamming for h in hits)  # no learned scale: raw Hamming
    for q in range(20, 25):  # a stored code is found at distance 0
        assert search(db, queries[q : q + 1], k=1)[0][0].hamming == 0


def test_search_looks_past_codes_shared_by_many_regions(tmp_path: Path) -> None:
    rows = synthetic_rows(n=240, n_codes=3)  # ~80 targets on only 3 codes
    build_database(write_shards(tmp_path / "shards", rows), tmp_path / "db")
    db = Database.open(tmp_path / "db")
    queries = random_queries(4)
    truth = brute_force(rows, queries)
    for q, hits in enumerate(search(db, queries, k=25)):
        assert len(hits) == 25 and len({h.target for h in hits}) == 25
        assert [h.hamming for h in hits] == sorted(truth[q].values())[:25]


def test_query_regions_are_aggregated_per_query(synthetic_db: tuple[Database, dict]) -> None:
    db, rows = synthetic_db
    queries = random_queries(6)
    query_of = np.array([0, 1, 0, 2, 1, 0])
    truth = brute_force(rows, queries)
    hits = search(db, queries, k=5, query_of=query_of)
    assert len(hits) == 3
    for q, per_query in enumerate(hits):
        best: dict = {}
        for r in np.flatnonzero(query_of == q):
            for key, h in truth[r].items():
                best[key] = min(h, best.get(key, h))
        assert [h.hamming for h in per_query] == sorted(best.values())[:5]
        assert all(best[(h.source, h.target_id)] == h.hamming for h in per_query)
        assert all(h.query == q for h in per_query)


def test_every_query_region_shortlists_its_own_candidates(
    synthetic_db: tuple[Database, dict],
) -> None:
    """A query region whose own nearest code is some way off keeps it, however many codes sit
    nearer its query's other region: pooled, they took the whole shortlist."""
    db, rows = synthetic_db
    flipped = np.unpackbits(rows["code"][7]) ^ np.isin(np.arange(32), [0, 9, 20])
    codes = np.stack([rows["code"][0], np.packbits(flipped)])  # region 0 at a stored code
    seqs = ["A" * 100, rows["sequence"][7]]  # region 1: the sequence of stored row 7
    hits = search(
        db,
        codes,
        k=1,
        rerank=True,
        query_seqs=seqs,
        query_of=np.array([0, 0]),
        candidates_factor=2,
        refine_factor=1,
    )[0]
    assert (hits[0].target_id, hits[0].region_start) == (rows["seq_id"][7], rows["region_start"][7])
    assert hits[0].edit_distance == 0 and hits[0].hamming == 3
    near_region_0 = search(db, codes[:1], k=3)[0]
    assert all(h.hamming < 3 for h in near_region_0)  # a pooled shortlist of 2 held none of it


def test_long_queries_share_their_candidates_among_their_regions() -> None:
    groups = [np.arange(4), np.arange(4, 104)]
    assert region_budgets(200, groups, None, 10).tolist() == [200, 200]
    assert region_budgets(200, groups, np.array([False, True]), 10).tolist() == [200, 10]
    assert region_budgets(1000, groups, np.array([True, True]), 50).tolist() == [250, 50]
    records = [SequenceRecord("read", "A" * 150), SequenceRecord("fragment", "A" * 1000)]
    assert long_queries(records, {"window": 100}).tolist() == [False, True]
    assert long_queries(records, None) is None


def test_a_long_querys_hits_are_one_per_locus() -> None:
    """Three regions of a query align along one stretch of target 0 (diagonal 0, then 4 as an
    insertion moves it), one region as well to target 1: by edit distance alone target 0's
    regions fill the hits; by locus, target 0's stretch is one hit, its best region, and ties
    at one edit distance go to the locus more of the query's regions support."""
    posting = np.arange(5)
    target, start = np.array([1, 0, 0, 0, 0]), np.array([1000, 0, 50, 104, 5000])
    row, query_start = np.array([1, 0, 1, 2, 0]), np.array([0, 50, 100])
    minus = np.zeros(3, dtype=bool)
    loci = pair_loci(target[posting], minus[row], start - query_start[row], row, 100)
    assert loci.of.tolist() == [2, 0, 0, 0, 1] and loci.support.tolist() == [3, 1, 1]
    cands = Candidates(posting, np.zeros(5), row, posting, start, best=np.arange(5))
    pairs = Pairs(row, posting, posting, start)
    distance = np.array([5, 6, 5, 7, 9])
    assert [hit[2] for hit in reranked(cands, pairs, distance)] == [0, 2, 1, 3, 4]
    assert [hit[2] for hit in reranked(cands, pairs, distance, loci)] == [2, 0, 4]
    # the other strand of the same target is another locus
    diagonal = start - query_start[row]
    loci = pair_loci(target[posting], np.array([False, True, False])[row], diagonal, row, 100)
    assert loci.of[1] == loci.of[3] != loci.of[2] and loci.support.tolist() == [2, 1, 1, 1]


def test_ordered_sorts_as_the_lexsort_does() -> None:
    """Region ranks sort one int64 key made of (region, unit, score level); keys too wide for
    one take the lexsort. Float scores become dense integer levels in the same order."""
    rng = np.random.default_rng(0)
    keys = [rng.integers(0, 5, 1000), rng.integers(0, 300, 1000), rng.integers(0, 7, 1000)]
    rows = np.stack(keys)
    assert np.array_equal(rows[:, ordered(*keys)], rows[:, np.lexsort(keys[::-1])])
    wide = [rng.integers(0, 2**40, 100), rng.integers(0, 2**40, 100)]
    assert np.array_equal(ordered(*wide), np.lexsort(wide[::-1]))
    score = np.array([0.5, 2.25, 0.5, 1.0])
    assert score_levels(score).tolist() == [0, 2, 0, 1]
    assert score_levels(np.array([3, 5, 3])).tolist() == [0, 2, 0]


def test_more_hits_than_targets_returns_all_targets(synthetic_db: tuple[Database, dict]) -> None:
    db, rows = synthetic_db
    n_targets = db.stats()["sequences"]
    hits = search(db, random_queries(1), k=n_targets + 50)[0]
    assert len(hits) == n_targets


# exact re-ranking -------------------------------------------------------------------------------


def test_rerank_order_equals_exact_edit_distance_order(synthetic_db: tuple[Database, dict]) -> None:
    db, rows = synthetic_db
    rng = np.random.default_rng(5)
    query_seqs = ["".join(rng.choice(list("ACGT"), size=30)) for _ in range(8)]
    query_seqs += rows["sequence"][:2]
    queries = np.concatenate([random_queries(8), np.stack(rows["code"][:2])])
    n_targets = db.stats()["sequences"]
    results = search(
        db, queries, k=10, rerank=True, query_seqs=query_seqs, candidates_factor=n_targets
    )
    keys = list(zip(rows["source"], rows["seq_id"], strict=True))
    for q, hits in enumerate(results):
        exact: dict = {}  # every target is a candidate here: exact top-10 over all targets
        for key, seq in zip(keys, rows["sequence"], strict=True):
            d = Levenshtein.distance(query_seqs[q], seq)
            exact[key] = min(d, exact.get(key, d))
        got = [h.edit_distance for h in hits]
        assert got == sorted(exact.values())[:10]
        assert all(exact[(h.source, h.target_id)] == h.edit_distance for h in hits)
    assert results[8][0].edit_distance == 0 and results[9][0].edit_distance == 0


def test_rerank_only_reorders_the_candidates(synthetic_db: tuple[Database, dict]) -> None:
    db, rows = synthetic_db
    queries = random_queries(5, seed=9)
    seqs = rows["sequence"][10:15]
    plain = search(db, queries, k=6)
    both = search(db, queries, k=3, rerank=True, query_seqs=seqs, candidates_factor=2)
    for before, after in zip(plain, both, strict=True):
        assert {h.target for h in after} <= {h.target for h in before}
        distances = [h.edit_distance for h in after]
        assert distances == sorted(distances)
    with pytest.raises(ValueError, match="rerank needs"):
        search(db, queries, k=3, rerank=True)


# the commands, on a tiny real model ------------------------------------------------------------


@pytest.fixture(scope="module")
def reads(checkpoint: Path) -> list:
    """N_DB stored reads followed by 20 held-out reads (a different sample of the file)."""
    module = load_module(checkpoint)
    from neurohash.checkpoint import stored_cleaning

    cleaning, _ = stored_cleaning(module, str(checkpoint))
    records, _ = load_records(V4, cleaning, max_seqs=N_DB + 20, seed=7)
    return records


def coded_shards(checkpoint: Path, stored: list, directory: Path, job: str = "job-0") -> Path:
    """Shards of ``stored`` reads, one region each, coded by the model (predict loop schema)."""
    module = load_module(checkpoint)
    seqs = [rec.seq for rec in stored]
    codes, refiner = embed_queries(module, seqs, MAX_LEN)
    rows = {
        "seq_id": [rec.id for rec in stored],
        "source": [str(V4)] * len(stored),
        "record": list(range(len(stored))),
        "region_start": [0] * len(stored),
        "region_end": [len(s) for s in seqs],
        "code": list(codes),
        "sequence": seqs,
        "embedding": list(refiner.embeddings.astype(np.float16)),
    }
    fingerprint = model_fingerprint(module)
    return write_shards(directory, rows, bits=128, fingerprint=fingerprint, job=job)


@pytest.fixture(scope="module")
def shards(checkpoint: Path, reads: list, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return coded_shards(checkpoint, reads[:N_DB], tmp_path_factory.mktemp("shards") / "v4")


@pytest.fixture(scope="module")
def db_dir(checkpoint: Path, shards: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("db") / "v4db"
    assert main(["index", str(shards), "-o", str(path), "--ckpt", str(checkpoint), "--json"]) == 0
    return path


@pytest.fixture(scope="module")
def queries(reads: list, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """5 stored reads, then 5 held-out reads."""
    path = tmp_path_factory.mktemp("queries") / "queries.fasta"
    chosen = reads[:5] + reads[N_DB : N_DB + 5]
    path.write_text("".join(f">{rec.id} query\n{rec.seq}\n" for rec in chosen))
    return path


def parse_tsv(text: str) -> tuple[list[str], list[list[str]]]:
    lines = text.splitlines()
    return lines[0].split("\t"), [line.split("\t") for line in lines[1:]]


def test_index_copies_the_model_and_records_the_scale(db_dir: Path, checkpoint: Path) -> None:
    db = Database.open(db_dir)
    assert (db_dir / "model.ckpt").read_bytes() == checkpoint.read_bytes()
    module = load_module(checkpoint)
    assert db.manifest["model_fingerprint"] == model_fingerprint(module)
    scale = float(module.hashing.log_scale.detach().exp()) * MAX_LEN / 128
    assert db.edits_per_bit == pytest.approx(scale)


def test_search_tsv_header_and_rows(db_dir: Path, queries: Path, reads: list, capsys) -> None:
    capsys.readouterr()
    args = ["search", str(db_dir), str(queries), "-k", "3", "--refine", "1", "--device", "cpu"]
    assert main(args) == 0  # Hamming only: the estimate is the Hamming times the learned scale
    header, rows = parse_tsv(capsys.readouterr().out)
    assert header == [
        "query_id",
        "target_id",
        "strand",
        "rank",
        "hamming",
        "est_distance",
        "target_start",
        "target_end",
    ]
    assert len(rows) == 30 and all(len(row) == 8 for row in rows)
    length = {rec.id: len(rec.seq) for rec in reads}
    assert all(row[6] == "0" and int(row[7]) == length[row[1]] for row in rows)  # whole reads
    query_ids = [rec.id for rec in reads[:5] + reads[N_DB : N_DB + 5]]
    assert [row[0] for row in rows] == [qid for qid in query_ids for _ in range(3)]
    assert {row[2] for row in rows} <= {"+", "-"}
    assert [int(row[3]) for row in rows] == [1, 2, 3] * 10
    scale = Database.open(db_dir).edits_per_bit
    for row in rows:
        assert 0 <= int(row[4]) <= 128
        assert float(row[5]) == pytest.approx(int(row[4]) * scale, abs=0.006)
    stored_ids = {rec.id for rec in reads[:N_DB]}
    assert {row[1] for row in rows} <= stored_ids
    for i in range(5):  # a stored read finds a code at Hamming 0 (itself or an identical code)
        assert rows[3 * i][4] == "0" and rows[3 * i][2] == "+"


def test_refined_hits_are_the_models_nearest(
    db_dir: Path, queries: Path, reads: list, checkpoint: Path, capsys
) -> None:
    """With a shortlist covering the whole database, refined hits are exactly the top-k by the
    model's float distance (brute force), and est_distance is that distance in edits."""
    capsys.readouterr()
    args = ["search", str(db_dir), str(queries), "-k", "3", "--refine", "100", "--strand", "plus"]
    assert main(args) == 0
    _, rows = parse_tsv(capsys.readouterr().out)
    module = load_module(checkpoint)
    stored = [rec.seq for rec in reads[:N_DB]]
    query_seqs = [rec.seq for rec in reads[:5] + reads[N_DB : N_DB + 5]]
    _, stored_emb = embed_queries(module, stored, MAX_LEN)
    _, query_emb = embed_queries(module, query_seqs, MAX_LEN)
    values, scale = quantise(stored_emb.embeddings.astype(np.float16))  # as the database keeps them
    stored_q = torch.from_numpy(values.astype(np.float32) * scale[:, None])
    with torch.no_grad():
        dist = module.geometry.pairwise(torch.from_numpy(query_emb.embeddings), stored_q)
    dist = dist.double().numpy() * MAX_LEN
    for q in range(10):
        got = rows[3 * q : 3 * q + 3]
        expected = np.argsort(dist[q], kind="stable")[:3]
        assert [row[1] for row in got] == [reads[j].id for j in expected]
        assert [float(row[5]) for row in got] == pytest.approx(dist[q, expected], abs=0.006)


def weighted_by_hand(logits: np.ndarray, stored: np.ndarray) -> np.ndarray:
    """(Q, N) query-weighted Hamming distances of query logits to packed stored codes, by hand:
    each differing bit counts |logit| / mean |logit| of the query's bits."""
    bits = np.unpackbits(stored, axis=1).astype(bool)
    weight = np.abs(logits) / np.abs(logits).mean(axis=1, keepdims=True)
    return (weight[:, None, :] * (bits[None] != (logits > 0)[:, None, :])).sum(axis=2)


def test_refining_by_codes_orders_by_the_query_weighted_hamming(
    synthetic_db: tuple[Database, dict],
) -> None:
    """A database of codes alone refines by the query-weighted Hamming distance: with a
    shortlist covering it, hits are the brute-force nearest by that distance; equal weights
    give back the Hamming distances."""
    db, rows = synthetic_db
    logits = np.random.default_rng(3).normal(size=(6, db.code_bits)).astype(np.float32)
    queries = np.packbits(logits > 0, axis=1)
    weighted = weighted_by_hand(logits, np.stack(rows["code"]))
    keys = list(zip(rows["source"], rows["seq_id"], strict=True))
    refiner = Refiner(np.zeros((6, 1), np.float32), logits, model=None)
    for q, hits in enumerate(search(db, queries, k=5, refiner=refiner, refine_factor=1000)):
        best: dict[tuple[str, str], float] = {}
        for key, d in zip(keys, weighted[q].tolist(), strict=True):
            best[key] = min(d, best.get(key, d))
        assert [h.est_distance for h in hits] == pytest.approx(sorted(best.values())[:5])
        assert all(best[(h.source, h.target_id)] == pytest.approx(h.est_distance) for h in hits)
    signs = Refiner(np.zeros((6, 1), np.float32), np.where(logits > 0, 1.0, -1.0), model=None)
    equal = search(db, queries, k=5, refiner=signs, refine_factor=1000)
    assert [[h.est_distance for h in hits] for hits in equal] == [
        [float(h.hamming) for h in hits] for hits in search(db, queries, k=5)
    ]


def assert_three_nearest(rows: list[list[str]], dist: np.ndarray, stored: list) -> None:
    """The TSV's 3 hits of each of the 10 queries are its 3 nearest stored reads by ``dist``
    (queries x stored, in edits), with those distances as ``est_distance``."""
    row_of = {rec.id: i for i, rec in enumerate(stored)}
    for q in range(10):
        got = rows[3 * q : 3 * q + 3]
        expected = np.sort(dist[q])[:3]
        assert [float(row[5]) for row in got] == pytest.approx(expected, abs=0.006)
        assert [dist[q, row_of[row[1]]] for row in got] == pytest.approx(expected)


def test_a_database_without_embeddings_refines_by_the_query_codes(
    shards: Path, queries: Path, reads: list, checkpoint: Path, tmp_path: Path, capsys
) -> None:
    """`index --no-embeddings` then `search --refine`: the hits are the nearest stored reads by
    the query-weighted Hamming distance of the model's own code logits, in edits."""
    lean = tmp_path / "lean"
    assert (
        main(["index", str(shards), "-o", str(lean), "--ckpt", str(checkpoint), "--no-embeddings"])
        == 0
    )
    capsys.readouterr()
    args = ["search", str(lean), str(queries), "-k", "3", "--refine", "100", "--strand", "plus"]
    assert main(args) == 0
    _, rows = parse_tsv(capsys.readouterr().out)
    module = load_module(checkpoint)
    stored_codes, _ = embed_queries(module, [rec.seq for rec in reads[:N_DB]], MAX_LEN)
    query_seqs = [rec.seq for rec in reads[:5] + reads[N_DB : N_DB + 5]]
    _, refiner = embed_queries(module, query_seqs, MAX_LEN)
    dist = weighted_by_hand(refiner.logits, stored_codes) * Database.open(lean).edits_per_bit
    assert_three_nearest(rows, dist, reads[:N_DB])


@pytest.fixture(scope="module")
def feature_checkpoint(checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with a coder that reads positional 3-mer profiles of its own, their cosine
    scaled by 0.5."""
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=False)
    config = ckpt["hyper_parameters"]["config"]
    config["hashing"]["features"] = {
        "_target_": "neurohash.hashing.Features",
        "encoder": {
            "_target_": "neurohash.models.encoders.KmerEncoder",
            "max_len": MAX_LEN,
            "k": 3,
            "segments": 2,
        },
        "distance": {"_target_": "neurohash.models.geometry.Cosine", "learn_scale": False},
    }
    module = build_module(config, MAX_LEN)
    model = {k: v for k, v in ckpt["state_dict"].items() if not k.startswith("hashing.")}
    module.load_state_dict(model, strict=False)
    module.hashing.features.distance.log_scale.data.fill_(math.log(0.5))
    ckpt["state_dict"] = module.state_dict()
    ckpt[WEIGHTS_DIGEST] = weights_sha256(ckpt["state_dict"])
    path = tmp_path_factory.mktemp("features") / "features.ckpt"
    torch.save(ckpt, path)
    return path


def test_a_database_of_codes_alone_refines_by_the_coders_own_features(
    feature_checkpoint: Path, reads: list, queries: Path, tmp_path: Path, capsys
) -> None:
    """Codes read from features of their own, no embeddings stored: `search --refine` keeps the
    nearest stored reads by the features' distance, computed from the stored sequences, in
    edits (ED / L x L)."""
    shards = coded_shards(feature_checkpoint, reads[:N_DB], tmp_path / "shards")
    db = tmp_path / "db"
    build = ["index", str(shards), "-o", str(db), "--ckpt", str(feature_checkpoint)]
    assert main([*build, "--no-embeddings"]) == 0
    capsys.readouterr()
    args = ["search", str(db), str(queries), "-k", "3", "--refine", "100", "--strand", "plus"]
    assert main(args) == 0
    _, rows = parse_tsv(capsys.readouterr().out)
    module = load_module(feature_checkpoint)
    stored = code_inputs(module, [rec.seq for rec in reads[:N_DB]], MAX_LEN)
    query = code_inputs(module, [rec.seq for rec in reads[:5] + reads[N_DB : N_DB + 5]], MAX_LEN)
    with torch.no_grad():
        dist = module.code_distance(query, stored).double().numpy() * MAX_LEN
    assert_three_nearest(rows, dist, reads[:N_DB])


def test_queries_skip_the_encoder_where_no_embedding_is_compared(
    feature_checkpoint: Path, reads: list
) -> None:
    """Codes read from features of their own, against a database without embeddings: the
    queries' codes and features come without the encoder's forward pass, and are the same."""
    module = load_module(feature_checkpoint)
    seqs = [rec.seq for rec in reads[:8]]
    codes, refiner = embed_queries(module, seqs, MAX_LEN)
    calls: list[int] = []
    module.encoder.register_forward_hook(lambda *_: calls.append(1))
    lean_codes, lean = embed_queries(module, seqs, MAX_LEN, embed=False)
    assert not calls and lean.embeddings.shape == (8, 0) and refiner.embeddings.shape[0] == 8
    assert np.array_equal(lean_codes, codes) and np.allclose(lean.features, refiner.features)


def test_pair_distances_by_matrix_or_pair_by_pair_agree() -> None:
    """Pairs that fill little of the (queries x stored) matrix are taken one by one (in blocks);
    both ways give the geometry's distance of each pair."""
    gen = torch.Generator().manual_seed(0)
    queries, stored = torch.rand(6, 32, generator=gen), torch.rand(1000, 32, generator=gen)
    distance = Cosine(init_scale=0.5)
    rows = np.array([0, 0, 3, 5, 5, 5, 2])
    columns = torch.tensor([1, 7, 7, 0, 999, 12, 3])
    with torch.no_grad():
        want = distance.pairwise(queries, stored)[torch.from_numpy(rows), columns].double()
        sparse = pair_distances(distance, queries, rows, stored, columns, block=2)
        dense = pair_distances(distance, queries, np.tile(rows, 40), stored, columns.repeat(40))
    assert sparse == pytest.approx(want.numpy(), rel=1e-5)
    assert dense == pytest.approx(np.tile(want.numpy(), 40), rel=1e-5)


def test_queries_from_stdin(db_dir: Path, queries: Path, monkeypatch, capsys) -> None:
    capsys.readouterr()
    assert main(["search", str(db_dir), str(queries), "-k", "2"]) == 0
    from_file = capsys.readouterr().out
    stdin = io.TextIOWrapper(io.BytesIO(queries.read_bytes()))
    monkeypatch.setattr(sys, "stdin", stdin)
    assert main(["search", str(db_dir), "-", "-k", "2"]) == 0
    assert capsys.readouterr().out == from_file


def test_search_rerank_writes_exact_edit_distances(
    db_dir: Path, queries: Path, reads: list, tmp_path: Path
) -> None:
    out = tmp_path / "hits.tsv"
    args = ["search", str(db_dir), str(queries), "-k", "4", "--rerank", "--candidates", "40"]
    assert main([*args, "-o", str(out)]) == 0
    header, rows = parse_tsv(out.read_text())
    assert header[-2:] == ["edit_distance", "alignment"] and len(header) == 10
    seq_of = {rec.id: rec.seq for rec in reads}
    for row in rows:  # the distance of the strand that aligned best (reads: global)
        query = seq_of[row[0]] if row[2] == "+" else reverse_complement(seq_of[row[0]])
        assert int(row[8]) == Levenshtein.distance(query, seq_of[row[1]])
        assert int(row[8]) <= Levenshtein.distance(seq_of[row[0]], seq_of[row[1]])
        assert row[9] == "global"
    for i in range(10):
        distances = [int(row[8]) for row in rows[4 * i : 4 * i + 4]]
        assert distances == sorted(distances)
    for i in range(5):  # stored reads find themselves first
        assert rows[4 * i][1] == rows[4 * i][0] and rows[4 * i][8] == "0"


def test_reverse_complemented_queries_find_their_reads_on_the_minus_strand(
    db_dir: Path, reads: list, tmp_path: Path, capsys
) -> None:
    """Stored reads given reverse-complemented are found, at edit distance 0, strand '-';
    searched as given only (--strand plus) they are not."""
    path = tmp_path / "rc.fasta"
    path.write_text("".join(f">{r.id}\n{reverse_complement(r.seq)}\n" for r in reads[:5]))
    _, rows = parse_tsv(search_tsv(db_dir, path, capsys, "-k", "3", "--rerank"))
    firsts = rows[::3]
    assert [(row[0], row[1], row[2], row[8]) for row in firsts] == [
        (r.id, r.id, "-", "0") for r in reads[:5]
    ]
    _, plus = parse_tsv(search_tsv(db_dir, path, capsys, "-k", "3", "--rerank", "--strand", "plus"))
    assert {row[2] for row in plus} == {"+"} and all(int(row[8]) > 20 for row in plus[::3])


def test_a_fragment_is_reranked_by_its_infix_distance(
    db_dir: Path, reads: list, tmp_path: Path, capsys
) -> None:
    """A 60-base piece of a stored read is at semi-global distance 0 from it (the global
    distance counts every base it lacks)."""
    path = tmp_path / "pieces.fasta"
    path.write_text("".join(f">{r.id}\n{r.seq[40:100]}\n" for r in reads[:5]))
    flags = ("-k", "5", "--rerank", "--candidates", "200")
    _, rows = parse_tsv(search_tsv(db_dir, path, capsys, *flags, "--alignment", "infix"))
    assert {row[9] for row in rows} == {"infix"}
    seq_of = {r.id: r.seq for r in reads}
    for i, read in enumerate(reads[:5]):  # the read itself, or one holding the same piece
        assert rows[5 * i][8] == "0" and read.seq[40:100] in seq_of[rows[5 * i][1]]
    _, rows = parse_tsv(search_tsv(db_dir, path, capsys, *flags, "--alignment", "global"))
    assert {row[9] for row in rows} == {"global"}
    assert all(int(row[8]) >= len(seq_of[row[1]]) - 60 > 0 for row in rows)


def test_auto_alignment_takes_infix_for_query_regions_under_half_the_window() -> None:
    seqs = ["A" * 150, "A" * 800, "A" * 799, "A" * 1600]
    assert infix_rows(seqs, "auto", 1600).tolist() == [True, False, True, False]
    assert not infix_rows(seqs, "auto", None).any()  # a database without a window: global
    assert infix_rows(seqs, "infix", 1600).all() and not infix_rows(seqs, "global", 1600).any()
    with pytest.raises(ValueError, match="alignment"):
        infix_rows(seqs, "local", 1600)


def test_tiles_recover_a_stored_region_whose_anchor_a_mutation_lost(shared_data: Path) -> None:
    """A query holding a stored region, its anchor k-mer mutated: cut at its own anchors it has
    no region at the stored one's place; tiled every 10 bases it has one within 5 bases."""
    records = iter_records(shared_data / INFLUENZA_FILE)
    genome = "".join(r.seq.upper() for r in itertools.islice(records, 6))
    settings = {"window": 160, "density": 5.0, "k": 15, "seed": 0, "canonical": True}
    stored = sample_regions(genome, **settings)
    start, end = next((s, e) for s, e in stored if s >= 300 and e + 300 <= len(genome))
    centre = (start + end) // 2  # the anchoring 15-mer sits in the middle of the window
    piece = genome[start - 300 : end + 300]
    middle = centre - (start - 300)
    mutant = piece[:middle] + {"A": "C"}.get(piece[middle], "A") + piece[middle + 1 :]
    query = [SequenceRecord("q", mutant)]
    anchored = query_regions(query, 160, settings).seqs
    assert piece[300:460] not in anchored
    assert min(abs(mutant.find(r) - 300) for r in anchored) > 5
    tiled, owner, minus, starts = query_regions(query, 160, settings, strand="both", step=10)
    assert set(anchored) < set(tiled) and len(tiled) > 2 * len(anchored)
    forward = [r for r, m in zip(tiled, minus, strict=True) if not m]
    assert min(abs(mutant.find(r) - 300) for r in forward) <= 5
    assert minus.any() and (owner == 0).all()
    strands = {False: mutant, True: reverse_complement(mutant)}  # each region is where it says
    cut = zip(tiled, minus.tolist(), starts.tolist(), strict=True)
    assert all(strands[m][s : s + len(r)] == r for r, m, s in cut)


def test_auto_step_tiles_short_queries_and_every_query_of_a_tiled_database() -> None:
    assert tile_step("auto", 100, 150) == 10 and tile_step("auto", 100, 199) == 10
    assert tile_step("auto", 100, 200) is None and tile_step("auto", 1000, 5000) is None
    assert tile_step("auto", 5, 8) == 1
    assert tile_step(25, 100, 5000) == 25
    assert tile_step(0, 100, 150) is None and tile_step(None, 100, 150) is None
    # a tiled database: reads at every base, longer queries at a step coprime with the stride
    assert tile_step("auto", 100, 150, stride=50) == 1
    assert tile_step("auto", 100, 1000, stride=50) == 11
    assert tile_step("auto", 1000, 5000, stride=500) == 101


def test_record_batches_keep_records_whole_under_the_limit() -> None:
    query_of = np.array([0, 0, 0, 1, 2, 2, 2, 2, 2, 4])  # record 3 has no regions
    assert list(record_batches(query_of, 5, 4)) == [(0, 2), (2, 3), (3, 5)]
    assert list(record_batches(query_of, 5, 100)) == [(0, 5)]
    assert list(record_batches(query_of, 5, 1)) == [(0, 1), (1, 2), (2, 3), (3, 5)]


def search_tsv(db: Path, queries: Path, capsys, *flags: str) -> str:
    capsys.readouterr()
    assert main(["search", str(db), str(queries), *flags]) == 0
    return capsys.readouterr().out


def test_queries_searched_in_small_batches_get_the_same_hits(
    db_dir: Path, queries: Path, capsys, monkeypatch
) -> None:
    """Whole queries go to the search a few region shortlists at a time (long tiled queries
    would otherwise hold tens of GB of code hits): the hits are the same."""
    expected = search_tsv(db_dir, queries, capsys, "--rerank")
    monkeypatch.setattr(search_module, "CANDIDATE_BUDGET", 1)
    assert search_tsv(db_dir, queries, capsys, "--rerank") == expected


def test_appended_and_compacted_databases_answer_as_one_build(
    checkpoint: Path, reads: list, db_dir: Path, queries: Path, tmp_path: Path, capsys
) -> None:
    """The same reads through `index SHARDS DB --segment-regions`, `index --append` and
    `compact`: every stage gives the one-build database's hits, refined and re-ranked."""
    half = N_DB // 2
    first = coded_shards(checkpoint, reads[:half], tmp_path / "first")
    second = coded_shards(checkpoint, reads[half:N_DB], tmp_path / "second", job="job-1")
    db = tmp_path / "db"
    small = ["--segment-regions", "40"]
    assert main(["index", str(first), str(db), "--ckpt", str(checkpoint), *small]) == 0
    assert main(["index", "--append", str(second), str(db), *small]) == 0
    assert len(Database.open(db).segments) >= 4
    expected = [search_tsv(db_dir, queries, capsys, *f) for f in ([], ["--rerank"])]
    assert [search_tsv(db, queries, capsys, *f) for f in ([], ["--rerank"])] == expected
    assert main(["compact", str(db)]) == 0
    assert len(Database.open(db).segments) == 1
    assert [search_tsv(db, queries, capsys, *f) for f in ([], ["--rerank"])] == expected
    assert main(["index", "--append", str(second), str(db)]) == 2
    assert "already in database" in capsys.readouterr().err


def test_a_corrupt_segment_is_named_unless_skipped(
    checkpoint: Path, reads: list, queries: Path, tmp_path: Path, capsys
) -> None:
    shards = coded_shards(checkpoint, reads[:N_DB], tmp_path / "shards")
    db = tmp_path / "db"
    assert (
        main(
            ["index", str(shards), str(db), "--ckpt", str(checkpoint)]
            + ["--segment-regions", "100"]
        )
        == 0
    )
    broken = db / "segments" / "seg-000001" / "records.parquet"
    broken.write_bytes(b"x" * broken.stat().st_size)
    capsys.readouterr()
    assert main(["search", str(db), str(queries)]) == 2
    assert f"{broken}: sha256 does not match" in capsys.readouterr().err
    tsv = search_tsv(db, queries, capsys, "--skip-bad-segments")
    assert len(tsv.splitlines()) == 1 + 10 * 10
    assert main(["stats", str(db), "--skip-bad-segments", "--json"]) == 0
    assert "skipping segment seg-000001" in capsys.readouterr().err


def test_stats_command(db_dir: Path, capsys) -> None:
    capsys.readouterr()
    assert main(["stats", str(db_dir), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["sequences"] == stats["regions"] == N_DB
    assert 1 <= stats["unique_codes"] <= N_DB and stats["code_bits"] == 128
    assert stats["bytes_per_region"] == pytest.approx(stats["bytes_data"] / N_DB)
    assert stats["bytes_model"] > 0
    assert main(["stats", str(db_dir)]) == 0
    assert "bytes per region" in capsys.readouterr().out


@pytest.fixture(scope="module")
def other_checkpoint(checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same architecture with one weight changed: a different model."""
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=False)
    name = next(k for k, v in ckpt["state_dict"].items() if v.is_floating_point())
    ckpt["state_dict"][name] = ckpt["state_dict"][name] + 0.5
    ckpt[WEIGHTS_DIGEST] = weights_sha256(ckpt["state_dict"])  # a model, not a damaged file
    path = tmp_path_factory.mktemp("other") / "other.ckpt"
    torch.save(ckpt, path)
    return path


def test_other_model_is_refused(
    db_dir: Path, queries: Path, other_checkpoint: Path, checkpoint: Path, shards: Path, capsys
) -> None:
    capsys.readouterr()
    assert main(["search", str(db_dir), str(queries), "--ckpt", str(other_checkpoint)]) == 2
    err = capsys.readouterr().err
    assert "different model" in err and str(other_checkpoint) in err
    assert main(["search", str(db_dir), str(queries), "--ckpt", str(checkpoint)]) == 0
    with pytest.raises(DatabaseError, match="did not make these shards"):
        build_database(shards, db_dir.parent / "refused", checkpoint=other_checkpoint)
    assert not (db_dir.parent / "refused").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (">q1\nACGTACGT\n>q2\nACGTXJ\n", "record 'q2'"),
        (">q1\nACGT\n>\nACGT\n", "empty header"),
        (">q1\nACGT\n>q2\n\n>q3\nAC\n", "'q2'"),
        ("this is not a sequence file\n", "not valid FASTA"),
        ("", "no sequence records"),
    ],
    ids=["non-nucleotide", "empty-header", "empty-sequence", "not-fasta", "empty-file"],
)
def test_bad_query_input_names_file_and_record(
    db_dir: Path, tmp_path: Path, content: str, message: str, capsys
) -> None:
    path = tmp_path / "bad.fasta"
    path.write_text(content)
    out = tmp_path / "hits.tsv"
    capsys.readouterr()
    assert main(["search", str(db_dir), str(path), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and message in err, err
    assert not out.exists() and not list(tmp_path.glob("hits.tsv.tmp*"))  # no partial output


def test_missing_inputs_are_named(db_dir: Path, queries: Path, tmp_path: Path, capsys) -> None:
    capsys.readouterr()
    assert main(["search", str(db_dir), str(tmp_path / "none.fa")]) == 2
    assert "none.fa: no such file" in capsys.readouterr().err
    assert main(["search", str(tmp_path / "nodb"), str(queries)]) == 2
    assert "nodb: no such database directory" in capsys.readouterr().err
    assert main(["stats", str(queries)]) == 2
    assert "no such database directory" in capsys.readouterr().err


def test_ambiguous_queries_are_answered(db_dir: Path, reads: list, tmp_path: Path, capsys) -> None:
    path = tmp_path / "n.fasta"
    seq = reads[0].seq
    path.write_text(f">withN\n{seq[:50]}N{seq[51:]}\n>rna\n{seq.replace('T', 'U').lower()}\n")
    capsys.readouterr()
    assert main(["search", str(db_dir), str(path), "-k", "1", "--rerank"]) == 0
    _, rows = parse_tsv(capsys.readouterr().out)
    assert [row[0] for row in rows] == ["withN", "rna"]
    assert rows[1][1] == reads[0].id and rows[1][8] == "0" and int(rows[0][8]) <= 1


def test_rerank_without_stored_sequences_is_refused(
    checkpoint: Path, reads: list, queries: Path, tmp_path: Path, capsys
) -> None:
    module = load_module(checkpoint)
    seqs = [rec.seq for rec in reads[:20]]
    rows = {
        "seq_id": [rec.id for rec in reads[:20]],
        "source": ["v4"] * 20,
        "record": list(range(20)),
        "region_start": [0] * 20,
        "region_end": [len(s) for s in seqs],
        "code": list(embed_queries(module, seqs, MAX_LEN)[0]),
    }
    shards = write_shards(tmp_path / "s", rows, bits=128, fingerprint=model_fingerprint(module))
    assert main(["index", str(shards), "-o", str(tmp_path / "db"), "--ckpt", str(checkpoint)]) == 0
    capsys.readouterr()
    assert main(["search", str(tmp_path / "db"), str(queries), "--rerank"]) == 2
    assert "stores no region sequences" in capsys.readouterr().err
    assert main(["search", str(tmp_path / "db"), str(queries), "-k", "2"]) == 0


def test_unreadable_checkpoint_is_named(
    db_dir: Path, queries: Path, tmp_path: Path, capsys
) -> None:
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint")
    capsys.readouterr()
    assert main(["search", str(db_dir), str(queries), "--ckpt", str(bad)]) == 2
    assert f"{bad}: cannot load checkpoint" in capsys.readouterr().err


def test_index_command_reports_bad_shards(tmp_path: Path, capsys) -> None:
    shards = write_shards(tmp_path / "shards", synthetic_rows())
    (shards / "shard-00000.parquet").write_bytes(b"garbage")
    capsys.readouterr()
    assert main(["index", str(shards), "-o", str(tmp_path / "db")]) == 2
    assert "shard-00000.parquet: sha256 does not match" in capsys.readouterr().err
    assert not (tmp_path / "db").exists()


def test_verify_checks_files_and_the_stored_model(
    db_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    capsys.readouterr()
    assert main(["verify", str(db_dir)]) == 0
    assert "OK" in capsys.readouterr().out
    copy = tmp_path / "copy"
    shutil.copytree(db_dir, copy)
    model = copy / "model.ckpt"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    assert main(["verify", str(copy)]) == 2
    err = capsys.readouterr().err
    assert f"{model}: sha256 does not match" in err and len(err.strip().splitlines()) == 1
