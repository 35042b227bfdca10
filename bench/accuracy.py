"""Accuracy benchmark: NeuroSEED's edit-distance tables, re-run with this project's own training.

    python bench/accuracy.py [--quick] [--out-dir docs/benchmarks] [--work-dir DIR]
        [--datasets v4 greengenes influenza] [--suites table dimension split]
        [--models cnn kmer ...] [--geometries hyperbolic ...] [--dims 2 16 128]
        [--max-epochs N] [--retry-failed] [--rerun-before DATE]

Every cell is one ``train.py`` job, composed through Hydra exactly as a user would type it
(``python train.py experiment=neuroseed_cnn distance=cosine model.embedding_dim=128``) and run by
``neurohash.train.train``; %RMSE, MAE, Spearman and the k-mer baseline are that job's own
``test/*`` and ``baseline/*`` metrics. Suites:

- ``table``: encoders (linear, mlp, cnn, gru, transformer, transformer_local, k-mer) x geometries
  (cosine, euclidean, square, manhattan, hyperbolic) at embedding dimension 128;
- ``dimension``: %RMSE against embedding dimension (2 to 256) for every geometry (one encoder,
  ``--dim-model``: linear by default, the cheapest to train and among the best at our CPU budget),
  drawn as ``accuracy_dim_<dataset>.png``;
- ``split``: random vs distance-cluster vs tree clade (Greengenes) and random vs cluster vs
  sample id (V4): how much %RMSE grows when close relatives are held out.

Datasets: ``v4`` (real 16S V4 reads of Qiita study 550, NeuroSEED's "Qiita" stand-in, with the
``conf/experiment/neuroseed_*`` configs: 7,000 / 700 / 1,500 sequences split by sample id, L = 152),
``greengenes`` (full-length 16S, the project's default data) and ``influenza`` (influenza A
segments, a non-16S set; split by distance cluster, since record ids do not carry the strain).

Closest string (V4, NeuroSEED's protocol): 1,000 references and 1,000 queries, all reads of the
held-out test samples that never occur in training or validation; a query counts when its unique
true nearest reference is among the k nearest by the model (``neurohash.metrics``).

Each finished cell is written at once into the JSON ledger (``accuracy.json``, or
``accuracy_quick.json`` with ``--quick``), keyed by its dataset and overrides, with the commit
that produced it: a rerun skips finished cells (``--rerun-before DATE`` redoes those older than
a change), and a cell interrupted mid-training resumes from its own ``last.ckpt``.
``--quick`` runs a few cells on small samples for one epoch (minutes on 2 CPU cores): its numbers
check the pipeline and are NOT comparable with NeuroSEED's.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import re
import shutil
import time
import traceback
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accuracy_tables import (
    DATASETS,
    DIMS,
    GEOMETRIES,
    GOALS,
    MAIN_SPLIT,
    MODELS,
    NEUROSEED_RMSE,
    NEUROSEED_TOPK,
    SPLITS,
    SUITES,
    TABLE_DIM,
    markdown,
    plot_dimensions,
)
from report import INFLUENZA, INFLUENZA_LENGTHS, ROOT, V4_READS, begin, machine, source_version


@dataclass(frozen=True)
class Mode:
    """Sizes and cells of one benchmark mode; ``extra`` holds each dataset's size overrides."""

    name: str
    references: int  # closest-string references (and at most as many queries)
    extra: dict[str, tuple[str, ...]]
    dims: tuple[int, ...] = DIMS
    models: tuple[str, ...] = MODELS
    geometries: tuple[str, ...] = GEOMETRIES
    dim_geometries: tuple[str, ...] = GEOMETRIES
    datasets: tuple[str, ...] = DATASETS
    other_models: tuple[str, ...] = MODELS  # table encoders on greengenes / influenza
    other_geometries: tuple[str, ...] = GEOMETRIES
    suites: dict[str, tuple[str, ...]] = field(default_factory=dict)  # per dataset; all if absent


