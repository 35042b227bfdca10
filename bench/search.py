"""Benchmark hash search against exact edit distance on real sequences, queries held out.

    python bench/search.py --ckpt runs/exp1/checkpoints/last.ckpt [--fasta greengenes]
        [--db-size 20000] [--queries 200] [-k 10] [--factors 5 10 20] [--out FILE.json]

A seeded sample of ``db-size + queries`` sequences is cleaned as at training time and split:
``queries`` held out, the rest stored (one region per sequence, codes from ``module.codes``, the
predict loop's shard schema, then ``neurohash.database.build_database``). Ground truth is the exact
edit distance of every query to every stored sequence (rapidfuzz, all cores); its wall time is the
exact-scan baseline. Reported per method: recall@1 (the first hit is at the true minimum edit
distance) and recall@10 (share of the k hits within the true top-k, ties counted as true), queries
per second end to end (query embedding included) and the speed-up over the exact scan. Beside the
hash search: ``embedding``, the model's own float distance scanned over every stored embedding
(what the model knows, before binarisation loses some of it), and the k-mer baseline (5-mer
profile cosine, NeuroSEED's best alignment-free one); both re-rank the same number of candidates
exactly.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from neurohash.checkpoint import load_module, model_fingerprint, stored_cleaning
from neurohash.data.edit_distance import distance_matrix, paired_distances
from neurohash.data.kmers import kmer_profiles
from neurohash.data.sources import load_records
from neurohash.database import Database, build_database
from neurohash.hashing import pack_codes
from neurohash.module import embed_sequences
from neurohash.search import encode_codes, search

TRUTH_K = 10


# data and database ------------------------------------------------------------------------------


def split_sample(args: argparse.Namespace, module: Any) -> tuple[list[Any], list[Any], int]:
    """(stored records, held-out query records, max_len), cleaned as at training time."""
    cleaning, max_len = stored_cleaning(module, args.ckpt)
    records, _ = load_records(args.fasta, cleaning, args.db_size + args.queries, args.seed)
    order = np.random.default_rng(args.seed).permutation(len(records))
    queries = [records[i] for i in order[: args.queries]]
    stored = [records[i] for i in order[args.queries :]]
    return stored, queries, max_len


def write_shard(directory: Path, stored: list[Any], codes: np.ndarray, module: Any) -> None:
    """One shard + manifest in the predict loop's schema (one region per sequence)."""
    seqs = [rec.seq for rec in stored]
    width = codes.shape[1]
    table = pa.table(
        {
            "seq_id": pa.array([rec.id for rec in stored], pa.string()),
            "source": pa.array([rec.source for rec in stored], pa.string()),
            "record": pa.array(np.arange(len(stored)), pa.int64()),
            "region_start": pa.array(np.zeros(len(stored)), pa.int32()),
            "region_end": pa.array([len(s) for s in seqs], pa.int32()),
            "code": pa.FixedSizeBinaryArray.from_buffers(
                pa.binary(width), len(codes), [None, pa.py_buffer(codes.tobytes())]
            ),
            "sequence": pa.array(seqs, pa.string()),
        }
    )
    directory.mkdir(parents=True)
    path = directory / "shard-00000.parquet"
    pq.write_table(table, path, compression="zstd")
    manifest = {
        "model_fingerprint": model_fingerprint(module),
        "code_bits": width * 8,
        "embedding_dim": int(module.encoder.embedding_dim),
        "max_len": int(module.normaliser),
        "shards": [
            {
                "file": path.name,
                "rows": len(stored),
                "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            }
        ],
        "inputs": [],
        "regions": {},
        "neurohash_version": "bench",
    }
    (directory / "manifest.json").write_text(json.dumps(manifest))


# scoring ----------------------------------------------------------------------------------------


def recall(found: list[list[int]], exact: np.ndarray, k: int) -> dict[str, float]:
    """recall@1 and recall@k of the found target indices against the exact distances (tie-aware).

    A hit counts as a true top-k neighbour when its exact distance is at most the k-th smallest.
    """
    ordered = np.sort(exact, axis=1)
    kth, first = ordered[:, min(k, exact.shape[1]) - 1], ordered[:, 0]
    at1 = [bool(hits) and exact[q, hits[0]] == first[q] for q, hits in enumerate(found)]
    atk = [
        min(k, sum(exact[q, t] <= kth[q] for t in hits[:k])) / min(k, exact.shape[1])
        for q, hits in enumerate(found)
    ]
    return {"recall@1": float(np.mean(at1)), f"recall@{k}": float(np.mean(atk))}


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


# methods ----------------------------------------------------------------------------------------


def hash_method(
    db: Database, module: Any, queries: list[str], max_len: int, k: int, factor: float | None
) -> list[list[int]]:
    """Hash search from query sequences (embedding included), as target row numbers."""
    codes = encode_codes(module, queries, max_len)
    rerank = factor is not None
    hits = search(db, codes, k, rerank, queries if rerank else None, factor or 1.0)
    return [[h.target for h in per_query] for per_query in hits]


def stored_codes(module: Any, emb: torch.Tensor) -> np.ndarray:
    """Packed codes of stored embeddings: what ``module.codes`` computes from tokens."""
    with torch.no_grad():
        return pack_codes(module.hashing.codes(module.geometry.project(emb.to(module.device))))


def embedding_method(
    module: Any,
    emb: torch.Tensor,
    stored: list[str],
    queries: list[str],
    max_len: int,
    k: int,
    pool: int,
) -> list[list[int]]:
    """The model's float distance, scanned over all stored embeddings; top-``pool`` re-ranked."""
    with torch.no_grad():
        q = embed_sequences(module, queries, max_len)
        dist = module.geometry.pairwise(q, emb).numpy()
    return top_then_rerank(dist, stored, queries, k, pool)


def top_then_rerank(
    dist: np.ndarray, stored: list[str], queries: list[str], k: int, pool: int
) -> list[list[int]]:
    """The ``pool`` smallest of each row of ``dist``; if pool > k, re-ranked by edit distance."""
    pool = min(pool, len(stored))
    cand = np.argpartition(dist, pool - 1, axis=1)[:, :pool]
    if pool == k:
        order = np.argsort(np.take_along_axis(dist, cand, axis=1), axis=1, kind="stable")
        return np.take_along_axis(cand, order, axis=1).tolist()
    left = [queries[i] for i in np.repeat(np.arange(len(queries)), pool)]
    exact = paired_distances(left, [stored[j] for j in cand.ravel()]).reshape(len(queries), pool)
    order = np.argsort(exact, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(cand, order, axis=1).tolist()


def kmer_method(
    profiles: np.ndarray, stored: list[str], queries: list[str], kmer: int, k: int, pool: int
) -> list[list[int]]:
    """k-mer profile cosine top-``pool``, then (if pool > k) exact re-ranking of that pool."""
    q = normalised(kmer_profiles(queries, kmer))
    return top_then_rerank(-(q @ profiles.T), stored, queries, k, pool)


def normalised(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def target_rows(db: Database, stored: list[Any]) -> np.ndarray:
    """Map database target numbers to rows of ``stored`` (the exact matrix's columns)."""
    row_of = {(rec.source, rec.id): i for i, rec in enumerate(stored)}
    source = db.postings.column("source").to_pylist()
    seq_id = db.postings.column("seq_id").to_pylist()
    out = np.zeros(int(db.target_of.max()) + 1, dtype=np.int64)
    out[db.target_of] = [row_of[key] for key in zip(source, seq_id, strict=True)]
    return out


# the benchmark ----------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    module = load_module(args.ckpt)
    stored, query_recs, max_len = split_sample(args, module)
    seqs, queries = [rec.seq for rec in stored], [rec.seq for rec in query_recs]
    report: dict[str, Any] = {"config": vars(args) | {"max_len": max_len}, "hardware": hardware()}
    with tempfile.TemporaryDirectory(prefix="nh-bench-") as tmp:
        emb, t_embed = timed(lambda: embed_sequences(module, seqs, max_len))
        codes = stored_codes(module, emb)
        write_shard(Path(tmp) / "shards", stored, codes, module)
        _, t_build = timed(
            lambda: build_database(Path(tmp) / "shards", Path(tmp) / "db", args.index, args.ckpt)
        )
        db = Database.open(Path(tmp) / "db")
        report["database"] = db.stats() | {"embed_s": t_embed, "build_s": t_build}
        report["database"]["embed_seqs_per_s"] = len(seqs) / t_embed
        exact, t_exact = timed(lambda: distance_matrix(queries, seqs, progress=True))
        report["exact"] = {"seconds": t_exact, "qps": len(queries) / t_exact}
        rows = target_rows(db, stored)
        report["methods"] = compare(
            args, db, module, emb, seqs, queries, max_len, exact, rows, t_exact
        )
    return report


def compare(
    args: argparse.Namespace,
    db: Database,
    module: Any,
    emb: torch.Tensor,
    seqs: list[str],
    queries: list[str],
    max_len: int,
    exact: np.ndarray,
    rows: np.ndarray,
    t_exact: float,
) -> list[dict[str, Any]]:
    """Every method, scored and timed (warm-up call first so one-off costs are not counted).

    ``embedding`` (the model's float distances, scanned exhaustively) is the reference that
    separates what the model knows from what its binary codes keep.
    """
    profiles = normalised(kmer_profiles(seqs, args.kmer))
    methods: list[tuple[str, int, Callable[[list[str]], list[list[int]]]]] = [
        ("hash", args.k, lambda q: hash_ids(db, module, q, max_len, args.k, None, rows)),
        (
            "embedding",
            args.k,
            lambda q: embedding_method(module, emb, seqs, q, max_len, args.k, args.k),
        ),
        (
            f"{args.kmer}-mer cosine",
            args.k,
            lambda q: kmer_method(profiles, seqs, q, args.kmer, args.k, args.k),
        ),
    ]
    for factor in args.factors:
        pool = int(factor * args.k)
        methods.append(
            (
                f"hash + rerank x{factor:g}",
                pool,
                lambda q, f=factor: hash_ids(db, module, q, max_len, args.k, f, rows),
            )
        )
        methods.append(
            (
                f"embedding + rerank x{factor:g}",
                pool,
                lambda q, p=pool: embedding_method(module, emb, seqs, q, max_len, args.k, p),
            )
        )
        methods.append(
            (
                f"{args.kmer}-mer + rerank x{factor:g}",
                pool,
                lambda q, p=pool: kmer_method(profiles, seqs, q, args.kmer, args.k, p),
            )
        )
    results = []
    for name, pool, method in methods:
        method(queries[:2])
        found, seconds = timed(lambda m=method: m(queries))
        entry = {"method": name, "candidates": pool, **recall(found, exact, args.k)}
        entry.update(seconds=seconds, qps=len(queries) / seconds, speedup=t_exact / seconds)
        results.append(entry)
    return results


def hash_ids(
    db: Database,
    module: Any,
    queries: list[str],
    max_len: int,
    k: int,
    factor: float | None,
    rows: np.ndarray,
) -> list[list[int]]:
    return [rows[hits].tolist() for hits in hash_method(db, module, queries, max_len, k, factor)]


def hardware() -> dict[str, Any]:
    return {
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
    }


def print_table(report: dict[str, Any], k: int) -> None:
    from rich.console import Console
    from rich.table import Table

    db, exact = report["database"], report["exact"]
    title = (
        f"search: {report['config']['queries']} held-out queries vs {db['sequences']:,} stored "
        f"({db['index']} index, {db['bytes_per_region']:.0f} B/region); exact scan "
        f"{exact['seconds']:.2f} s = {exact['qps']:.1f} q/s"
    )
    table = Table(title=title, title_justify="left")
    for column in ("method", "candidates", "recall@1", f"recall@{k}", "q/s", "speed-up"):
        table.add_column(column, justify="left" if column == "method" else "right")
    for m in report["methods"]:
        table.add_row(
            m["method"],
            str(m["candidates"]),
            f"{m['recall@1']:.3f}",
            f"{m[f'recall@{k}']:.3f}",
            f"{m['qps']:.1f}",
            f"{m['speedup']:.1f}x",
        )
    Console().print(table)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt", required=True, help="neurohash checkpoint (its hash head)")
    parser.add_argument("--fasta", default="greengenes", help="FASTA/FASTQ or 'greengenes'")
    parser.add_argument("--db-size", type=int, default=20_000, help="stored sequences")
    parser.add_argument("--queries", type=int, default=200, help="held-out query sequences")
    parser.add_argument("-k", type=int, default=TRUTH_K, help="hits per query (recall@k)")
    parser.add_argument(
        "--factors", type=float, nargs="+", default=[5.0, 10.0], help="re-rank pools (x k)"
    )
    parser.add_argument("--index", default="flat", choices=("auto", "flat", "hnsw", "ivf"))
    parser.add_argument("--kmer", type=int, default=5, help="k of the k-mer baseline")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="outputs/bench_search.json", help="JSON report")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    report = run(args)
    print_table(report, args.k)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"report written to {args.out}")


if __name__ == "__main__":
    main()
