"""Judge a checkpoint on a FASTA/FASTQ file against exact edit distances (``neurohash evaluate``).

The sequences are cleaned as at training time, embedded, and compared with their exact
edit-distance matrix: %RMSE, MAE, Spearman and closest-string top-k, plus what cleaning dropped
and where the time went.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Iterator
from typing import Any

from neurohash.checkpoint import CheckpointError, load_module, stored_cleaning
from neurohash.data.cleaning import Cleaning, CleaningStats
from neurohash.data.edit_distance import distance_matrix
from neurohash.data.fasta import SequenceFileError
from neurohash.data.sources import load_records
from neurohash.metrics import MIN_PAIRS
from neurohash.module import DistanceEmbeddingModule, embed_and_code_sequences

METRICS = ("rmse_pct", "rmse_pct_nearest", "mae", "spearman", "top1", "top5", "top10")
DROP_REASONS = ("ambiguous", "too_short", "too_long", "duplicate", "empty")


@contextlib.contextmanager
def timed(times: dict[str, float], name: str) -> Iterator[None]:
    """Record the wall time of the block under ``times[name]`` (seconds)."""
    start = time.perf_counter()
    yield
    times[name] = time.perf_counter() - start


def read_sequences(
    path: str, cleaning: Cleaning, max_seqs: int | None, seed: int
) -> tuple[list[str], CleaningStats]:
    """Cleaned sequences of a FASTA/FASTQ file (a seeded uniform sample of ``max_seqs``)."""
    records, stats = load_records(path, cleaning, max_seqs, seed)
    if len(records) < 2:
        raise SequenceFileError(
            f"{path}: only {len(records)} sequence left after cleaning (dropped: {stats.dropped}); "
            "need at least 2"
        )
    return [rec.seq for rec in records], stats


def evaluate(
    checkpoint: str,
    fasta: str,
    *,
    max_seqs: int | None = None,
    seed: int = 0,
    batch_size: int = 256,
    device: str = "cpu",
) -> dict[str, Any]:
    """Evaluate ``checkpoint`` on the sequences of ``fasta`` (a seeded sample of ``max_seqs``);
    return one flat report: inputs, model, data counts, metrics (None where undefined), timings."""
    times: dict[str, float] = {}
    with timed(times, "time_total_s"):
        with timed(times, "time_load_s"):
            module = load_module(checkpoint).to(device)
            cleaning, max_len = stored_cleaning(module, checkpoint)
            seqs, stats = read_sequences(fasta, cleaning, max_seqs, seed)
        with timed(times, "time_embed_s"):
            emb, code_logits = embed_and_code_sequences(module, seqs, max_len, batch_size)
        with timed(times, "time_exact_s"), contextlib.redirect_stdout(sys.stderr):
            exact = distance_matrix(seqs, progress=True)  # progress bar on stderr, not in the JSON
        with timed(times, "time_metrics_s"):
            try:
                metrics, _ = module.matrix_metrics(emb, code_logits, exact)
            except FloatingPointError as exc:
                raise CheckpointError(f"{checkpoint}: {exc}") from exc
    report = {"checkpoint": checkpoint, "fasta": fasta, "max_seqs": max_seqs, "seed": seed}
    report.update(describe(module, stats, len(seqs)))
    report.update({k: finite_or_none(v) for k, v in metrics.items()})
    report.update({k: round(v, 4) for k, v in times.items()})
    return report


def undefined_note(report: dict[str, Any]) -> str | None:
    """Why some metrics of ``report`` are null, or None when all are defined."""
    undefined = [key for key in METRICS if key in report and report[key] is None]
    if not undefined:
        return None
    refs = report["n_seqs"] - report["n_seqs"] // 2
    return (
        f"{', '.join(undefined)} undefined on {report['n_seqs']} sequences (Spearman needs "
        f"{MIN_PAIRS} pairs; top-k needs more than k of the {refs} references, and a query whose "
        "nearest reference is unique); evaluate more sequences"
    )


def describe(module: DistanceEmbeddingModule, stats: CleaningStats, n_seqs: int) -> dict[str, Any]:
    """The model and the data counts of a report."""
    dropped = {f"dropped_{reason}": stats.dropped.get(reason, 0) for reason in DROP_REASONS}
    dropped.update({f"dropped_{k}": v for k, v in stats.dropped.items() if k not in DROP_REASONS})
    return {
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
        "n_pairs": n_seqs * (n_seqs - 1) // 2,
    }


def finite_or_none(value: float) -> float | None:
    """JSON has no NaN: a metric that is undefined here (e.g. no unique nearest) becomes null."""
    value = float(value)
    return value if math.isfinite(value) else None