FULL = Mode(
    name="full",
    references=1000,
    extra={
        "v4": (),  # conf/experiment/neuroseed_*: the protocol itself (500 epochs, patience 50)
        "greengenes": ("trainer.max_epochs=50",),
        "influenza": ("trainer.max_epochs=50",),
    },
)
QUICK_SMALL = (
    "data.max_seqs=500",
    "data.eval_size=80",
    "data.batch_size=16",
    "split.val=0.16",
    "split.test=0.2",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=8",
)
QUICK = Mode(
    name="quick",
    references=200,
    extra={
        "v4": (
            "data.max_seqs=1000",
            "data.eval_size=150",
            "split.val=0.1",
            "split.test=0.2",
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=25",
        ),
        "greengenes": QUICK_SMALL,
        "influenza": QUICK_SMALL,
    },
    dims=(4, 128),
    models=("cnn", "transformer", "kmer"),
    geometries=("cosine", "hyperbolic"),
    dim_geometries=("cosine", "hyperbolic"),
    other_models=("cnn",),
    other_geometries=("hyperbolic",),
    suites={"v4": ("table", "dimension"), "greengenes": ("split",), "influenza": ("table",)},
)
SLUG_LENGTH = 150  # a run folder's name, well inside the file-name limit (255 bytes)


@dataclass(frozen=True)
class Cell:
    """One training run: a dataset and the Hydra overrides a user would type."""

    dataset: str
    model: str
    geometry: str
    dim: int | None  # None: fixed by the encoder (k-mer)
    split: str
    overrides: tuple[str, ...]
    closest_string: bool = False

    @property
    def key(self) -> str:
        return f"{self.dataset}: {' '.join(self.overrides)}"

    @property
    def label(self) -> str:
        """Dataset, encoder and geometry, with the dimension and split where not the table's."""
        dim = "" if self.dim in (TABLE_DIM, None) else f" / dim {self.dim}"
        split = "" if self.split == MAIN_SPLIT[self.dataset] else f" / {self.split} split"
        return f"{self.dataset} {self.model} / {self.geometry}{dim}{split}"

    @property
    def slug(self) -> str:
        """The cell's run folder: its key made path-safe. A key too long for a file name is cut
        and ends in a hash of the whole key, so that cells differing only at the end (the epoch
        cap) never share a folder, nor resume from each other's checkpoint."""
        text = re.sub(r"[^A-Za-z0-9.=-]+", "_", self.key).replace("=", "-")
        if len(text) <= SLUG_LENGTH:
            return text
        digest = hashlib.sha256(self.key.encode()).hexdigest()[:8]
        return f"{text[: SLUG_LENGTH - len(digest) - 1]}-{digest}"


# cells ------------------------------------------------------------------------------------------


def dataset_overrides(dataset: str, model: str, split: str) -> list[str]:
    """The overrides that select the data set, encoder and split (NeuroSEED configs on V4)."""
    if dataset == "v4":
        # other splits keep the experiment's 700 / 1,500 fractions
        return [f"experiment=neuroseed_{model}", *([] if split == "group" else [f"split={split}"])]
    out = [f"model={model}", f"split={split}"]
    if dataset == "influenza":
        min_len, max_len = INFLUENZA_LENGTHS
        cleaning = [f"data.max_len={max_len}", f"data.cleaning.min_len={min_len}"]
        out = ["data=fasta", *cleaning, *out]  # data.path: see plumbing()
    return out


def make_cell(
    mode: Mode, dataset: str, model: str, geometry: str, dim: int | None, split: str
) -> Cell:
    """The cell of one (dataset, encoder, geometry, dimension, split) in this mode."""
    overrides = dataset_overrides(dataset, model, split) + [f"distance={geometry}"]
    extra = list(mode.extra[dataset])
    if model != "kmer":
        overrides.append(f"model.embedding_dim={dim}")
    else:  # nothing to train: its experiment's single epoch fits the scale
        dim = None
        extra = list(uncapped(extra))
    overrides += extra
    return Cell(
        dataset,
        model,
        geometry,
        dim,
        split,
        tuple(overrides),
        closest_string=dataset == "v4" and split == "group",
    )


def plan(mode: Mode, suites: Iterable[str], dim_model: str) -> list[Cell]:
    """All cells of the chosen suites, each once, in a sensible order (cheap and headline first)."""
    cells: list[Cell] = []
    for dataset in mode.datasets:
        main = MAIN_SPLIT[dataset]
        models = mode.models if dataset == "v4" else mode.other_models
        geometries = mode.geometries if dataset == "v4" else mode.other_geometries
        wanted = set(suites) & set(mode.suites.get(dataset, SUITES))
        if "table" in wanted:
            for model in models:
                for geometry in geometries:
                    cells.append(make_cell(mode, dataset, model, geometry, TABLE_DIM, main))
        if "dimension" in wanted:
            for geometry in mode.dim_geometries:
                for dim in mode.dims:
                    cells.append(make_cell(mode, dataset, dim_model, geometry, dim, main))
        if "split" in wanted and dataset in SPLITS:
            for split in SPLITS[dataset]:
                cells.append(make_cell(mode, dataset, dim_model, "hyperbolic", TABLE_DIM, split))
    unique: dict[str, Cell] = {}
    for cell in cells:
        unique.setdefault(cell.key, cell)
    return list(unique.values())


