"""A database of millions of regions in segments against one segment: memory, recall, speed.

    python bench/store_scale.py [--quick] [--ckpt CKPT] [--regions 3000000]
        [--segment-regions 500000] [--sizes 1000000] [--queries 200]
        [--workdir outputs/bench_store_scale] [--out docs/benchmarks/store_scale.json]

The collection is built as ``bench/search_scale.py`` builds its: all 100,000 V4 reads, cleaned
as the model's training data, then synthetic variants of them (2% substitutions, 0.5% insertions
and deletions per base) up to ``--regions`` stored reads, each its own target. ``python
predict.py`` embeds them (no embeddings stored) and the shards are indexed with the user's
commands under ``/usr/bin/time -v``: in segments of ``--segment-regions`` regions, and as one
segment. Both databases answer the same ``neurohash search --rerank`` queries (mutated copies of
stored reads), with peak RSS, queries/s from the shell and recall@10 against the exact
edit-distance top-10 over every stored read. The first shards, holding ``--sizes`` regions, are
indexed and searched too: build and search time against collection size.

Without ``--ckpt`` the small V4 model of ``bench/search_scale.py`` is trained first (or reused).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
from report import ROOT, begin, publish, save_figure, subplots, table
from search import neurohash_command, recall, write_fasta
from search_scale import collection, ensure_model, real_reads
from store import RATES, hits_of, measured, stats, truth

from neurohash.checkpoint import load_module
from neurohash.data.fasta import SequenceRecord
from neurohash.data.mutation import mutate
from neurohash.index.database import Database

PLUS = ("--strand", "plus")  # reads of one orientation, as the exact truth is computed


def collection_fasta(args: argparse.Namespace, ckpt: Path, work: Path) -> Path:
    """The stored reads as FASTA (written once per size and seed)."""
    path = work / f"collection_{args.regions}_{args.seed}.fasta"
    if not path.is_file():
        reads = real_reads(str(ckpt), None, args.seed)
        max_len = load_module(str(ckpt)).normaliser
        records, _ = collection(reads, args.regions, RATES, int(max_len), args.seed)
        write_fasta(path, records)
    return path


def predict(ckpt: Path, fasta: Path, shards: Path, shard_size: int) -> dict[str, float]:
    """The collection's shards (a finished run is reused: its job key covers model, input
    content and settings)."""
    overrides = [f"ckpt_path={ckpt}", f"input={fasta}", f"output_dir={shards}"]
    overrides += ["store_embeddings=false", "batch_size=1024", f"shard_size={shard_size}"]
    overrides += [f"hydra.run.dir={shards}_run", "trainer.enable_progress_bar=false"]
    return measured(sys.executable, "predict.py", *overrides)


def subset_shards(shards: Path, work: Path, regions: int) -> Path:
    """A shard directory of the first shards of ``shards`` holding at least ``regions`` rows
    (links to the same files, the manifest cut to them): a smaller collection of the same
    reads, for build and search time against size."""
    manifest = json.loads((shards / "manifest.json").read_text())
    entries, rows = [], 0
    for entry in manifest["shards"]:
        if rows >= regions:
            break
        entries.append(entry)
        rows += int(entry["rows"])
    subset = work / f"subset_{regions}.shards"
    shutil.rmtree(subset, ignore_errors=True)
    subset.mkdir()
    for entry in entries:
        (subset / entry["file"]).symlink_to((shards / entry["file"]).resolve())
    manifest.update(shards=entries, rows=rows)
    (subset / "manifest.json").write_text(json.dumps(manifest))
    return subset


def by_size(
    args: argparse.Namespace, work: Path, shards: Path, fasta: Path, full: dict[str, Any]
) -> list[dict[str, Any]]:
    """Index and search time (segmented) of smaller collections, then of the whole one."""
    neurohash = neurohash_command()
    points = []
    for regions in args.sizes:
        subset = subset_shards(shards, work, regions)
        db = work / f"subset_{regions}.db"
        shutil.rmtree(db, ignore_errors=True)
        flags = ["--index", "flat", "--segment-regions", str(args.segment_regions)]
        index = measured(neurohash, "index", str(subset), str(db), *flags)
        command = [neurohash, "search", str(db), str(fasta), "-k", str(args.k), "--rerank", *PLUS]
        found = measured(*command, "-o", str(work / "hits_subset.tsv"))
        points.append({"regions": stats(db)["regions"], "index": index, "search": found})
    points.append({"regions": full["regions"], **full["steps"]})
    return points


def plot(report: dict[str, Any], path: Path) -> Path:
    fig, axis = subplots(figsize=(5.5, 3.6))
    points = report["by_size"]
    regions = [p["regions"] / 1e6 for p in points]
    for key, label in (("index", "neurohash index (segmented)"), ("search", "search --rerank")):
        axis.plot(regions, [p[key]["wall_s"] for p in points], marker="o", label=label)
    axis.set_xlabel("stored regions (millions)")
    axis.set_ylabel("wall time (s)")
    axis.set_title(f"{report['config']['queries']} queries; 2-core VM")
    axis.legend()
    return save_figure(fig, path)


def queries(db: Database, n: int, seed: int) -> list[SequenceRecord]:
    """Mutated copies of stored reads drawn at random."""
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(db.regions, size=n, replace=False))
    seqs = db.region_sequences(rows)
    return [
        SequenceRecord(f"q{i}", mutate(seq, RATES, rng, len(seq) + 20))
        for i, seq in enumerate(seqs)
    ]


def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    ckpt = Path(args.ckpt or ensure_model(work)).resolve()
    fasta = collection_fasta(args, ckpt, work)
    shards = work / f"collection_{args.regions}.shards"
    reused = (shards / "manifest.json").is_file()  # predict.py then only checks the shards
    shard_size = max(1, min(10_000, args.segment_regions // 4))  # segments of several shards
    steps = {"predict": predict(ckpt, fasta, shards, shard_size)}
    dbs = {"segmented": work / "segmented.db", "one segment": work / "one.db"}
    sizes = {"segmented": args.segment_regions, "one segment": 10**12}
    neurohash = neurohash_command()
    for name, db in dbs.items():
        shutil.rmtree(db, ignore_errors=True)
        flags = ["--index", "flat", "--segment-regions", str(sizes[name])]
        steps[f"index ({name})"] = measured(neurohash, "index", str(shards), str(db), *flags)
    opened = Database.open(dbs["segmented"])
    records = queries(opened, args.queries, args.seed)
    queries_fasta = write_fasta(work / "queries.fasta", records)
    exact, ids = truth(opened, records), opened.target_ids()
    column_of = {target: i for i, target in enumerate(ids)}
    if len(column_of) != len(ids):
        sys.exit("stored ids are not unique: hits cannot be told apart")
    search: dict[str, Any] = {}
    for name, db in dbs.items():
        tsv = work / f"hits_{name.replace(' ', '_')}.tsv"
        command = [
            neurohash,
            "search",
            str(db),
            str(queries_fasta),
            "-k",
            str(args.k),
            "--rerank",
            *PLUS,
        ]
        steps[f"search ({name})"] = measured(*command, "-o", str(tsv))
        search[name] = recall(hits_of(tsv, column_of, len(records)), exact, args.k)
        search[name]["queries_per_s"] = len(records) / steps[f"search ({name})"]["wall_s"]
    whole = {"index": steps["index (segmented)"], "search": steps["search (segmented)"]}
    points = by_size(args, work, shards, queries_fasta, {"regions": opened.regions, "steps": whole})
    return {
        "by_size": points,
        "shards_reused": reused,
        "config": {
            "regions": args.regions,
            "segment_regions": args.segment_regions,
            "queries": args.queries,
            "k": args.k,
        },
        "sizes": {name: stats(db) for name, db in dbs.items()},
        "steps": steps,
        "search": search,
    }


def markdown(report: dict[str, Any]) -> str:
    cfg, sizes, steps = report["config"], report["sizes"], report["steps"]
    seg, one = sizes["segmented"], sizes["one segment"]
    reused = "; finished shards of an earlier run reused" if report.get("shards_reused") else ""
    rows = []
    for name, s in sizes.items():
        found = report["search"][name]
        rows.append(
            (
                name,
                s["segments"],
                f"{steps[f'index ({name})']['wall_s']:.0f}",
                f"{steps[f'index ({name})']['peak_rss_mb']:,.0f}",
                f"{steps[f'search ({name})']['peak_rss_mb']:,.0f}",
                f"{found['recall@10']:.3f}",
                f"{found['queries_per_s']:.1f}",
                f"{s['bytes_per_region']:.1f}",
            )
        )
    header = ["database", "segments", "index s", "index peak RSS MB", "search peak RSS MB"]
    header += ["recall@10", "queries/s", "bytes/region"]
    return "\n".join(
        [
            "## Database at scale: segments against one segment",
            "",
            f"{seg['regions']:,} stored reads (the 100,000 V4 reads, cleaned, and synthetic "
            "variants of them: 2% substitutions, 0.5% insertions and deletions), flat indexes, "
            f"no embeddings; segments of up to {cfg['segment_regions']:,} regions. "
            "`python predict.py` took "
            f"{steps['predict']['wall_s']:,.0f} s (peak RSS {steps['predict']['peak_rss_mb']:,.0f}"
            f" MB{reused}). The sequence store takes {seg['bytes_sequences_per_region']:.1f} bytes "
            f"per read (2-bit, zstd). {cfg['queries']} queries, `neurohash search --rerank`, "
            "start-up included:",
            "",
            table(header, rows),
            "",
            f"Unique codes: {seg['unique_codes']:,} segmented, {one['unique_codes']:,} in one "
            "segment. Build and search time against collection size (segmented; the smaller "
            "collections are the first shards):",
            "",
            table(
                ["regions", "index s", "index peak RSS MB", "search s", "search peak RSS MB"],
                [
                    (
                        f"{p['regions']:,}",
                        f"{p['index']['wall_s']:.0f}",
                        f"{p['index']['peak_rss_mb']:,.0f}",
                        f"{p['search']['wall_s']:.1f}",
                        f"{p['search']['peak_rss_mb']:,.0f}",
                    )
                    for p in report["by_size"]
                ],
            ),
            "",
            "![build and search time against size](benchmarks/store_scale.png)",
        ]
    )


def pending(reports: list[dict[str, Any]]) -> list[str]:
    """What the store issue asks for that this bench does not measure yet."""
    largest = max(r["sizes"]["segmented"]["regions"] for r in reports)
    items = ["build and search time at 10M regions (needs the predict step on a GPU)"]
    if largest < 3_000_000:
        items.append(f"a database of >= 3M regions (the largest measured: {largest:,})")
    return items


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3,000 reads, 10 queries, one size")
    parser.add_argument("--ckpt", help="a V4 checkpoint (default: train the bench model)")
    parser.add_argument("--regions", type=int, default=3_000_000, help="stored reads")
    parser.add_argument("--segment-regions", type=int, default=500_000)
    parser.add_argument(
        "--sizes", type=int, nargs="*", default=[1_000_000], help="smaller collections to time"
    )
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", default="outputs/bench_store_scale")
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks" / "store_scale.json"))
    args = parser.parse_args(argv)
    if args.quick:
        args.regions, args.queries, args.segment_regions, args.sizes = 3_000, 10, 1_000, []
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    started, argv = begin(argv)
    args = parse_args(argv)
    report = run(args)
    out, quick = args.out, args.quick
    return publish("bench/store_scale.py", argv, started, quick, report, out, markdown, plot)


if __name__ == "__main__":
    main()
