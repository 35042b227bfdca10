"""bench/accuracy.py --quick runs end to end on real V4 reads and writes JSON, plot and Markdown.

A benchmark is not a test: nothing here checks how good or fast the numbers are, only that they
are there and sane (finite %RMSE, top-k fractions in [0, 1])."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests.helpers import load_bench


def test_quick_plan_covers_every_suite() -> None:
    bench = load_bench("accuracy")
    cells = bench.plan(bench.QUICK, bench.SUITES, "cnn")
    assert {c.dataset for c in cells} == {"v4", "greengenes", "influenza"}
    assert {c.split for c in cells if c.dataset == "greengenes"} == {"random", "cluster", "clade"}
    assert len({c.key for c in cells}) == len(cells)  # each ledger key once
    full = bench.plan(bench.FULL, bench.SUITES, "cnn")
    v4_table = {(c.model, c.geometry) for c in full if c.dataset == "v4" and c.dim in (128, None)}
    assert len(v4_table) == len(bench.MODELS) * len(bench.GEOMETRIES)
    assert all(c.closest_string for c in full if c.dataset == "v4" and c.split == "group")


@pytest.mark.slow
def test_quick_mode_writes_json_plot_and_markdown(
    shared_data: Path, tmp_path: Path, one_thread: None
) -> None:
    bench = load_bench("accuracy")
    out = tmp_path / "out"
    argv = ["--quick", "--out-dir", str(out), "--work-dir", str(tmp_path / "runs"),
            "--cache-dir", str(tmp_path / "cache"), "--datasets", "v4", "--suites", "dimension",
            "--geometries", "hyperbolic", "--dims", "4", "128"]  # fmt: skip
    report = bench.main(argv)

    path = out / "accuracy_quick.json"
    assert path.is_file() and not (out / "accuracy.json").exists()
    assert json.loads(path.read_text())["cells"].keys() == report["cells"].keys()
    assert report["mode"] == "quick" and not report["comparable_to_neuroseed"]
    assert len(report["cells"]) == 2
    for cell in report["cells"].values():
        assert "error" not in cell, cell.get("error")
        metrics = cell["metrics"]
        assert math.isfinite(metrics["test/rmse_pct"]) and metrics["test/rmse_pct"] > 0
        assert math.isfinite(metrics["baseline/rmse_pct"])
        for k in ("top1", "top5", "top10"):
            assert 0.0 <= metrics[f"test/{k}"] <= 1.0
    cs = load_bench("accuracy_tables").find(report, dataset="v4", dim=128)["closest_string"]
    assert cs["references"] == bench.QUICK.references and cs["queries"] > 0
    assert 0.0 <= cs["top1"] <= cs["top5"] <= cs["top10"] <= 1.0
    plot = (out / report["plots"]["v4"]).read_bytes()
    assert plot[:8] == b"\x89PNG\r\n\x1a\n" and len(plot) > 10_000

    text = bench.markdown(report)
    assert "NOT comparable" in text and "| linear | hyperbolic |" in text
    assert f"(benchmarks/{report['plots']['v4']})" in text

    again = bench.main(argv)  # a rerun finds every cell in the ledger and trains nothing
    assert again["cells"] == report["cells"]


@pytest.mark.slow
def test_an_interrupted_cell_resumes_from_its_last_checkpoint(
    shared_data: Path, tmp_path: Path, one_thread: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cell killed after training keeps its checkpoints; the rerun restores them, not epoch 0."""
    bench = load_bench("accuracy")
    cell = bench.make_cell(bench.QUICK, "v4", "linear", "hyperbolic", 4, "group")
    args = (cell, bench.QUICK, tmp_path / "runs", tmp_path / "cache", bench.RetrievalSets())

    def killed(*_: object) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(bench, "closest_string", killed)
        with pytest.raises(KeyboardInterrupt):
            bench.run_cell(*args)
    last = tmp_path / "runs" / "quick" / cell.slug / "checkpoints" / "last.ckpt"
    assert last.is_file()

    entry = bench.run_cell(*args)
    assert entry["resumed_from"] == str(last)
    assert math.isfinite(entry["metrics"]["test/rmse_pct"])
    assert not last.exists()  # a finished cell keeps no model


def test_rerun_before_redoes_only_cells_older_than_the_date() -> None:
    """``--rerun-before`` reruns finished cells of older code; failures wait for --retry-failed."""
    bench = load_bench("accuracy")
    old = {"metrics": {"test/rmse_pct": 4.5}, "finished": "2026-11-21T14:54:34+00:00"}
    new = {**old, "finished": "2026-11-27T09:19:55+00:00"}
    failed = {"error": "FloatingPointError", "finished": "2026-11-21T14:54:34+00:00"}
    change = bench.parse_args(["--rerun-before", "2026-11-22"]).rerun_before
    assert change == bench.utc_time("2026-11-22T00:00:00+00:00")
    assert bench.needs_run({}, retry_failed=False, rerun_before=None)
    assert not bench.needs_run(old, retry_failed=False, rerun_before=None)
    assert bench.needs_run(old, retry_failed=False, rerun_before=change)
    assert not bench.needs_run(new, retry_failed=False, rerun_before=change)
    assert not bench.needs_run(failed, retry_failed=False, rerun_before=change)
    assert bench.needs_run(failed, retry_failed=True, rerun_before=None)