# running one cell -------------------------------------------------------------------------------


def plumbing(cell: Cell, run_dir: Path, cache_dir: Path) -> list[str]:
    """Overrides that only place files and quieten output; they never change a result."""
    out = [
        f"paths.cache_dir={cache_dir}",
        "logger=none",
        "trainer.enable_progress_bar=false",
        "data.num_workers=0",
    ]
    if cell.dataset in ("v4", "influenza"):  # absolute: the bench may run from anywhere
        out.append(f"data.path={V4_READS if cell.dataset == 'v4' else INFLUENZA}")
    return out


def best_checkpoint(run_dir: Path) -> Path:
    """The run's best checkpoint (lowest validation %RMSE), else its last one."""
    found = sorted((run_dir / "checkpoints").glob("best_*.ckpt"))
    return found[-1] if found else run_dir / "checkpoints" / "last.ckpt"


def run_cell(
    cell: Cell, mode: Mode, work_dir: Path, cache_dir: Path, retrieval: RetrievalSets
) -> dict[str, Any]:
    """Train and test one cell; add the closest-string protocol for V4; return its ledger entry."""
    from neurohash.hydra_app import compose_app
    from neurohash.train import train

    run_dir = work_dir / mode.name / cell.slug
    interrupted = run_dir / "checkpoints" / "last.ckpt"
    resume = interrupted.exists()
    if not resume:
        shutil.rmtree(run_dir, ignore_errors=True)
    cfg = compose_app("train", run_dir, *cell.overrides, *plumbing(cell, run_dir, cache_dir))
    cfg.ckpt_path = str(interrupted) if resume else None
    start = time.perf_counter()
    metrics = train(cfg)
    entry: dict[str, Any] = {"metrics": clean_numbers(metrics)}
    if cfg.ckpt_path:  # its time_s counts only this session's share of the training
        entry["resumed_from"] = cfg.ckpt_path
    if cell.closest_string:
        refs, queries, exact = retrieval.get(cfg, mode.references)
        entry["closest_string"] = closest_string(best_checkpoint(run_dir), refs, queries, exact)
    entry["time_s"] = round(time.perf_counter() - start, 2)
    shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)  # models are not kept
    return entry


# closest string ---------------------------------------------------------------------------------


@dataclass
class RetrievalSets:
    """Closest-string references and queries per data configuration, built once and reused."""

    seed: int = 0
    cache: dict[str, tuple[list[str], list[str], np.ndarray]] = field(default_factory=dict)

    def get(self, cfg: Any, n_refs: int) -> tuple[list[str], list[str], np.ndarray]:
        import json

        from omegaconf import OmegaConf

        key = json.dumps(OmegaConf.to_container(cfg.data, resolve=True), sort_keys=True)
        if key not in self.cache:
            self.cache[key] = held_out_retrieval_set(cfg, n_refs, self.seed)
        return self.cache[key]


def held_out_retrieval_set(
    cfg: Any, n_refs: int, seed: int
) -> tuple[list[str], list[str], np.ndarray]:
    """NeuroSEED's closest-string set: ``n_refs`` references and up to as many queries, distinct
    reads of the test split's samples that occur nowhere in training or validation, with the
    exact (queries x references) edit distances."""
    from hydra.utils import instantiate

    from neurohash.data.edit_distance import distance_matrix
    from neurohash.data.sources import load_records

    datamodule = instantiate(cfg.data)  # the job's own loading and split, as its setup() does
    records, _ = load_records(
        datamodule.path, datamodule.cleaning, datamodule.max_seqs, datamodule.seed
    )
    split = datamodule.split_fn(records)
    pattern = re.compile(cfg.split.pattern)
    group = lambda rid: m.group(1) if (m := pattern.search(rid)) else rid  # noqa: E731
    held_out = {group(records[i].id) for i in split.test}
    seen = {records[i].seq for i in (*split.train, *split.val)}
    everything, _ = load_records(datamodule.path, datamodule.cleaning, None, seed)
    pool = sorted({r.seq for r in everything if group(r.id) in held_out and r.seq not in seen})
    order = np.random.default_rng(seed).permutation(len(pool))
    chosen = [pool[i] for i in order[: 2 * n_refs]]
    refs, queries = chosen[:n_refs], chosen[n_refs:]
    return refs, queries, distance_matrix(queries, refs)


