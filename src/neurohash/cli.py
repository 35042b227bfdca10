"""The ``neurohash`` command line: ``neurohash evaluate CKPT FASTA`` (more subcommands to come).

Each subcommand registers itself with ``add_<name>(subparsers)`` and runs as ``run_<name>(args)``
returning an exit status. Failures a user can fix (missing or unreadable files, nothing left
after cleaning, no CUDA) raise ``CliError``: one line on stderr naming the file, exit status 2.
Heavy libraries (torch, Lightning) are imported inside the commands, so ``--help`` and
``--version`` answer at once.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from neurohash import __version__

if TYPE_CHECKING:
    from neurohash.data.cleaning import Cleaning, CleaningStats
    from neurohash.module import DistanceEmbeddingModule

EXIT_USAGE = 2
DROP_REASONS = ("ambiguous", "too_short", "too_long", "duplicate", "empty")
DEFAULT_MAX_SEQS = 1000


class CliError(Exception):
    """A failure the user can act on: reported as one line on stderr, exit status 2."""


def one_line(exc: BaseException, limit: int = 300) -> str:
    """An exception message squeezed onto one line (and shortened) for stderr."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def naming(path: str, message: str) -> str:
    """``message`` prefixed with ``path`` unless it already starts with it."""
    return message if message.startswith(path) else f"{path}: {message}"


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


