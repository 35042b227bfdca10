"""Accuracy benchmark: NeuroSEED's edit-distance tables, re-run with this project's own training.

    python bench/accuracy.py [--quick] [--out-dir docs/benchmarks] [--work-dir DIR]
        [--datasets v4 greengenes influenza] [--suites table dimension split]
        [--models cnn kmer ...] [--geometries hyperbolic ...] [--dims 2 16 128]
        [--max-epochs N] [--retry-failed]

Every cell is one ``train.py`` job, composed through Hydra exactly as a user would type it
(``python train.py experiment=neuroseed_cnn distance=cosine model.embedding_dim=128``) and run by
``neurohash.train.train``; %RMSE, MAE, Spearman and the k-mer baseline are that job's own
``test/*`` and ``baseline/*`` metrics. Suites:

- ``table``: encoders (linear, mlp, cnn, gru, transformer, transformer_local, k-mer) x geometries
  (cosine, euclidean, square, manhattan, hyperbolic) at embedding dimension 128;
- ``dimension``: %RMSE against embedding dimension (2 to 256) for every geometry (one encoder,
  ``--dim-model``), drawn as ``accuracy_dim_<dataset>.png``;
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
``accuracy_quick.json`` with ``--quick``), keyed by its dataset and overrides: an interrupted run
resumes where it stopped and a rerun skips finished cells. ``--quick`` runs a few cells on small
samples for one epoch (minutes on 2 CPU cores): its numbers check the pipeline and are NOT
comparable with NeuroSEED's.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import re
import shutil
import sys
import time
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
V4 = DATA / "study550_v4_amplicons.fasta.gz"
INFLUENZA = DATA / "influenza_a_segments.fasta.gz"

MODELS = ("linear", "mlp", "cnn", "gru", "transformer", "transformer_local", "kmer")
GEOMETRIES = ("cosine", "euclidean", "square", "manhattan", "hyperbolic")
DIMS = (2, 4, 8, 16, 32, 64, 128, 256)
DATASETS = ("v4", "greengenes", "influenza")
SUITES = ("table", "dimension", "split")
TABLE_DIM = 128
SPLITS = {"v4": ("group", "random", "cluster"), "greengenes": ("random", "cluster", "clade")}
MAIN_SPLIT = {"v4": "group", "greengenes": "random", "influenza": "cluster"}

# NeuroSEED on Qiita at dimension 128 (gcorso/NeuroSEED tutorial figures, see
# ../shared/reference/NEUROSEED.md): test %RMSE per model and geometry, closest-string top-k (%)
NEUROSEED_RMSE = {
    "kmer": {"cosine": 5.03, "euclidean": 7.64, "square": 34.56, "manhattan": 5.39,
             "hyperbolic": 7.60},
    "linear": {"cosine": 3.38, "euclidean": 4.39, "square": 5.83, "manhattan": 3.82,
               "hyperbolic": 2.50},
    "mlp": {"cosine": 4.98, "euclidean": 4.36, "square": 8.52, "manhattan": 4.92,
            "hyperbolic": 1.85},
    "cnn": {"cosine": 2.54, "euclidean": 2.68, "square": 5.03, "manhattan": 4.06,
            "hyperbolic": 1.56},
    "gru": {"cosine": None, "euclidean": 3.30, "square": 5.52, "manhattan": 3.74,
            "hyperbolic": 2.60},
    "transformer": {"cosine": 2.61, "euclidean": 2.10, "square": 3.71, "manhattan": 2.57,
                    "hyperbolic": 1.83},
    "transformer_local": {"cosine": 2.67, "euclidean": 2.42, "square": 3.72, "manhattan": 2.46,
                          "hyperbolic": 1.86},
}  # fmt: skip
NEUROSEED_TOPK = {
    ("kmer", "cosine"): (45.9, 62.9, 69.6),
    ("cnn", "hyperbolic"): (50.1, 77.2, 85.9),
    ("transformer", "cosine"): (51.3, 75.9, 84.5),
    ("transformer", "hyperbolic"): (49.5, 75.5, 84.0),
    ("transformer_local", "hyperbolic"): (48.8, 75.1, 84.5),
    ("linear", "hyperbolic"): (43.2, 63.7, 71.4),
}
GOALS = {"rmse_pct": 1.2, "top10": 0.90}  # the targets on the V4 reads


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
    def slug(self) -> str:
        text = re.sub(r"[^A-Za-z0-9.=-]+", "_", self.key)
        return text.replace("=", "-")[:150]


# cells ------------------------------------------------------------------------------------------


def dataset_overrides(dataset: str, model: str, split: str) -> list[str]:
    """The overrides that select the data set, encoder and split (NeuroSEED configs on V4)."""
    if dataset == "v4":
        # other splits keep the experiment's 700 / 1,500 fractions
        return [f"experiment=neuroseed_{model}", *([] if split == "group" else [f"split={split}"])]
    out = [f"model={model}", f"split={split}"]
    if dataset == "influenza":
        cleaning = ["data.max_len=2400", "data.cleaning.min_len=800"]
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
        extra = [o for o in extra if not o.startswith("trainer.max_epochs=")]
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
        f"hydra.run.dir={run_dir}",
        f"paths.cache_dir={cache_dir}",
        "logger=none",
        "trainer.enable_progress_bar=false",
        "data.num_workers=0",
    ]
    if cell.dataset in ("v4", "influenza"):  # absolute: the bench may run from anywhere
        out.append(f"data.path={V4 if cell.dataset == 'v4' else INFLUENZA}")
    return out


def compose(run_dir: Path, overrides: list[str]) -> Any:
    """Compose ``conf/train.yaml`` with overrides; set Hydra's runtime as @hydra.main does."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = hydra_compose("train", overrides=overrides, return_hydra_config=True)
    cfg.hydra.runtime.output_dir = str(run_dir)
    cfg.hydra.runtime.cwd = str(ROOT)
    HydraConfig().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