def closest_string(
    ckpt: Path, refs: list[str], queries: list[str], exact: np.ndarray
) -> dict[str, Any]:
    """Top-1/5/10 of the checkpoint's distances on the retrieval set (``neurohash.metrics``)."""
    from neurohash.checkpoint import load_module
    from neurohash.metrics import closest_string_topk
    from neurohash.module import embed_sequences

    module = load_module(ckpt)
    max_len = int(module.normaliser)
    with torch.no_grad():
        emb_r = embed_sequences(module, refs, max_len)
        emb_q = embed_sequences(module, queries, max_len)
        pred = module.geometry.pairwise(emb_q, emb_r).double().numpy()
    unique = int(((exact == exact.min(axis=1, keepdims=True)).sum(axis=1) == 1).sum())
    out: dict[str, Any] = clean_numbers(closest_string_topk(pred, exact))
    out.update({"references": len(refs), "queries": len(queries), "queries_unique": unique})
    return out


# ledger and report ------------------------------------------------------------------------------


def clean_numbers(values: dict[str, Any]) -> dict[str, Any]:
    """JSON-safe numbers: NaN and infinities become null."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, (int, float, np.floating, np.integer)):
            value = float(value)
            out[key] = value if math.isfinite(value) else None
        else:
            out[key] = value
    return out


def load_report(path: Path, mode: Mode) -> dict[str, Any]:
    """The existing ledger at ``path`` (a resumed run), or a new, empty report."""
    import json

    if path.is_file():
        report = json.loads(path.read_text())
        if report.get("mode") != mode.name:
            raise SystemExit(f"{path} holds a {report.get('mode')} run, not {mode.name}")
        return report
    return {"mode": mode.name, "cells": {}}


def describe(report: dict[str, Any], mode: Mode, argv: list[str]) -> None:
    """Top-level facts of the report: mode, caveat, hardware, command, published numbers."""
    report.update(
        {
            "mode": mode.name,
            "comparable_to_neuroseed": mode.name == "full",
            "note": (
                "QUICK MODE: small samples, 1 epoch; checks that the benchmark runs. These "
                "numbers are NOT comparable with NeuroSEED's."
                if mode.name == "quick"
                else "Full mode: the NeuroSEED protocol (see the cells' overrides and epochs)."
            ),
            "hardware": machine(),
            "updated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "neuroseed": {
                "rmse_pct": NEUROSEED_RMSE,
                "topk_pct": {f"{m}/{g}": v for (m, g), v in NEUROSEED_TOPK.items()},
                "goals": GOALS,
            },
            "closest_string_references": mode.references,
        }
    )
    report.pop("command", None)  # older ledgers: one command, now a list
    report.pop("planned_cells", None)  # older ledgers: now in "coverage"
    command = " ".join(["python bench/accuracy.py", *argv])
    report["commands"] = [c for c in report.get("commands", []) if c != command] + [command]


def record(report: dict[str, Any], cell: Cell, entry: dict[str, Any]) -> None:
    """Put one finished (or failed) cell into the ledger."""
    labels = {
        "dataset": cell.dataset,
        "model": cell.model,
        "geometry": cell.geometry,
        "dim": cell.dim,
        "split": cell.split,
        "overrides": list(cell.overrides),
    }
    entry["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    entry.setdefault("commit", source_version())
    report["cells"][cell.key] = {**labels, **entry}


def needs_run(done: dict[str, Any], retry_failed: bool, rerun_before: datetime | None) -> bool:
    """Whether a planned cell runs: never tried, failed (with ``--retry-failed``), or finished
    before ``--rerun-before`` (a result of code that has changed since)."""
    if "metrics" in done:
        finished = datetime.fromisoformat(done["finished"])
        return rerun_before is not None and finished < rerun_before
    return "error" not in done or retry_failed


def utc_time(text: str) -> datetime:
    """An ISO date or date-time; without a zone it is taken as UTC, as the ledger writes."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def save(report: dict[str, Any], path: Path, written: set[str]) -> None:
    """Write the ledger, keeping cells that other workers on the same ledger wrote meanwhile.

    Several ``bench/accuracy.py`` processes (say one per encoder, or SLURM array tasks) may fill
    one ledger: under an exclusive lock the file on disk is re-read, this process's ``written``
    cells replace their entries, every other cell and command is kept, and ``report`` is
    refreshed with the merged view. A full-mode ledger's run-time estimate is recomputed from
    that merged view, so it holds after every cell, whichever worker wrote last."""
    import fcntl
    import json

    from neurohash.files import write_json

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.is_file():
            disk = json.loads(path.read_text())
            ours = {k: report["cells"][k] for k in written}
            report["cells"] = {**disk.get("cells", {}), **ours}
            commands = disk.get("commands", []) + report.get("commands", [])
            report["commands"] = list(dict.fromkeys(commands))
        planned = plan(FULL if report["mode"] == "full" else QUICK, SUITES, report["dim_model"])
        report["coverage"] = coverage(report, planned)
        if report["mode"] == "full":
            report["estimate"] = estimate(report, planned)
        write_json(path, report)