def factor_at_least_one(text: str) -> float:
    value = float(text)
    if not value >= 1:
        raise argparse.ArgumentTypeError(f"expected a factor >= 1, got {text}")
    return value


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by every subcommand that runs a model."""
    parser.add_argument(
        "--batch-size", metavar="B", type=positive_int, default=256, help="sequences per batch"
    )
    parser.add_argument(
        "--device", choices=("cpu", "cuda", "auto"), default="auto", help="where the model runs"
    )


# shared steps -----------------------------------------------------------------------------------


def check_inputs(checkpoint: str, fasta: str) -> None:
    """Fail fast (before the slow model imports) on a missing checkpoint or sequence file."""
    from neurohash.data.fasta import SequenceFileError
    from neurohash.data.sources import expand_inputs

    if not os.path.exists(checkpoint):
        raise CliError(f"{checkpoint}: no such checkpoint")
    try:
        files = expand_inputs(fasta)
    except SequenceFileError as exc:
        raise CliError(naming(fasta, one_line(exc))) from exc
    missing = [file for file in files if not os.path.exists(file)]
    if missing:
        raise CliError(f"{missing[0]}: no such file")


def resolve_device(choice: str) -> str:
    """``auto`` -> cuda when available, else cpu; an explicit cuda without a GPU is an error."""
    import torch

    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda" and not torch.cuda.is_available():
        raise CliError("--device cuda: CUDA is not available on this machine")
    return choice


def load_checkpoint(path: str, device: str) -> DistanceEmbeddingModule:
    """The trained module of a neurohash checkpoint, in eval mode on ``device``."""
    from neurohash.checkpoint import load_module

    try:
        module = load_module(path)
    except FileNotFoundError as exc:
        raise CliError(f"{path}: no such checkpoint") from exc
    except Exception as exc:  # unpickling, zip, state-dict or config errors: all mean "unusable"
        raise CliError(naming(path, f"cannot load checkpoint: {one_line(exc)}")) from exc
    if not isinstance(module.hparams.get("config", {}).get("data"), dict):
        raise CliError(f"{path}: checkpoint stores no data settings (max_len, cleaning)")
    return module.to(device)


def stored_cleaning(module: DistanceEmbeddingModule, path: str) -> tuple[Cleaning, int]:
    """``checkpoint.stored_cleaning``, its errors turned into a one-line ``CliError``."""
    from neurohash import checkpoint

    try:
        return checkpoint.stored_cleaning(module, path)
    except ValueError as exc:
        raise CliError(one_line(exc)) from exc


def read_sequences(
    path: str, cleaning: Cleaning, max_seqs: int | None, seed: int
) -> tuple[list[str], CleaningStats]:
    """Cleaned sequences of a FASTA/FASTQ file (a seeded uniform sample of ``max_seqs``)."""
    from neurohash.data.fasta import SequenceFileError
    from neurohash.data.sources import load_records

    try:
        records, stats = load_records(path, cleaning, max_seqs, seed)
    except SequenceFileError as exc:
        raise CliError(naming(path, one_line(exc))) from exc
    if len(records) < 2:
        raise CliError(
            f"{path}: only {len(records)} sequence left after cleaning (dropped: {stats.dropped}); "
            "need at least 2"
        )
    return [rec.seq for rec in records], stats


@contextlib.contextmanager
def timed(times: dict[str, float], name: str) -> Iterator[None]:
    """Record the wall time of the block under ``times[name]`` (seconds)."""
    start = time.perf_counter()
    yield
    times[name] = time.perf_counter() - start


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
    parser.add_argument(
        "checkpoint", metavar="CKPT", help="a neurohash Lightning checkpoint (.ckpt)"
    )
    parser.add_argument("fasta", metavar="FASTA", help="FASTA/FASTQ file, plain or gzipped")
    parser.add_argument(
        "--max-seqs",
        metavar="N",
        type=non_negative_int,
        default=DEFAULT_MAX_SEQS,
        help=f"seeded uniform sample of at most N sequences (default {DEFAULT_MAX_SEQS}; 0 = all; "
        "the exact matrix needs N^2 distances)",
    )
    parser.add_argument(
        "--seed", metavar="S", type=int, default=0, help="seed of the subsample (default 0)"
    )
    add_model_options(parser)
    parser.add_argument("--json", action="store_true", help="print one flat JSON object")
    parser.set_defaults(func=run_evaluate)


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    """Run the evaluation and return the flat report (metrics, data counts, timings)."""
    check_inputs(args.checkpoint, args.fasta)
    from neurohash.data.edit_distance import distance_matrix
    from neurohash.module import embed_sequences

    times: dict[str, float] = {}
    with timed(times, "time_total_s"):
        with timed(times, "time_load_s"):
            module = load_checkpoint(args.checkpoint, resolve_device(args.device))
            cleaning, max_len = stored_cleaning(module, args.checkpoint)
            seqs, stats = read_sequences(args.fasta, cleaning, args.max_seqs or None, args.seed)
        with timed(times, "time_embed_s"):
            emb = embed_sequences(module, seqs, max_len, args.batch_size)
        with timed(times, "time_exact_s"), contextlib.redirect_stdout(sys.stderr):
            exact = distance_matrix(seqs, progress=True)  # progress bar on stderr, not in the JSON
        with timed(times, "time_metrics_s"):
            try:
                metrics, _ = module.matrix_metrics(emb, exact)
            except FloatingPointError as exc:
                raise CliError(f"{args.checkpoint}: {one_line(exc)}") from exc
    return build_report(args, module, stats, len(seqs), metrics, times)


def build_report(
    args: argparse.Namespace,
    module: DistanceEmbeddingModule,
    stats: CleaningStats,
    n_seqs: int,
    metrics: dict[str, float],
    times: dict[str, float],
) -> dict[str, Any]:
    """One flat dict: inputs, model, data counts, metrics and timings."""
    dropped = {f"dropped_{reason}": stats.dropped.get(reason, 0) for reason in DROP_REASONS}
    dropped.update({f"dropped_{k}": v for k, v in stats.dropped.items() if k not in DROP_REASONS})
    report: dict[str, Any] = {
        "checkpoint": args.checkpoint,
        "fasta": args.fasta,
        "encoder": type(module.encoder).__name__,
        "distance": type(module.geometry).__name__,
        "embedding_dim": int(module.encoder.embedding_dim),
        "device": str(module.device),
        "normaliser": int(module.normaliser),
        "records_read": stats.seen,
        "records_kept": stats.kept,
        "dropped_total": sum(stats.dropped.values()),
        **dropped,
        "n_seqs": n_seqs,
        "max_seqs": args.max_seqs or None,
        "seed": args.seed,
        "n_pairs": n_seqs * (n_seqs - 1) // 2,
    }
    report.update({k: finite_or_none(v) for k, v in metrics.items()})
    report.update({k: round(v, 4) for k, v in times.items()})
    return report


def finite_or_none(value: float) -> float | None:
    """JSON has no NaN: a metric that is undefined here (e.g. no unique nearest) becomes null."""
    value = float(value)
    return value if math.isfinite(value) else None


def fmt(value: Any, spec: str = "") -> str:
    return "n/a" if value is None else format(value, spec)


def print_table(report: dict[str, Any]) -> None:
    """The report as a readable rich table on stdout."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="neurohash evaluate", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(overflow="fold")
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
        ("MAE (edits)", fmt(report["mae"], ".3f")),
        ("Spearman", fmt(report["spearman"], ".4f")),
        *((f"top-{k} (%)", fmt(pct(report[f"top{k}"]), ".1f")) for k in (1, 5, 10)),
        None,
        ("time: load", f"{report['time_load_s']:.2f} s"),
        ("time: embed", f"{report['time_embed_s']:.3f} s"),
        ("time: exact ED", f"{report['time_exact_s']:.3f} s ({report['n_pairs']} pairs)"),
        ("time: total", f"{report['time_total_s']:.2f} s"),
    ]
    for row in rows:
        if row is None:
            table.add_section()
        else:
            table.add_row(*row)
    Console().print(table)


