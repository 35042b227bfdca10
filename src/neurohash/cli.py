"""The ``neurohash`` command line: argument parsing and printing, nothing else.

Each subcommand registers itself with ``add_<name>(subparsers)`` and runs as ``run_<name>(args)``
returning an exit status; the work is done by the library (``neurohash.evaluate``,
``neurohash.index.database``, ``neurohash.index.search``, ``neurohash.spark``). Errors a user
can fix are a ``NeurohashError`` naming the file, caught once in ``main``: one line on stderr,
exit status 2.
Heavy libraries (torch, Lightning) are imported inside the commands, so ``--help`` and
``--version`` answer at once.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable
from typing import Any

from neurohash import __version__
from neurohash.errors import NeurohashError, reported

DEFAULT_MAX_SEQS = 1000


# argument types -------------------------------------------------------------------------------


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text}")
    return value


def tile_step_argument(text: str) -> int | str:
    if text == "auto":
        return text
    return non_negative_int(text)


def factor_at_least_one(text: str) -> float:
    value = float(text)
    if not 1 <= value < math.inf:
        raise argparse.ArgumentTypeError(f"expected a finite factor >= 1, got {text}")
    return value


def add_model_options(parser: argparse.ArgumentParser, batch_size: int | None = 256) -> None:
    """Options shared by every subcommand that runs a model."""
    parser.add_argument(
        "--batch-size",
        metavar="B",
        type=positive_int,
        default=batch_size,
        help=f"sequences per batch (default {batch_size or 'as conf/predict.yaml'})",
    )
    parser.add_argument(
        "--device", choices=("cpu", "cuda", "auto"), default="auto", help="where the model runs"
    )


# shared steps -----------------------------------------------------------------------------------


def check_inputs(checkpoint: str, fasta: str) -> None:
    """Fail fast (before the slow model imports) on a missing checkpoint or sequence file."""
    from neurohash.data.sources import expand_inputs

    if not os.path.isfile(checkpoint):
        raise NeurohashError(f"{checkpoint}: no such checkpoint")
    missing = [file for file in expand_inputs(fasta) if not os.path.exists(file)]
    if missing:
        raise NeurohashError(f"{missing[0]}: no such file")


def resolve_device(choice: str) -> str:
    """``auto`` -> cuda when available, else cpu; an explicit cuda without a GPU is an error."""
    import torch

    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda" and not torch.cuda.is_available():
        raise NeurohashError("--device cuda: CUDA is not available on this machine")
    return choice


# evaluate ---------------------------------------------------------------------------------------


def add_evaluate(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="score a checkpoint against exact edit distances on a FASTA/FASTQ file",
        description=(
            "Embed the sequences of FASTA (cleaned as at training time), compute their exact "
            "edit-distance matrix and report %RMSE, MAE, Spearman and closest-string top-k."
        ),
    )
    parser.add_argument("checkpoint", metavar="CKPT", help="a neurohash checkpoint (.ckpt)")
    parser.add_argument("fasta", metavar="FASTA", help="FASTA/FASTQ file, plain or gzipped")
    parser.add_argument(
        "--max-seqs",
        metavar="N",
        type=non_negative_int,
        default=DEFAULT_MAX_SEQS,
        help=f"seeded uniform sample of at most N sequences (default {DEFAULT_MAX_SEQS}; 0 = all; "
        "the exact matrix needs N^2 distances)",
    )
    parser.add_argument("--seed", metavar="S", type=int, default=0, help="seed of the sample")
    add_model_options(parser)
    parser.add_argument("--json", action="store_true", help="print one flat JSON object")
    parser.set_defaults(func=run_evaluate)


def fmt(value: Any, spec: str = "") -> str:
    return "n/a" if value is None else format(value, spec)


def print_table(report: dict[str, Any]) -> None:
    """The report as a readable rich table on stdout."""
    dropped = {k.removeprefix("dropped_"): v for k, v in report.items() if k.startswith("dropped_")}
    reasons = ", ".join(f"{k} {v}" for k, v in dropped.items() if v and k != "total") or "none"
    rows = [
        ("checkpoint", report["checkpoint"]),
        ("model", f"{report['encoder']} / {report['distance']}, dim {report['embedding_dim']}"),
        ("device", report["device"]),
        None,
        ("FASTA", report["fasta"]),
        ("records read", str(report["records_read"])),
        ("kept by cleaning", str(report["records_kept"])),
        ("dropped by cleaning", f"{report['dropped_total']} ({reasons})"),
        (
            "sequences used",
            f"{report['n_seqs']} (max {fmt(report['max_seqs'])}, seed {report['seed']})",
        ),
        ("normaliser L", str(report["normaliser"])),
        None,
        ("%RMSE", fmt(report["rmse_pct"], ".3f")),
        ("%RMSE, nearest pairs", fmt(report["rmse_pct_nearest"], ".3f")),
        ("MAE (edits)", fmt(report["mae"], ".3f")),
        ("Spearman", fmt(report["spearman"], ".4f")),
        *((f"top-{k} (%)", fmt(pct(report[f"top{k}"]), ".1f")) for k in (1, 5, 10)),
        None,
        ("time: load", f"{report['time_load_s']:.2f} s"),
        ("time: embed", f"{report['time_embed_s']:.3f} s"),
        ("time: exact ED", f"{report['time_exact_s']:.3f} s ({report['n_pairs']} pairs)"),
        ("time: total", f"{report['time_total_s']:.2f} s"),
    ]
    print_rows("neurohash evaluate", rows)


def print_rows(title: str, rows: list[tuple[str, str] | None]) -> None:
    """A two-column rich table on stdout; ``None`` starts a new section."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for row in rows:
        if row is None:
            table.add_section()
        else:
            table.add_row(*row)
    Console().print(table)


