"""Database build speed: regions per second through predict.py and through Spark local mode.

    python bench/build.py [--quick] [--ckpt CKPT] [--reads N] [--batch-size 256]
        [--master local[*]] [--workdir outputs/bench_build] [--out docs/benchmarks/build.json]

The same input, real V4 reads (the whole 100,000-read file of ../shared/data, or a seeded
sample of ``--reads`` of them written as FASTA), becomes a searchable database in two ways,
each timed from the shell, start-up included:

- ``python predict.py`` (Lightning predict loop, hash shards) then ``neurohash index``;
- ``neurohash spark-index`` (Spark local mode: the same shards and database in one command).

Both must give the same database (regions and unique codes); the report gives regions per
second of each and their ratio. Without ``--ckpt`` the small V4 model of
``bench/search_scale.py`` is trained first (or reused).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

from report import RESULTS, V4_READS, begin, publish, table
from search import neurohash_command, shell, write_fasta
from search_scale import ensure_model

from neurohash.data.cleaning import Cleaning
from neurohash.data.sources import load_records
from neurohash.index.database import Database

SPARK_CONF = ("spark.ui.enabled=false", "spark.ui.showConsoleProgress=false")


def input_file(reads: int | None, work: Path, seed: int) -> Path:
    """The whole V4 file, or a seeded sample of ``reads`` raw reads (no cleaning: the builds
    clean)."""
    if reads is None:
        return V4_READS
    records, _ = load_records(V4_READS, Cleaning(dedupe=False), reads, seed)
    return write_fasta(work / f"v4_{reads}.fasta", records)


def fresh(*paths: Path) -> None:
    """Remove earlier outputs: predict and Spark would otherwise resume finished shards."""
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)


def predict_build(args: argparse.Namespace, fasta: Path, work: Path) -> dict[str, Any]:
    shards, db = work / "predict.shards", work / "predict.db"
    fresh(shards, db, work / "predict_run")
    predict_s = shell(
        sys.executable,
        "predict.py",
        f"ckpt_path={Path(args.ckpt).resolve()}",
        f"input={fasta}",
        f"output_dir={shards}",
        f"batch_size={args.batch_size}",
        f"hydra.run.dir={work / 'predict_run'}",
        "trainer.enable_progress_bar=false",
    )
    index_s = shell(neurohash_command(), "index", str(shards), "-o", str(db), "--force")
    return {
        "method": "predict.py + neurohash index",
        "stages": {"predict_s": predict_s, "index_s": index_s},
        "seconds": predict_s + index_s,
        "db": db,
    }


def spark_build(args: argparse.Namespace, fasta: Path, work: Path) -> dict[str, Any]:
    db = work / "spark.db"
    fresh(db, work / "spark.db.shards")
    conf = [part for setting in SPARK_CONF for part in ("--conf", setting)]
    command = [neurohash_command(), "spark-index", str(fasta), "-o", str(db), "--ckpt"]
    command += [str(Path(args.ckpt).resolve()), "--batch-size", str(args.batch_size), "--force"]
    seconds = shell(*command, "--master", args.master, *conf)
    name = f"neurohash spark-index ({args.master})"
    return {"method": name, "stages": {}, "seconds": seconds, "db": db}


def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(args.workdir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    args.ckpt = str(args.ckpt or ensure_model(Path(args.model_dir).resolve()))
    fasta = input_file(args.reads, work, args.seed)
    builds = [predict_build(args, fasta, work), spark_build(args, fasta, work)]
    stats = [Database.open(b.pop("db")).stats() for b in builds]
    for build, stat in zip(builds, stats, strict=True):
        build.update(regions=stat["regions"], unique_codes=stat["unique_codes"])
        build["regions_per_s"] = stat["regions"] / build["seconds"]
        build["vs_predict"] = build["regions_per_s"] / (builds[0].get("regions_per_s") or 1)
    same = all(
        (s["regions"], s["unique_codes"]) == (stats[0]["regions"], stats[0]["unique_codes"])
        for s in stats
    )
    return {
        "config": {k: v for k, v in vars(args).items() if k != "out"},
        "input": str(fasta),
        "same_database": same,
        "builds": builds,
    }


def markdown(report: dict[str, Any]) -> str:
    cfg = report["config"]
    whole = "the whole V4 file (100,000 real V4 reads)"
    reads = whole if cfg["reads"] is None else f"{cfg['reads']:,} real V4 reads"
    lines = [
        "## Database build",
        "",
        f"Input: {reads}, one region each; batch size {cfg['batch_size']}; model "
        f"`{Path(cfg['ckpt']).name}`. Wall time of each command from the shell, start-up "
        "included (Python, model, Spark's JVM). Same database from both: "
        f"{'yes' if report['same_database'] else 'NO'} (regions and unique codes).",
        "",
    ]
    rows = [
        [
            b["method"],
            f"{b['regions']:,}",
            f"{b['seconds']:.1f}",
            f"{b['regions_per_s']:,.0f}",
            f"{b['vs_predict']:.2f}x",
        ]
        for b in report["builds"]
    ]
    lines.append(table(["build", "regions", "seconds", "regions/s", "vs predict"], rows))
    stages = report["builds"][0]["stages"]
    if stages:
        lines += [
            "",
            f"predict.py {stages['predict_s']:.1f} s, neurohash index {stages['index_s']:.1f} s.",
        ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5,000 reads")
    parser.add_argument("--ckpt", default=None, help="checkpoint (default: the V4 bench model)")
    parser.add_argument("--reads", type=int, default=None, help="sample size (default: all)")
    parser.add_argument("--batch-size", type=int, default=256, help="regions per batch")
    parser.add_argument("--master", default="local[*]", help="Spark master")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", default="outputs/bench_build", help="inputs, shards, dbs")
    parser.add_argument(
        "--model-dir",
        default="outputs/bench_search_scale",
        help="where the default V4 model is trained (shared with search_scale)",
    )
    parser.add_argument("--out", default=str(RESULTS / "build.json"), help="JSON report")
    args = parser.parse_args(argv)
    if args.quick and args.reads is None:
        args.reads = 5000
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    started, argv = begin(argv)
    args = parse_args(argv)
    return publish(__file__, argv, started, args.quick, run(args), args.out, markdown)


if __name__ == "__main__":
    main()