def pct(fraction: float | None) -> float | None:
    return None if fraction is None else 100.0 * fraction


def run_evaluate(args: argparse.Namespace) -> int:
    report = evaluate(args)
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
            "Verify the shards of SHARDS_DIR against their manifest, de-duplicate the codes, store "
            "codes and postings (Parquet, zstd) with a FAISS binary index and the model checkpoint "
            "in DB_DIR (written atomically)."
        ),
    )
    parser.add_argument(
        "shards", metavar="SHARDS_DIR", help="directory with manifest.json + shards"
    )
    parser.add_argument(
        "-o", "--output", metavar="DB_DIR", required=True, help="database directory"
    )
    parser.add_argument(
        "--index",
        choices=("auto", "flat", "hnsw", "ivf"),
        default="auto",
        help="flat = exact Hamming search; hnsw/ivf = approximate; auto = flat up to 200k unique "
        "codes, hnsw beyond",
    )
    parser.add_argument(
        "--ckpt",
        metavar="CKPT",
        help="checkpoint that made the shards (copied into DB_DIR so queries use it; default: the "
        "one the shards' manifest names)",
    )
    parser.add_argument("--force", action="store_true", help="replace an existing database")
    parser.add_argument("--json", action="store_true", help="print the statistics as JSON")
    parser.set_defaults(func=run_index)


def run_index(args: argparse.Namespace) -> int:
    from neurohash.database import Database, DatabaseError, build_database

    try:
        build_database(args.shards, args.output, args.index, args.ckpt, overwrite=args.force)
        stats = Database.open(args.output).stats()
    except DatabaseError as exc:
        raise CliError(one_line(exc)) from exc
    if stats["bytes_model"] == 0:
        print(
            f"neurohash index: warning: {args.output} holds no model checkpoint; give --ckpt to "
            "make it searchable from FASTA",
            file=sys.stderr,
        )
    print_stats(stats, args.json, "neurohash index")
    return 0


# search -----------------------------------------------------------------------------------------

QUERY_CHUNK = 512


def add_search(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "search",
        help="nearest stored sequences of FASTA queries (TSV)",
        description=(
            "Embed the queries with the database's own model, find the nearest codes by Hamming "
            "distance and write TSV (header row; columns query_id target_id rank hamming "
            "est_distance, and edit_distance with --rerank)."
        ),
    )
    parser.add_argument("database", metavar="DB_DIR", help="a database made by `neurohash index`")
    parser.add_argument(
        "queries", metavar="QUERIES", help="FASTA/FASTQ file, plain or gzipped; - for stdin"
    )
    parser.add_argument(
        "-k",
        "--top-k",
        dest="k",
        metavar="K",
        type=positive_int,
        default=10,
        help="hits per query (default 10)",
    )
    parser.add_argument(
        "--rerank",
        action="store_true",
        help="re-rank candidate targets by exact edit distance (needs stored region sequences)",
    )
    parser.add_argument(
        "--candidates",
        metavar="N",
        type=positive_int,
        help="candidate targets per query for --rerank (default 20 x K)",
    )
    parser.add_argument(
        "--refine",
        metavar="F",
        type=factor_at_least_one,
        default=None,
        help="shortlist F times more targets by Hamming distance and keep the best by the "
        "model's float distance (databases with embeddings; default 5; 1 = Hamming only)",
    )
    parser.add_argument(
        "--ckpt",
        metavar="CKPT",
        help="refuse to run unless this checkpoint is the model that built the database",
    )
    parser.add_argument("-o", "--output", metavar="HITS.tsv", help="output file (default stdout)")
    add_model_options(parser)
    parser.set_defaults(func=run_search)


