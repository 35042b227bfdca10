"""Search at scale: queries/s and recall@10 at 10k, 100k and 1M stored regions.

    python bench/search_scale.py [--quick] [--ckpt CKPT] [--sizes 10000 100000 1000000]
        [--queries 100] [-k 10] [--candidates 100] [--refine 5] [--indexes hnsw]
        [--workdir outputs/bench_search_scale] [--out docs/benchmarks/search_scale.json]
        [--reuse-build]

Collections are made from real sequences: the study 550 V4 reads (~150 bp, ../shared/data),
cleaned as the model's training data; ``--queries`` of them, outside the model's training
sample, are held out as queries, a seeded sample of the rest is stored. A size larger than the
real reads is filled with *synthetic variants* of them: ``neurohash.data.mutation.mutate`` at
the training data's rates (2% substitutions, 0.5% insertions, 0.5% deletions per base,
``--mutation``), each variant a stored region of its own. Short reads keep exact scans
affordable, so every recall is against the exact edit-distance top-k over the whole collection.

Per size, with the project's own commands and functions (through ``bench/search.py``):
``python predict.py`` -> ``neurohash index`` (flat) -> ``neurohash search --rerank``, each timed
from the shell; the same shards indexed approximately (``--indexes``, HNSW by default); then, warm
and in-process, ``neurohash.index.search.search`` on the flat and approximate index with and without
refining and exact re-ranking, an exact rapidfuzz scan of the collection (the ground truth; its
wall time gives the exact scan's queries/s), and MinHash of k-mer sets at the same exact re-rank
budget. Database bytes per region from ``neurohash stats``.

``--reuse-build`` keeps the shards an earlier run wrote in ``--workdir`` for the same collection
(same sizes, seed and model): ``predict.py`` resumes them instead of embedding again, so a change
to search is re-measured at 1M regions in minutes rather than the build's 40; the build's own
figures then come from ``bench/build.py`` or the earlier run.

Without ``--ckpt`` a small V4 model is trained first with ``python train.py`` (``V4_MODEL``
below: the default transformer, 2,500 reads, 2 epochs, a few minutes on 2 CPU cores) and reused
on later runs.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
from report import RESULTS, ROOT, V4_READS, begin, publish, save_figure, subplots, table
from search import (
    approximate_databases,
    hash_method,
    minhash_method,
    recall,
    run_commands,
    timed,
    training_sequences,
    write_fasta,
)

from neurohash.checkpoint import load_module, stored_cleaning
from neurohash.data.edit_distance import distance_matrix
from neurohash.data.fasta import SequenceRecord
from neurohash.data.mutation import MutationRates, mutate
from neurohash.data.sources import load_records
from neurohash.index.database import Database

V4_MODEL = [  # python train.py overrides of the default model when no --ckpt is given
    "data=fasta",
    f"data.path={V4_READS}",
    "data.max_len=152",
    "data.cleaning.min_len=100",
    "data.max_seqs=2500",
    "data.eval_size=250",
    "trainer.max_epochs=2",
    "trainer.enable_progress_bar=false",
    "logger=none",
]


# the model --------------------------------------------------------------------------------------


def ensure_model(workdir: Path, extra: list[str] | None = None) -> Path:
    """A V4 checkpoint: trained once with ``python train.py`` into ``workdir/model``."""
    ckpt = workdir / "model" / "checkpoints" / "last.ckpt"
    if not ckpt.is_file():
        command = [sys.executable, "train.py", *V4_MODEL, *(extra or [])]
        command.append(f"hydra.run.dir={workdir / 'model'}")
        print("$", " ".join(command), flush=True)
        subprocess.run(command, cwd=ROOT, check=True)
    return ckpt


# collections ------------------------------------------------------------------------------------


def real_reads(ckpt: str, reads: int | None, seed: int) -> list[SequenceRecord]:
    """All V4 reads (or a seeded sample), cleaned and de-duplicated as the training data."""
    cleaning, _ = stored_cleaning(load_module(ckpt), ckpt)
    records, _ = load_records(V4_READS, cleaning, reads, seed)
    return records


def collection(
    reads: list[SequenceRecord], size: int, rates: MutationRates, max_len: int, seed: int
) -> tuple[list[SequenceRecord], int]:
    """``size`` stored records: a seeded sample of the real reads, then synthetic variants of
    them (round-robin over the reads) once the real ones run out; and how many are real."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(reads))
    real = [reads[i] for i in order[: min(size, len(reads))]]
    variants = [
        SequenceRecord(f"{rec.id}~v{i // len(real)}", mutate(rec.seq, rates, rng, max_len))
        for i, rec in zip(range(size - len(real)), _cycle(real), strict=False)
    ]
    return real + variants, len(real)


