"""The database on disk: its size against the gzipped input, the memory of builds and searches,
and a segmented database against one segment.

    python bench/store.py [--quick] [--ckpt CKPT] [--segment-regions 25000] [--queries 200]
        [--workdir outputs/bench_store] [--out docs/benchmarks/store.json] [--reuse-shards]

Everything runs through the commands a user types, each under ``/usr/bin/time -v`` (wall time
and peak RSS):

1. ``python predict.py`` embeds all 100,000 V4 reads and, as a second run, every genome of
   ``../shared/data/genomes/`` (the model's window, one region per kb on average).
2. ``neurohash index`` builds the reads' database and ``neurohash index --append`` adds the
   genomes, twice: in segments of ``--segment-regions`` regions, and without the int8
   embeddings (``--no-embeddings``); ``neurohash compact`` then merges the segmented one into
   one segment. ``neurohash stats --json`` gives bytes per region of codes + postings, of the
   sequence store and of the embeddings, and the size against the gzipped input files.
3. ``--queries`` queries (stored V4 reads and 150 bp fragments of stored genome regions, drawn
   at random and mutated at 2% substitutions and 0.5% insertions and deletions) are searched with
   ``neurohash search --rerank`` in the segmented and the compacted database; recall@10
   against the exact edit-distance top-10 over every stored region (a target's distance is its
   best region's), queries/s from the shell, start-up included.

Without ``--ckpt`` the small V4 model of ``bench/search_scale.py`` is trained first (or reused).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
from report import ROOT, SHARED_DATA, V4_READS, begin, publish, table
from search import neurohash_command, recall, write_fasta
from search_scale import ensure_model

from neurohash.data.edit_distance import distance_matrix
from neurohash.data.fasta import SequenceRecord, iter_records
from neurohash.data.mutation import MutationRates, mutate
from neurohash.index.database import Database

GENOMES = SHARED_DATA / "genomes"
RATES = MutationRates(substitution=0.02, insertion=0.005, deletion=0.005)


def measured(*command: str) -> dict[str, float]:
    """Run ``command`` under /usr/bin/time -v from the repository root: wall s, peak RSS MB."""
    print("$", " ".join(command), flush=True)
    result = subprocess.run(
        ["/usr/bin/time", "-v", *command], cwd=ROOT, capture_output=True, text=True
    )
    if result.returncode != 0:
        sys.exit(f"failed ({result.returncode}): {result.stderr[-3000:]}")
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr)
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", result.stderr)
    parts = [float(x) for x in wall.group(1).split(":")]
    seconds = sum(p * 60**i for i, p in enumerate(reversed(parts)))
    return {"wall_s": round(seconds, 2), "peak_rss_mb": round(int(rss.group(1)) / 1024, 1)}


def predict(ckpt: Path, inputs: str, shards: Path, quick: bool, reuse: bool) -> dict[str, float]:
    """python predict.py into ``shards``, afresh unless ``reuse`` (then a finished run of the
    same job is kept: its job key covers model, inputs and settings)."""
    if not reuse:
        shutil.rmtree(shards, ignore_errors=True)
    overrides = [f"ckpt_path={ckpt}", f"input={inputs}", f"output_dir={shards}"]
    overrides += [f"hydra.run.dir={shards}_run", "trainer.enable_progress_bar=false"]
    if quick:
        overrides.append("shard_size=2000")
    return measured(sys.executable, "predict.py", *overrides)


def inputs(args: argparse.Namespace, work: Path) -> tuple[str, str]:
    """The reads and genome inputs (a small sample of each with ``--quick``)."""
    if not args.quick:
        return str(V4_READS), str(GENOMES / "*")
    reads = [r for _, r in zip(range(3000), iter_records(V4_READS), strict=False)]
    genome = next(iter_records(GENOMES / "shew_os185.fa.gz"))
    part = SequenceRecord(genome.id, genome.seq[:300_000])
    return str(write_fasta(work / "reads.fasta", reads)), str(write_fasta(work / "g.fasta", [part]))


def build(shards: dict[str, Path], db: Path, *extra: str) -> dict[str, dict[str, float]]:
    """neurohash index (the reads) then index --append (the genomes) into a fresh ``db``."""
    shutil.rmtree(db, ignore_errors=True)
    neurohash = neurohash_command()
    return {
        "index": measured(neurohash, "index", str(shards["reads"]), "-o", str(db), *extra),
        "append": measured(
            neurohash, "index", "--append", str(shards["genomes"]), str(db), *extra[:2]
        ),
    }


def stats(db: Path) -> dict[str, Any]:
    command = [neurohash_command(), "stats", str(db), "--json"]
    return json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)


def queries(db: Database, n: int, seed: int) -> list[SequenceRecord]:
    """Mutated copies of stored regions drawn at random (150 bp fragments of longer ones)."""
    rng = np.random.default_rng(seed)
    seqs = db.sequences()
    rows = rng.choice(len(seqs), size=n, replace=False)
    out = []
    for i, row in enumerate(rows.tolist()):
        seq = seqs[row]
        if len(seq) > 150:
            start = int(rng.integers(0, len(seq) - 150 + 1))
            seq = seq[start : start + 150]
        seq = mutate(seq, RATES, rng, len(seq) + 20)
        out.append(SequenceRecord(f"q{i}", seq))
    return out


def truth(db: Database, records: list[SequenceRecord], block: int = 50_000) -> np.ndarray:
    """(queries, targets) exact edit distance of each query to each target's best region
    (int16), computed block by block over the stored regions."""
    seqs = [r.seq for r in records]
    ceiling = np.iinfo(np.int16).max
    best = np.full((len(seqs), int(db.manifest["counts"]["sequences"])), ceiling, np.int16)
    for first in range(0, db.regions, block):
        rows = np.arange(first, min(first + block, db.regions))
        distances = np.minimum(distance_matrix(seqs, db.region_sequences(rows)), ceiling)
        owner = db.target_of[rows]
        order = np.argsort(owner, kind="stable")
        targets, starts = np.unique(owner[order], return_index=True)
        nearest = np.minimum.reduceat(distances[:, order], starts, axis=1)
        best[:, targets] = np.minimum(best[:, targets], nearest)
    return best


def searched(db: Path, fasta: Path, out: Path, k: int) -> dict[str, float]:
    command = [neurohash_command(), "search", str(db), str(fasta), "-k", str(k), "--rerank"]
    return measured(*command, "-o", str(out))


def hits_of(path: Path, column_of: dict[str, int], n: int) -> list[list[int]]:
    found: list[list[int]] = [[] for _ in range(n)]
    for line in path.read_text().splitlines()[1:]:
        query, target = line.split("\t")[:2]
        found[int(query[1:])].append(column_of[target])
    return found


def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    ckpt = Path(args.ckpt or ensure_model(work)).resolve()
    reads, genomes = inputs(args, work)
    shards = {"reads": work / "reads.shards", "genomes": work / "genomes.shards"}
    steps = {
        "predict reads": predict(ckpt, reads, shards["reads"], args.quick, args.reuse_shards),
        "predict genomes": predict(ckpt, genomes, shards["genomes"], args.quick, args.reuse_shards),
    }
    segmented, lean = work / "segmented.db", work / "lean.db"
    size = ["--segment-regions", str(args.segment_regions)]
    for name, value in build(shards, segmented, *size).items():
        steps[f"{name} (segments)"] = value
    for name, value in build(shards, lean, *size, "--no-embeddings").items():
        steps[f"{name} (no embeddings)"] = value
    report: dict[str, Any] = {"sizes": {"segmented": stats(segmented), "lean": stats(lean)}}
    compacted = work / "compacted.db"
    shutil.rmtree(compacted, ignore_errors=True)
    shutil.copytree(segmented, compacted)
    steps["compact"] = measured(neurohash_command(), "compact", str(compacted))
    report["sizes"]["compacted"] = stats(compacted)
    report["search"] = search_both(args, work, segmented, compacted, steps)
    report["steps"] = steps
    report["input_gz_bytes"] = report["sizes"]["lean"]["input_bytes"]
    report["config"] = {"queries": args.queries, "segment_regions": args.segment_regions}
    return report


def search_both(
    args: argparse.Namespace, work: Path, segmented: Path, compacted: Path, steps: dict
) -> dict[str, Any]:
    db = Database.open(compacted)
    records = queries(db, args.queries, args.seed)
    fasta = write_fasta(work / "queries.fasta", records)
    exact, ids = truth(db, records), db.target_ids()
    if len(set(ids)) != len(ids):
        sys.exit("stored ids are not unique: hits cannot be told apart")
    column_of = {target: i for i, target in enumerate(ids)}
    out = {}
    for name, path in (("segmented", segmented), ("one segment", compacted)):
        tsv = work / f"hits_{name.replace(' ', '_')}.tsv"
        steps[f"search ({name})"] = searched(path, fasta, tsv, args.k)
        found = hits_of(tsv, column_of, len(records))
        out[name] = recall(found, exact, args.k)
        out[name]["queries_per_s"] = len(records) / steps[f"search ({name})"]["wall_s"]
    return out


def markdown(report: dict[str, Any]) -> str:
    sizes, steps = report["sizes"], report["steps"]
    lean = sizes["lean"]
    size_rows = [
        (
            name,
            f"{s['regions']:,}",
            s["segments"],
            f"{s['bytes_codes_postings_per_region']:.1f}",
            f"{s['bytes_sequences_per_region']:.1f}",
            f"{s['bytes_embeddings_per_region']:.1f}",
            f"{s['bytes_data']:,}",
            f"{s['compression_ratio']:.2f}x" if s["compression_ratio"] else "-",
        )
        for name, s in sizes.items()
    ]
    step_rows = [
        (name, f"{v['wall_s']:.1f}", f"{v['peak_rss_mb']:.0f}") for name, v in steps.items()
    ]
    search_rows = [
        (name, f"{v['recall@1']:.3f}", f"{v['recall@10']:.3f}", f"{v['queries_per_s']:.1f}")
        for name, v in report["search"].items()
    ]
    header = ["database", "regions", "segments", "codes + postings", "sequence store"]
    header += ["int8 embeddings", "bytes", "input.gz / database"]
    return "\n".join(
        [
            "## Database on disk",
            "",
            f"Input: {report['input_gz_bytes']:,} bytes of gzipped FASTA (the V4 reads and the "
            f"genomes). Without embeddings the database takes {lean['bytes_data']:,} bytes, "
            f"{lean['compression_ratio']:.2f}x smaller than its gzipped input; codes and postings "
            f"take {lean['bytes_codes_postings_per_region']:.1f} bytes per region. Bytes per "
            "region by part (`neurohash stats --json`):",
            "",
            table(header, size_rows),
            "",
            "Every command under `/usr/bin/time -v`:",
            "",
            table(["command", "wall s", "peak RSS MB"], step_rows),
            "",
            f"`neurohash search --rerank` of {report['config']['queries']} mutated copies of "
            "stored "
            "regions, recall against the exact edit-distance top-10 over every stored region; "
            "queries/s from the shell, start-up included:",
            "",
            table(["database", "recall@1", "recall@10", "queries/s"], search_rows),
        ]
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3,000 reads and 300 kb of genome")
    parser.add_argument("--ckpt", help="a V4 checkpoint (default: train the bench model)")
    parser.add_argument("--segment-regions", type=int, default=25_000)
    parser.add_argument(
        "--reuse-shards", action="store_true", help="keep finished shards of an earlier run"
    )
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", default="outputs/bench_store")
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks" / "store.json"))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    started, argv = begin(argv)
    args = parse_args(argv)
    if args.quick and args.segment_regions == 25_000:
        args.segment_regions = 2_000
    report = run(args)
    return publish("bench/store.py", argv, started, args.quick, report, args.out, markdown)


if __name__ == "__main__":
    main()
