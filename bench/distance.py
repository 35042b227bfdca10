"""Exact edit-distance throughput: neurohash's ground truth against NeuroSEED's way and edlib.

    python bench/distance.py [--quick] [--out outputs/bench_distance.json]
    python bench/distance.py --quick --out docs/benchmarks/distance.json   (for the report)

Pairs per second of three ways of computing the same unit-cost edit distances between real
sequences, in one run, at ~150 bp (V4 amplicon reads) and ~1.5 kb (Greengenes 16S):

- neurohash: rapidfuzz's bit-parallel Levenshtein over all cores (``distance_matrix``);
- NeuroSEED: python-Levenshtein's ``Levenshtein.distance`` over the pairs in a
  ``multiprocessing.Pool(5)``, as ``util/bioinformatics_algorithms/edit_distance.py`` does;
- edlib: ``edlib.align(task="distance")`` in a Python loop (one core).

All three must agree on every pair; the report gives each one's pairs/s and its ratio to
neurohash's.

It also times the cluster split's nearest-relatives scan (``nearest_by_edit_distance``: each
sequence's 8 nearest by exact edit distance, rows widened from a small cutoff) against the same
scan with no cutoff (every pair aligned in full, as before), on unique influenza segments
(~1.7 kb) and unique Greengenes 16S (~1.4 kb), and checks both give the same relatives. A
sample has fewer close relatives than the whole set, so the ratio understates the saving on a
full split.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import edlib
import Levenshtein
import numpy as np
from report import (
    GREENGENES_LENGTHS,
    INFLUENZA,
    INFLUENZA_LENGTHS,
    V4_READS,
    begin,
    provenance,
    table,
)

from neurohash.data.cleaning import Cleaning
from neurohash.data.edit_distance import distance_matrix, nearest_by_edit_distance
from neurohash.data.sources import load_records

GREENGENES_1500 = Cleaning(min_len=GREENGENES_LENGTHS[0], max_len=GREENGENES_LENGTHS[1])
SETS = {  # name -> (source, cleaning, sequences in quick mode, in full mode)
    "V4 reads (~150 bp)": (
        str(V4_READS),
        Cleaning(min_len=100),
        150,
        1000,
    ),
    "Greengenes 16S (~1.5 kb)": ("greengenes", GREENGENES_1500, 50, 300),
}
NEUROSEED_PROCESSES = 5
NEAREST_SETS = {  # name -> (source, cleaning); influenza cleaned as the accuracy bench's cells
    "influenza A segments (~1.7 kb)": (
        str(INFLUENZA),
        Cleaning(min_len=INFLUENZA_LENGTHS[0], max_len=INFLUENZA_LENGTHS[1]),
    ),
    "Greengenes 16S (~1.4 kb)": ("greengenes", GREENGENES_1500),
}
NEAREST_SIZES = (200, 1000)  # unique sequences, quick and full
RELATIVES = 8  # the cluster split's 2**depth at its default depth 3


def neuroseed_pool(seqs: list[str]) -> np.ndarray:
    """All ordered pairs through python-Levenshtein in a 5-process pool (NeuroSEED's code)."""
    pairs = [(a, b) for a in seqs for b in seqs]
    with multiprocessing.Pool(NEUROSEED_PROCESSES) as pool:
        flat = pool.starmap(Levenshtein.distance, pairs, chunksize=max(1, len(pairs) // 100))
    return np.array(flat, dtype=np.int32).reshape(len(seqs), len(seqs))


def edlib_loop(seqs: list[str]) -> np.ndarray:
    """All ordered pairs through edlib, one call per pair."""
    out = np.empty((len(seqs), len(seqs)), dtype=np.int32)
    for i, a in enumerate(seqs):
        for j, b in enumerate(seqs):
            out[i, j] = edlib.align(a, b, task="distance")["editDistance"]
    return out


METHODS: dict[str, Callable[[list[str]], np.ndarray]] = {
    "neurohash (rapidfuzz, all cores)": lambda seqs: distance_matrix(seqs),
    f"NeuroSEED (python-Levenshtein, Pool({NEUROSEED_PROCESSES}))": neuroseed_pool,
    "edlib loop (1 core)": edlib_loop,
}


def measure(seqs: list[str]) -> list[dict[str, Any]]:
    """Each method on the full matrix of ``seqs``: pairs/s, checked against the first method."""
    results, reference = [], None
    for name, method in METHODS.items():
        start = time.perf_counter()
        matrix = method(seqs)
        seconds = time.perf_counter() - start
        if reference is None:
            reference = matrix
        elif not np.array_equal(matrix, reference):
            raise AssertionError(f"{name} disagrees with {next(iter(METHODS))}")
        results.append({"method": name, "seconds": seconds, "pairs_per_s": matrix.size / seconds})
    for entry in results:
        entry["vs_neurohash"] = entry["pairs_per_s"] / results[0]["pairs_per_s"]
    return results


def nearest_scan(seqs: list[str]) -> dict[str, Any]:
    """The banded nearest-relatives scan against the same scan without a cutoff (every pair
    aligned in full, as before the band); both must give the same relatives."""
    start = time.perf_counter()
    banded = nearest_by_edit_distance(seqs, RELATIVES)
    banded_s = time.perf_counter() - start
    start = time.perf_counter()
    full = nearest_by_edit_distance(seqs, RELATIVES, first_cutoff=None)
    full_s = time.perf_counter() - start
    if not np.array_equal(banded, full):
        raise AssertionError("the banded nearest-relatives scan disagrees with the full scan")
    return {
        "sequences": len(seqs),
        "mean_length": float(np.mean([len(s) for s in seqs])),
        "relatives": RELATIVES,
        "banded_s": banded_s,
        "full_s": full_s,
        "speedup": full_s / banded_s,
    }


def run(quick: bool, seed: int) -> dict[str, Any]:
    report: dict[str, Any] = {"mode": "quick" if quick else "full", "hardware": hardware()}
    for name, (source, cleaning, n_quick, n_full) in SETS.items():
        records, _ = load_records(source, cleaning, n_quick if quick else n_full, seed)
        seqs = [rec.seq for rec in records]
        report[name] = {
            "sequences": len(seqs),
            "pairs": len(seqs) ** 2,
            "mean_length": float(np.mean([len(s) for s in seqs])),
            "methods": measure(seqs),
        }
    report["nearest"] = []
    for name, (source, cleaning) in NEAREST_SETS.items():
        records, _ = load_records(source, cleaning, NEAREST_SIZES[0 if quick else 1], seed)
        report["nearest"].append({"set": name} | nearest_scan([rec.seq for rec in records]))
    return report


def hardware() -> dict[str, Any]:
    return {
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
    }


def print_report(report: dict[str, Any]) -> None:
    for name, entry in report.items():
        if not isinstance(entry, dict) or "methods" not in entry:
            continue
        print(f"{name}: {entry['pairs']:,} pairs, mean length {entry['mean_length']:.0f}")
        for m in entry["methods"]:
            print(
                f"  {m['method']:<45} {m['pairs_per_s']:>12,.0f} pairs/s"
                f"  ({m['vs_neurohash']:.2f}x neurohash)"
            )
    for n in report["nearest"]:
        print(
            f"nearest {n['relatives']} relatives of {n['sequences']:,} {n['set']}: banded "
            f"{n['banded_s']:.1f} s, full scan {n['full_s']:.1f} s ({n['speedup']:.1f}x)"
        )


def markdown(report: dict[str, Any]) -> str:
    """The report's section: one table per sequence set."""
    lines = [
        "## Exact edit distance (ground truth)",
        "",
        "Full matrices of real sequences; all three methods agree on every pair (checked). "
        f"NeuroSEED's way: python-Levenshtein in a `multiprocessing.Pool({NEUROSEED_PROCESSES})`.",
    ]
    for name, entry in report.items():
        if not isinstance(entry, dict) or "methods" not in entry:
            continue
        lines += [
            "",
            f"**{name}**: {entry['sequences']:,} sequences, {entry['pairs']:,} pairs, "
            f"mean length {entry['mean_length']:.0f}",
            "",
        ]
        rows = [
            [
                m["method"],
                f"{m['seconds']:.2f}",
                f"{m['pairs_per_s']:,.0f}",
                f"{m['vs_neurohash']:.2f}x",
            ]
            for m in entry["methods"]
        ]
        lines.append(table(["method", "seconds", "pairs/s", "vs neurohash"], rows))
    lines += ["", nearest_markdown(report["nearest"])]
    return "\n".join(lines)


def nearest_markdown(scans: list[dict[str, Any]]) -> str:
    """The cluster split's nearest-relatives scan, banded against full, one row per set."""
    rows = [
        [
            n["set"],
            f"{n['sequences']:,}",
            f"{n['mean_length']:.0f}",
            f"{n['banded_s']:.1f}",
            f"{n['full_s']:.1f}",
            f"{n['speedup']:.1f}x",
        ]
        for n in scans
    ]
    header = ["set", "unique sequences", "mean length", "banded s", "full scan s", "speed-up"]
    return "\n".join(
        [
            f"**Cluster split, nearest {scans[0]['relatives']} relatives**, banded (neurohash) "
            "against a full all-pairs scan (no cutoff); both give the same relatives (checked). "
            "A sample has fewer close relatives than the whole set, so this understates the "
            "saving on a full split.",
            "",
            table(header, rows),
        ]
    )


def main(argv: list[str] | None = None) -> None:
    started, argv = begin(argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small samples (about a minute)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="outputs/bench_distance.json", help="JSON report")
    args = parser.parse_args(argv)
    report = run(args.quick, args.seed)
    report = report | provenance(__file__, argv, started, report["mode"])
    print_report(report)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"report written to {args.out}")


if __name__ == "__main__":
    main()