def test_workers_sharing_a_ledger_keep_each_others_cells(tmp_path: Path) -> None:
    """Two processes filling one ledger (say one per encoder) never overwrite each other, and
    the run-time estimate is rewritten from the merged cells by whichever saves last."""
    bench = load_bench("accuracy")
    path = tmp_path / "accuracy.json"
    cells = bench.plan(bench.FULL, ["table"], "cnn")[:3]
    first, second = (
        {"mode": "full", "dim_model": "linear", "cells": {}, "commands": [command]}
        for command in (f"python bench/accuracy.py --models {m}" for m in "ab")
    )
    bench.record(first, cells[0], {"metrics": {"test/rmse_pct": 1.0}, "time_s": 60.0})
    bench.save(first, path, {cells[0].key})
    bench.record(second, cells[1], {"metrics": {"test/rmse_pct": 2.0}, "time_s": 60.0})
    bench.save(second, path, {cells[1].key})  # second never loaded the first's cell
    bench.record(first, cells[2], {"error": "FloatingPointError"})
    bench.save(first, path, {cells[0].key, cells[2].key})

    on_disk = json.loads(path.read_text())
    assert on_disk["cells"].keys() == {c.key for c in cells}
    assert on_disk["cells"][cells[1].key]["metrics"]["test/rmse_pct"] == 2.0
    assert "commit" in on_disk["cells"][cells[1].key]  # the code that produced it (None off git)
    assert first["cells"] == on_disk["cells"]  # the writer's view is refreshed
    assert on_disk["commands"] == [
        "python bench/accuracy.py --models a",
        "python bench/accuracy.py --models b",
    ]
    planned = bench.plan(bench.FULL, bench.SUITES, "linear")
    assert on_disk["estimate"].startswith("The 2 finished runs")
    assert f"is {len(planned)} cells" in on_disk["estimate"]
    assert on_disk["coverage"]["finished"] == 2  # the failed cell is missing
    assert cells[2].label in on_disk["coverage"]["missing"]

    longer = bench.Cell(
        **{**vars(cells[0]), "overrides": (*cells[0].overrides, "trainer.max_epochs=50")}
    )
    bench.record(second, longer, {"metrics": {"test/rmse_pct": 0.5}, "time_s": 600.0})
    bench.save(second, path, {cells[1].key, longer.key})
    coverage = json.loads(path.read_text())["coverage"]
    assert coverage == {**on_disk["coverage"], "finished": 2}  # one cell, whatever its budget
    assert len(coverage["missing"]) == len(planned) - 2
    lines = load_bench("accuracy_tables").coverage_lines(second)
    assert lines[0].startswith(f"Cells finished: 2 of the {len(planned)} that")
    assert cells[2].label in lines[0]


def test_cells_that_differ_only_past_the_cut_get_their_own_run_folders() -> None:
    """Long keys are cut to a file name; the epoch cap at their end must still tell them apart."""
    bench = load_bench("accuracy")
    cell = next(c for c in bench.plan(bench.FULL, ("table",), "linear") if c.dataset == "influenza")
    uncapped = bench.uncapped(cell.overrides)
    capped = [
        bench.Cell(**{**vars(cell), "overrides": (*uncapped, f"trainer.max_epochs={n}")})
        for n in (2, 5)
    ]
    slugs = {c.slug for c in capped}
    assert len(slugs) == 2
    assert all(len(s) == bench.SLUG_LENGTH and "/" not in s and " " not in s for s in slugs)
    assert bench.Cell(**{**vars(cell), "overrides": ("model=cnn",)}).slug == "influenza_model-cnn"


def test_table_keeps_one_epoch_budget_and_lists_longer_runs_apart() -> None:
    bench, tables = load_bench("accuracy"), load_bench("accuracy_tables")
    report: dict = {"mode": "full", "cells": {}, "dim_model": "linear"}
    metrics = {"data/train_seqs": 10, "data/test_seqs": 5, "data/normaliser": 152}
    for model, geometry, epochs, rmse in [
        ("linear", "cosine", 5, 2.0),
        ("linear", "hyperbolic", 5, 1.5),
        ("linear", "hyperbolic", 50, 1.1),
        ("gru", "cosine", 2, 3.0),  # too slow for the usual budget: in the table, marked
    ]:
        cell = bench.make_cell(bench.FULL, "v4", model, geometry, 128, "group")
        cell = bench.Cell(
            **{**vars(cell), "overrides": (*cell.overrides, f"trainer.max_epochs={epochs}")}
        )
        entry = {"metrics": {**metrics, "test/rmse_pct": rmse, "train/epochs": epochs}}
        bench.record(report, cell, entry)
    text = tables.markdown(report)
    assert "| linear | 2.00 (3.38) | 1.50 (2.50) |" in text  # the 5-epoch table
    assert "| gru | 3.00 (–) | – (2.60) |" in text and "5 epoch(s) trained (gru: 2)." in text
    assert "| linear | hyperbolic | 50 | 1.10 |" in text  # the longer run, apart
    assert "best %RMSE: 1.10 (linear / hyperbolic, 50 epochs)" in text