def pct(fraction: float | None) -> float | None:
    return None if fraction is None else 100.0 * fraction


def run_evaluate(args: argparse.Namespace) -> int:
    check_inputs(args.checkpoint, args.fasta)
    from neurohash.evaluate import evaluate, undefined_note

    report = evaluate(
        args.checkpoint,
        args.fasta,
        max_seqs=args.max_seqs or None,
        seed=args.seed,
        batch_size=args.batch_size,
        device=resolve_device(args.device),
    )
    note = undefined_note(report)
    if note:
        print(f"neurohash evaluate: note: {note}", file=sys.stderr)
    if args.json:
        print(json.dumps(report))
    else:
        print_table(report)
    return 0


# index ------------------------------------------------------------------------------------------


def add_index(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "index",
        help="build a searchable hash database from the predict loop's shards",
        description=(
            "Verify the shards of SHARDS_DIR against their manifest and build DB_DIR from them in "
            "segments of up to --segment-regions regions, streaming: each segment de-duplicates "
            "its codes, stores them in a FAISS binary index with their postings (Parquet, zstd), "
            "keeps the regions' bases once in a 2-bit sequence store and the embeddings as int8. "
            "The model checkpoint is copied in. Written atomically. With --append, SHARDS_DIR's "
            "shards (made by the same model) are added to an existing DB_DIR as new segments."
        ),
    )
    parser.add_argument("shards", metavar="SHARDS_DIR", help="manifest.json + hash shards")
    parser.add_argument(
        "database", metavar="DB_DIR", nargs="?", help="the database (or give it with -o)"
    )
    parser.add_argument(
        "--append", action="store_true", help="add the shards to the existing database DB_DIR"
    )
    parser.add_argument(
        "--ckpt",
        metavar="CKPT",
        help="checkpoint that made the shards (copied into DB_DIR so queries use it; default: the "
        "one the shards' manifest names)",
    )
    parser.add_argument(
        "--no-embeddings",
        action="store_true",
        help="leave the shards' embeddings out (smaller; --refine then reads the codes' own "
        "features of the stored sequences, or weighs the codes)",
    )
    add_build_options(parser, output_required=False)
    parser.set_defaults(func=run_index)


def add_build_options(parser: argparse.ArgumentParser, output_required: bool = True) -> None:
    """Options of every subcommand that builds a database."""
    parser.add_argument(
        "-o", "--output", metavar="DB_DIR", required=output_required, help="the database"
    )
    add_segment_options(parser)
    parser.add_argument("--force", action="store_true", help="replace an existing database")
    parser.add_argument("--json", action="store_true", help="print the statistics as JSON")


def add_segment_options(parser: argparse.ArgumentParser) -> None:
    """How segments are built (index, append, compact)."""
    parser.add_argument(
        "--index",
        choices=("auto", "flat", "hnsw", "ivf"),
        default="auto",
        help="FAISS index of each segment: flat = exact Hamming search (16 bytes per 128-bit "
        "code); hnsw/ivf = approximate; auto = flat up to 1M unique codes per segment, hnsw beyond",
    )
    parser.add_argument(
        "--segment-regions",
        metavar="N",
        type=positive_int,
        default=500_000,
        help="regions per segment (bounds the memory of a build; default 500000)",
    )


