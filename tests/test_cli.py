"""`neurohash evaluate` end to end: a tiny real model is trained once, then scored by the CLI
run as a user runs it (a subprocess), on real V4 reads, on RNA-alphabet Rfam records and on
broken inputs."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from neurohash import __version__
from neurohash.cli import main

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
V4 = DATA / "study550_v4_amplicons.fasta.gz"
RFAM = DATA / "rfam_5_8s_rrna.fasta.gz"
INFLUENZA = DATA / "influenza_a_segments.fasta.gz"
SCRIPT = ROOT / ".venv" / "bin" / "neurohash"
MAX_LEN = 160
METRICS = ("rmse_pct", "rmse_pct_nearest", "mae", "spearman", "top1", "top5", "top10")


def run_cli(*args: str | Path, script: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI in a fresh process: `python -m neurohash` or the installed console script."""
    command = [str(script)] if script else [sys.executable, "-m", "neurohash"]
    env = {**os.environ, "COLUMNS": "120"}
    return subprocess.run(
        [*command, *map(str, args)], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300
    )


def check_report(report: dict, n_seqs: int) -> None:
    """Keys and value ranges of a successful `evaluate --json` report."""
    for key in METRICS:
        assert isinstance(report[key], float) and math.isfinite(report[key]), (key, report)
    assert report["rmse_pct"] >= 0 and report["mae"] >= 0
    assert -1.0 <= report["spearman"] <= 1.0
    assert 0.0 <= report["top1"] <= report["top5"] <= report["top10"] <= 1.0
    assert report["n_seqs"] == n_seqs and report["n_pairs"] == n_seqs * (n_seqs - 1) // 2
    assert report["normaliser"] == MAX_LEN
    assert report["records_kept"] + report["dropped_total"] == report["records_read"]
    assert report["dropped_total"] == sum(
        v for k, v in report.items() if k.startswith("dropped_") and k != "dropped_total"
    )
    assert report["encoder"] == "CNNEncoder" and report["distance"] == "Euclidean"
    assert report["device"] == "cpu"
    for key in ("time_load_s", "time_embed_s", "time_exact_s", "time_metrics_s", "time_total_s"):
        assert report[key] >= 0
    assert report["time_total_s"] >= report["time_embed_s"] + report["time_exact_s"]