def open_search(args: argparse.Namespace) -> tuple[Any, DistanceEmbeddingModule]:
    """The database and its model (on the chosen device), or a CliError naming the culprit."""
    from neurohash.database import Database, DatabaseError
    from neurohash.search import query_model

    if args.ckpt is not None and not os.path.exists(args.ckpt):
        raise CliError(f"{args.ckpt}: no such checkpoint")
    try:
        db = Database.open(args.database)
        module = query_model(db, args.ckpt)
    except DatabaseError as exc:
        raise CliError(one_line(exc)) from exc
    if args.rerank and not db.has_sequences:
        raise CliError(
            f"{args.database}: stores no region sequences, so --rerank is impossible (write "
            "shards with sequences and rebuild)"
        )
    return db, module.to(resolve_device(args.device))


def run_search(args: argparse.Namespace) -> int:
    from neurohash.data.fasta import SequenceFileError

    check_query_file(args.queries)
    db, module = open_search(args)
    cleaning, max_len = stored_cleaning(module, str(db.model_path))
    target = args.output or "-"
    try:
        with output_stream(target) as out:
            search_stream(args, db, module, cleaning, max_len, out)
    except SequenceFileError as exc:
        raise CliError(naming(args.queries, one_line(exc))) from exc
    return 0


def check_query_file(path: str) -> None:
    from neurohash.data.fasta import STDIN

    if path == STDIN:
        return
    if not os.path.exists(path):
        raise CliError(f"{path}: no such file")
    if os.path.isdir(path):
        raise CliError(f"{path}: is a directory, expected a FASTA/FASTQ file")


@contextlib.contextmanager
def output_stream(path: str) -> Iterator[Any]:
    """stdout for ``-``; else a temporary file renamed to ``path`` only when all went well."""
    if path == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "w") as handle:
            yield handle
        os.replace(tmp, path)
    except OSError as exc:
        raise CliError(f"{path}: cannot write ({one_line(exc)})") from exc
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def search_stream(
    args: argparse.Namespace,
    db: Any,
    module: DistanceEmbeddingModule,
    cleaning: Cleaning,
    max_len: int,
    out: Any,
) -> None:
    """Queries in chunks: clean, cut into regions, embed, search, write TSV rows."""
    from rich.console import Console
    from rich.progress import Progress

    from neurohash.data.cleaning import inference_cleaning
    from neurohash.search import (
        DEFAULT_CANDIDATES_FACTOR,
        DEFAULT_REFINE_FACTOR,
        chunked,
        embed_queries,
        iter_queries,
        query_regions,
        search,
        tsv_header,
        tsv_rows,
    )

    factor = args.candidates / args.k if args.candidates else DEFAULT_CANDIDATES_FACTOR
    refine = DEFAULT_REFINE_FACTOR if args.refine is None else args.refine
    settings = (db.manifest.get("shards_manifest") or {}).get("regions")
    out.write(tsv_header(args.rerank))
    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("searching queries", total=None)
        for chunk in chunked(iter_queries(args.queries, inference_cleaning(cleaning)), QUERY_CHUNK):
            seqs, query_of = query_regions(chunk, max_len, settings)
            codes, refiner = embed_queries(module, seqs, max_len, args.batch_size)
            hits = search(db, codes, args.k, args.rerank, seqs, factor, query_of, refiner, refine)
            ids = [rec.id for rec in chunk]
            out.writelines(tsv_rows((h for per_query in hits for h in per_query), ids, args.rerank))
            bar.advance(task, len(chunk))


# stats ------------------------------------------------------------------------------------------


def add_stats(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "stats",
        help="sequences, regions, unique codes and bytes per region of a database",
        description="Report what a hash database holds and how much disk it takes.",
    )
    parser.add_argument("database", metavar="DB_DIR", help="a database made by `neurohash index`")
    parser.add_argument("--json", action="store_true", help="print one flat JSON object")
    parser.set_defaults(func=run_stats)


def run_stats(args: argparse.Namespace) -> int:
    from neurohash.database import Database, DatabaseError

    try:
        stats = Database.open(args.database).stats()
    except DatabaseError as exc:
        raise CliError(one_line(exc)) from exc
    print_stats(stats, args.json, "neurohash stats")
    return 0


