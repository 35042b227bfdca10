"""Genome regions: neurohash beside minimap2, BLAST, MMseqs2 and Mash on the same queries and
the same stored genomes.

    python bench/genomes.py [--quick] [--ckpt CKPT] [--reads 100] [--windows 40]
        [--workdir outputs/bench_genomes] [--out docs/benchmarks/genomes.json] [--reuse-shards]
        [--predict OVERRIDE ...] [--no-embeddings] [--step S] [--candidates N] [--refine F]
        [--peers [NAME ...]]

Peers need Debian's ``minimap2``, ``ncbi-blast+``, ``mmseqs2`` and ``mash``
(``apt-get install -y minimap2 ncbi-blast+ mmseqs2 mash``); without the ``minimap2`` binary the
``mappy`` package is used, without ``mash`` the ``sourmash`` package (both in the ``bench``
extra: ``pip install -e '.[bench]'``). A peer that is not installed is skipped with a note.

**Database.** The genomes of ``../shared/data/genomes/`` except the query genomes: *E. coli*
K-12, *B. subtilis*, *C. diphtheriae*, the Sphingobacteriaceae draft (78 contigs),
*Akkermansia*, *S. baltica* OS185, the *Kutzneria* scaffold and the SRR492066 contig.
neurohash stores them through the user's commands (``python predict.py`` -> ``neurohash index``,
regions as ``conf/predict.yaml`` sets them: the model's window, one region per kb), each peer
indexes the same sequences (``minimap2 -d``, ``makeblastdb``, ``mmseqs createdb``
(in 60 kb pieces, no ``createindex``: see ``mmseqs_build``), ``mash sketch`` one sketch per
genome).

**Tasks** (every query searched by every tool; ``neurohash search -k 10 --rerank
--by-region``, hits are places, as the peers' are):

- (a) reads and fragments of 150 bp, 1 kb and 5 kb from random places of the stored genomes
  (a 5 kb query is cut into regions at the database's own canonical anchors), mutated
  by ``neurohash.data.mutation`` at 1%, 5% and 10% divergence (70% substitutions, 15%
  insertions, 15% deletions), every second one reverse-complemented. Truth: the origin. A hit
  is correct when it names the origin record and its interval overlaps the origin's.
- (b) cross-strain: pieces (``--piece``, default 40% of the database's region length: a query
  under half a region is re-ranked by its semi-global distance, as the truth is) of
  *S. baltica* OS223 against the database that holds OS185, and of the other *E. coli* contig
  (MIIJ01000039, its N run avoided) against the one that holds K-12;
- (c) pieces of held-out genomes (*Salmonella* LT2, a relative of the stored *E. coli*, and
  the Tara Oceans MAG, which has none) against the rest.

  Pieces as long as a region are not used: at a random offset from the stored windows, their
  global distance to the true homolog grows with the offset (a known limit of ``--alignment
  auto``, which takes the global distance for them).

For (b) and (c) the truth is the stored region with the smallest exact semi-global edit
distance (edlib ``HW``: the query wholly aligned, free ends in the region), over every stored
region and both strands of the query (ties all count); a hit is correct when it names that
region's record and overlaps it. recall@1: the first hit is correct; recall@10: one of the first
10 is. Genome level: the genome of most of a group's top-1 hits against the genome that holds
most of its truth regions; Mash answers this level only (the nearest sketch by Mash distance of
the whole query genome).

neurohash's hits are stored regions (``--by-region``), judged like the peers' alignments by
the ``target_start`` / ``target_end`` of its TSV (read by column name). Queries/s are from
the shell, start-up included (neurohash loads torch and its model on every call: a fixed few
seconds); index bytes per stored base are the files each tool writes to search (neurohash:
``neurohash stats``). MMseqs2's nucleotide prefilter builds its k-mer table in every search
(about 8 GB of memory here, whatever the database size).
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from report import ROOT, SHARED_DATA, begin, publish, save_figure, subplots, table
from search import neurohash_command, write_fasta

from neurohash.data.fasta import SequenceRecord, iter_records, reverse_complement
from neurohash.data.mutation import MutationRates, mutate

GENOMES = SHARED_DATA / "genomes"
FILES = {
    "E. coli K-12": "GCF_000005845.2_ASM584v2_genomic.fna.gz",
    "B. subtilis": "GCF_000009045.1_ASM904v1_genomic.fna.gz",
    "C. diphtheriae": "GCF_001457455.1_NCTC11397_genomic.fna.gz",
    "Sphingobacteriaceae (draft)": "GCF_000783305.1_ASM78330v1_genomic.fna.gz",
    "Akkermansia": "akkermansia.fa.gz",
    "S. baltica OS185": "shew_os185.fa.gz",
    "Kutzneria": "KK037166.fna.gz",
    "SRR492066 contig": "SRR492066.fna.gz",
    # queries only
    "S. baltica OS223": "shew_os223.fa.gz",
    "E. coli MIIJ01000039": "MIIJ01000039.fna.gz",
    "Salmonella LT2": "GCF_000006945.1_ASM694v1_genomic.fna.gz",
    "Tara MAG": "TARA_ASE_MAG_00031.fa.gz",
}
STORED = list(FILES)[:8]
CROSS = [("S. baltica OS223", "S. baltica OS185"), ("E. coli MIIJ01000039", "E. coli K-12")]
HELD_OUT = ["Salmonella LT2", "Tara MAG"]
# --quick: the first QUICK_BASES of two stored genomes, of OS223, the contig and Salmonella
QUICK_STORED = ["E. coli K-12", "S. baltica OS185"]
QUICK_CROSS = CROSS[:1]
QUICK_HELD_OUT = ["Salmonella LT2"]
QUICK_BASES = 120_000
# --quick: MMseqs2's k-mer length; the default 15 makes its prefilter fill a 4^15 table (8 GB,
# ~17 s a search) whatever the database size, 12 takes 4^12 for the 240 kb stored here
QUICK_MMSEQS_K = 12
LENGTHS = (150, 1000, 5000)  # a read, a region-long fragment, and one the query side cuts
DIVERGENCES = (0.01, 0.05, 0.10)
K = 10
THREADS = 2
DEFAULT_CKPT = "outputs/genomes_model/checkpoints/last.ckpt"
ACGT = re.compile(r"^[ACGT]+$")


# genomes and queries ----------------------------------------------------------------------------


def load_genome(name: str, quick: bool) -> list[SequenceRecord]:
    """The genome's records, upper-cased; with ``quick`` its first QUICK_BASES of ACGT."""
    records = [SequenceRecord(r.id, r.seq.upper()) for r in iter_records(GENOMES / FILES[name])]
    if not quick:
        return records
    rec = records[0]
    start = 0
    while "N" in rec.seq[start : start + QUICK_BASES] and start + QUICK_BASES < len(rec.seq):
        start += QUICK_BASES // 4  # the E. coli contig's masked half
    return [SequenceRecord(rec.id, rec.seq[start : start + QUICK_BASES])]


