"""What the accuracy benchmark's tables hold and how they read: NeuroSEED's published numbers,
the protocol's models, geometries and datasets, and the Markdown and plots rendered from the
ledger that ``bench/accuracy.py`` fills (``docs/benchmarks/accuracy*.json``)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from report import save_figure, subplots

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


# views of the ledger ----------------------------------------------------------------------------


def finished(report: dict[str, Any], **labels: Any) -> list[dict[str, Any]]:
    """Every finished cell whose labels match."""
    return [
        c
        for c in report.get("cells", {}).values()
        if "metrics" in c and all(c.get(k) == v for k, v in labels.items())
    ]


def find(report: dict[str, Any], **labels: Any) -> dict[str, Any] | None:
    """The first finished cell whose labels match (None when absent or failed)."""
    found = finished(report, **labels)
    return found[0] if found else None


def metric(cell: dict[str, Any] | None, name: str) -> float | None:
    return None if cell is None else cell["metrics"].get(name)


def fmt(value: float | None, spec: str = ".2f") -> str:
    return "–" if value is None else format(value, spec)


def pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def datasets_in(report: dict[str, Any]) -> list[str]:
    found = {c["dataset"] for c in report.get("cells", {}).values()}
    return [d for d in DATASETS if d in found]


def epoch_cap(cell: dict[str, Any]) -> int | None:
    """The cell's ``trainer.max_epochs`` override (None: its experiment's own budget)."""
    for override in cell.get("overrides", []):
        if override.startswith("trainer.max_epochs="):
            return int(override.split("=", 1)[1])
    return None


def usual_cap(cells: Iterable[dict[str, Any]]) -> int | None:
    """The epoch cap most of these trained cells share (k-mer cells train nothing)."""
    caps = Counter(epoch_cap(c) for c in cells if c["model"] != "kmer")
    return max(caps, key=lambda cap: (caps[cap], -(cap or 0))) if caps else None


def at_cap(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One cell per (model, geometry, dimension, split): the one at the usual cap where there is
    one, else the shortest run there is (an encoder too slow for the usual budget on this
    hardware), so a table or plot compares like with like wherever it can."""
    cap = usual_cap(cells)
    chosen: dict[tuple, dict[str, Any]] = {}
    for c in cells:
        key = (c["model"], c["geometry"], c["dim"], c["split"])
        rank = (epoch_cap(c) != cap, epoch_cap(c) or 0)
        if key not in chosen or rank < (epoch_cap(chosen[key]) != cap, epoch_cap(chosen[key]) or 0):
            chosen[key] = c
    return [c for c in cells if any(c is kept for kept in chosen.values())]


def dims_of(report: dict[str, Any], dataset: str, geometry: str) -> list[tuple[int, float]]:
    """(dimension, test %RMSE) of the dimension-suite cells of one dataset and geometry."""
    model = report.get("dim_model", "linear")
    cells = finished(report, dataset=dataset, model=model, split=MAIN_SPLIT[dataset])
    points = {
        c["dim"]: c["metrics"]["test/rmse_pct"]
        for c in at_cap(cells)
        if c["geometry"] == geometry
        and c["dim"] is not None
        and c["metrics"].get("test/rmse_pct") is not None
    }
    return sorted(points.items())


def plot_dimensions(report: dict[str, Any], out_dir: Path, prefix: str) -> dict[str, str]:
    """One PNG per dataset: test %RMSE against embedding dimension, a line per geometry."""
    written: dict[str, str] = {}
    for dataset in datasets_in(report):
        lines = {g: dims_of(report, dataset, g) for g in GEOMETRIES}
        lines = {g: pts for g, pts in lines.items() if len(pts) >= 2}
        if not lines:
            continue
        fig, ax = subplots(figsize=(6, 4.2))
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
        title = f"{report.get('dim_model', 'linear')} on {dataset}"
        ax.set_title(title + (" (quick mode: not comparable)" if prefix.endswith("quick") else ""))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        name = f"{prefix}_dim_{dataset}.png"
        save_figure(fig, out_dir / name, dpi=110)
        written[dataset] = name
    return written


# markdown ---------------------------------------------------------------------------------------