def print_stats(stats: dict[str, Any], as_json: bool, title: str) -> None:
    """Database statistics as JSON or a rich table on stdout."""
    if as_json:
        print(json.dumps(stats))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    rows = [
        ("database", stats["database"]),
        ("sequences", f"{stats['sequences']:,}"),
        ("regions", f"{stats['regions']:,}"),
        ("unique codes", f"{stats['unique_codes']:,} ({stats['code_bits']} bits)"),
        ("index", stats["index"]),
        ("bytes per region", f"{stats['bytes_per_region']:.1f}"),
        ("data on disk", f"{stats['bytes_data']:,} bytes (model {stats['bytes_model']:,})"),
        ("region sequences", "stored" if stats["has_sequences"] else "not stored"),
    ]
    for row in rows:
        table.add_row(*row)
    Console().print(table)


# spark-index ------------------------------------------------------------------------------------


def add_spark_index(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "spark-index",
        help="embed FASTA/FASTQ files and build a hash database on Spark",
        description=(
            "On Spark (local[*] by default, a cluster with --master or spark-submit): read INPUTS, "
            "cut regions, embed them with CKPT in the executors, write the predict loop's Parquet "
            "hash shards (to DB_DIR.shards unless --shards), de-duplicate the codes and build the "
            "database in DB_DIR that `neurohash search` opens. Needs Java 17+."
        ),
    )
    parser.add_argument(
        "inputs", metavar="INPUTS", help="FASTA/FASTQ path or glob (quoted), plain or gzipped"
    )
    parser.add_argument(
        "-o", "--output", metavar="DB_DIR", required=True, help="database directory"
    )
    parser.add_argument("--ckpt", metavar="CKPT", required=True, help="a neurohash checkpoint")
    parser.add_argument(
        "--master",
        metavar="URL",
        help="Spark master (default: local[*], or the one spark-submit was given)",
    )
    parser.add_argument(
        "--conf",
        metavar="KEY=VALUE",
        type=spark_setting,
        action="append",
        default=[],
        help="a Spark setting, e.g. spark.driver.memory=8g (repeatable)",
    )
    parser.add_argument(
        "--shards", metavar="DIR", help="where the hash shards go (default DB_DIR.shards)"
    )
    parser.add_argument(
        "--shard-size",
        metavar="N",
        type=positive_int,
        default=10_000,
        help="input records per shard (default 10000)",
    )
    parser.add_argument(
        "--density",
        metavar="D",
        type=float,
        default=1.0,
        help="regions per kb of sequences longer than the window (default 1.0)",
    )
    parser.add_argument(
        "--window",
        metavar="W",
        type=positive_int,
        help="bases per region (default: the model's max_len)",
    )
    parser.add_argument(
        "--no-embeddings", action="store_true", help="store codes only, no float16 embeddings"
    )
    parser.add_argument(
        "--no-sequences", action="store_true", help="store no region sequences (no --rerank)"
    )
    parser.add_argument(
        "--index",
        choices=("auto", "flat", "hnsw", "ivf"),
        default="auto",
        help="as for `neurohash index`",
    )
    add_model_options(parser)
    parser.add_argument("--force", action="store_true", help="replace an existing database")
    parser.add_argument("--json", action="store_true", help="print the statistics as JSON")
    parser.set_defaults(func=run_spark_index)


def spark_setting(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text}")
    return key, value


def run_spark_index(args: argparse.Namespace) -> int:
    from neurohash.database import Database
    from neurohash.spark import SparkBuildError, default_shards_dir, job_config, spark_index

    check_inputs(args.ckpt, args.inputs)
    cfg = job_config(
        args.inputs,
        args.ckpt,
        args.shards or default_shards_dir(args.output),
        batch_size=args.batch_size,
        shard_size=args.shard_size,
        density=args.density,
        window=args.window,
        store_embeddings=not args.no_embeddings,
        store_sequences=not args.no_sequences,
    )
    try:
        spark_index(
            cfg, args.output, args.index, args.force, args.master, dict(args.conf), args.device
        )
        stats = Database.open(args.output).stats()
    except (ValueError, SparkBuildError) as exc:  # bad input, shards or settings: named inside
        raise CliError(one_line(exc)) from exc
    print_stats(stats, args.json, "neurohash spark-index")
    return 0


# entry point ------------------------------------------------------------------------------------

SUBCOMMANDS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (
    add_evaluate,
    add_index,
    add_search,
    add_stats,
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
        return args.func(args)
    except CliError as exc:
        print(f"neurohash {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"neurohash {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