@dataclass
class Query:
    id: str
    seq: str
    task: str  # a, b, c
    group: str  # a: "150 bp, 5%"; b, c: the query genome
    strand: str = "+"  # a: the strand the read was taken from
    intervals: list[tuple[str, int, int]] = field(default_factory=list)  # truth: record, start, end
    postings: list[int] = field(default_factory=list)  # stored regions of the truth
    distance: int | None = None  # b, c: the truth's semi-global edit distance


def fragment(
    rng: np.random.Generator, records: list[SequenceRecord], length: int
) -> tuple[str, int, str]:
    """(record id, start, bases) of an ACGT-only stretch drawn uniformly over the records."""
    usable = [r for r in records if len(r.seq) > length]
    weights = np.array([len(r.seq) - length for r in usable], dtype=float)
    for _ in range(1000):
        rec = usable[int(rng.choice(len(usable), p=weights / weights.sum()))]
        start = int(rng.integers(0, len(rec.seq) - length + 1))
        seq = rec.seq[start : start + length]
        if ACGT.match(seq):
            return rec.id, start, seq
    raise SystemExit(f"no ACGT-only stretch of {length} bases among {[r.id for r in usable]}")


def setting(length: int, divergence: float) -> str:
    """The group name of task (a)'s reads of one length and divergence."""
    return f"{length} bp, {divergence:.0%}"


def read_queries(stored: dict[str, list[SequenceRecord]], n: int, seed: int) -> list[Query]:
    """Task (a): n mutated reads per length and divergence, every second reverse-complemented."""
    rng = np.random.default_rng(seed)
    records = [rec for recs in stored.values() for rec in recs]
    out = []
    for length in LENGTHS:
        for div in DIVERGENCES:
            rates = MutationRates(substitution=0.7 * div, insertion=0.15 * div, deletion=0.15 * div)
            for i in range(n):
                record, start, seq = fragment(rng, records, length)
                seq = mutate(seq, rates, rng)
                strand = "-" if i % 2 else "+"
                if strand == "-":
                    seq = reverse_complement(seq)
                out.append(
                    Query(
                        f"a{length}_{round(div * 100)}_{i}",
                        seq,
                        "a",
                        setting(length, div),
                        strand,
                        [(record, start, start + length)],
                    )
                )
    return out


def window_queries(
    genomes: dict[str, list[SequenceRecord]], task: str, n: int, window: int, seed: int
) -> list[Query]:
    """Tasks (b) and (c): n pieces of ``window`` bases from each query genome."""
    rng = np.random.default_rng(seed)
    out = []
    for g, (name, records) in enumerate(genomes.items()):
        for i in range(n):
            _, _, seq = fragment(rng, records, window)
            out.append(Query(f"{task}{g}_{i}", seq, task, name))
    return out


# running commands -------------------------------------------------------------------------------


class CommandFailed(RuntimeError):
    pass


def run(*command: str, stdout: Path | None = None) -> float:
    """Run ``command`` from the repository root; its wall time in s (stdout to a file if given)."""
    print("$", " ".join(command), flush=True)
    started = time.perf_counter()
    with open(stdout, "w") if stdout else open("/dev/null", "w") as sink:
        result = subprocess.run(command, cwd=ROOT, stdout=sink, stderr=subprocess.PIPE, text=True)
    if result.returncode != 0:
        raise CommandFailed(f"{command[0]} failed ({result.returncode}): {result.stderr[-2000:]}")
    return time.perf_counter() - started


def files_bytes(*paths: Path) -> int:
    """Bytes of the files (and of every file under the folders) given."""
    total = 0
    for path in paths:
        if path.is_dir():
            total += sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        elif path.is_file():
            total += path.stat().st_size
    return total


def has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


# a hit: (record id, start, end) 0-based half-open; neurohash's also carries its TSV row
Hit = dict[str, Any]


# neurohash --------------------------------------------------------------------------------------