def markdown(report: dict[str, Any], plot_dir: str = "benchmarks") -> str:
    """The accuracy section of docs/benchmarks.md: tables beside NeuroSEED's numbers, plot links.

    ``plot_dir`` is where the PNGs lie relative to the Markdown file."""
    parts = [f"## Accuracy: NeuroSEED's tables on real data ({report.get('mode', '?')} mode)", ""]
    parts += [f"> {report['note']}", ""] if report.get("note") else []
    hw = report.get("hardware", {})
    parts += coverage_lines(report)
    parts += [
        f"Hardware: {hw.get('cpu', '?')}, {hw.get('cpu_count', '?')} cores, GPU: "
        f"{hw.get('gpu') or 'none'}, torch {hw.get('torch', '?')}; updated "
        f"{report.get('updated', '?')}. Each cell is one `python train.py` job with the overrides "
        "listed in the JSON ledger; %RMSE = 100 * sqrt(mean((d - ED/L)^2)) over all test pairs, "
        "L the padded length.",
        "",
    ]
    commands = report.get("commands", [])
    parts += [
        f"<details><summary>The {len(commands)} commands that filled this ledger</summary>",
        "",
        *(f"- `{c}`" for c in commands),
        "",
        "</details>",
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


def coverage_lines(report: dict[str, Any]) -> list[str]:
    """How many of the planned cells are finished (each once, at any epoch cap), and the rest."""
    cov = report.get("coverage", {})
    command = f"python bench/accuracy.py{' --quick' if report.get('mode') == 'quick' else ''}"
    text = (
        f"Cells finished: {cov.get('finished', '?')} of the {cov.get('planned', '?')} that "
        f"`{command}` plans (a cell counts once, whatever epoch cap it ran at)"
    )
    missing = cov.get("missing", [])
    return [text + (f"; missing: {', '.join(missing)}." if missing else "."), ""]


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
    "- Output scale: a fresh run starts its learned scale at the least-squares fit on 8 training "
    "batches (NeuroSEED starts it at 1, which leaves a linear encoder's Manhattan distances on "
    "full-length 16S ~100x too large for thousands of steps). Every cell was trained with it: "
    "the V4 cells that ran before the change (2026-11-21) were rerun on 2026-11-27 with "
    "`--rerun-before 2026-11-22` (cells written since name the commit that produced them). "
    "The k-mer cells, whose scale was always fitted so, came out identical.",
    "- %RMSE is taken over the unordered test pairs (NeuroSEED: ordered pairs; the same value, "
    "distances being symmetric). The k-mer baseline is 5-mer frequency vectors with a least-"
    "squares scale, as NeuroSEED's.",
]
DATASET_TITLES = {
    "v4": "16S V4 reads (Qiita study 550, NeuroSEED's Qiita stand-in)",
    "greengenes": "full-length 16S (Greengenes 13_8)",
    "influenza": "influenza A segments (non-16S)",
}


def trained_epochs(cells: list[dict[str, Any]]) -> set[int]:
    """Epochs the trained encoders ran (the k-mer baseline's one scale-fitting pass aside)."""
    trained = [c for c in cells if c["model"] != "kmer"] or cells
    return {int(c["metrics"].get("train/epochs") or 0) for c in trained}


def run_facts(cells: list[dict[str, Any]]) -> str:
    """Sizes and epochs of a group of cells, as one sentence."""
    if not cells:
        return ""
    m = cells[0]["metrics"]
    spans = {
        model: span(trained_epochs([c for c in cells if c["model"] == model]))
        for model in dict.fromkeys(c["model"] for c in cells if c["model"] != "kmer")
    }
    common = Counter(spans.values()).most_common(1)
    usual = common[0][0] if common else span(trained_epochs(cells))
    unusual = [f"{model}: {text}" for model, text in spans.items() if text != usual]
    return (
        f"{int(m['data/train_seqs'])} train / {int(m['data/test_seqs'])} test sequences, "
        f"L = {int(m['data/normaliser'])}, {usual} epoch(s) trained"
        + (f" ({', '.join(unusual)})." if unusual else ".")
    )


def span(epochs: set[int]) -> str:
    low, high = min(epochs, default=0), max(epochs, default=0)
    return f"{low}" if low == high else f"{low}-{high}"