def _cycle(items: list[Any]) -> Any:
    while True:
        yield from items


# one size ---------------------------------------------------------------------------------------


def methods(
    args: argparse.Namespace, dbs: dict[str, Database], module: Any, rows: np.ndarray, stored: list
) -> list[tuple[str, str, int, Any]]:
    """(name, index, exact re-rank budget, method) of every compared method."""
    k, pool, max_len = args.k, args.candidates, args.max_len
    factor = pool / k
    found = []
    for kind, db in dbs.items():
        hashing = lambda db=db, **o: hash_method(db, module, rows, max_len, k, **o)  # noqa: E731
        found += [
            ("hash (Hamming)", kind, 0, hashing(refine_factor=1)),
            ("hash + refine", kind, 0, hashing(refine_factor=args.refine * factor)),
            (
                "hash + refine + rerank",
                kind,
                pool,
                hashing(rerank=True, candidates_factor=factor, refine_factor=args.refine),
            ),
        ]
    minhash = f"MinHash k={args.minhash_k} ({args.minhash_perm})"
    mh = lambda p: minhash_method(  # noqa: E731
        stored, args.minhash_k, args.minhash_perm, args.seed, k, p
    )
    found += [(minhash, "scan", 0, mh(k)), (f"{minhash} + rerank", "scan", pool, mh(pool))]
    return found


def score(
    found: list[tuple[str, str, int, Any]], queries: list[str], exact: np.ndarray, k: int
) -> list[dict[str, Any]]:
    """Each method warmed up on two queries, then timed on all of them and scored."""
    results = []
    for name, index, pool, method in found:
        method(queries[:2])
        hits, seconds = timed(lambda m=method: m(queries))
        entry = {"method": name, "index": index, "reranked": pool, **recall(hits, exact, k)}
        entry.update(seconds=seconds, qps=len(queries) / seconds)
        results.append(entry)
        print(
            f"  {name} [{index}]: recall@{k} {entry[f'recall@{k}']:.3f}, {entry['qps']:.1f} q/s",
            flush=True,
        )
    return results


def measure_size(
    args: argparse.Namespace,
    module: Any,
    reads: list[SequenceRecord],
    query_recs: list[SequenceRecord],
    size: int,
) -> dict[str, Any]:
    """Build, search and score one collection of ``size`` regions."""
    rates = MutationRates(*args.mutation)
    stored_recs, n_real = collection(reads, size, rates, args.max_len, args.seed)
    work = Path(args.workdir).resolve() / f"n{size}"
    work.mkdir(parents=True, exist_ok=True)
    stored = [rec.seq for rec in stored_recs]
    queries = [rec.seq for rec in query_recs]
    print(f"{size:,} regions ({n_real:,} real reads, {size - n_real:,} variants)", flush=True)
    times = run_commands(
        args,
        work,
        write_fasta(work / "stored.fasta", stored_recs),
        write_fasta(work / "queries.fasta", query_recs),
        fresh=not args.reuse_build,
    )
    exact, exact_s = timed(lambda: distance_matrix(queries, stored, progress=True))
    db = Database.open(work / "db")
    dbs = {"flat": db} | approximate_databases(args, work)
    row_of = {rec.id: i for i, rec in enumerate(stored_recs)}
    rows = np.array([row_of[i] for i in db.target_ids()], dtype=np.int64)
    results = score(methods(args, dbs, module, rows, stored), queries, exact, args.k)
    exact_qps = len(queries) / exact_s
    for entry in results:
        entry["speedup"] = entry["qps"] / exact_qps
    stats = db.stats()
    return {
        "regions": size,
        "real_reads": n_real,
        "variants": size - n_real,
        "mean_length": float(np.mean([len(s) for s in stored])),
        "database": {key: stats[key] for key in STAT_KEYS},
        "build_reused": args.reuse_build,
        "predict_s": times["predict_s"],
        "predict_regions_per_s": size / times["predict_s"],
        "index_s": times["index_s"],
        "search_command_s": times["search_s"],
        "exact": {"seconds": exact_s, "qps": exact_qps, "pairs_per_s": exact.size / exact_s},
        "methods": results,
    }