def neurohash_build(args: argparse.Namespace, work: Path, stored_dir: Path) -> dict[str, Any]:
    """python predict.py over the stored genome files, then neurohash index."""
    shards, db = work / "shards", work / "db"
    if not args.reuse_shards:
        shutil.rmtree(shards, ignore_errors=True)
        shutil.rmtree(work / "predict_run", ignore_errors=True)
    predict_s = run(
        sys.executable,
        "predict.py",
        f"ckpt_path={Path(args.ckpt).resolve()}",
        f"input={stored_dir}/*.fa",
        f"output_dir={shards}",
        f"hydra.run.dir={work / 'predict_run'}",
        "trainer.enable_progress_bar=false",
        *args.predict,
    )
    codes_only = ["--no-embeddings"] if args.no_embeddings else []
    index_s = run(neurohash_command(), "index", str(shards), "-o", str(db), "--force", *codes_only)
    stats = json.loads(
        subprocess.run(
            [neurohash_command(), "stats", str(db), "--json"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    return {
        "build_s": predict_s + index_s,
        "predict_s": predict_s,
        "index_s": index_s,
        "shards_reused": args.reuse_shards,
        "stats": stats,
        "index_bytes": stats["bytes_codes_postings"],
        "index_bytes_with_sequences": stats["bytes_codes_postings"] + stats["bytes_sequences"],
        "data_bytes": stats["bytes_data"],
    }


def neurohash_search(
    work: Path, fasta: Path, out: Path, step: str, candidates: int | None, refine: float | None
) -> tuple[float, dict[str, list[Hit]]]:
    command = [
        neurohash_command(),
        "search",
        str(work / "db"),
        str(fasta),
        "-k",
        str(K),
        "--rerank",
        "--by-region",  # hits are places, as the peers' alignments are
        "--step",
        step,
        *(["--candidates", str(candidates)] if candidates else []),
        *(["--refine", str(refine)] if refine else []),
    ]
    seconds = run(*command, "-o", str(out))
    return seconds, parse_neurohash(out)


def parse_neurohash(path: Path) -> dict[str, list[Hit]]:
    """Hits per query from the search TSV (by column name), in rank order."""
    lines = path.read_text().splitlines()
    col = {name: i for i, name in enumerate(lines[0].split("\t"))}
    found: dict[str, list[Hit]] = {}
    for line in lines[1:]:  # rows come in rank order per query
        f = line.split("\t")
        hit: Hit = {
            "record": f[col["target_id"]],
            "start": int(f[col["target_start"]]),
            "end": int(f[col["target_end"]]),
        }
        found.setdefault(f[col["query_id"]], []).append(hit)
    return found


# peers ------------------------------------------------------------------------------------------


def minimap2_build(ref: Path, work: Path) -> dict[str, Any]:
    """Two indexes: -x sr (short reads) and -x map-ont (the 1 kb fragments and windows)."""
    out: dict[str, Any] = {"build_s": 0.0, "note": ""}
    if shutil.which("minimap2"):
        for preset in ("sr", "map-ont"):
            index = str(work / f"{preset}.mmi")
            out["build_s"] += run(*f"minimap2 -x {preset} -t {THREADS} -d".split(), index, str(ref))
        out["index_bytes"] = files_bytes(work / "map-ont.mmi")
        out["index_bytes_sr"] = files_bytes(work / "sr.mmi")
        out["note"] = "-x sr for 150 bp, -x map-ont otherwise; bytes: the map-ont .mmi"
    else:  # mappy: same library, indexes built in memory
        import mappy

        for preset in ("sr", "map-ont"):
            started = time.perf_counter()
            mappy.Aligner(
                str(ref), preset=preset, n_threads=THREADS, fn_idx_out=str(work / f"{preset}.mmi")
            )
            out["build_s"] += time.perf_counter() - started
        out["index_bytes"] = files_bytes(work / "map-ont.mmi")
        out["note"] = "mappy (no minimap2 binary); -x sr for 150 bp, -x map-ont otherwise"
    return out


def minimap2_search(work: Path, fasta: Path, out: Path) -> tuple[float, dict[str, list[Hit]]]:
    records = list(iter_records(fasta))
    seconds, found = 0.0, {}
    for preset, keep in (("sr", lambda n: n <= 300), ("map-ont", lambda n: n > 300)):
        part = [r for r in records if keep(len(r.seq))]
        if not part:
            continue
        if shutil.which("minimap2"):
            qfile = write_fasta(out.with_suffix(f".{preset}.fa"), part)
            paf = out.with_suffix(f".{preset}.paf")
            options = f"minimap2 -x {preset} -t {THREADS} -N {K} -o".split()
            seconds += run(*options, str(paf), str(work / f"{preset}.mmi"), str(qfile))
            for line in paf.read_text().splitlines():
                f = line.split("\t")
                hit = {"record": f[5], "start": int(f[7]), "end": int(f[8])}
                found.setdefault(f[0], []).append(hit)
        else:
            import mappy

            started = time.perf_counter()
            aligner = mappy.Aligner(str(work / f"{preset}.mmi"), preset=preset, best_n=K)
            for rec in part:
                for h in aligner.map(rec.seq):
                    found.setdefault(rec.id, []).append(
                        {"record": h.ctg, "start": h.r_st, "end": h.r_en}
                    )
            seconds += time.perf_counter() - started
    return seconds, found


def blast_build(ref: Path, work: Path) -> dict[str, Any]:
    prefix = work / "blastdb" / "stored"
    prefix.parent.mkdir(parents=True, exist_ok=True)
    seconds = run("makeblastdb", "-in", str(ref), "-dbtype", "nucl", "-out", str(prefix))
    return {"build_s": seconds, "index_bytes": files_bytes(prefix.parent), "note": "megablast"}


def blast_search(work: Path, fasta: Path, out: Path) -> tuple[float, dict[str, list[Hit]]]:
    options = f"-max_target_seqs {K} -num_threads {THREADS}".split()
    seconds = run(
        *("blastn", "-query", str(fasta), "-db", str(work / "blastdb" / "stored")),
        *("-outfmt", "6 qseqid sseqid sstart send bitscore", *options, "-out", str(out)),
    )
    return seconds, best_rows(out, (0, 1, 2, 3, 4), one_based=True)


def best_rows(path: Path, cols: tuple[int, ...], one_based: bool) -> dict[str, list[Hit]]:
    """Tabular alignments (query, target, start, end, score) -> hits per query, best score
    first, coordinates 0-based half-open (either strand's order)."""
    rows: dict[str, list[tuple[float, Hit]]] = {}
    q, t, s, e, score = cols
    for line in path.read_text().splitlines():
        f = line.split("\t")
        a, b = sorted((int(f[s]), int(f[e])))
        hit = {"record": f[t], "start": a - 1 if one_based else a, "end": b}
        rows.setdefault(f[q], []).append((-float(f[score]), hit))
    return {qid: [h for _, h in sorted(hits, key=lambda x: x[0])][:K] for qid, hits in rows.items()}


MMSEQS_CHUNK, MMSEQS_OVERLAP = 60_000, 2_000  # MMseqs2's sequences stay under 65,535 bases


def mmseqs_build(ref: Path, work: Path) -> dict[str, Any]:
    """Stored sequences cut into 60 kb pieces overlapping by 2 kb (MMseqs2's --max-seq-len is
    65,535), then createdb. No ``createindex``: for nucleotide search it wrote 8.1 GB for 240 kb
    of genome (--quick), so easy-search builds its k-mer index on the fly for each search."""
    pieces = []
    for rec in iter_records(ref):
        for start in range(0, max(1, len(rec.seq) - MMSEQS_OVERLAP), MMSEQS_CHUNK - MMSEQS_OVERLAP):
            seq = rec.seq[start : start + MMSEQS_CHUNK]
            pieces.append(SequenceRecord(f"{rec.id}@{start}", seq))
    chunks = write_fasta(work / "mmseqs_pieces.fa", pieces)
    db = work / "mmseqs" / "stored"
    shutil.rmtree(db.parent, ignore_errors=True)
    db.parent.mkdir(parents=True)
    seconds = run("mmseqs", "createdb", str(chunks), str(db), "--dbtype", "2")
    note = "createdb of 60 kb pieces; no createindex (its nucleotide index took 8 GB here)"
    return {"build_s": seconds, "index_bytes": files_bytes(db.parent), "note": note}


def mmseqs_search(
    work: Path, fasta: Path, out: Path, kmer: int | None = None
) -> tuple[float, dict[str, list[Hit]]]:
    """easy-search of the pieces' database; ``kmer`` sets ``-k`` (--quick), else MMseqs2's own."""
    options = f"--search-type 3 --threads {THREADS} --max-seqs 100".split()
    options += ["-k", str(kmer)] if kmer else []
    target, tmp = str(work / "mmseqs" / "stored"), str(work / "mmseqs_tmp")
    seconds = run("mmseqs", "easy-search", str(fasta), target, str(out), tmp, *options)
    found = best_rows(out, (0, 1, 8, 9, 11), one_based=True)
    for hits in found.values():  # piece coordinates -> record coordinates
        for hit in hits:
            record, offset = hit["record"].rsplit("@", 1)
            hit.update(
                record=record, start=hit["start"] + int(offset), end=hit["end"] + int(offset)
            )
    return seconds, found


PEERS = {
    "minimap2": (
        lambda: shutil.which("minimap2") or has_module("mappy"),
        minimap2_build,
        minimap2_search,
    ),
    "BLAST": (
        lambda: shutil.which("blastn") and shutil.which("makeblastdb"),
        blast_build,
        blast_search,
    ),
    "MMseqs2": (lambda: shutil.which("mmseqs"), mmseqs_build, mmseqs_search),
}
PACKAGES = {
    "minimap2": "Debian minimap2 or pip mappy",
    "BLAST": "Debian ncbi-blast+",
    "MMseqs2": "Debian mmseqs2",
    "Mash": "Debian mash or pip sourmash",
}


# Mash: whole genomes ----------------------------------------------------------------------------


def mash_nearest(
    stored_files: dict[str, Path], queries: dict[str, Path], work: Path
) -> dict[str, Any] | None:
    """The nearest stored genome of each query genome by Mash distance (k 21, 1,000 hashes),
    or by sourmash's (k 21, scaled 1,000) without mash; None when neither is installed."""
    names = {str(path): name for name, path in stored_files.items()}
    if shutil.which("mash"):
        sketch = work / "mash" / "stored"
        sketch.parent.mkdir(parents=True, exist_ok=True)
        build_s = run("mash", "sketch", "-o", str(sketch), *names)
        nearest, seconds = {}, 0.0
        for name, path in queries.items():
            out = work / "mash" / f"dist_{len(nearest)}.tsv"
            seconds += run("mash", "dist", str(sketch) + ".msh", str(path), stdout=out)
            rows = [line.split("\t") for line in out.read_text().splitlines()]
            best = min(rows, key=lambda f: float(f[2]))
            nearest[name] = {"genome": names[best[0]], "distance": float(best[2])}
        tool, size = "mash", files_bytes(Path(str(sketch) + ".msh"))
    elif has_module("sourmash"):
        import sourmash

        def sketch_of(path: Path) -> Any:
            mh = sourmash.MinHash(n=0, ksize=21, scaled=1000)
            for rec in iter_records(path):
                mh.add_sequence(rec.seq, force=True)
            return mh

        started = time.perf_counter()
        sketches = {name: sketch_of(path) for name, path in stored_files.items()}
        build_s = time.perf_counter() - started
        size = sum(len(mh.hashes) * 8 for mh in sketches.values())
        nearest, started = {}, time.perf_counter()
        for name, path in queries.items():
            mh = sketch_of(path)
            dist = {g: 1 - mh.jaccard(s) for g, s in sketches.items()}
            best = min(dist, key=dist.get)
            nearest[name] = {"genome": best, "distance": dist[best]}
        seconds, tool = time.perf_counter() - started, "sourmash"
    else:
        return None
    return {"tool": tool, "build_s": build_s, "index_bytes": size, "search_s": seconds} | {
        "nearest": nearest
    }


# truth ------------------------------------------------------------------------------------------


@dataclass
class Regions:
    """Every stored region of the neurohash database: record id, start, end, bases."""

    record: list[str]
    start: np.ndarray
    end: np.ndarray
    seqs: list[str]

    @classmethod
    def of(cls, db_dir: Path) -> Regions:
        from neurohash.index.database import Database

        db = Database.open(db_dir)
        ids = db.target_ids()
        starts = np.concatenate([s.region_start for s in db.segments]).astype(np.int64)
        ends = np.concatenate([s.region_end for s in db.segments]).astype(np.int64)
        return cls([ids[t] for t in db.target_of.tolist()], starts, ends, db.sequences())

    def overlapping(self, record: str, start: int, end: int) -> list[int]:
        return [
            i
            for i in np.flatnonzero((self.start < end) & (self.end > start)).tolist()
            if self.record[i] == record
        ]


_REGIONS: list[str] = []  # the stored region sequences, inherited by forked truth workers
SEED_K, SEED_KEEP, SEEDED = 16, 8, 32  # k-mers sampled 1 in 8 that rank the regions tried first


def sampled_kmers(seq: str) -> np.ndarray:
    """Unique canonical 16-mer hashes of ``seq`` (either strand), 1 in SEED_KEEP of them."""
    from neurohash.data.regions import MAX_HASH, kmer_hashes

    if len(seq) < SEED_K:
        return np.zeros(0, dtype=np.uint64)
    hashes, _ = kmer_hashes(seq, SEED_K, len(seq) - SEED_K + 1, canonical=True)
    return np.unique(hashes[(hashes % np.uint64(SEED_KEEP) == 0) & (hashes != MAX_HASH)])


class SeedIndex:
    """Sampled k-mers of every stored region, to pick the regions a query is aligned to first."""

    def __init__(self, seqs: list[str]) -> None:
        parts = [sampled_kmers(seq) for seq in seqs]
        owner = np.repeat(np.arange(len(seqs)), [len(p) for p in parts])
        hashes = np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint64)
        order = np.argsort(hashes, kind="stable")
        self.hashes, self.owner, self.regions = hashes[order], owner[order], len(seqs)

    def likely(self, seq: str, n: int = SEEDED) -> list[int]:
        """The ``n`` regions sharing most sampled k-mers with ``seq`` (either strand)."""
        q = sampled_kmers(seq)
        lo = np.searchsorted(self.hashes, q, side="left")
        hi = np.searchsorted(self.hashes, q, side="right")
        hit = np.concatenate([self.owner[a:b] for a, b in zip(lo, hi, strict=True)] + [[]])
        counts = np.bincount(hit.astype(np.int64), minlength=self.regions)
        n = min(n, self.regions)
        return np.argpartition(-counts, n - 1)[:n].tolist()


def nearest_regions(job: tuple[str, list[int]]) -> tuple[int, list[int]]:
    """(least semi-global edit distance over every stored region and both strands of the
    query, the regions that reach it). The regions of ``job[1]`` are aligned first, in full;
    their best distance bounds edlib's ``k`` for all the others: exact, since the bound only
    drops regions farther than a distance already reached, and far faster."""
    import edlib

    seq, first = job
    strands = (seq, reverse_complement(seq))

    def distance(region: str, k: int) -> int:
        found = [edlib.align(s, region, mode="HW", task="distance", k=k) for s in strands]
        valid = [f["editDistance"] for f in found if f["editDistance"] >= 0]
        return min(valid) if valid else -1

    bound = min(distance(_REGIONS[i], -1) for i in first)
    best, rows = bound, []
    for i, region in enumerate(_REGIONS):
        d = distance(region, best)
        if 0 <= d < best:
            best, rows = d, [i]
        elif d == best:
            rows.append(i)
    return best, rows


def window_truth(queries: list[Query], regions: Regions) -> float:
    """Fill in each (b)/(c) query's truth; the wall time of the exact scan."""
    global _REGIONS
    _REGIONS = regions.seqs
    started = time.perf_counter()
    seeds = SeedIndex(regions.seqs)
    jobs = [(q.seq, seeds.likely(q.seq)) for q in queries]
    context = multiprocessing.get_context("fork")
    with context.Pool(THREADS) as pool:
        answers = pool.map(nearest_regions, jobs, chunksize=1)
    for q, (distance, rows) in zip(queries, answers, strict=True):
        q.distance, q.postings = distance, rows
        q.intervals = [
            (regions.record[i], int(regions.start[i]), int(regions.end[i])) for i in rows
        ]
    return time.perf_counter() - started


def read_truth(queries: list[Query], regions: Regions) -> float:
    """Task (a): the stored regions that overlap each read's origin (what neurohash can find)."""
    for q in queries:
        q.postings = regions.overlapping(*q.intervals[0])
    return float(np.mean([bool(q.postings) for q in queries])) if queries else 0.0


# scoring ----------------------------------------------------------------------------------------


def overlaps(hit: Hit, intervals: list[tuple[str, int, int]]) -> bool:
    return any(
        hit["record"] == rec and hit["start"] < end and hit["end"] > start
        for rec, start, end in intervals
    )


def recall(queries: list[Query], found: dict[str, list[Hit]], correct: Any) -> dict[str, Any]:
    firsts = [any(correct(q, h) for h in found.get(q.id, [])[:1]) for q in queries]
    tens = [any(correct(q, h) for h in found.get(q.id, [])[:K]) for q in queries]
    return {
        "n": len(queries),
        "recall@1": float(np.mean(firsts)) if queries else 0.0,
        f"recall@{K}": float(np.mean(tens)) if queries else 0.0,
    }


def genome_call(
    queries: list[Query], found: dict[str, list[Hit]], genome_of: dict[str, str]
) -> str | None:
    """The genome of most of the queries' top-1 hits (None: no hits)."""
    votes = Counter(
        genome_of.get(found[q.id][0]["record"], "?") for q in queries if found.get(q.id)
    )
    return votes.most_common(1)[0][0] if votes else None


def truth_genome(queries: list[Query], genome_of: dict[str, str]) -> str | None:
    votes: Counter[str] = Counter()
    for q in queries:
        for g in {genome_of[rec] for rec, _, _ in q.intervals}:
            votes[g] += 1
    return votes.most_common(1)[0][0] if votes else None


def score_task(
    task: str, queries: list[Query], found: dict[str, list[Hit]], correct: Any
) -> dict[str, Any]:
    """Recall per group (and per strand in task a), overall."""
    out: dict[str, Any] = {"all": recall(queries, found, correct), "groups": {}}
    if task == "a":
        for strand, name in (("+", "forward"), ("-", "reverse")):
            out[name] = recall([q for q in queries if q.strand == strand], found, correct)
    for group in dict.fromkeys(q.group for q in queries):
        members = [q for q in queries if q.group == group]
        entry = recall(members, found, correct)
        if task == "a":
            for strand, name in (("+", "forward"), ("-", "reverse")):
                part = [q for q in members if q.strand == strand]
                entry[name] = recall(part, found, correct)
        out["groups"][group] = entry
    return out


# the benchmark ----------------------------------------------------------------------------------


def run_bench(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(args.workdir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    stored_names = QUICK_STORED if args.quick else STORED
    cross = QUICK_CROSS if args.quick else CROSS
    held_out = QUICK_HELD_OUT if args.quick else HELD_OUT
    stored = {name: load_genome(name, args.quick) for name in stored_names}
    query_genomes = {name: load_genome(name, args.quick) for name, _ in cross} | {
        name: load_genome(name, args.quick) for name in held_out
    }
    genome_of = {rec.id: name for name, recs in stored.items() for rec in recs}
    stored_bases = sum(len(r.seq) for recs in stored.values() for r in recs)

    # the same sequences for every tool: one file per genome, and all of them in one file
    stored_dir = work / "stored"
    shutil.rmtree(stored_dir, ignore_errors=True)
    files = {
        name: write_fasta(stored_dir / f"{i:02d}.fa", recs)
        for i, (name, recs) in enumerate(stored.items())
    }
    everything = write_fasta(
        work / "stored_all.fasta", [r for recs in stored.values() for r in recs]
    )
    query_files = {
        name: write_fasta(work / "query_genomes" / f"{i:02d}.fa", recs)
        for i, (name, recs) in enumerate(query_genomes.items())
    }

    tools: dict[str, dict[str, Any]] = {"neurohash": neurohash_build(args, work, stored_dir)}
    window = int(json.loads((work / "db" / "manifest.json").read_text())["regions"]["window"])
    notes = []
    for name, (available, build, _) in PEERS.items():
        if name not in args.peers:
            notes.append(f"{name} not run (--peers)")
            continue
        if not available():
            notes.append(f"{name} skipped: not installed ({PACKAGES[name]})")
            continue
        peer_dir = work / name.lower()
        peer_dir.mkdir(parents=True, exist_ok=True)
        try:
            tools[name] = build(everything, peer_dir)
        except CommandFailed as exc:
            notes.append(f"{name} skipped: {exc}")
    for note in notes:
        print("note:", note)

    # queries and truth
    regions = Regions.of(work / "db")
    n_reads = args.reads
    piece = args.piece or int(0.4 * window)
    queries = {
        "a": read_queries(stored, n_reads, args.seed),
        "b": window_queries(
            {name: query_genomes[name] for name, _ in cross}, "b", args.windows, piece, args.seed
        ),
        "c": window_queries(
            {name: query_genomes[name] for name in held_out}, "c", args.windows, piece, args.seed
        ),
    }
    covered = read_truth(queries["a"], regions)
    truth_s = window_truth(queries["b"] + queries["c"], regions)
    fastas = {
        t: write_fasta(work / f"queries_{t}.fa", [SequenceRecord(q.id, q.seq) for q in qs])
        for t, qs in queries.items()
    }

    results: dict[str, Any] = {}
    found_by: dict[str, dict[str, dict[str, list[Hit]]]] = {}
    search = functools.partial(
        neurohash_search, step=args.step, candidates=args.candidates, refine=args.refine
    )
    searches = {"neurohash": search} | {n: PEERS[n][2] for n in tools if n in PEERS}
    if args.quick and "MMseqs2" in searches:
        searches["MMseqs2"] = functools.partial(mmseqs_search, kmer=QUICK_MMSEQS_K)
        tools["MMseqs2"]["note"] += f"; --quick: -k {QUICK_MMSEQS_K}"
    for name, search in searches.items():
        tool_dir = work if name == "neurohash" else work / name.lower()
        results[name], found_by[name] = {}, {}
        for task, qs in queries.items():
            try:
                seconds, found = search(tool_dir, fastas[task], tool_dir / f"hits_{task}.tsv")
            except CommandFailed as exc:
                notes.append(f"{name} failed on task {task}: {exc}")
                continue
            correct = lambda q, h: overlaps(h, q.intervals)  # noqa: E731
            results[name][task] = score_task(task, qs, found, correct) | {
                "search_s": seconds,
                "queries_per_s": len(qs) / seconds,
            }
            found_by[name][task] = found

    mash = "Mash" in args.peers
    genome_level = genome_results(
        queries, found_by, genome_of, files, query_files, work, tools, mash
    )
    if not mash:
        notes.append("Mash not run (--peers)")
    elif "Mash" not in tools:
        notes.append(f"Mash skipped: not installed ({PACKAGES['Mash']})")
    return {
        "config": {
            "ckpt": str(args.ckpt),
            "reads_per_setting": n_reads,
            "windows_per_genome": args.windows,
            "predict_overrides": args.predict,
            "step": args.step,
            "candidates": args.candidates,
            "refine": args.refine,
            "no_embeddings": args.no_embeddings,
            "piece": piece,
            "k": K,
            "window": window,
            "quick_bases": QUICK_BASES if args.quick else None,
            "seed": args.seed,
        },
        "stored": {
            "genomes": {name: str(FILES[name]) for name in stored},
            "bases": stored_bases,
            "regions": tools["neurohash"]["stats"]["regions"],
            "cross_strain": [list(pair) for pair in cross],
            "held_out": held_out,
        },
        "reads_covered_by_regions": covered,
        "truth": {
            "seconds": truth_s,
            "median_distance_per_base": {
                group: float(np.median([q.distance / len(q.seq) for q in qs if q.group == group]))
                for task in ("b", "c")
                for qs in [queries[task]]
                for group in dict.fromkeys(q.group for q in qs)
            },
        },
        "tools": {
            name: {k: v for k, v in info.items() if k != "stats"}
            | {"bytes_per_base": info["index_bytes"] / stored_bases}
            for name, info in tools.items()
        },
        "neurohash_stats": tools["neurohash"]["stats"],
        "results": results,
        "genome_level": genome_level,
        "notes": notes,
    }


def genome_results(
    queries: dict[str, list[Query]],
    found_by: dict[str, dict[str, dict[str, list[Hit]]]],
    genome_of: dict[str, str],
    files: dict[str, Path],
    query_files: dict[str, Path],
    work: Path,
    tools: dict[str, dict[str, Any]],
    with_mash: bool = True,
) -> dict[str, Any]:
    """Tasks (b), (c) at genome level: each tool's genome call against the truth's genome."""
    out: dict[str, Any] = {}
    for task in ("b", "c"):
        for group in dict.fromkeys(q.group for q in queries[task]):
            members = [q for q in queries[task] if q.group == group]
            entry = {"truth": truth_genome(members, genome_of), "calls": {}}
            for name, by_task in found_by.items():
                if task in by_task:
                    entry["calls"][name] = genome_call(members, by_task[task], genome_of)
            out[group] = entry
    mash = mash_nearest(files, {g: query_files[g] for g in out}, work) if with_mash else None
    if mash is not None:
        tools["Mash"] = {
            "build_s": mash["build_s"],
            "index_bytes": mash["index_bytes"],
            "note": f"{mash['tool']}: genome level only, one sketch per genome",
            "search_s": mash["search_s"],
        }
        for group, entry in out.items():
            entry["calls"]["Mash"] = mash["nearest"][group]["genome"]
            entry["mash_distance"] = mash["nearest"][group]["distance"]
    return out


# the report -------------------------------------------------------------------------------------


def cell(entry: dict[str, Any] | None) -> str:
    if not entry or not entry.get("n"):
        return "-"
    return f"{entry['recall@1']:.2f} / {entry[f'recall@{K}']:.2f}"


def task_table(report: dict[str, Any], task: str, strand: str | None = None) -> str:
    names = [n for n in report["results"] if task in report["results"][n]]
    groups = list(report["results"][names[0]][task]["groups"]) if names else []
    rows = []
    for group in groups:
        row = [group]
        for name in names:
            entry = report["results"][name][task]["groups"][group]
            row.append(cell(entry[strand] if strand else entry))
        rows.append(row)
    rows.append(["all", *(cell(report["results"][n][task][strand or "all"]) for n in names)])
    rows.append(
        ["queries/s", *(f"{report['results'][n][task]['queries_per_s']:.1f}" for n in names)]
    )
    return table([strand or "queries", *names], rows)


def wins(report: dict[str, Any]) -> list[str]:
    """Plain statements of where a peer beats neurohash (recall@10 per group, speed, size)."""
    out = []
    own = report["results"].get("neurohash", {})
    for task, entry in own.items():
        for group, mine in entry["groups"].items():
            best = max(
                (
                    (n, r[task]["groups"][group][f"recall@{K}"])
                    for n, r in report["results"].items()
                    if n != "neurohash" and task in r
                ),
                key=lambda x: x[1],
                default=None,
            )
            if best and best[1] > mine[f"recall@{K}"] + 0.02:
                out.append(
                    f"({task}) {group}: {best[0]} recall@{K} {best[1]:.2f} against neurohash's "
                    f"{mine[f'recall@{K}']:.2f}"
                )
        faster = [
            n
            for n, r in report["results"].items()
            if n != "neurohash" and task in r and r[task]["queries_per_s"] > entry["queries_per_s"]
        ]
        if faster:
            out.append(f"({task}) faster than neurohash: {', '.join(faster)}")
    tools = report["tools"]
    smaller = [
        n
        for n, t in tools.items()
        if n != "neurohash" and t["bytes_per_base"] < tools["neurohash"]["bytes_per_base"]
    ]
    if smaller:
        out.append(
            f"smaller index per stored base than neurohash's codes + postings: {', '.join(smaller)}"
        )
    whole = tools["neurohash"]["index_bytes_with_sequences"] / report["stored"]["bases"]
    larger = [n for n, t in tools.items() if n != "neurohash" and t["bytes_per_base"] < whole]
    if larger:
        out.append(
            f"smaller per stored base than neurohash's codes, postings and the sequence store "
            f"that --rerank reads ({whole:.3f} bytes/base): {', '.join(larger)}"
        )
    return out


def markdown(report: dict[str, Any]) -> str:
    cfg, stored, tools = report["config"], report["stored"], report["tools"]
    base = stored["bases"]
    index_rows = []
    for name, t in tools.items():
        note = t.get("note", "")
        if name == "neurohash":
            embeddings = (
                "no embeddings stored"
                if cfg.get("no_embeddings")
                else f"with int8 embeddings {t['data_bytes'] / base:.3f}"
            )
            note = (
                f"codes + postings; with the sequence store "
                f"{t['index_bytes_with_sequences'] / base:.3f} bytes/base, {embeddings}; "
                f"build = predict.py "
                f"{t['predict_s']:.0f} s + index {t['index_s']:.0f} s"
                + (
                    " (shards of an earlier run reused: predict.py only checked them)"
                    if t.get("shards_reused")
                    else ""
                )
            )
        index_rows.append(
            [
                name,
                f"{t['build_s']:.1f}",
                f"{t['index_bytes']:,}",
                f"{t['bytes_per_base']:.3f}",
                note,
            ]
        )
    level_rows = []
    names = list(report["results"]) + (["Mash"] if "Mash" in tools else [])
    for group, entry in report["genome_level"].items():
        calls = [
            ("yes" if entry["calls"].get(n) == entry["truth"] else f"no ({entry['calls'].get(n)})")
            for n in names
        ]
        level_rows.append([group, entry["truth"], *calls])
    median = ", ".join(
        f"{g} {d:.3f}" for g, d in report["truth"]["median_distance_per_base"].items()
    )
    lines = [
        f"## Genomes: neurohash beside minimap2, BLAST, MMseqs2 and Mash ({cfg['window']} bp "
        "regions)",
        "",
        f"Stored: {', '.join(stored['genomes'])} ({base:,} bases, {stored['regions']:,} "
        f"neurohash regions of {cfg['window']} bases"
        + "".join(f", `{o}`" for o in cfg.get("predict_overrides") or [])
        + (f", `neurohash search --step {cfg['step']}`" if "step" in cfg else "")
        + (f" `--candidates {cfg['candidates']}`" if cfg.get("candidates") else "")
        + (f" `--refine {cfg['refine']:g}`" if cfg.get("refine") else "")
        + (", `neurohash index --no-embeddings`" if cfg.get("no_embeddings") else "")
        + f"); model `{cfg['ckpt']}`. Each cell: "
        f"recall@1 / recall@{K}; queries/s from the shell, start-up included. neurohash hits "
        "are regions (`--by-region`), judged by their coordinates as the peers' are.",
        "",
        "Index (bytes per stored base: the files each tool searches):",
        "",
        table(["tool", "build s", "index bytes", "bytes / base", "note"], index_rows),
        "",
        f"(a) Reads and fragments of stored genomes, {cfg['reads_per_setting']} per setting "
        f"(half reverse-complemented), truth the origin; "
        f"{report['reads_covered_by_regions']:.0%} of them overlap a stored neurohash region:",
        "",
        task_table(report, "a"),
        "",
        "(a) by the strand the read was taken from (target: reverse within 2 points of forward):",
        "",
        task_table(report, "a", "forward"),
        "",
        task_table(report, "a", "reverse"),
        "",
        f"(b) Cross-strain and (c) held-out genomes, {cfg['windows_per_genome']} pieces of "
        f"{cfg.get('piece', cfg['window'])} bp per genome; truth the stored region at the "
        f"least semi-global edit distance (exact scan {report['truth']['seconds']:.0f} s; "
        f"median distance per base: {median}):",
        "",
        task_table(report, "b"),
        "",
        task_table(report, "c"),
        "",
        "Genome level (b, c): the genome of most top-1 hits (Mash: the nearest sketch) against "
        "the genome holding most truth regions:",
        "",
        table(["query genome", "truth", *names], level_rows),
    ]
    found = wins(report)
    lines += [
        "",
        "Where a peer wins:" if found else "No peer beats neurohash here.",
        "",
    ]
    lines += [f"- {w}" for w in found]
    if report["notes"]:
        lines += ["", *[f"Note: {n}" for n in report["notes"]]]
    lines += [f"\n![recall against divergence](benchmarks/{p})" for p in report.get("plots", [])]
    return "\n".join(lines)


def plot(report: dict[str, Any], path: Path) -> Path:
    """Task (a): recall@K against divergence, one panel per query length, one line per tool."""
    fig, axes = subplots(1, len(LENGTHS), figsize=(4 * len(LENGTHS), 3.4), sharey=True)
    percents = [100 * d for d in DIVERGENCES]
    for ax, length in zip(axes, LENGTHS, strict=True):
        for (name, tasks), marker in zip(report["results"].items(), "os^vD", strict=False):
            groups = tasks.get("a", {}).get("groups", {})
            points = [groups.get(setting(length, d), {}).get(f"recall@{K}") for d in DIVERGENCES]
            if all(p is not None for p in points):  # markers tell apart lines that coincide
                ax.plot(percents, points, marker=marker, fillstyle="none", label=name)
        ax.set_title(f"{length} bp queries")
        ax.set_xlabel("divergence (% edits per base)")
        ax.set_xticks(percents)
    axes[0].set_ylabel(f"recall@{K}")
    axes[0].set_ylim(-0.02, 1.02)
    axes[-1].legend(fontsize=8, loc="lower left")
    return save_figure(fig, path)


def pending(reports: list[dict[str, Any]]) -> list[str]:
    """The issue's figures need the genome model, not a development checkpoint."""
    if any("genomes_model" in r["config"]["ckpt"] for r in reports):
        return []
    return [f"`bench/genomes.py` with the genome model (`--ckpt {DEFAULT_CKPT}`)"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="two small genome slices, few queries")
    parser.add_argument("--ckpt", default=DEFAULT_CKPT, help="the neurohash model")
    parser.add_argument("--reads", type=int, help="task (a) reads per length and divergence")
    parser.add_argument("--windows", type=int, help="tasks (b), (c): windows per query genome")
    parser.add_argument(
        "--piece", type=int, help="bases per query piece of (b), (c) (default 40%% of a region)"
    )
    parser.add_argument(
        "--predict",
        action="append",
        default=[],
        metavar="OVERRIDE",
        help="an override for predict.py, e.g. regions.window=200 (repeatable)",
    )
    parser.add_argument(
        "--step",
        default="auto",
        help="neurohash search --step (auto, S or 0): query tiles beside anchored regions",
    )
    parser.add_argument(
        "--candidates", type=int, help="neurohash search --candidates (default its own: 20 x k)"
    )
    parser.add_argument(
        "--refine", type=float, help="neurohash search --refine (default its own: 5)"
    )
    parser.add_argument(
        "--no-embeddings",
        action="store_true",
        help="neurohash index --no-embeddings: a database of codes (and sequences) alone",
    )
    parser.add_argument(
        "--peers",
        nargs="*",
        choices=[*PEERS, "Mash"],
        default=[*PEERS, "Mash"],
        help="the peers to run (default all; none: neurohash alone, to try its settings)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reuse-shards", action="store_true", help="resume earlier shards")
    parser.add_argument("--workdir", default="outputs/bench_genomes")
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks" / "genomes.json"))
    args = parser.parse_args(argv)
    args.reads = args.reads or (4 if args.quick else 100)
    args.windows = args.windows or (6 if args.quick else 40)
    if not Path(args.ckpt).is_file():
        parser.error(f"--ckpt {args.ckpt}: no such checkpoint")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    started, argv = begin(argv)
    args = parse_args(argv)
    report = run_bench(args)
    return publish("bench/genomes.py", argv, started, args.quick, report, args.out, markdown, plot)


if __name__ == "__main__":
    main()