def uncapped(overrides: Iterable[str]) -> tuple[str, ...]:
    """A cell's overrides less its epoch cap: the same cell whatever its training budget."""
    return tuple(o for o in overrides if not o.startswith("trainer.max_epochs="))


def coverage(report: dict[str, Any], planned: list[Cell]) -> dict[str, Any]:
    """How many planned cells have a finished run, and which have none. A cell counts once
    whatever epoch cap it ran at, so longer runs of the best cells do not inflate the count."""
    done = {
        (c["dataset"], uncapped(c["overrides"]))
        for c in report.get("cells", {}).values()
        if "metrics" in c
    }
    missing = [c.label for c in planned if (c.dataset, uncapped(c.overrides)) not in done]
    return {"planned": len(planned), "finished": len(planned) - len(missing), "missing": missing}


def planned_epochs(cell: Cell) -> int:
    """Epochs a cell may train at most: its cap, else its experiment's (500; k-mer 1)."""
    for override in cell.overrides:
        if override.startswith("trainer.max_epochs="):
            return int(override.split("=", 1)[1])
    return 1 if cell.model == "kmer" else 500


def estimate(report: dict[str, Any], cells: list[Cell]) -> str:
    """Run time of ``cells`` from the seconds per epoch of the full-size cells measured so far
    (same dataset and encoder): at every cell's maximum epochs (an upper bound) and at the
    epochs the measured cells actually trained."""
    per_epoch: dict[tuple[str, str], list[float]] = {}
    fixed: dict[tuple[str, str], list[float]] = {}
    trained: list[int] = []
    for c in report.get("cells", {}).values():
        m = c.get("metrics", {})
        if m.get("train/epochs"):
            key = (c["dataset"], c["model"])
            per_epoch.setdefault(key, []).append(m["train/time_s"] / m["train/epochs"])
            fixed.setdefault(key, []).append(c["time_s"] - m["train/time_s"])
            trained.append(int(m["train/epochs"]))
    budget = Counter(trained).most_common(1)[0][0] if trained else 1  # the usual cap
    upper = at_budget = 0.0
    known, missing = 0, {}
    for cell in cells:
        key = (cell.dataset, cell.model)
        if key not in per_epoch:
            missing.setdefault(cell.dataset, set()).add(cell.model)
            continue
        epoch_s, fixed_s = float(np.median(per_epoch[key])), float(np.median(fixed[key]))
        upper += planned_epochs(cell) * epoch_s + fixed_s
        at_budget += min(planned_epochs(cell), budget) * epoch_s + fixed_s
        known += 1
    measured = ", ".join(f"{d}/{m} {np.median(v):.0f} s" for (d, m), v in sorted(per_epoch.items()))
    finished = [c for c in report.get("cells", {}).values() if "time_s" in c]
    hw = report.get("hardware", {})
    text = (
        f"The {len(finished)} finished runs in the ledger (a cell run at two epoch caps counts "
        f"twice) took {sum(c['time_s'] for c in finished) / 3600:.1f} h of wall time on "
        f"{hw.get('cpu')} ({hw.get('cpu_count')} cores, {hw.get('torch_threads')} torch "
        "thread(s) per worker). The full benchmark (all suites "
        f"and datasets) is {len(cells)} cells. The median wall time per epoch measured here "
        f"({measured or 'nothing'}) puts {known} of them at {at_budget / 3600:.1f} h with at "
        f"most {budget} epochs each and at most {upper / 3600:.0f} h at their full epoch budgets "
        "(500 on V4; early stopping ends most runs sooner). A GPU is the realistic way to run it."
    )
    if missing:
        text += (
            " Not measured at full size: "
            + "; ".join(f"{d}: {', '.join(sorted(m))}" for d, m in sorted(missing.items()))
            + "."
        )
    return text


