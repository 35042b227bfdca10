"""End-to-end search benchmark on real sequences, queries held out from the database.

    python bench/search.py --ckpt logs/demo/checkpoints/last.ckpt [--fasta greengenes]
        [--db-size 5000] [--queries 200] [-k 10] [--candidates 200] [--refine 5]
        [--indexes hnsw ivf] [--workdir DIR] [--out FILE.json] [--quick]
    python bench/search.py --ckpt CKPT --quick --out docs/benchmarks/search.json  (the report's)

1. A seeded sample of ``db-size + queries`` sequences, cleaned as at training time, is split;
   both parts are written as FASTA into the work directory.
2. The user's own commands build and query the database, each timed from the shell (start-up
   included): ``python predict.py`` (hash shards), ``neurohash index``, and
   ``neurohash search --rerank`` (Hamming shortlist, refined by the model's float distance,
   ``--candidates`` re-ranked by exact edit distance).
3. Ground truth: the exact edit distance of every query to every stored sequence (rapidfuzz, all
   cores); its wall time is the exact-scan baseline that speed-ups are relative to.
4. In-process comparisons (warm, query embedding included) at the same candidate budget: the
   search steps one by one, the approximate FAISS indexes, an exhaustive scan of the model's
   float embeddings, and two alignment-free baselines: 5-mer profile cosine (NeuroSEED's best
   k-mer baseline) and MinHash of k-mer sets (datasketch, as mash/sourmash estimate Jaccard).

recall@1: the first hit is at the true minimum edit distance; recall@k: share of the k hits
within the true top-k (ties counted as true).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf
from report import ROOT, begin, provenance, table

from neurohash.checkpoint import load_module, stored_cleaning
from neurohash.data.cleaning import Cleaning
from neurohash.data.datamodule import outside_sample
from neurohash.data.edit_distance import distance_matrix, paired_distances
from neurohash.data.fasta import SequenceRecord
from neurohash.data.kmers import kmer_profiles
from neurohash.data.sources import load_records
from neurohash.index.database import Database, build_database
from neurohash.index.search import embed_queries, search
from neurohash.module import embed_sequences

Method = Callable[[list[str]], list[list[int]]]


# data -------------------------------------------------------------------------------------------


def split_sample(args: argparse.Namespace, module: Any) -> tuple[list[Any], list[Any], int]:
    """(stored records, held-out query records, max_len), cleaned as at training time."""
    cleaning, max_len = stored_cleaning(module, args.ckpt)
    records, _ = load_records(args.fasta, cleaning, args.db_size + args.queries, args.seed)
    order = np.random.default_rng(args.seed).permutation(len(records))
    queries = [records[i] for i in order[: args.queries]]
    stored = [records[i] for i in order[args.queries :]]
    return stored, queries, max_len


def training_sequences(ckpt: Path, cleaning: Cleaning) -> set[str]:
    """Every sequence of the run's data sample (train, validation and test), and of the sample
    outside it that its coder's bank may draw on (``neurohash.data.datamodule.bank_sequences``)."""
    config = ckpt.resolve().parents[1] / "config.yaml"
    if not config.is_file():
        sys.exit(f"{config}: missing; queries must be held out of the model's training sample")
    run = OmegaConf.load(config)
    data, bank = run.data, OmegaConf.select(run, "hashing.bank")
    records, _ = load_records(data.path, cleaning, data.max_seqs, int(data.seed))
    if bank:
        records += outside_sample(data.path, cleaning, int(bank), int(data.seed))
    return {rec.seq for rec in records}


def write_fasta(path: Path, records: list[SequenceRecord]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f">{rec.id}\n{rec.seq}\n" for rec in records))
    return path


# the user's commands ----------------------------------------------------------------------------


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def shell(*command: str) -> float:
    """Run one command from the repository root; its wall time (fails loudly)."""
    print("$", " ".join(command), flush=True)
    _, seconds = timed(lambda: subprocess.run(command, cwd=ROOT, check=True))
    return seconds