STAT_KEYS = ("sequences", "regions", "unique_codes", "bytes_per_region", "bytes_data")


def run(args: argparse.Namespace) -> dict[str, Any]:
    args.ckpt = str(args.ckpt or ensure_model(Path(args.workdir).resolve()))
    module = load_module(args.ckpt)
    cleaning, args.max_len = stored_cleaning(module, args.ckpt)
    reads = real_reads(args.ckpt, args.reads, args.seed)
    seen = training_sequences(Path(args.ckpt), cleaning)
    order = np.random.default_rng(args.seed + 1).permutation(len(reads))
    held = set([int(i) for i in order if reads[i].seq not in seen][: args.queries])
    query_recs = [reads[i] for i in sorted(held)]
    pool = [rec for i, rec in enumerate(reads) if i not in held]
    report: dict[str, Any] = {
        "config": {key: value for key, value in vars(args).items() if key != "out"},
        "real_reads_available": len(pool),
        "sizes": [measure_size(args, module, pool, query_recs, size) for size in args.sizes],
    }
    return report


# report -----------------------------------------------------------------------------------------


def plot(report: dict[str, Any], path: Path, k: int) -> Path:
    """Queries per second and recall@k against the collection size, one line per method."""
    fig, (left, right) = subplots(1, 2, figsize=(10, 3.8))
    sizes = [s["regions"] for s in report["sizes"]]
    names = [(m["method"], m["index"]) for m in report["sizes"][0]["methods"]]
    for name, index in names:
        found = [
            next(m for m in s["methods"] if (m["method"], m["index"]) == (name, index))
            for s in report["sizes"]
        ]
        label = f"{name} [{index}]"
        left.plot(sizes, [m["qps"] for m in found], "o-", label=label)
        right.plot(sizes, [m[f"recall@{k}"] for m in found], "o-", label=label)
    left.plot(sizes, [s["exact"]["qps"] for s in report["sizes"]], "k--", label="exact scan")
    for ax, ylabel in ((left, "queries / s"), (right, f"recall@{k}")):
        ax.set_xscale("log")
        ax.set_xlabel("stored regions")
        ax.set_ylabel(ylabel)
    left.set_yscale("log")
    right.set_ylim(0, 1.02)
    right.legend(fontsize=7, loc="lower left")
    return save_figure(fig, path)