def best_checkpoint(run_dir: Path) -> Path:
    """The run's best checkpoint (lowest validation %RMSE), else its last one."""
    found = sorted((run_dir / "checkpoints").glob("best_*.ckpt"))
    return found[-1] if found else run_dir / "checkpoints" / "last.ckpt"


def run_cell(
    cell: Cell, mode: Mode, work_dir: Path, cache_dir: Path, retrieval: RetrievalSets
) -> dict[str, Any]:
    """Train and test one cell; add the closest-string protocol for V4; return its ledger entry."""
    from neurohash.train import train

    run_dir = work_dir / mode.name / cell.slug
    shutil.rmtree(run_dir, ignore_errors=True)
    cfg = compose(run_dir, [*cell.overrides, *plumbing(cell, run_dir, cache_dir)])
    start = time.perf_counter()
    metrics = train(cfg)
    entry: dict[str, Any] = {"metrics": clean_numbers(metrics)}
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


def hardware() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            names = [line.split(":", 1)[1].strip() for line in handle if "model name" in line]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": gpu,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


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
            "hardware": hardware(),
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
    report["cells"][cell.key] = {**labels, **entry}


def save(report: dict[str, Any], path: Path) -> None:
    from neurohash.files import write_json

    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, report)


# views of the ledger ----------------------------------------------------------------------------


def find(report: dict[str, Any], **labels: Any) -> dict[str, Any] | None:
    """The finished cell whose labels match (None when absent or failed)."""
    for cell in report.get("cells", {}).values():
        if "metrics" in cell and all(cell.get(k) == v for k, v in labels.items()):
            return cell
    return None


def metric(cell: dict[str, Any] | None, name: str) -> float | None:
    return None if cell is None else cell["metrics"].get(name)


def fmt(value: float | None, spec: str = ".2f") -> str:
    return "–" if value is None else format(value, spec)


def pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def datasets_in(report: dict[str, Any]) -> list[str]:
    found = {c["dataset"] for c in report.get("cells", {}).values()}
    return [d for d in DATASETS if d in found]


def dims_of(report: dict[str, Any], dataset: str, geometry: str) -> list[tuple[int, float]]:
    """(dimension, test %RMSE) of the dimension-suite cells of one dataset and geometry."""
    model = report.get("dim_model", "cnn")
    points = {
        c["dim"]: c["metrics"]["test/rmse_pct"]
        for c in report.get("cells", {}).values()
        if "metrics" in c
        and c["dataset"] == dataset
        and c["model"] == model
        and c["geometry"] == geometry
        and c["split"] == MAIN_SPLIT[dataset]
        and c["dim"] is not None
        and c["metrics"].get("test/rmse_pct") is not None
    }
    return sorted(points.items())