def database_argument(args: argparse.Namespace) -> str:
    """DB_DIR, given as the second positional argument or with -o (not both)."""
    if (args.database is None) == (args.output is None):
        raise NeurohashError("give the database once: as DB_DIR or with -o DB_DIR")
    return args.database or args.output


def run_index(args: argparse.Namespace) -> int:
    from neurohash.index.database import Database, append_database, build_database

    db_dir = database_argument(args)
    options = {"index": args.index, "segment_regions": args.segment_regions}
    if args.append:
        if args.ckpt is not None or args.force or args.no_embeddings:
            raise NeurohashError(
                "--append keeps the database's model and settings: drop --ckpt, --force and "
                "--no-embeddings"
            )
        append_database(args.shards, db_dir, **options)
    else:
        build_database(
            args.shards,
            db_dir,
            checkpoint=args.ckpt,
            overwrite=args.force,
            embeddings=not args.no_embeddings,
            **options,
        )
    stats = Database.open(db_dir).stats()
    if stats["bytes_model"] == 0:
        print(
            f"neurohash index: warning: {db_dir} holds no model checkpoint; give --ckpt to "
            "make it searchable from FASTA",
            file=sys.stderr,
        )
    print_stats(stats, args.json, "neurohash index")
    return 0


# search -----------------------------------------------------------------------------------------


def add_search(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "search",
        help="nearest stored sequences of FASTA queries (TSV)",
        description=(
            "Embed the queries (both strands) with the database's own model, find the nearest "
            "codes by Hamming distance and write TSV (header row; columns query_id target_id "
            "strand rank hamming est_distance target_start target_end, and edit_distance "
            "alignment with --rerank)."
        ),
    )
    parser.add_argument("database", metavar="DB_DIR", help="a database made by `neurohash index`")
    parser.add_argument(
        "queries", metavar="QUERIES", help="FASTA/FASTQ file, plain or gzipped; - for stdin"
    )
    hits = {"dest": "k", "metavar": "K", "type": positive_int, "default": 10}
    parser.add_argument("-k", "--top-k", help="hits per query (default 10)", **hits)
    parser.add_argument(
        "--rerank",
        action="store_true",
        help="re-rank candidate targets by exact edit distance (needs stored region sequences)",
    )
    parser.add_argument(
        "--candidates",
        metavar="N",
        type=positive_int,
        help="targets each query region shortlists to re-rank, and at most as many stored "
        "regions it aligns (default 20 x K; a query of two region windows or more then shares "
        "them among its regions, at least K each)",
    )
    parser.add_argument(
        "--alignment",
        choices=("auto", "global", "infix"),
        default="auto",
        help="re-ranking distance: global edit distance, or infix (semi-global: the query "
        "against its best-matching substring of the stored region); auto (default) takes "
        "infix for query regions shorter than half the database's region window",
    )
    parser.add_argument(
        "--by-region",
        action="store_true",
        help="hits are stored regions (a genome may be hit more than once, at different "
        "places; a query of two region windows or more: once per locus) instead of stored "
        "sequences (each at its best region)",
    )
    parser.add_argument(
        "--strand",
        choices=("both", "plus"),
        default="both",
        help="search each query as given and reverse-complemented (both, default; hits say "
        "which strand matched) or as given only (plus)",
    )
    parser.add_argument(
        "--step",
        metavar="S",
        type=tile_step_argument,
        default="auto",
        help="also cut query strands into windows of the database's region length every S "
        "bases, beside their anchored regions: finds stored regions whose anchor k-mer a "
        "mutation of the query changed. auto (default): every tenth of a window, for strands "
        "shorter than two windows (a read against short regions), and for every strand "
        "against a database of regions every N bases (predict.py regions.stride=N); S: every "
        "strand longer than a window; 0: none",
    )
    parser.add_argument(
        "--refine",
        metavar="F",
        type=factor_at_least_one,
        help="shortlist F times more targets by Hamming distance and keep the best by the "
        "model's float distance (databases with embeddings), by the distance of the codes' own "
        "features of the stored sequences (the default model's: positional 5-mer profiles), or "
        "by the Hamming distance weighted by how sure each query bit is (codes only); default 5; "
        "1 = Hamming only",
    )
    parser.add_argument("--ckpt", metavar="CKPT", help="refuse any model but this checkpoint")
    parser.add_argument("-o", "--output", metavar="HITS.tsv", help="output file (default stdout)")
    add_skip_option(parser)
    add_model_options(parser)
    parser.set_defaults(func=run_search)