def markdown(report: dict[str, Any]) -> str:
    """One table per collection size, then the plot."""
    cfg = report["config"]
    k = cfg["k"]
    sub, ins, dele = cfg["mutation"]
    lines = [
        "## Search at scale",
        "",
        f"{cfg['queries']} held-out real V4 reads (~150 bp) as queries; stored: real V4 reads, "
        f"topped up with synthetic variants of them (neurohash.data.mutation, per base {sub:g} "
        f"substitution, {ins:g} insertion, {dele:g} deletion) beyond the "
        f"{report['real_reads_available']:,} real reads. Recall against the exact edit-distance "
        f"top-{k} over the whole collection (rapidfuzz scan, whose wall time gives the exact "
        f"scan's queries/s). Exact re-rank budget {cfg['candidates']} candidates; refine "
        f"shortlist x{cfg['refine']:g}. Model: `{Path(cfg['ckpt']).name}` "
        f"(max_len {cfg['max_len']}).",
    ]
    for size in report["sizes"]:
        db, exact = size["database"], size["exact"]
        lines += [
            "",
            f"**{size['regions']:,} regions** ({size['real_reads']:,} real, "
            f"{size['variants']:,} variants): {db['bytes_per_region']:.0f} bytes/region, "
            f"{db['unique_codes']:,} unique codes; {build_times(size)}; exact scan "
            f"{exact['qps']:.2f} q/s ({exact['pairs_per_s'] / 1e6:.1f} M pairs/s)",
            "",
        ]
        rows = [
            [
                m["method"],
                m["index"],
                m["reranked"],
                f"{m['recall@1']:.3f}",
                f"{m[f'recall@{k}']:.3f}",
                f"{m['qps']:,.1f}",
                f"{m['speedup']:,.1f}x",
            ]
            for m in size["methods"]
        ]
        rows.append(
            ["exact scan (rapidfuzz)", "scan", "all", "1.000", "1.000", f"{exact['qps']:.2f}", "1x"]
        )
        header = ["method", "index", "re-ranked", "recall@1", f"recall@{k}", "q/s", "vs exact"]
        lines.append(table(header, rows))
    lines += [f"\n![search at scale](benchmarks/{p})" for p in report.get("plots", [])]
    return "\n".join(lines)


def build_times(size: dict[str, Any]) -> str:
    """How long the build took, unless this run resumed an earlier run's shards."""
    if size.get("build_reused"):
        return "shards reused from an earlier build (`--reuse-build`; see the build benchmark)"
    return (
        f"predict.py {size['predict_s']:.0f} s ({size['predict_regions_per_s']:,.0f} regions/s), "
        f"neurohash index {size['index_s']:.1f} s"
    )


def pending(reports: list[dict[str, Any]]) -> list[str]:
    """What the issue asks of this benchmark that no report holds yet (for bench/report.py)."""
    done = {size["regions"] for r in reports for size in r["sizes"]}
    missing = [n for n in (10_000, 100_000, 1_000_000) if n not in done]
    if not missing:
        return []
    sizes = ", ".join(f"{n:,}" for n in missing)
    return [f"search at {sizes} regions: `python bench/search_scale.py` (all three sizes)"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10k regions, 50 queries")
    parser.add_argument("--ckpt", default=None, help="V4 checkpoint (default: train one)")
    parser.add_argument("--sizes", type=int, nargs="+", default=None, help="stored regions")
    parser.add_argument("--queries", type=int, default=None, help="held-out query reads")
    parser.add_argument("--reads", type=int, default=None, help="real reads used (default all)")
    parser.add_argument("-k", type=int, default=10, help="hits per query (recall@k)")
    parser.add_argument("--candidates", type=int, default=100, help="exact re-rank budget")
    parser.add_argument("--refine", type=float, default=5.0, help="Hamming shortlist factor")
    parser.add_argument("--indexes", nargs="*", default=["hnsw"], help="approximate indexes")
    parser.add_argument(
        "--mutation",
        type=float,
        nargs=3,
        default=[0.02, 0.005, 0.005],
        metavar=("SUB", "INS", "DEL"),
        help="per-base rates of the variants",
    )
    parser.add_argument("--minhash-k", type=int, default=11, help="k of the MinHash baseline")
    parser.add_argument("--minhash-perm", type=int, default=128, help="MinHash permutations")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", default="outputs/bench_search_scale", help="data, dbs")
    parser.add_argument("--out", default=str(RESULTS / "search_scale.json"), help="JSON report")
    parser.add_argument(
        "--reuse-build",
        action="store_true",
        help="resume the shards of an earlier run of the same collection (re-measure search only)",
    )
    args = parser.parse_args(argv)
    if args.sizes is None:
        args.sizes = [10_000] if args.quick else [10_000, 100_000, 1_000_000]
    if args.queries is None:
        args.queries = 50 if args.quick else 100
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    started, argv = begin(argv)
    args = parse_args(argv)
    report = run(args)
    plot_k = lambda r, path: plot(r, path, args.k)  # noqa: E731
    return publish(__file__, argv, started, args.quick, report, args.out, markdown, plot_k)


if __name__ == "__main__":
    main()