def neurohash_command() -> str:
    return str(Path(sys.executable).with_name("neurohash"))


def run_commands(
    args: argparse.Namespace, work: Path, stored: Path, queries: Path, fresh: bool = True
) -> dict:
    """predict.py -> neurohash index -> neurohash search --rerank; their wall times.

    ``fresh`` deletes earlier shards first; otherwise predict.py resumes them (its job key covers
    model, input files and settings, so shards of another collection are refused)."""
    shards, db, hits = work / "shards", work / "db", work / "hits.tsv"
    if fresh:
        for stale in (shards, work / "predict_run"):
            shutil.rmtree(stale, ignore_errors=True)
    times = {
        "predict_s": shell(
            sys.executable,
            "predict.py",
            f"ckpt_path={Path(args.ckpt).resolve()}",
            f"input={stored}",
            f"output_dir={shards}",
            f"hydra.run.dir={work / 'predict_run'}",
            "trainer.enable_progress_bar=false",
        ),
        "index_s": shell(neurohash_command(), "index", str(shards), "-o", str(db), "--force"),
    }
    times["search_s"] = shell(
        neurohash_command(),
        "search",
        str(db),
        str(queries),
        "-k",
        str(args.k),
        "--rerank",
        "--strand",  # amplicons share one orientation (vsearch's default too)
        "plus",
        "--candidates",
        str(args.candidates),
        "--refine",
        str(args.refine),
        "-o",
        str(hits),
    )
    return times


def read_hits(path: Path, query_ids: list[str], row_of: dict[str, int]) -> list[list[int]]:
    """Target rows of the TSV's hits, per query in query order, best first."""
    found: dict[str, list[int]] = {qid: [] for qid in query_ids}
    lines = path.read_text().splitlines()
    header = lines[0].split("\t")
    query_col, target_col = header.index("query_id"), header.index("target_id")
    for line in lines[1:]:
        fields = line.split("\t")
        found[fields[query_col]].append(row_of[fields[target_col]])
    return [found[qid] for qid in query_ids]


# scoring ----------------------------------------------------------------------------------------


def recall(found: list[list[int]], exact: np.ndarray, k: int) -> dict[str, float]:
    """recall@1 and recall@k of the found target rows against the exact distances (tie-aware)."""
    ordered = np.sort(exact, axis=1)
    kth, first = ordered[:, min(k, exact.shape[1]) - 1], ordered[:, 0]
    at1 = [bool(hits) and exact[q, hits[0]] == first[q] for q, hits in enumerate(found)]
    atk = [
        min(k, sum(exact[q, t] <= kth[q] for t in hits[:k])) / min(k, exact.shape[1])
        for q, hits in enumerate(found)
    ]
    return {"recall@1": float(np.mean(at1)), f"recall@{k}": float(np.mean(atk))}


# in-process methods -----------------------------------------------------------------------------


def hash_method(
    db: Database, module: Any, rows: np.ndarray, max_len: int, k: int, **options: Any
) -> Method:
    """``neurohash.index.search.search`` from query sequences (embedding included) -> stored
    rows."""

    def method(queries: list[str]) -> list[list[int]]:
        codes, refiner = embed_queries(module, queries, max_len, embed=db.has_embeddings)
        hits = search(db, codes, k, query_seqs=queries, refiner=refiner, **options)
        return [rows[[h.target for h in per_query]].tolist() for per_query in hits]

    return method


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


def embedding_method(
    module: Any, emb: torch.Tensor, stored: list[str], max_len: int, k: int, pool: int
) -> Method:
    """The model's float distance to every stored embedding (no index), top ``pool``."""

    def method(queries: list[str]) -> list[list[int]]:
        with torch.no_grad():
            dist = module.geometry.pairwise(embed_sequences(module, queries, max_len), emb)
        return top_then_rerank(dist.numpy(), stored, queries, k, pool)

    return method