# main -------------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a few small cells, minutes on 2 cores")
    p.add_argument("--out-dir", type=Path, default=ROOT / "docs" / "benchmarks")
    p.add_argument(
        "--work-dir",
        type=Path,
        default=ROOT / "logs" / "bench_accuracy",
        help="run directories (checkpoints are deleted after each cell)",
    )
    p.add_argument("--cache-dir", type=Path, default=ROOT / ".cache" / "neurohash")
    p.add_argument("--datasets", nargs="+", choices=DATASETS)
    p.add_argument("--suites", nargs="+", choices=SUITES, default=list(SUITES))
    p.add_argument("--models", nargs="+", choices=MODELS, help="table encoders")
    p.add_argument("--geometries", nargs="+", choices=GEOMETRIES)
    p.add_argument("--dims", nargs="+", type=int, help="dimension-suite dimensions")
    p.add_argument(
        "--dim-model",
        default="linear",
        choices=[m for m in MODELS if m != "kmer"],
        help="encoder of the dimension and split suites (default linear)",
    )
    p.add_argument("--max-epochs", type=int, help="cap epochs (added to every cell's overrides)")
    p.add_argument("--retry-failed", action="store_true", help="rerun cells that failed before")
    p.add_argument(
        "--rerun-before",
        type=utc_time,
        metavar="DATE",
        help="rerun finished cells that finished before DATE (ISO, UTC), e.g. after a change",
    )
    p.add_argument("--dry-run", action="store_true", help="list the cells it would run and exit")
    return p.parse_args(argv)


def choose_mode(args: argparse.Namespace) -> Mode:
    """The base mode, narrowed by the command-line filters."""
    from dataclasses import replace

    mode = QUICK if args.quick else FULL
    changes: dict[str, Any] = {}
    if args.datasets:
        changes["datasets"] = tuple(args.datasets)
    if args.models:
        changes["models"] = changes["other_models"] = tuple(args.models)
    if args.geometries:
        geometries = tuple(args.geometries)
        changes.update(
            geometries=geometries, dim_geometries=geometries, other_geometries=geometries
        )
    if args.dims:
        changes["dims"] = tuple(args.dims)
    if args.max_epochs:
        cap = f"trainer.max_epochs={args.max_epochs}"
        changes["extra"] = {d: uncapped(extra) + (cap,) for d, extra in mode.extra.items()}
    return replace(mode, **changes)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    _, argv = begin(argv)
    args = parse_args(argv)
    mode = choose_mode(args)
    prefix = "accuracy_quick" if mode.name == "quick" else "accuracy"
    path = args.out_dir / f"{prefix}.json"
    report = load_report(path, mode)
    cells = [
        cell
        for cell in plan(mode, args.suites, args.dim_model)
        if needs_run(report["cells"].get(cell.key, {}), args.retry_failed, args.rerun_before)
    ]
    if args.dry_run:
        print("\n".join(c.key for c in cells))
        return {}
    describe(report, mode, argv)
    report["dim_model"] = args.dim_model
    retrieval = RetrievalSets()
    written: set[str] = set()
    for i, cell in enumerate(cells, 1):
        print(f"[{i}/{len(cells)}] {cell.key}", flush=True)
        try:
            entry = run_cell(cell, mode, args.work_dir, args.cache_dir, retrieval)
        except Exception as exc:  # a diverging cell is a result too (NeuroSEED's dashes)
            traceback.print_exc()
            entry = {"error": f"{type(exc).__name__}: {exc}"[:500]}
        record(report, cell, entry)
        written.add(cell.key)
        save(report, path, written)
    save(report, path, written)  # the latest cells of other workers, before plotting
    report["plots"] = plot_dimensions(report, args.out_dir, prefix)
    save(report, path, written)
    print(markdown(report))
    return report


if __name__ == "__main__":
    main()