@pytest.mark.slow
def test_evaluate_v4_json(checkpoint: Path) -> None:
    result = run_cli("evaluate", checkpoint, V4, "--max-seqs", "60", "--device", "cpu", "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)  # stdout is exactly one JSON object (progress on stderr)
    check_report(report, n_seqs=60)
    assert report["records_read"] == 100_000 and report["max_seqs"] == 60
    assert report["fasta"] == str(V4) and report["checkpoint"] == str(checkpoint)


@pytest.mark.slow
@pytest.mark.skipif(not SCRIPT.exists(), reason="no installed console script in .venv")
def test_installed_script_prints_table(checkpoint: Path) -> None:
    result = run_cli("evaluate", checkpoint, V4, "--max-seqs", "40", "--seed", "3", script=SCRIPT)
    assert result.returncode == 0, result.stderr[-3000:]
    for text in (
        "%RMSE",
        "Spearman",
        "top-10",
        "normaliser L",
        "dropped by cleaning",
        str(V4.name),
    ):
        assert text in result.stdout, result.stdout


@pytest.mark.slow
def test_evaluate_rna_alphabet_with_ambiguous_records(checkpoint: Path) -> None:
    """Rfam holds U (converted to T), N/IUPAC records (dropped) and reads over 160 bp (dropped)."""
    result = run_cli(
        "evaluate", checkpoint, RFAM, "--max-seqs", "60", "--json", "--batch-size", "16"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    check_report(report, n_seqs=60)
    assert report["records_read"] == 13_034
    assert report["dropped_ambiguous"] > 1000 and report["dropped_too_long"] > 0


@pytest.mark.slow
def test_reads_longer_than_max_len_are_reported(
    checkpoint: Path, capsys: pytest.CaptureFixture
) -> None:
    """Influenza segments (825+ bp) exceed the model's max_len: nothing is left, and it says why."""
    assert main(["evaluate", str(checkpoint), str(INFLUENZA), "--json"]) == 2
    err = capsys.readouterr().err.strip()
    assert str(INFLUENZA) in err and "too_long" in err and "\n" not in err


@pytest.mark.slow
def test_not_a_fasta_file(checkpoint: Path, tmp_path: Path) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_text("these are my notes,\nnot sequences\n")
    result = run_cli("evaluate", checkpoint, bad)
    assert result.returncode == 2
    assert str(bad) in result.stderr and "FASTA" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_missing_fasta(tmp_path: Path) -> None:
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(b"")  # never opened: the missing FASTA is reported first
    missing = tmp_path / "missing.fasta.gz"
    result = run_cli("evaluate", ckpt, missing)
    assert result.returncode == 2
    assert str(missing) in result.stderr and "no such file" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_missing_checkpoint(tmp_path: Path) -> None:
    missing = tmp_path / "nothing.ckpt"
    result = run_cli("evaluate", missing, V4)
    assert result.returncode == 2
    assert str(missing) in result.stderr and "no such checkpoint" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_file_that_is_not_a_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    fake = tmp_path / "model.ckpt"
    shutil.copy(RFAM, fake)
    assert main(["evaluate", str(fake), str(RFAM)]) == 2
    err = capsys.readouterr().err
    assert (
        str(fake) in err and "cannot load checkpoint" in err and len(err.strip().splitlines()) == 1
    )


def test_version_and_usage(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and __version__ in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main([])  # a subcommand is required
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", "a.ckpt", "b.fa", "--max-seqs", "-1"])
    assert exc.value.code == 2


def test_refine_must_be_a_finite_factor(capsys: pytest.CaptureFixture) -> None:
    """`--refine inf` once overflowed deep in the search; argparse now refuses it."""
    for bad in ("inf", "nan", "0.5"):
        with pytest.raises(SystemExit) as exc:
            main(["search", "db", "q.fa", "--refine", bad])
        assert exc.value.code == 2 and "finite factor >= 1" in capsys.readouterr().err


def test_unwritable_output_is_one_line(tmp_path: Path) -> None:
    """An output under a regular file (as under a read-only directory) names the path, exit 2."""
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    result = run_cli("index", tmp_path / "shards", "-o", blocker / "db")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("script", ["train.py", "predict.py"])
def test_hydra_apps_report_bad_input_as_one_line(script: str, tmp_path: Path) -> None:
    """`train.py` and `predict.py`: a bad checkpoint, a missing input or an unusable run directory
    is one line naming the file and exit status 2, not Hydra's traceback."""
    garbage = tmp_path / "garbage.ckpt"
    shutil.copy(RFAM, garbage)
    missing = tmp_path / "missing.fa"
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    run_dir = f"hydra.run.dir={tmp_path / 'run'}"
    if script == "train.py":
        cases = {
            str(missing): ["data=fasta", f"data.path={missing}", run_dir],
            str(garbage): [f"ckpt_path={garbage}", run_dir],
        }
    else:
        cases = {
            str(garbage): [f"ckpt_path={garbage}", f"input={V4}", "output_dir=x", run_dir],
            str(missing): [f"ckpt_path={garbage}", f"input={missing}", "output_dir=x", run_dir],
        }
    cases[str(blocker)] = [f"hydra.run.dir={blocker / 'run'}"]
    for named, overrides in cases.items():
        result = subprocess.run(
            [sys.executable, script, *overrides], capture_output=True, text=True, cwd=ROOT
        )
        errors = [line for line in result.stderr.splitlines() if "error:" in line]
        assert result.returncode == 2, result.stderr
        assert len(errors) == 1 and named in errors[0], result.stderr
        assert "Traceback" not in result.stderr