def plot_dimensions(report: dict[str, Any], out_dir: Path, prefix: str) -> dict[str, str]:
    """One PNG per dataset: test %RMSE against embedding dimension, a line per geometry."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written: dict[str, str] = {}
    for dataset in datasets_in(report):
        lines = {g: dims_of(report, dataset, g) for g in GEOMETRIES}
        lines = {g: pts for g, pts in lines.items() if len(pts) >= 2}
        if not lines:
            continue
        fig, ax = plt.subplots(figsize=(6, 4.2))
        for geometry, points in lines.items():
            dims, values = zip(*points, strict=True)
            ax.plot(dims, values, marker="o", label=geometry)
        baseline = [
            metric(c, "baseline/rmse_pct")
            for c in report["cells"].values()
            if c.get("dataset") == dataset and "metrics" in c
        ]
        baseline = [b for b in baseline if b is not None]
        if baseline:
            ax.axhline(
                float(np.median(baseline)),
                color="grey",
                ls="--",
                lw=1,
                label="5-mer cosine baseline",
            )
        ax.set_xscale("log", base=2)
        ticks = sorted({d for pts in lines.values() for d, _ in pts})
        ax.set_xticks(ticks, [str(d) for d in ticks])
        ax.set_xlabel("embedding dimension")
        ax.set_ylabel("test %RMSE")
        title = f"{report.get('dim_model', 'cnn')} on {dataset}"
        ax.set_title(title + (" (quick mode: not comparable)" if prefix.endswith("quick") else ""))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        name = f"{prefix}_dim_{dataset}.png"
        tmp = out_dir / f"{name}.tmp.png"
        fig.savefig(tmp, dpi=110)
        plt.close(fig)
        os.replace(tmp, out_dir / name)
        written[dataset] = name
    return written


# markdown ---------------------------------------------------------------------------------------


def markdown(report: dict[str, Any], plot_dir: str = "benchmarks") -> str:
    """The accuracy section of docs/benchmarks.md: tables beside NeuroSEED's numbers, plot links.

    ``plot_dir`` is where the PNGs lie relative to the Markdown file."""
    parts = [f"## Accuracy: NeuroSEED's tables on real data ({report.get('mode', '?')} mode)", ""]
    parts += [f"> {report['note']}", ""] if report.get("note") else []
    hw = report.get("hardware", {})
    finished = sum("metrics" in c for c in report.get("cells", {}).values())
    parts += [
        f"Cells finished: {finished} of the {report.get('planned_cells', '?')} that "
        f"`python bench/accuracy.py{' --quick' if report.get('mode') == 'quick' else ''}` plans.",
        "",
    ]
    parts += [
        "Commands that filled this ledger: "
        + ", ".join(f"`{c}`" for c in report.get("commands", []))
        + "; hardware: "
        f"{hw.get('cpu', '?')}, {hw.get('cpu_count', '?')} cores, GPU: {hw.get('gpu') or 'none'}, "
        f"torch {hw.get('torch', '?')}; updated {report.get('updated', '?')}. Each cell is one "
        "`python train.py` job with the overrides listed in the JSON ledger; %RMSE = "
        "100 * sqrt(mean((d - ED/L)^2)) over all test pairs, L the padded length.",
        "",
    ]
    for dataset in datasets_in(report):
        parts += table_section(report, dataset)
        parts += dimension_section(report, dataset, plot_dir)
        parts += split_section(report, dataset)
    parts += standing_section(report)
    parts += estimate_section(report)
    parts += ["### Protocol and deviations from NeuroSEED", "", *DEVIATIONS, ""]
    return "\n".join(parts).rstrip() + "\n"


DEVIATIONS = [
    "- Data: NeuroSEED's Qiita files are gone; the V4 reads of Qiita study 550 stand in. A seeded "
    "sample of 9,200 reads (<= 152 bp, L = 152) is split by sample id, whole samples only, so the "
    "sizes are about 7,000 / 700 / 1,500 (exact counts in each cell's `data/*` metrics).",
    "- Closest string: 1,000 references and up to 1,000 queries drawn from all reads of the "
    "held-out test samples that occur nowhere in training or validation (NeuroSEED's notebook "
    "describes disjoint sets; its generator's default takes the first 1,000 training lines). "
    "Queries without a unique nearest reference are dropped, as in NeuroSEED. Greengenes and "
    "influenza report the test set split in halves instead.",
    "- Training pairs: 3 triplets (9 pairs) per sequence per epoch, batches of 43 triplets (129 "
    "pairs); NeuroSEED: 10 random pairs per sequence, batches of 128 pairs. Encoder differences "
    "are listed in `conf/experiment/neuroseed_*.yaml`.",
    "- Epochs: NeuroSEED trains up to 500 epochs (patience 50) on a GPU; a cell whose overrides "
    "hold `trainer.max_epochs=N` was capped at N epochs (CPU budget) and is not the full "
    "protocol.",
    "- Greengenes and influenza have no NeuroSEED configuration: the project's defaults (6,000 "
    "Greengenes sequences; all unique influenza segments of 800-2,400 bp, L = 2,400) with a "
    "50-epoch cap. Influenza is split by distance cluster: record ids do not carry the strain.",
    "- %RMSE is taken over the unordered test pairs (NeuroSEED: ordered pairs; the same value, "
    "distances being symmetric). The k-mer baseline is 5-mer frequency vectors with a least-"
    "squares scale, as NeuroSEED's.",
]
DATASET_TITLES = {
    "v4": "16S V4 reads (Qiita study 550, NeuroSEED's Qiita stand-in)",
    "greengenes": "full-length 16S (Greengenes 13_8)",
    "influenza": "influenza A segments (non-16S)",
}


def run_facts(cells: list[dict[str, Any]]) -> str:
    """Sizes and epochs of a group of cells, as one sentence."""
    if not cells:
        return ""
    m = cells[0]["metrics"]
    epochs = sorted({int(c["metrics"].get("train/epochs") or 0) for c in cells})
    span = f"{epochs[0]}" if len(epochs) == 1 else f"{epochs[0]}-{epochs[-1]}"
    return (
        f"{int(m['data/train_seqs'])} train / {int(m['data/test_seqs'])} test sequences, "
        f"L = {int(m['data/normaliser'])}, {span} epoch(s) trained."
    )


def table_section(report: dict[str, Any], dataset: str) -> list[str]:
    """Model x geometry %RMSE (NeuroSEED's beside ours on V4) and closest-string top-k."""
    main = MAIN_SPLIT[dataset]
    cells = {
        (c["model"], c["geometry"]): c
        for c in report["cells"].values()
        if "metrics" in c
        and c["dataset"] == dataset
        and c["split"] == main
        and c["dim"] in (TABLE_DIM, None)
    }
    if not cells:
        return []
    models = [m for m in MODELS if any(k[0] == m for k in cells)]
    geoms = [g for g in GEOMETRIES if any(k[1] == g for k in cells)]
    ours_vs = dataset == "v4"
    out = [f"### {DATASET_TITLES[dataset]}: %RMSE, dimension {TABLE_DIM}", ""]
    out += [
        run_facts(list(cells.values())) + (" Cells: ours (NeuroSEED on Qiita)." if ours_vs else ""),
        "",
    ]
    out += ["| model | " + " | ".join(geoms) + " |", "|---" * (len(geoms) + 1) + "|"]
    for model in models:
        row = []
        for geometry in geoms:
            text = fmt(metric(cells.get((model, geometry)), "test/rmse_pct"))
            if ours_vs:
                text += f" ({fmt(NEUROSEED_RMSE[model].get(geometry))})"
            row.append(text)
        out.append(f"| {model} | " + " | ".join(row) + " |")
    baseline = [metric(c, "baseline/rmse_pct") for c in cells.values()]
    baseline = [b for b in baseline if b is not None]
    if baseline:
        out += [
            "",
            f"5-mer cosine baseline on the same test sets (least-squares scale): "
            f"%RMSE {np.median(baseline):.2f} (median over runs).",
        ]
    out += [""] + topk_table(cells, dataset) + [""]
    return out


def topk_table(cells: dict[tuple[str, str], dict[str, Any]], dataset: str) -> list[str]:
    """Closest-string top-1/5/10 (%) per cell, NeuroSEED's beside ours where published."""
    rows = []
    for (model, geometry), cell in sorted(cells.items(), key=lambda kv: MODELS.index(kv[0][0])):
        cs = cell.get("closest_string")
        src = cs if cs else {k: cell["metrics"].get(f"test/{k}") for k in ("top1", "top5", "top10")}
        ours = " / ".join(pct(src.get(k)) for k in ("top1", "top5", "top10"))
        pub = NEUROSEED_TOPK.get((model, geometry)) if dataset == "v4" else None
        theirs = " / ".join(f"{v:.1f}" for v in pub) if pub else "–"
        rows.append(f"| {model} | {geometry} | {ours} | {theirs} |")
    any_cs = next((c["closest_string"] for c in cells.values() if c.get("closest_string")), None)
    if any_cs:
        how = (
            f"{any_cs['references']} references, {any_cs['queries']} queries "
            f"({any_cs['queries_unique']} with a unique nearest reference), reads of held-out "
            "samples never seen in training"
        )
    else:
        how = "first half of the test set as references, second half as queries"
    return [
        f"Closest string, top-1 / top-5 / top-10 (%): {how}.",
        "",
        "| model | geometry | ours | NeuroSEED (Qiita) |",
        "|---|---|---|---|",
        *rows,
    ]


def dimension_section(report: dict[str, Any], dataset: str, plot_dir: str) -> list[str]:
    """%RMSE by embedding dimension per geometry, as a table and a linked plot."""
    series = {g: dict(dims_of(report, dataset, g)) for g in GEOMETRIES}
    series = {g: s for g, s in series.items() if len(s) >= 2}
    if not series:
        return []
    dims = sorted({d for s in series.values() for d in s})
    model = report.get("dim_model", "cnn")
    out = [f"### {DATASET_TITLES[dataset]}: %RMSE against embedding dimension ({model})", ""]
    out += ["| geometry | " + " | ".join(map(str, dims)) + " |", "|---" * (len(dims) + 1) + "|"]
    out += [f"| {g} | " + " | ".join(fmt(s.get(d)) for d in dims) + " |" for g, s in series.items()]
    plot = report.get("plots", {}).get(dataset)
    if plot:
        out += ["", f"![%RMSE against dimension, {dataset}]({plot_dir}/{plot})"]
    if dataset == "v4":
        out += [
            "",
            "NeuroSEED (transformer on Qiita, read from its plot): hyperbolic about 2.9 "
            "at dimension 4, 1.9 at 32, 1.87 at 128.",
        ]
    return out + [""]


def split_section(report: dict[str, Any], dataset: str) -> list[str]:
    """How much %RMSE grows when close relatives are held out (vs the random split)."""
    if dataset not in SPLITS:
        return []
    model = report.get("dim_model", "cnn")
    cells = {
        s: find(report, dataset=dataset, model=model, geometry="hyperbolic", dim=TABLE_DIM, split=s)
        for s in SPLITS[dataset]
    }
    cells = {s: c for s, c in cells.items() if c is not None}
    if len(cells) < 2:
        return []
    ref = metric(cells.get("random"), "test/rmse_pct")
    out = [
        f"### {DATASET_TITLES[dataset]}: split by relatedness ({model} / hyperbolic)",
        "",
        "| split | %RMSE | vs random | 5-mer baseline %RMSE | top-10 (%) |",
        "|---|---|---|---|---|",
    ]
    for split, cell in cells.items():
        value = metric(cell, "test/rmse_pct")
        growth = f"{100 * (value / ref - 1):+.0f}%" if value is not None and ref else "–"
        out.append(
            f"| {split} | {fmt(value)} | {growth} | {fmt(metric(cell, 'baseline/rmse_pct'))}"
            f" | {pct(metric(cell, 'test/top10'))} |"
        )
    return out + [""]


def standing_section(report: dict[str, Any]) -> list[str]:
    """Where the project stands against NeuroSEED and the issue's goals, from the V4 cells."""
    v4 = [
        c
        for c in report.get("cells", {}).values()
        if "metrics" in c
        and c["dataset"] == "v4"
        and c["split"] == "group"
        and c["dim"] in (TABLE_DIM, None)
    ]
    if not v4:
        return []
    best = min(v4, key=lambda c: c["metrics"].get("test/rmse_pct") or math.inf)
    with_cs = [c for c in v4 if c.get("closest_string", {}).get("top10") is not None]
    out = ["### Against NeuroSEED and the goals (V4 reads, dimension 128)", ""]
    rmse = metric(best, "test/rmse_pct")
    out.append(
        f"- best %RMSE: {fmt(rmse)} ({best['model']} / {best['geometry']}); NeuroSEED "
        f"1.56 (CNN / hyperbolic); goal < {GOALS['rmse_pct']}: "
        f"{'met' if rmse is not None and rmse < GOALS['rmse_pct'] else 'not met'}."
    )
    if with_cs:
        top = max(with_cs, key=lambda c: c["closest_string"]["top10"])
        t10 = top["closest_string"]["top10"]
        out.append(
            f"- best closest-string top-10: {pct(t10)}% ({top['model']} / "
            f"{top['geometry']}); NeuroSEED 85.9 (CNN / hyperbolic); goal > "
            f"{100 * GOALS['top10']:.0f}%: {'met' if t10 > GOALS['top10'] else 'not met'}."
        )
    epochs = sorted({int(c["metrics"].get("train/epochs") or 0) for c in v4})
    out.append(
        f"- epochs trained per cell: {epochs[0]}-{epochs[-1]} (NeuroSEED: up to 500 with "
        "early stopping, patience 50, on a GPU)."
    )
    if not report.get("comparable_to_neuroseed"):
        out.append("- quick mode: small samples and one epoch, so none of this is a comparison.")
    return out + [""]


def estimate_section(report: dict[str, Any]) -> list[str]:
    est = report.get("estimate")
    return ["### Run time of the full benchmark", "", est, ""] if est else []


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
    budget = max(trained, default=1)
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
    measured = ", ".join(
        f"{d}/{m} {np.median(v):.0f} s per epoch" for (d, m), v in sorted(per_epoch.items())
    )
    text = (
        f"The full benchmark (all suites, datasets) is {len(cells)} cells. Wall times measured "
        f"here ({measured or 'nothing'}; {report.get('hardware', {}).get('cpu_count')} CPU cores "
        f"shared with other jobs) put {known} of them at {at_budget / 3600:.1f} h with "
        f"{budget} epochs each and at most {upper / 3600:.0f} h at their full epoch budgets "
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
        default="cnn",
        choices=[m for m in MODELS if m != "kmer"],
        help="encoder of the dimension and split suites",
    )
    p.add_argument("--max-epochs", type=int, help="cap epochs (added to every cell's overrides)")
    p.add_argument("--retry-failed", action="store_true", help="rerun cells that failed before")
    p.add_argument("--dry-run", action="store_true", help="list the cells and exit")
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
        changes["extra"] = {
            d: tuple(o for o in extra if not o.startswith("trainer.max_epochs=")) + (cap,)
            for d, extra in mode.extra.items()
        }
    return replace(mode, **changes)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    mode = choose_mode(args)
    cells = plan(mode, args.suites, args.dim_model)
    if args.dry_run:
        print("\n".join(c.key for c in cells))
        return {}
    prefix = "accuracy_quick" if mode.name == "quick" else "accuracy"
    path = args.out_dir / f"{prefix}.json"
    report = load_report(path, mode)
    describe(report, mode, argv)
    report["dim_model"] = args.dim_model
    report["planned_cells"] = len(plan(QUICK if args.quick else FULL, SUITES, args.dim_model))
    retrieval = RetrievalSets()
    for i, cell in enumerate(cells, 1):
        done = report["cells"].get(cell.key, {})
        if "metrics" in done or ("error" in done and not args.retry_failed):
            continue
        print(f"[{i}/{len(cells)}] {cell.key}", flush=True)
        try:
            entry = run_cell(cell, mode, args.work_dir, args.cache_dir, retrieval)
        except Exception as exc:  # a diverging cell is a result too (NeuroSEED's dashes)
            traceback.print_exc()
            entry = {"error": f"{type(exc).__name__}: {exc}"[:500]}
        record(report, cell, entry)
        save(report, path)
    report["plots"] = plot_dimensions(report, args.out_dir, prefix)
    if mode.name == "full":
        report["estimate"] = estimate(report, plan(FULL, SUITES, args.dim_model))
    save(report, path)
    print(markdown(report))
    return report


if __name__ == "__main__":
    main()
