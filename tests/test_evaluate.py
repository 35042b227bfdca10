"""`neurohash.evaluate`: the library behind `neurohash evaluate`, callable from benches and jobs."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from neurohash.data.fasta import SequenceFileError
from neurohash.evaluate import evaluate, undefined_note
from tests.helpers import V4_FILE


@pytest.mark.slow
def test_evaluate_reports_metrics_counts_and_times(checkpoint: Path, shared_data: Path) -> None:
    fasta = str(shared_data / V4_FILE)
    report = evaluate(str(checkpoint), fasta, max_seqs=30, seed=2, batch_size=8)
    assert report["n_seqs"] == 30 and report["n_pairs"] == 435
    assert report["checkpoint"] == str(checkpoint) and report["fasta"] == fasta
    assert all(math.isfinite(report[key]) for key in ("rmse_pct", "mae", "spearman", "top1"))
    assert report["time_total_s"] >= report["time_embed_s"] > 0
    again = evaluate(str(checkpoint), fasta, max_seqs=30, seed=2, batch_size=30)
    assert again["rmse_pct"] == pytest.approx(
        report["rmse_pct"], rel=1e-5
    )  # batching changes nothing


@pytest.mark.slow
def test_too_few_sequences_name_the_file(checkpoint: Path, tmp_path: Path) -> None:
    one = tmp_path / "one.fa"
    one.write_text(">only\nACGTACGTACGTAACCGGTT\n")
    with pytest.raises(SequenceFileError, match=f"^{one}: only 1 sequence left"):
        evaluate(str(checkpoint), str(one))


@pytest.mark.slow
def test_two_or_three_sequences_give_null_and_say_why(checkpoint: Path, tmp_path: Path) -> None:
    """Spearman 0.0 and top-k 1.0 were once reported for 2-3 sequences without a word."""
    seqs = ["ACGTACGTAAGGTTCCAGT", "ACGTACGTTTGGTTCCAGT", "ACGAACGTTTGGTTCCAGTT"]
    for n in (2, 3):
        fasta = tmp_path / f"{n}.fa"
        fasta.write_text("".join(f">s{i}\n{seq}\n" for i, seq in enumerate(seqs[:n])))
        report = evaluate(str(checkpoint), str(fasta))
        assert report["top5"] is None and report["top10"] is None
        assert (report["spearman"] is None) == (n == 2)
        note = undefined_note(report)
        assert note is not None and "top5, top10" in note and f"on {n} sequences" in note
