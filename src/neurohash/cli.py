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
    """The checkpoint's cleaning settings and max_len, so input is prepared as in training."""
    from neurohash.data.cleaning import Cleaning

    data = module.hparams.config["data"]
    fields = {k: v for k, v in (data.get("cleaning") or {}).items() if k != "_target_"}
    try:
        max_len, cleaning = int(data["max_len"]), Cleaning(**fields)
    except (KeyError, TypeError, ValueError) as exc:
        raise CliError(f"{path}: stored data settings not understood ({one_line(exc)})") from exc
    if cleaning.max_len is None or cleaning.max_len > max_len:  # as the datamodule does
        cleaning.max_len = max_len
    return cleaning, max_len


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


# entry point ------------------------------------------------------------------------------------

SUBCOMMANDS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (add_evaluate,)


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