def table_section(report: dict[str, Any], dataset: str) -> list[str]:
    """Model x geometry %RMSE (NeuroSEED's beside ours on V4) and closest-string top-k, at one
    epoch budget; cells trained for other budgets follow in their own table."""
    main = MAIN_SPLIT[dataset]
    every = finished(report, dataset=dataset, split=main)
    every = [c for c in every if c["dim"] in (TABLE_DIM, None)]
    chosen = at_cap(every)
    if not chosen:
        return []
    cells = {(c["model"], c["geometry"]): c for c in chosen}
    models = [m for m in MODELS if any(k[0] == m for k in cells)]
    geoms = [g for g in GEOMETRIES if any(k[1] == g for k in cells)]
    ours_vs = dataset == "v4"
    out = [f"### {DATASET_TITLES[dataset]}: %RMSE, dimension {TABLE_DIM}", ""]
    out += [
        run_facts(chosen) + (" Cells: ours (NeuroSEED on Qiita)." if ours_vs else ""),
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
    return out + other_budgets_table([c for c in every if c not in chosen])


def other_budgets_table(cells: list[dict[str, Any]]) -> list[str]:
    """Cells of the table trained for another number of epochs (longer runs of the best)."""
    if not cells:
        return []
    out = [
        "Other training budgets (same data and protocol):",
        "",
        "| model | geometry | epochs | %RMSE | closest string top-1 / 5 / 10 (%) |",
        "|---|---|---|---|---|",
    ]
    ranks = ("top1", "top5", "top10")
    order = lambda c: (MODELS.index(c["model"]), c["geometry"], epoch_cap(c) or 0)  # noqa: E731
    for c in sorted(cells, key=order):
        src = c.get("closest_string") or {k: metric(c, f"test/{k}") for k in ranks}
        topk = " / ".join(pct(src.get(k)) for k in ranks)
        epochs = int(metric(c, "train/epochs") or 0)
        rmse = fmt(metric(c, "test/rmse_pct"))
        out.append(f"| {c['model']} | {c['geometry']} | {epochs} | {rmse} | {topk} |")
    return out + [""]


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
    model = report.get("dim_model", "linear")
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
    model = report.get("dim_model", "linear")
    every = finished(report, dataset=dataset, model=model, geometry="hyperbolic", dim=TABLE_DIM)
    every = at_cap(every)
    cells = {c["split"]: c for c in every if c["split"] in SPLITS[dataset]}
    cells = {s: cells[s] for s in SPLITS[dataset] if s in cells}
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
    v4 = [c for c in finished(report, dataset="v4", split="group") if c["dim"] in (TABLE_DIM, None)]
    if not v4:
        return []
    best = min(v4, key=lambda c: c["metrics"].get("test/rmse_pct") or math.inf)
    with_cs = [c for c in v4 if c.get("closest_string", {}).get("top10") is not None]
    out = ["### Against NeuroSEED and the goals (V4 reads, dimension 128)", ""]
    rmse = metric(best, "test/rmse_pct")
    out.append(
        f"- best %RMSE: {fmt(rmse)} ({best['model']} / {best['geometry']}, "
        f"{int(metric(best, 'train/epochs') or 0)} epochs); NeuroSEED "
        f"1.56 (CNN / hyperbolic); goal < {GOALS['rmse_pct']}: "
        f"{'met' if rmse is not None and rmse < GOALS['rmse_pct'] else 'not met'}."
    )
    if with_cs:
        top = max(with_cs, key=lambda c: c["closest_string"]["top10"])
        t10 = top["closest_string"]["top10"]
        out.append(
            f"- best closest-string top-10: {pct(t10)}% ({top['model']} / {top['geometry']}, "
            f"{int(metric(top, 'train/epochs') or 0)} epochs); NeuroSEED 85.9 (CNN / hyperbolic); "
            "goal > "
            f"{100 * GOALS['top10']:.0f}%: {'met' if t10 > GOALS['top10'] else 'not met'}."
        )
    out.append(
        f"- epochs trained per cell: {span(trained_epochs(v4))} (NeuroSEED: up to 500 with "
        "early stopping, patience 50, on a GPU)."
    )
    if not report.get("comparable_to_neuroseed"):
        out.append("- quick mode: small samples and one epoch, so none of this is a comparison.")
    return out + [""]


def estimate_section(report: dict[str, Any]) -> list[str]:
    est = report.get("estimate")
    return ["### Run time of the full benchmark", "", est, ""] if est else []