def add_skip_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--skip-bad-segments",
        action="store_true",
        help="leave out (and name on stderr) segments whose files are missing or corrupt, "
        "instead of refusing the database",
    )


def run_search(args: argparse.Namespace) -> int:
    if args.queries != "-" and not os.path.isfile(args.queries):  # before the model loads
        raise NeurohashError(f"{args.queries}: no such file (or not a file)")
    if args.ckpt is not None and not os.path.isfile(args.ckpt):
        raise NeurohashError(f"{args.ckpt}: no such checkpoint")
    from neurohash.files import output_file
    from neurohash.index.database import Database
    from neurohash.index.search import query_model, search_file

    db = Database.open(args.database, skip_bad_segments=args.skip_bad_segments)
    module = query_model(db, args.ckpt).to(resolve_device(args.device))
    options = {"rerank": args.rerank, "candidates": args.candidates, "refine": args.refine}
    options |= {"strand": args.strand, "alignment": args.alignment, "by_region": args.by_region}
    options["step"] = args.step
    with output_file(args.output or "-") as out:
        search_file(db, module, args.queries, out, k=args.k, batch_size=args.batch_size, **options)
    return 0


# stats ------------------------------------------------------------------------------------------


def add_stats(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "stats",
        help="sequences, regions, unique codes and bytes per region of a database",
        description="Report what a hash database holds and how much disk it takes.",
    )
    parser.add_argument("database", metavar="DB_DIR", help="a database made by `neurohash index`")
    parser.add_argument("--json", action="store_true", help="print one flat JSON object")
    add_skip_option(parser)
    parser.set_defaults(func=run_stats)


def run_stats(args: argparse.Namespace) -> int:
    from neurohash.index.database import Database

    stats = Database.open(args.database, skip_bad_segments=args.skip_bad_segments).stats()
    print_stats(stats, args.json, "neurohash stats")
    return 0


def print_stats(stats: dict[str, Any], as_json: bool, title: str) -> None:
    """Database statistics as JSON or a rich table on stdout."""
    if as_json:
        print(json.dumps(stats))
        return
    rows: list[tuple[str, str] | None] = [
        ("database", stats["database"]),
        ("sequences", f"{stats['sequences']:,}"),
        ("regions", f"{stats['regions']:,}"),
        ("unique codes", f"{stats['unique_codes']:,} ({stats['code_bits']} bits)"),
        ("segments", f"{stats['segments']} ({stats['index']})"),
        ("bytes per region", f"{stats['bytes_per_region']:.1f}"),
        ("  codes + postings", f"{stats['bytes_codes_postings_per_region']:.1f}"),
        ("  sequence store", stored_size(stats, "sequences")),
        ("  embeddings (int8)", stored_size(stats, "embeddings")),
        ("data on disk", f"{stats['bytes_data']:,} bytes (model {stats['bytes_model']:,})"),
    ]
    if stats["compression_ratio"]:
        ratio = f"{stats['compression_ratio']:.2f}x smaller than {stats['input_bytes']:,} bytes"
        rows.append(("input files", ratio))
    print_rows(title, rows)


def stored_size(stats: dict[str, Any], kind: str) -> str:
    if not stats[f"has_{kind}"]:
        return "not stored"
    return f"{stats[f'bytes_{kind}_per_region']:.1f}"


# compact ----------------------------------------------------------------------------------------


def add_compact(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compact",
        help="merge a database's small segments",
        description="Merge runs of consecutive segments of DB_DIR that together hold at most "
        "--segment-regions regions into one segment each, with its codes de-duplicated. The new "
        "manifest replaces the old in one rename; a killed compaction leaves the database as it "
        "was.",
    )
    parser.add_argument("database", metavar="DB_DIR", help="a database made by `neurohash index`")
    add_segment_options(parser)
    parser.add_argument("--json", action="store_true", help="print the statistics as JSON")
    parser.set_defaults(func=run_compact)


def run_compact(args: argparse.Namespace) -> int:
    from neurohash.index.database import Database, compact_database

    compact_database(args.database, args.index, segment_regions=args.segment_regions)
    print_stats(Database.open(args.database).stats(), args.json, "neurohash compact")
    return 0