def normalised(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def kmer_method(stored: list[str], kmer: int, k: int, pool: int) -> Method:
    """k-mer profile cosine to every stored profile, top ``pool``."""
    profiles = normalised(kmer_profiles(stored, kmer))

    def method(queries: list[str]) -> list[list[int]]:
        sims = normalised(kmer_profiles(queries, kmer)) @ profiles.T
        return top_then_rerank(-sims, stored, queries, k, pool)

    return method


def minhash_signatures(
    seqs: list[str], kmer: int, num_perm: int, seed: int, chunk: int = 10_000
) -> np.ndarray:
    """(N, num_perm) MinHash signatures of the sequences' k-mer sets (datasketch), made in
    chunks so that only ``chunk`` sequences' shingles are held at once (1M reads fit)."""
    from datasketch import MinHash

    out = np.empty((len(seqs), num_perm), dtype=np.uint64)
    for start in range(0, len(seqs), chunk):
        part = seqs[start : start + chunk]
        shingles = [[s[i : i + kmer].encode() for i in range(len(s) - kmer + 1)] for s in part]
        sketches = MinHash.bulk(shingles, num_perm=num_perm, seed=seed)
        out[start : start + len(part)] = np.stack([m.hashvalues for m in sketches])
    return out


def minhash_method(
    stored: list[str], kmer: int, num_perm: int, seed: int, k: int, pool: int
) -> Method:
    """Estimated Jaccard similarity of k-mer sets to every stored sketch, top ``pool``."""
    sketches = minhash_signatures(stored, kmer, num_perm, seed)

    def method(queries: list[str]) -> list[list[int]]:
        q = minhash_signatures(queries, kmer, num_perm, seed)
        sims = np.stack([(row[None, :] == sketches).mean(1) for row in q])
        return top_then_rerank(-sims, stored, queries, k, pool)

    return method


def methods(
    args: argparse.Namespace,
    dbs: dict[str, Database],
    module: Any,
    rows: np.ndarray,
    stored: list[str],
    max_len: int,
) -> list[tuple[str, int, Method]]:
    """(name, exact re-rank budget, method) of every compared method."""
    k, pool = args.k, args.candidates
    factor, shortlist = pool / k, int(pool * args.refine)
    flat = dbs["flat"]
    hashing = lambda db, **o: hash_method(db, module, rows, max_len, k, **o)  # noqa: E731
    found: list[tuple[str, int, Method]] = [
        ("hash (Hamming only)", 0, hashing(flat, refine_factor=1)),
        ("hash + refine", 0, hashing(flat, refine_factor=args.refine * factor)),
        (
            "hash + rerank",
            pool,
            hashing(flat, rerank=True, candidates_factor=factor, refine_factor=1),
        ),
        (
            "hash + rerank (refine's shortlist)",
            shortlist,
            hashing(flat, rerank=True, candidates_factor=shortlist / k, refine_factor=1),
        ),
    ]
    for kind, db in dbs.items():
        name = "hash + refine + rerank" + ("" if kind == "flat" else f" ({kind} index)")
        options = {"rerank": True, "candidates_factor": factor, "refine_factor": args.refine}
        found.append((name, pool, hashing(db, **options)))
    emb = embed_sequences(module, stored, max_len)
    found += [
        ("embedding scan", 0, embedding_method(module, emb, stored, max_len, k, k)),
        ("embedding scan + rerank", pool, embedding_method(module, emb, stored, max_len, k, pool)),
        (f"{args.kmer}-mer cosine", 0, kmer_method(stored, args.kmer, k, k)),
        (f"{args.kmer}-mer cosine + rerank", pool, kmer_method(stored, args.kmer, k, pool)),
    ]
    minhash = f"MinHash k={args.minhash_k} ({args.minhash_perm})"
    mh = lambda p: minhash_method(  # noqa: E731
        stored, args.minhash_k, args.minhash_perm, args.seed, k, p
    )
    found += [(minhash, 0, mh(k)), (f"{minhash} + rerank", pool, mh(pool))]
    return found


def score(
    found_methods: list[tuple[str, int, Method]],
    queries: list[str],
    exact: np.ndarray,
    k: int,
    exact_s: float,
) -> list[dict[str, Any]]:
    """Each method run once on two queries (warm-up), then timed on all of them and scored."""
    results = []
    for name, pool, method in found_methods:
        method(queries[:2])
        found, seconds = timed(lambda m=method: m(queries))
        entry = {"method": name, "reranked": pool, **recall(found, exact, k)}
        entry.update(seconds=seconds, qps=len(queries) / seconds, speedup=exact_s / seconds)
        results.append(entry)
        print(f"  {name}: recall@{k} {entry[f'recall@{k}']:.3f}", flush=True)
    return results


# the benchmark ----------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    module = load_module(args.ckpt)
    stored, query_recs, max_len = split_sample(args, module)
    seqs, queries = [rec.seq for rec in stored], [rec.seq for rec in query_recs]
    work = Path(args.workdir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    times = run_commands(
        args,
        work,
        write_fasta(work / "stored.fasta", stored),
        write_fasta(work / "queries.fasta", query_recs),
    )
    exact, exact_s = timed(lambda: distance_matrix(queries, seqs, progress=True))
    row_of = {rec.id: i for i, rec in enumerate(stored)}
    cli_found = read_hits(work / "hits.tsv", [rec.id for rec in query_recs], row_of)
    db = Database.open(work / "db")
    report: dict[str, Any] = {
        "config": vars(args) | {"max_len": max_len},
        "hardware": hardware(),
        "database": db.stats() | {"predict_s": times["predict_s"], "index_s": times["index_s"]},
        "exact": {"seconds": exact_s, "qps": len(queries) / exact_s},
        "search_command": {**recall(cli_found, exact, args.k), "seconds": times["search_s"]},
    }
    report["database"]["predict_regions_per_s"] = db.stats()["regions"] / times["predict_s"]
    report["search_command"]["speedup"] = exact_s / times["search_s"]
    dbs = {"flat": db} | approximate_databases(args, work)
    rows = np.array([row_of[i] for i in db.target_ids()], dtype=np.int64)
    found = methods(args, dbs, module, rows, seqs, max_len)
    report["methods"] = score(found, queries, exact, args.k, exact_s)
    return report


def approximate_databases(args: argparse.Namespace, work: Path) -> dict[str, Database]:
    """The same shards indexed by each approximate FAISS index kind."""
    dbs = {}
    for kind in args.indexes:
        path = work / f"db-{kind}"
        build_database(work / "shards", path, index=kind, overwrite=True)
        dbs[kind] = Database.open(path)
    return dbs


def hardware() -> dict[str, Any]:
    return {
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


def print_report(report: dict[str, Any], k: int) -> None:
    from rich.console import Console
    from rich.table import Table

    db, exact, cli = report["database"], report["exact"], report["search_command"]
    title = (
        f"search: {report['config']['queries']} held-out queries vs {db['sequences']:,} stored "
        f"({db['bytes_per_region']:.0f} B/region); exact scan {exact['seconds']:.1f} s = "
        f"{exact['qps']:.1f} q/s"
    )
    table = Table(title=title, title_justify="left")
    for column in ("method", "re-ranked", "recall@1", f"recall@{k}", "q/s", "speed-up"):
        table.add_column(column, justify="left" if column == "method" else "right")
    for m in report["methods"]:
        table.add_row(
            m["method"],
            str(m["reranked"]),
            f"{m['recall@1']:.3f}",
            f"{m[f'recall@{k}']:.3f}",
            f"{m['qps']:.1f}",
            f"{m['speedup']:.1f}x",
        )
    Console().print(table)
    print(
        f"neurohash search --rerank: recall@{k} {cli[f'recall@{k}']:.3f}, recall@1 "
        f"{cli['recall@1']:.3f}; {cli['seconds']:.1f} s for {report['config']['queries']} queries "
        f"(start-up included), {cli['speedup']:.1f}x faster than the exact scan "
        f"({exact['seconds']:.1f} s)"
    )


def markdown(report: dict[str, Any]) -> str:
    """The report's section: the methods table and the search command's own figures."""
    cfg, db, exact, cli = (report[key] for key in ("config", "database", "exact", "search_command"))
    k = cfg["k"]
    lines = [
        "## Search (end to end, held-out queries)",
        "",
        f"{cfg['queries']} held-out sequences of `{Path(cfg['fasta']).name}` against "
        f"{db['sequences']:,} stored ({db['regions']:,} regions, {db['unique_codes']:,} unique "
        f"codes, {db['bytes_per_region']:.0f} bytes/region); model `{Path(cfg['ckpt']).name}`. "
        f"Recall against the exact edit-distance top-{k}; exact scan {exact['seconds']:.1f} s = "
        f"{exact['qps']:.1f} queries/s; in-process methods warm, query embedding included; "
        f"re-rank budget {cfg['candidates']}.",
        "",
    ]
    rows = [
        [
            m["method"],
            m["reranked"],
            f"{m['recall@1']:.3f}",
            f"{m[f'recall@{k}']:.3f}",
            f"{m['qps']:,.1f}",
            f"{m['speedup']:,.1f}x",
        ]
        for m in report["methods"]
    ]
    header = ["method", "re-ranked", "recall@1", f"recall@{k}", "q/s", "vs exact scan"]
    lines.append(table(header, rows))
    lines += [
        "",
        f"`neurohash search --rerank` (start-up included): recall@{k} {cli[f'recall@{k}']:.3f}, "
        f"{cli['seconds']:.1f} s, {cli['speedup']:.1f}x the exact scan; build: predict.py "
        f"{db['predict_s']:.1f} s ({db['predict_regions_per_s']:,.0f} regions/s), neurohash "
        f"index {db['index_s']:.1f} s.",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt", required=True, help="neurohash checkpoint")
    parser.add_argument("--fasta", default="greengenes", help="FASTA/FASTQ or 'greengenes'")
    parser.add_argument("--db-size", type=int, default=5000, help="stored sequences")
    parser.add_argument("--queries", type=int, default=200, help="held-out query sequences")
    parser.add_argument("-k", type=int, default=10, help="hits per query (recall@k)")
    parser.add_argument("--candidates", type=int, default=200, help="exact re-rank budget")
    parser.add_argument("--refine", type=float, default=5.0, help="Hamming shortlist factor")
    parser.add_argument("--indexes", nargs="*", default=["hnsw", "ivf"], help="approximate")
    parser.add_argument("--kmer", type=int, default=5, help="k of the k-mer profile baseline")
    parser.add_argument("--minhash-k", type=int, default=11, help="k of the MinHash baseline")
    parser.add_argument("--minhash-perm", type=int, default=128, help="MinHash permutations")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", default="outputs/bench_search", help="FASTA, shards, db")
    parser.add_argument("--out", default="outputs/bench_search.json", help="JSON report")
    parser.add_argument(
        "--quick", action="store_true", help=f"--db-size {QUICK[0]} --queries {QUICK[1]}"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.db_size, args.queries = QUICK
    return args


QUICK = (1000, 50)  # stored sequences, queries of --quick


def main(argv: list[str] | None = None) -> None:
    started, argv = begin(argv)
    args = parse_args(argv)
    report = run(args)
    report |= provenance(__file__, argv, started, "quick" if args.quick else "full")
    print_report(report, args.k)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"report written to {args.out}")


if __name__ == "__main__":
    main()