def add_verify(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "verify",
        help="check every file of a database against its manifest",
        description="Check the sha256 and size of every file of DB_DIR, the manifest's counts "
        "against the data, and that the stored model loads intact and made the codes.",
    )
    parser.add_argument("database", metavar="DB_DIR", help="a database made by `neurohash index`")
    parser.set_defaults(func=run_verify)


def run_verify(args: argparse.Namespace) -> int:
    from neurohash.index.database import verify_database

    report = verify_database(args.database)
    model = "model intact and matching" if report["model"] else "no model stored"
    print(f"{args.database}: OK ({len(report['files'])} files verified, {model})")
    return 0


# spark-index ------------------------------------------------------------------------------------


def add_spark_index(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "spark-index",
        help="embed FASTA/FASTQ files and build a hash database on Spark",
        description=(
            "On Spark (local[*] by default, a cluster with --master or spark-submit): read INPUTS, "
            "cut regions, embed them with CKPT in the executors, write the predict loop's Parquet "
            "hash shards (to DB_DIR.shards unless --shards), de-duplicate the codes and build the "
            "database in DB_DIR that `neurohash search` opens. Needs Java 17+. Settings not given "
            "are conf/predict.yaml's, as for `python predict.py`."
        ),
    )
    parser.add_argument("inputs", metavar="INPUTS", help="FASTA/FASTQ path or quoted glob")
    parser.add_argument("--ckpt", metavar="CKPT", required=True, help="a neurohash checkpoint")
    parser.add_argument("--master", metavar="URL", help="Spark master (default: local[*])")
    setting = {"metavar": "KEY=VALUE", "type": spark_setting, "action": "append", "default": []}
    parser.add_argument("--conf", help="a Spark setting, e.g. spark.driver.memory=8g", **setting)
    parser.add_argument("--shards", metavar="DIR", help="hash shards (default DB_DIR.shards)")
    # the defaults of these are conf/predict.yaml's, as for `python predict.py`
    parser.add_argument("--shard-size", metavar="N", type=positive_int, help="records per shard")
    parser.add_argument("--density", metavar="D", type=float, help="regions per kb of sequence")
    parser.add_argument("--window", metavar="W", type=positive_int, help="bases per region")
    parser.add_argument(
        "--stride", metavar="S", type=positive_int, help="a region every S bases (not anchored)"
    )
    parser.add_argument("--no-embeddings", action="store_true", help="store no embeddings")
    parser.add_argument("--no-sequences", action="store_true", help="no sequences (no --rerank)")
    parser.add_argument(
        "--append", action="store_true", help="add the inputs to the existing database DB_DIR"
    )
    add_build_options(parser)
    add_model_options(parser, batch_size=None)
    parser.set_defaults(func=run_spark_index)


def spark_setting(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text}")
    return key, value


def run_spark_index(args: argparse.Namespace) -> int:
    check_inputs(args.ckpt, args.inputs)
    from neurohash.index.database import Database
    from neurohash.spark import default_shards_dir, job_config, spark_index

    cfg = job_config(
        args.inputs,
        args.ckpt,
        args.shards or default_shards_dir(args.output),
        batch_size=args.batch_size,
        shard_size=args.shard_size,
        store_embeddings=False if args.no_embeddings else None,
        store_sequences=False if args.no_sequences else None,
        regions={"density": args.density, "window": args.window, "stride": args.stride},
    )
    # the executors resolve --device auto: they, not the driver, may have the GPUs
    spark_index(
        cfg,
        args.output,
        args.index,
        args.force,
        args.master,
        dict(args.conf),
        args.device,
        append=args.append,
        segment_regions=args.segment_regions,
    )
    print_stats(Database.open(args.output).stats(), args.json, "neurohash spark-index")
    return 0


# entry point ------------------------------------------------------------------------------------

SUBCOMMANDS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (
    add_evaluate,
    add_index,
    add_compact,
    add_search,
    add_stats,
    add_verify,
    add_spark_index,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neurohash", description="Neural edit-distance embeddings for DNA similarity search."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in SUBCOMMANDS:
        add(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default: sys.argv[1:]), run the subcommand, return the exit status."""
    args = build_parser().parse_args(argv)
    try:
        with reported(f"neurohash {args.command}"):
            return args.func(args)
    except SystemExit as exc:  # a user error, already reported as one line
        return exc.code if isinstance(exc.code, int) else 1
    except KeyboardInterrupt:
        print(f"neurohash {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
