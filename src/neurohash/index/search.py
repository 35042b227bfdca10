"""Nearest stored sequences of query codes: Hamming search in FAISS, optional exact re-ranking.

A query (one or more regions, each with a code) is answered in up to four steps, each query
region shortlisting stored regions of its own (``all_candidates``), merged per query:

1. every segment's FAISS index finds a query region's nearest unique codes by Hamming distance;
   codes as near as its last wanted unit are completed by a range search, so that the
   candidates are the same however the database is split into segments (flat and IVF indexes);
2. each code expands through its postings to the stored regions carrying it, and hits are
   aggregated per target sequence (or, ``by_region``, kept per stored region), keeping its best
   (smallest) Hamming distance, ties broken by target number; if duplicates leave a query
   region fewer targets than wanted, FAISS is asked again for more;
3. with a ``Refiner`` (the query's embeddings and code logits), ``refine_factor`` times more
   Hamming candidates are collected and each query region keeps its best (FAISS's "refine"
   pattern): by the model's own float distance where the database stores region embeddings;
   where it does not, by the distance of the coder's own features (the default's positional
   5-mer profiles), computed from the stored sequences (``Refiner.feature_estimates``);
   otherwise by the query-weighted Hamming distance to the stored codes
   (``Refiner.code_estimates``: bits the query is unsure of count less), so a database of
   codes alone gains from it too;
4. with ``rerank``, the ``candidates_factor * k`` candidate targets of each query region (or,
   for a query whose regions ``shared`` them, as many for all) are re-ranked by the exact edit
   distance between the query's and the candidates' region sequences (per query region at most
   as many stored regions as targets wanted, the nearest reached: a genome's thousands of
   regions are not all aligned), read from the segments' sequence stores: global (rapidfuzz),
   or semi-global (``infix``: the query region against its best-matching substring of the
   stored region, edlib's HW) for a query region shorter than half the database's region
   window (``alignment="auto"``), such as a read against genome windows. A query of two
   windows or more (``long_queries``) has one hit per locus, its best region: the aligned
   pairs along one stretch of one target and strand (``pair_loci``), as minimap2 reports one
   chain per locus, so that the copies of a repeat are hits rather than one copy's regions.

Queries are searched on both strands (``neurohash search --strand both``, the default): each
query region is searched as given (``+``) and reverse-complemented (``-``), and a hit reports the
strand of the query region that decided it, as BLAST and minimap2 do. Databases built with
canonical anchors (``neurohash.data.regions``) cut a query from either strand where they cut the
stored sequence.

``est_distance`` is the model's estimate of the edit distance: its float distance (or its
coder's features' distance) times the normaliser after refining by them, otherwise the
(query-weighted, once refined by codes) Hamming distance times the model's learned scale
(``edits_per_bit``, recorded when the database was built), or the raw one without it.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple, TextIO

import numpy as np

from neurohash.checkpoint import load_module, model_fingerprint, stored_cleaning
from neurohash.index.database import Database, DatabaseError
from neurohash.index.segment import Segment

if TYPE_CHECKING:
    import torch

    from neurohash.data.cleaning import Cleaning
    from neurohash.data.fasta import SequenceRecord
    from neurohash.models.geometry import Geometry
    from neurohash.module import DistanceEmbeddingModule

DEFAULT_CANDIDATES_FACTOR = 20.0
DEFAULT_REFINE_FACTOR = 5.0  # Hamming candidates per refined candidate
AUTO_STEP = "auto"  # query tiling by the query's length (tile_step)
QUERY_CHUNK = 512  # query records embedded and searched together
# code hits held at once: query regions x their shortlist (a 5 kb query tiled every 11 bases
# on both strands is ~900 regions; at --candidates 1000, 512 of them held 22 GB)
CANDIDATE_BUDGET = 4_194_304
GROWTH = 4  # how much further FAISS looks when duplicates left too few distinct targets
PAIR_CHUNK = 65_536  # (query region, posting) pairs whose codes are compared at once
FEATURE_CHUNK = 2_048  # stored regions whose features are computed at once (64 MB at 8,192)
MATRIX_FILL = 64  # a (queries x stored) distance matrix beats a gather up to 64 cells per pair
TSV_COLUMNS = (
    "query_id",
    "target_id",
    "strand",
    "rank",
    "hamming",
    "est_distance",
    "target_start",  # the stored region that decided the rank, 0-based, end exclusive (as PAF)
    "target_end",
)
RERANK_COLUMNS = ("edit_distance", "alignment")  # alignment: global | infix
ALIGNMENTS = ("auto", "global", "infix")
STRANDS = ("both", "plus")


@dataclass(frozen=True)
class Hit:
    """One target of one query; ``region_*`` is the stored region that decided the rank."""

    query: int
    rank: int
    target: int
    target_id: str
    source: str
    region_start: int
    region_end: int
    hamming: int
    est_distance: float
    edit_distance: int | None = None
    posting: int = -1  # the database's posting row of the region
    strand: str = "+"  # of the query region that decided the rank: "-" = reverse-complemented
    alignment: str | None = None  # of edit_distance: "global" or "infix"


@dataclass
class Entries:
    """Every stored region FAISS put near one query's regions."""

    posting: np.ndarray  # posting rows reached
    hamming: np.ndarray  # their Hamming distances
    row: np.ndarray  # the query region (row of query_codes) that reached them
    unit: np.ndarray  # what a hit is: the entry's target number, or its posting row
    start: np.ndarray  # where their regions start in their records (ties between regions)

    def ranked(self, chosen: np.ndarray, score: np.ndarray) -> Candidates:
        """These entries, with the units of the ``chosen`` ones as the candidate units, ranked by
        their best entry's ``score`` (``rank_units``)."""
        (kept,) = np.nonzero(np.isin(self.unit, self.unit[chosen]))
        best = kept[rank_units(self.unit[kept], self.start[kept], self.posting[kept], score[kept])]
        return Candidates(self.posting, self.hamming, self.row, self.unit, self.start, best)


@dataclass
class Candidates(Entries):
    """A query's entries, and the hit units (targets, or regions with ``by_region``) ranked by
    best Hamming or, once refined, by the model's estimate."""

    best: np.ndarray  # indices into the arrays: best entry per unit, ranked
    estimate: np.ndarray | None = None  # the model's float distance in edits, once refined


# candidate generation ---------------------------------------------------------------------------


def nearest_codes(segment: Segment, codes: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(Hamming, code id) of the ``n`` nearest unique codes of each row (id -1: none)."""
    n = max(1, min(n, segment.index.ntotal))
    hnsw = getattr(segment.index, "hnsw", None)
    if hnsw is not None:  # HNSW returns at most efSearch neighbours
        hnsw.efSearch = max(int(segment.description["index"].get("ef_search", 0)), n)
    return segment.index.search(np.ascontiguousarray(codes), n)


# code hits of one segment for one query: (code id, Hamming, query row), flat
CodeHits = tuple[np.ndarray, np.ndarray, np.ndarray]


def knn_hits(distances: np.ndarray, ids: np.ndarray, rows: np.ndarray) -> CodeHits:
    """A (rows, n) FAISS answer as flat code hits (ids -1 dropped)."""
    valid = ids >= 0
    return ids[valid], distances[valid], np.broadcast_to(rows[:, None], ids.shape)[valid]


def expand(db: Database, s: int, hits: CodeHits) -> tuple[np.ndarray, ...]:
    """Code hits in segment ``s`` -> (database posting row, Hamming, query row, region start)
    for every posting of every hit code."""
    code, ham, row = hits
    segment = db.segments[s]
    starts = segment.offsets[code]
    counts = segment.offsets[code + 1] - starts
    owner = np.repeat(np.arange(len(code)), counts)
    local = starts[owner] + np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return db.posting_base[s] + local, ham[owner], row[owner], segment.region_start[local]


def rank_units(
    unit: np.ndarray, start: np.ndarray, posting: np.ndarray, score: np.ndarray
) -> np.ndarray:
    """Index of each unit's best entry, best unit first: least score, then lowest unit (target
    number or posting row), then the region that starts first, then posting row. For targets
    every key but the last is the same however they are split into segments, so a segmented
    database ranks as one segment would."""
    order = np.lexsort((posting, start, unit, score))
    _, first = np.unique(unit[order], return_index=True)
    first.sort()
    return order[first]


def gather(db: Database, hits: dict[int, CodeHits], by_region: bool) -> Entries:
    """Entries of one query from its code hits in each segment."""
    parts = [expand(db, s, h) for s, h in hits.items()]
    posting, hamming, row, start = (np.concatenate(x) for x in zip(*parts, strict=True))
    unit = posting if by_region else db.target_of[posting]
    return Entries(posting, hamming, row, unit, start)


def all_candidates(
    db: Database,
    codes: np.ndarray,
    groups: list[np.ndarray],
    wants: np.ndarray,
    by_region: bool = False,
) -> list[Candidates]:
    """Candidates of every query (``groups[q]``: its region rows, ascending): the ``wants[q]``
    units nearest by Hamming to each of its regions, merged.

    Every query region keeps a shortlist of its own. Pooled per query, a read tiled at every
    base (~100 regions) left its shortlist to whichever tiles met chance near codes, and the
    tile lying over the read's stored region lost its own: 150 bp reads at 10% divergence,
    32-bit codes, 355k stored regions: the true region is among its tile's 1,000 nearest for
    38 of 40 reads, among the query's pooled 5,000 for 36.

    One batched FAISS call per segment for all queries wanting as many; only queries with a
    region whose codes are shared by too few distinct units are asked again, for GROWTH times
    more codes. Codes as near as each region's last wanted unit are then completed
    (``complete_ties``).
    """
    searched = [s for s, segment in enumerate(db.segments) if segment.index.ntotal]
    largest = max(db.segments[s].index.ntotal for s in searched)
    found: list[Candidates | None] = [None] * len(groups)
    asked = np.asarray(wants, dtype=np.int64).copy()  # codes asked of FAISS per region
    pending = list(range(len(groups)))
    while pending:
        still = []
        for n in sorted({int(asked[q]) for q in pending}):
            batch = [q for q in pending if asked[q] == n]
            rows = np.concatenate([groups[q] for q in batch])
            answers = {s: nearest_codes(db.segments[s], codes[rows], n) for s in searched}
            bounds = np.cumsum([0, *(len(groups[q]) for q in batch)])
            for q, a, b in zip(batch, bounds[:-1], bounds[1:], strict=True):
                hits = {s: knn_hits(d[a:b], i[a:b], groups[q]) for s, (d, i) in answers.items()}
                entries = gather(db, hits, by_region)
                want = int(wants[q])
                cutoff = unit_ranks(entries, entries.hamming, groups[q]).cutoffs(b - a, want)
                if np.isfinite(cutoff).all() or n >= largest or a == b:
                    last = {s: (d[a:b, -1], i[a:b, -1]) for s, (d, i) in answers.items()}
                    entries = complete_ties(db, codes, groups[q], hits, last, n, cutoff, by_region)
                    found[q] = nearest_units(entries, groups[q], want)
                else:
                    still.append(q)
                    asked[q] = min(largest, n * GROWTH)
        pending = still
    return found  # type: ignore[return-value]


@dataclass(frozen=True)
class UnitRanks:
    """Where each candidate entry's unit stands among the units its query region reached."""

    row: np.ndarray  # the entry's query region, as a position in the query's region rows
    rank: np.ndarray  # its unit's place in that region's shortlist (0: nearest)
    score: np.ndarray  # the entries' scores the units were ranked by

    def cutoffs(self, n_rows: int, want: int) -> np.ndarray:
        """Each region's score of its ``want``-th unit (infinite where it reached fewer)."""
        cutoff = np.full(n_rows, np.inf)
        at = self.rank == want - 1
        np.minimum.at(cutoff, self.row[at], self.score[at])
        return cutoff


def unit_ranks(entries: Entries, score: np.ndarray, rows: np.ndarray) -> UnitRanks:
    """Rank the units of each query region (``rows``: the query's region rows, ascending) by
    their best entry: least ``score``, then unit, as ``rank_units`` ranks them for the whole
    query (its region start and posting row only choose which of a unit's entries is best)."""
    local = np.searchsorted(rows, entries.row)
    if not len(local):
        return UnitRanks(local, local.copy(), score)
    levels = score_levels(score)
    by_pair = ordered(local, entries.unit, levels)  # each (region, unit): its best entry first
    pair = local[by_pair] * (int(entries.unit.max()) + 1) + entries.unit[by_pair]
    new = np.r_[True, pair[1:] != pair[:-1]]
    best = by_pair[new]
    by_region = ordered(local[best], levels[best], entries.unit[best])
    region = local[best][by_region]
    firsts = np.flatnonzero(np.r_[True, region[1:] != region[:-1]])
    place = np.arange(len(best)) - np.repeat(firsts, np.diff(np.r_[firsts, len(best)]))
    pair_rank = np.empty(len(best), dtype=np.int64)
    pair_rank[by_region] = place
    rank = np.empty(len(local), dtype=np.int64)
    rank[by_pair] = pair_rank[np.cumsum(new) - 1]
    return UnitRanks(local, rank, score)


def score_levels(score: np.ndarray) -> np.ndarray:
    """Scores as non-negative integers of the same order (dense ranks of float scores)."""
    if np.issubdtype(score.dtype, np.integer):
        return score - score.min()
    return np.unique(score, return_inverse=True)[1].ravel()


def ordered(*keys: np.ndarray) -> np.ndarray:
    """Indices ordering non-negative integer ``keys``, the first the most significant, as
    ``np.lexsort(keys[::-1])`` up to the order of equal rows: one argsort of an int64 key where
    their ranges fit in one, five times faster than the lexsort's stable passes, which were a
    quarter of a tiled read's search (a million entries per read)."""
    spans = [int(key.max()) + 1 for key in keys]
    if math.prod(spans) >= 2**62:
        return np.lexsort(keys[::-1])
    combined = np.zeros(len(keys[0]), dtype=np.int64)
    for key, span in zip(keys, spans, strict=True):
        combined = combined * span + key
    return np.argsort(combined)


def nearest_units(entries: Entries, rows: np.ndarray, want: int) -> Candidates:
    """The entries, each query region's ``want`` nearest units by Hamming (ties cut as
    ``rank_units`` orders them) the candidate units, ranked for the whole query; the entries of
    units tied at a region's cut stay, for refining to choose from."""
    return entries.ranked(unit_ranks(entries, entries.hamming, rows).rank < want, entries.hamming)


def complete_ties(
    db: Database,
    codes: np.ndarray,
    rows: np.ndarray,
    hits: dict[int, CodeHits],
    last: dict[int, tuple[np.ndarray, np.ndarray]],
    n: int,
    cutoff: np.ndarray,
    by_region: bool,
) -> Entries:
    """Each region's candidates within the Hamming distance of its last wanted unit
    (``cutoff``, one per region; infinite: all it reached), all of them.

    Many codes share a Hamming distance, and which of them a k-nearest search returns at its
    cut depends on the index: regions whose ``n`` nearest in a segment were cut at that
    distance are searched again by range, and entries beyond it are dropped, so that the
    candidates (and the regions a re-rank compares) are the same however the database is
    segmented (flat and IVF indexes; HNSW has no range search).
    """
    for s, (distance, ident) in last.items():
        index = db.segments[s].index
        cut = (ident >= 0) & (distance <= cutoff) & np.isfinite(cutoff)
        if not cut.any() or n >= index.ntotal or hasattr(index, "hnsw"):
            continue
        code, ham, row = hits[s]
        kept = ~np.isin(row, rows[cut])
        parts = [(code[kept], ham[kept], row[kept])]
        for radius in np.unique(cutoff[cut]):
            again = rows[cut & (cutoff == radius)]
            lims, dist, ids = index.range_search(
                np.ascontiguousarray(codes[again]), int(radius) + 1
            )
            counts = np.diff(lims).astype(np.int64)
            parts.append((ids.astype(np.int64), dist.astype(ham.dtype), np.repeat(again, counts)))
        hits[s] = tuple(np.concatenate(column) for column in zip(*parts, strict=True))
    for s, (code, ham, row) in hits.items():
        near = ham <= cutoff[np.searchsorted(rows, row)]
        hits[s] = (code[near], ham[near], row[near])
    return gather(db, hits, by_region)


# refining by the model: its float distance, or the query-weighted Hamming distance ------------


@dataclass(frozen=True)
class Refiner:
    """What refining needs: the query regions' embeddings, their code logits (signs: the query
    codes; magnitudes: how sure each bit is), the model that made them and, for a coder with
    features of its own (``neurohash.hashing.Features``), the query regions' features."""

    embeddings: np.ndarray  # (R, D) float32, one row per query region
    logits: np.ndarray  # (R, bits) float32
    model: DistanceEmbeddingModule
    features: np.ndarray | None = None  # (R, F) float32, as the coder reads them

    def estimates(self, db: Database, rows: np.ndarray, postings: np.ndarray) -> np.ndarray:
        """Estimated edit distances of (query row, posting) pairs: by the stored embeddings
        where the database has them, else by the coder's features of the stored sequences
        where it has those and features (``feature_estimates``), else by its codes
        (``code_estimates``)."""
        if db.has_embeddings:
            return self.float_estimates(db, rows, postings)
        if self.features is not None and db.has_sequences:
            return self.feature_estimates(db, rows, postings)
        return self.code_estimates(db, rows, postings)

    def feature_estimates(self, db: Database, rows: np.ndarray, postings: np.ndarray) -> np.ndarray:
        """The coder's features' distance (fitted to ED / L) x normaliser of each pair, the
        stored regions' features computed from their stored sequences: the codes were distilled
        from these distances, which rank a query's nearest better than any 256 bits (positional
        5-mer profiles, 20,000 stored 16S sequences: 0.740 of the exact top 10 against 0.549 by
        Hamming alone; README), at no bytes on disk. Each stored region shortlisted by several
        query regions is read and profiled once, ``FEATURE_CHUNK`` regions at a time."""
        import torch

        from neurohash.data.tokens import encode

        features, max_len = self.model.hashing.features, int(self.model.normaliser)
        distance, device = features.distance, self.model.device
        queries = torch.from_numpy(self.features).to(device)
        stored_rows, pair_of = np.unique(postings, return_inverse=True)
        order = np.argsort(pair_of, kind="stable")  # pairs grouped by their stored region
        firsts = range(0, len(stored_rows), FEATURE_CHUNK)
        bounds = [*np.searchsorted(pair_of[order], list(firsts)), len(order)]
        estimates = np.empty(len(rows), dtype=np.float64)
        with torch.no_grad():
            for first, a, b in zip(firsts, bounds[:-1], bounds[1:], strict=True):
                chunk = stored_rows[first : first + FEATURE_CHUNK]
                tokens = encode(db.region_sequences(chunk), max_len).to(device)
                stored = distance.project(features(tokens))
                pairs = order[a:b]
                column = torch.from_numpy(pair_of[pairs] - first).to(device)
                estimates[pairs] = pair_distances(distance, queries, rows[pairs], stored, column)
        return estimates * float(self.model.normaliser)

    def float_estimates(self, db: Database, rows: np.ndarray, postings: np.ndarray) -> np.ndarray:
        """Float distance x normaliser of each pair.

        Pairs are taken one query region at a time through the geometry's (1, M) matrix kernel,
        so no (pairs, D) tensor is built: at 1M regions one query reaches ~17k postings, and
        gathering both sides of every pair cost 9 s per 100 queries."""
        import torch

        geometry, device = self.model.geometry, self.model.device
        order = np.argsort(rows, kind="stable")
        groups = np.split(order, np.flatnonzero(np.diff(rows[order])) + 1)
        estimates = np.empty(len(rows), dtype=np.float64)
        with torch.no_grad():
            for group in groups:
                query = torch.from_numpy(self.embeddings[rows[group[:1]]]).to(device)
                stored = torch.from_numpy(db.embeddings(postings[group])).to(device)
                dist = geometry.pairwise(query, stored)[0]
                estimates[group] = dist.cpu().double().numpy()
        return estimates * float(self.model.normaliser)

    def code_estimates(self, db: Database, rows: np.ndarray, postings: np.ndarray) -> np.ndarray:
        """Query-weighted Hamming distance of each pair (``neurohash.hashing.weighted_hamming``:
        bits the query is unsure of count less), times ``edits_per_bit`` where recorded."""
        from neurohash.hashing import weighted_hamming

        estimates = np.empty(len(rows), dtype=np.float64)
        for a in range(0, len(rows), PAIR_CHUNK):
            row, posting = rows[a : a + PAIR_CHUNK], postings[a : a + PAIR_CHUNK]
            estimates[a : a + len(row)] = weighted_hamming(self.logits, db.codes(posting), row)
        scale = db.edits_per_bit
        return estimates * scale if scale is not None else estimates


def pair_distances(
    distance: Geometry,
    queries: torch.Tensor,
    rows: np.ndarray,
    stored: torch.Tensor,
    columns: torch.Tensor,
    block: int = 1_024,
) -> np.ndarray:
    """``distance`` of each pair (query ``rows[i]``, stored row ``columns[i]``) of projected
    rows: through the (queries asked x stored) matrix kernel when the pairs fill enough of it
    (shortlists that share stored regions), otherwise pair by pair, ``block`` pairs at a time,
    so that neither a sparse matrix nor a (pairs, D) gather is ever built whole."""
    import torch

    device = queries.device
    asked, row_of = np.unique(rows, return_inverse=True)
    if len(asked) * len(stored) <= MATRIX_FILL * len(rows):
        matrix = distance.pairwise_projected(queries[torch.from_numpy(asked).to(device)], stored)
        return matrix[torch.from_numpy(row_of).to(device), columns].cpu().double().numpy()
    out = np.empty(len(rows), dtype=np.float64)
    for a in range(0, len(rows), block):
        u = queries[torch.from_numpy(rows[a : a + block]).to(device)]
        v = stored[columns[a : a + block]]
        out[a : a + len(u)] = (distance.scale * distance.raw(u, v)).cpu().double().numpy()
    return out


def refine(
    db: Database,
    found: list[Candidates],
    refiner: Refiner,
    keeps: np.ndarray,
    groups: list[np.ndarray],
) -> list[Candidates]:
    """Per query, the units among the ``keeps[q]`` best of any of its regions (``groups[q]``)
    by the refiner's estimates, ranked by them."""
    estimates = refiner.estimates(
        db,
        np.concatenate([c.row for c in found]),
        np.concatenate([c.posting for c in found]),
    )
    bounds = np.cumsum([0, *(len(c.posting) for c in found)])
    refined = []
    for cands, rows, keep, a, b in zip(found, groups, keeps, bounds[:-1], bounds[1:], strict=True):
        score = estimates[a:b]
        chosen = cands.ranked(unit_ranks(cands, score, rows).rank < keep, score)
        refined.append(dataclasses.replace(chosen, estimate=score))
    return refined


# re-ranking -------------------------------------------------------------------------------------


class Pairs(NamedTuple):
    """(query region, stored region) pairs of one query to align."""

    row: np.ndarray  # the query region (row of query_codes)
    posting: np.ndarray  # the stored region's posting row
    unit: np.ndarray  # its hit unit (target number, or posting row)
    start: np.ndarray  # where the stored region starts in its record


def rerank_pairs(cands: Candidates, limit: int) -> Pairs:
    """Unique (query row, posting row) pairs to align: the entries FAISS reached of the
    candidate units, at most ``limit`` per query region (the nearest by Hamming, or by the
    model once refined; each unit's best entry always), so that a target of thousands of
    regions (a genome) does not put all of them in the re-rank."""
    (chosen,) = np.nonzero(np.isin(cands.unit, cands.unit[cands.best]))
    score = cands.hamming if cands.estimate is None else cands.estimate
    keys = (cands.posting, cands.start, cands.unit, score, cands.row)
    chosen = chosen[np.lexsort([key[chosen] for key in keys])]  # by query row, nearest first
    row = cands.row[chosen]
    starts = np.flatnonzero(np.r_[True, row[1:] != row[:-1]])
    place = np.arange(len(chosen)) - np.repeat(starts, np.diff(np.r_[starts, len(chosen)]))
    chosen = np.union1d(chosen[place < limit], cands.best)
    columns = (cands.row, cands.start, cands.posting, cands.unit)
    # a posting has one start and one unit: the same pairs, by query row, then region start
    pairs = np.unique(np.stack([column[chosen] for column in columns], axis=1), axis=0)
    return Pairs(pairs[:, 0], pairs[:, 2], pairs[:, 3], pairs[:, 1])


def infix_rows(query_seqs: Sequence[str], alignment: str, window: int | None) -> np.ndarray:
    """Which query regions are re-ranked by the semi-global distance: all (``infix``), none
    (``global``), or (``auto``) those shorter than half the database's region window."""
    if alignment not in ALIGNMENTS:
        raise ValueError(f"alignment must be one of {ALIGNMENTS}, got {alignment!r}")
    lengths = np.fromiter(map(len, query_seqs), dtype=np.int64, count=len(query_seqs))
    if alignment == "auto":
        return lengths * 2 < window if window else np.zeros(len(lengths), dtype=bool)
    return np.full(len(lengths), alignment == "infix")


def exact_distances(
    db: Database,
    query_seqs: Sequence[str],
    infix: np.ndarray,
    pairs: list[Pairs],
) -> list[np.ndarray]:
    """Edit distances of all queries' pairs: global ones in one rapidfuzz call (all cores),
    semi-global ones (query rows where ``infix``) by edlib. Each stored region is read once,
    however many query regions (a read's tiles) it is paired with."""
    from neurohash.data.edit_distance import infix_distances, paired_distances

    rows = np.concatenate([pair.row for pair in pairs])
    stored, pair_of = np.unique(np.concatenate([p.posting for p in pairs]), return_inverse=True)
    read = db.region_sequences(stored)
    right = [read[i] for i in pair_of.tolist()]
    flat = np.empty(len(rows), dtype=np.int32)
    for semi, distance in ((False, paired_distances), (True, infix_distances)):
        (chosen,) = np.nonzero(infix[rows] == semi)
        flat[chosen] = distance([query_seqs[rows[i]] for i in chosen], [right[i] for i in chosen])
    bounds = np.cumsum([0, *(len(pair.row) for pair in pairs)])
    return [flat[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def reranked(
    cands: Candidates, pairs: Pairs, distance: np.ndarray, loci: Loci | None = None
) -> list[tuple[int, int, int, int]]:
    """(candidate rank, query row, posting, edit distance) per hit, best first, from the
    aligned ``pairs`` and their ``distance``: each candidate unit's best pair by edit distance.

    With ``loci``, a hit is instead each locus's best pair, equal edit distances ranked by
    the locus's support (most first); where several loci share a unit, its first. Ties keep
    the candidate order (and the first pair), so the result is deterministic.
    """
    rank_of = {int(u): i for i, u in enumerate(cands.unit[cands.best])}
    ranks = [rank_of[u] for u in pairs.unit.tolist()]
    group = ranks if loci is None else loci.of.tolist()
    support = [0] * len(ranks) if loci is None else loci.support[loci.of].tolist()
    best: dict[int, tuple[int, int, int, int, int]] = {}
    columns = (pairs.row.tolist(), pairs.posting.tolist(), distance.tolist(), ranks, support)
    for g, row, post, dist, rank, held in zip(group, *columns, strict=True):
        if g not in best or (dist, rank) < (best[g][3], best[g][0]):
            best[g] = (rank, row, post, dist, held)
    ranked, seen = [], set()
    for rank, row, post, dist, _ in sorted(best.values(), key=lambda x: (x[3], -x[4], x[0])):
        if rank not in seen:
            seen.add(rank)
            ranked.append((rank, row, post, dist))
    return ranked


class Loci(NamedTuple):
    """The loci of one query's aligned pairs."""

    of: np.ndarray  # the locus of each pair
    support: np.ndarray  # per locus: how many of the query's regions align along it


def pair_loci(
    target: np.ndarray, minus: np.ndarray, diagonal: np.ndarray, row: np.ndarray, width: int
) -> Loci:
    """Where one query's aligned pairs lie: a locus is a target and strand, and a run of
    neighbouring diagonals (stored region start minus query region start) in bands of
    ``width`` bases (indels move the diagonal a little), as minimap2 chains seeds.

    A long query's hits are one per locus: a fragment of a *B. subtilis* rRNA operon aligns a
    tile better to another copy of the operon than to its origin, and the regions of one copy
    filled the hits (README's genomes bench). Support does not rank before edit distance: a
    fragment whose origin only one tile found lost it to loci that two tiles met by chance."""
    band = np.floor_divide(diagonal, max(1, width))
    keys = np.stack([target, minus.astype(np.int64), band], axis=1)
    bands, band_of = np.unique(keys, axis=0, return_inverse=True)
    apart = np.any(bands[1:, :2] != bands[:-1, :2], axis=1) | (bands[1:, 2] > bands[:-1, 2] + 1)
    locus_of_band = np.cumsum(np.r_[0, apart])
    locus = locus_of_band[band_of.ravel()]
    held = np.unique(np.stack([locus, row], axis=1), axis=0)[:, 0]
    return Loci(locus, np.bincount(held, minlength=int(locus_of_band[-1]) + 1))


# the search -------------------------------------------------------------------------------------


def n_candidates(k: int, rerank: bool, candidates_factor: float) -> int:
    """Targets to collect per query: k, or candidates_factor * k (at least k) to re-rank."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return max(k, math.ceil(candidates_factor * k)) if rerank else k


def region_budgets(
    total: float, groups: list[np.ndarray], shared: np.ndarray | None, least: float
) -> np.ndarray:
    """Units each region of each query shortlists: ``total`` (rounded up), or, for a query
    whose budget is ``shared``, ``total`` divided among its regions, at least ``least`` each
    (k: the query's k nearest by Hamming are always among them)."""
    own = math.ceil(total)
    if shared is None:
        return np.full(len(groups), own, dtype=np.int64)
    split = [math.ceil(max(least, total / max(1, len(rows)))) for rows in groups]
    return np.where(np.asarray(shared, dtype=bool), split, own).astype(np.int64)


def query_rows(query_of: np.ndarray, n_queries: int) -> list[np.ndarray]:
    """Rows (regions) of each query number."""
    order = np.argsort(query_of, kind="stable")
    bounds = np.searchsorted(query_of[order], np.arange(n_queries + 1))
    return [order[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def search(
    db: Database,
    query_codes: np.ndarray,
    k: int,
    *,
    rerank: bool = False,
    query_seqs: Sequence[str] | None = None,
    candidates_factor: float = DEFAULT_CANDIDATES_FACTOR,
    query_of: np.ndarray | None = None,
    refiner: Refiner | None = None,
    refine_factor: float = DEFAULT_REFINE_FACTOR,
    query_minus: np.ndarray | None = None,
    alignment: str = "auto",
    by_region: bool = False,
    shared: np.ndarray | None = None,
    query_start: np.ndarray | None = None,
    by_locus: np.ndarray | None = None,
) -> list[list[Hit]]:
    """The ``k`` best targets of each query, best first.

    ``query_codes`` are packed codes (R, bits / 8), one per query region; ``query_of[r]`` is the
    query number of region r (default: one region per query); ``query_seqs[r]`` its sequence,
    needed for ``rerank``; ``query_minus[r]`` whether region r is reverse-complemented (its hits
    say strand ``-``). With a ``refiner``, ``refine_factor`` times more Hamming candidates are
    shortlisted by the model's float distance (databases with embeddings) or the query-weighted
    Hamming distance (``Refiner.code_estimates``).
    ``alignment`` chooses the re-ranking distance (``infix_rows``). A hit is a target (its best
    region) or, ``by_region``, a stored region: a target may then appear more than once.
    Every query region shortlists ``candidates_factor * k`` units of its own, except in the
    queries that ``shared[q]`` marks, whose regions share as many (``region_budgets``).
    The re-ranked hits of the queries that ``by_locus[q]`` marks are one per locus
    (``pair_loci``; ``query_start[r]``: where region r starts in its strand).
    """
    query_codes = np.ascontiguousarray(query_codes, dtype=np.uint8)
    if query_codes.ndim != 2 or query_codes.shape[1] * 8 != db.code_bits:
        raise DatabaseError(
            f"query codes of shape {query_codes.shape} do not fit {db.code_bits}-bit codes"
        )
    query_of = np.arange(len(query_codes)) if query_of is None else np.asarray(query_of)
    if rerank and (query_seqs is None or len(query_seqs) != len(query_codes)):
        raise ValueError("rerank needs one query sequence per query code")
    if by_locus is not None and query_start is None:
        raise ValueError("by_locus needs where each query region starts (query_start)")
    n_queries = int(query_of.max()) + 1 if len(query_of) else 0
    if n_queries == 0 or db.regions == 0:
        return [[] for _ in range(n_queries)]
    want = n_candidates(k, rerank, candidates_factor)
    refining = refiner is not None and refine_factor > 1
    stored_dim = db.manifest.get("embedding_dim")
    if refining and db.has_embeddings and stored_dim != refiner.embeddings.shape[1]:
        raise DatabaseError(
            f"{db.path}: stores {stored_dim}-dimensional embeddings, the model makes "
            f"{refiner.embeddings.shape[1]}"
        )
    groups = query_rows(query_of, n_queries)
    keeps = region_budgets(want, groups, shared, k)
    if refining:  # each region refines from as many more
        shortlists = region_budgets(want * refine_factor, groups, shared, k * refine_factor)
    else:
        shortlists = keeps
    cands = all_candidates(db, query_codes, groups, shortlists, by_region)
    if refining:
        cands = refine(db, cands, refiner, keeps, groups)
    minus = np.zeros(len(query_codes), dtype=bool) if query_minus is None else query_minus
    if not rerank:
        return named([hamming_hits(db, q, c, k, minus) for q, c in enumerate(cands)], db)
    window = (db.manifest.get("regions") or {}).get("window")
    infix = infix_rows(query_seqs, alignment, window)
    pairs = [rerank_pairs(c, int(keep)) for c, keep in zip(cands, keeps, strict=True)]
    distances = exact_distances(db, query_seqs, infix, pairs)
    hits = []
    for q, (c, p, d) in enumerate(zip(cands, pairs, distances, strict=True)):
        loci = None
        if by_locus is not None and by_locus[q]:
            loci = pair_loci(
                db.target_of[p.posting],
                minus[p.row],
                p.start - query_start[p.row],
                p.row,
                int(window or 1),
            )
        hits.append(edit_hits(db, q, c, reranked(c, p, d, loci)[:k], minus, infix))
    return named(hits, db)


def named(hits: list[list[Hit]], db: Database) -> list[list[Hit]]:
    """The hits with their targets' seq_id and source, looked up together (each row group of
    a segment's records read once)."""
    rows = np.array([hit.posting for per_query in hits for hit in per_query], dtype=np.int64)
    names = iter(db.record_names(rows))
    return [
        [
            dataclasses.replace(hit, target_id=n[0], source=n[1])
            for hit, n in zip(q, names, strict=False)
        ]  # names: all queries
        for q in hits
    ]


def estimate_of(db: Database, cands: Candidates, entry: int) -> float:
    """The model's edit-distance estimate for a candidate entry (see the module docstring)."""
    if cands.estimate is not None:
        return float(cands.estimate[entry])
    hamming, scale = float(cands.hamming[entry]), db.edits_per_bit
    return hamming * scale if scale is not None else hamming


def make_hit(
    db: Database,
    query: int,
    rank: int,
    posting: int,
    hamming: int,
    estimate: float,
    minus: bool,
    edit: tuple[int, bool] | None = None,
) -> Hit:
    """A Hit for posting row ``posting``: its target and region (named later, see ``named``);
    ``edit``: its edit distance and whether it is semi-global."""
    start, end = db.region_of(int(posting))
    return Hit(
        query=query,
        rank=rank,
        target=int(db.target_of[posting]),
        target_id="",
        source="",
        region_start=start,
        region_end=end,
        hamming=int(hamming),
        est_distance=estimate,
        edit_distance=None if edit is None else int(edit[0]),
        posting=int(posting),
        strand="-" if minus else "+",
        alignment=None if edit is None else ("infix" if edit[1] else "global"),
    )


def hamming_hits(
    db: Database, query: int, cands: Candidates, k: int, minus: np.ndarray
) -> list[Hit]:
    """The first k targets in candidate order (Hamming, or the refined estimate)."""
    return [
        make_hit(
            db,
            query,
            rank,
            cands.posting[i],
            cands.hamming[i],
            estimate_of(db, cands, i),
            bool(minus[cands.row[i]]),
        )
        for rank, i in enumerate(cands.best[:k].tolist(), start=1)
    ]


def edit_hits(
    db: Database,
    query: int,
    cands: Candidates,
    ranked: list[tuple[int, int, int, int]],
    minus: np.ndarray,
    infix: np.ndarray,
) -> list[Hit]:
    """Hits of the ``reranked`` (candidate rank, query row, posting, edit distance): Hamming
    and estimate of the entry that made the unit a candidate, strand of the query row."""
    hits = []
    for rank, (cand_rank, row, post, dist) in enumerate(ranked, 1):
        entry = cands.best[cand_rank]
        estimate = estimate_of(db, cands, entry)
        edit = (dist, bool(infix[row]))
        hits.append(
            make_hit(db, query, rank, post, cands.hamming[entry], estimate, bool(minus[row]), edit)
        )
    return hits


# queries: FASTA -> cleaned regions -> codes -----------------------------------------------------


def iter_queries(path: str | os.PathLike, cleaning: Cleaning) -> Iterator[SequenceRecord]:
    """Cleaned query records, streamed; a record that cannot be a query names file and record."""
    from neurohash.data.cleaning import clean_sequence
    from neurohash.data.fasta import SequenceFileError, SequenceRecord, iter_records

    for number, rec in enumerate(iter_records(path), start=1):
        seq, reason = clean_sequence(rec, cleaning)
        if seq is None:
            raise SequenceFileError(
                f"{os.fspath(path)}: record {number} ('{rec.id}') cannot be a query ({reason})"
            )
        yield SequenceRecord(rec.id, seq, rec.source)


class QueryRegions(NamedTuple):
    """The regions queries are cut into, one entry per region."""

    seqs: list[str]
    query_of: np.ndarray  # the query (record number) of each region
    minus: np.ndarray  # whether it was cut from the reverse complement
    start: np.ndarray  # where it starts in the strand it was cut from


def query_regions(
    records: Sequence[SequenceRecord],
    max_len: int,
    settings: dict | None = None,
    strand: str = "plus",
    step: int | str | None = None,
) -> QueryRegions:
    """Region sequences of the queries, the query number of each region, whether it is
    reverse-complemented and where it starts in its strand.

    Uses the database's own region sampling (``neurohash.data.regions``) where available;
    otherwise each query is one region, its first ``max_len`` bases. With ``strand="both"``
    the reverse complement of each query is cut and searched too; ``step`` tiles the strands
    too (``tile_step``).
    """
    from neurohash.data.fasta import reverse_complement

    if strand not in STRANDS:
        raise ValueError(f"strand must be one of {STRANDS}, got {strand!r}")
    sampler = region_sampler(max_len, settings, step)
    seqs: list[str] = []
    owner: list[int] = []
    minus: list[bool] = []
    starts: list[int] = []
    for number, rec in enumerate(records):
        strands = ((rec.seq, False), (reverse_complement(rec.seq), True))
        for seq, reverse in strands if strand == "both" else strands[:1]:
            for start, end in sampler(seq):
                seqs.append(seq[start:end])
                owner.append(number)
                minus.append(reverse)
                starts.append(start)
    return QueryRegions(
        seqs,
        np.asarray(owner, dtype=np.int64),
        np.asarray(minus, dtype=bool),
        np.asarray(starts, dtype=np.int64),
    )


def region_sampler(
    max_len: int, settings: dict | None = None, step: int | str | None = None
) -> Callable[[str], list]:
    """A function seq -> [(start, end)] choosing regions as the database's shards did.

    ``settings`` is the shards' manifest ``regions`` entry: the arguments of
    ``neurohash.data.regions.sample_regions`` it names (window, density, k, seed) are used. With
    no settings (or no regions module) each query is one region, its first ``max_len`` bases.
    ``step`` adds windows of the same length every ``step`` bases (``tiled_regions``), which
    find stored regions whose anchor a mutation of the query lost (``tile_step``).
    """
    whole = lambda seq: [(0, min(len(seq), max_len))]  # noqa: E731
    try:
        from neurohash.data.regions import sample_regions, tiled_regions
    except ImportError:
        return whole
    accepted = inspect.signature(sample_regions).parameters
    kwargs = {k: v for k, v in (settings or {}).items() if k in accepted and k != "seq"}
    if "window" not in kwargs:
        return whole
    window = kwargs["window"] = min(int(kwargs["window"]), max_len)

    def regions(seq: str) -> list[tuple[int, int]]:
        as_stored = sample_regions(seq, **kwargs)
        every = tile_step(step, window, len(seq), kwargs.get("stride"))
        if every is None:
            return as_stored
        return sorted(set(as_stored) | set(tiled_regions(len(seq), window, every)))

    return regions


def tile_step(
    step: int | str | None, window: int, length: int, stride: int | None = None
) -> int | None:
    """Bases between the tiles of a query strand of ``length``, or None for none.

    ``"auto"`` tiles every tenth of a window the strands shorter than two windows: they hold at
    most one or two stored regions, which one mutated anchor k-mer loses (150 bp reads against
    100 bp regions, README's genomes bench: recall@10 0.43 -> 0.54 at 5% divergence), while a
    longer query holds several and tiling it costs far more than it finds (1 kb fragments:
    0.91 -> 0.92 at 10%, 3.7x the time). A number tiles every query strand longer than a
    window; 0 or None none.

    Against a database tiled every ``stride`` bases, which no query anchor meets, ``"auto"``
    tiles every strand: a read (under two windows) at every base, since it holds one or two
    stored regions and a tile a few bases off one misses it (150 bp reads against 100 bp
    regions every 50 bases, 10% divergence, ``--candidates 1000``: recall@10 0.60 at a step
    of 10, 0.92 at 1); a longer strand every tenth of a window, moved to a step coprime with the
    stride, so that the offsets of its stored regions from the nearest tile run through every
    residue and some region is met exactly (1 kb fragments at 1%: 0.90 at a step of 10, 1.00 at
    11).
    """
    if step == AUTO_STEP and stride:
        return 1 if length < 2 * window else coprime_step(max(1, window // 10), stride)
    if step == AUTO_STEP:
        return max(1, window // 10) if length < 2 * window else None
    return int(step) if step else None


def coprime_step(step: int, stride: int) -> int:
    """The least step from ``step`` up that shares no factor with ``stride``."""
    while math.gcd(step, stride) != 1:
        step += 1
    return step


def embed_queries(
    module: DistanceEmbeddingModule,
    seqs: Sequence[str],
    max_len: int,
    batch_size: int = 256,
    embed: bool = True,
) -> tuple[np.ndarray, Refiner]:
    """Packed codes (N, bits / 8) of cleaned region sequences, and their embeddings and code
    logits as a ``Refiner`` (one forward pass gives all). ``embed=False``: no embeddings (none
    stored to compare them with) where the codes need none (``coded_batches``)."""
    import torch

    from neurohash.hashing import pack_codes
    from neurohash.module import coded_batches, skips_encoder

    own_features = module.hashing.features is not None
    dim = 0 if skips_encoder(module, embed) else module.encoder.embedding_dim
    widths = (dim, module.hashing.input_dim, module.hashing.bits)
    parts: list[list[torch.Tensor]] = [[torch.zeros(0, width)] for width in widths]
    for batch in coded_batches(module, list(seqs), max_len, batch_size, embed):
        for part, tensor in zip(parts, batch, strict=True):
            part.append(tensor)
    emb, code_input, logits = (torch.cat(part).numpy() for part in parts)
    features = code_input if own_features else None  # (the embedding itself otherwise)
    return pack_codes(torch.from_numpy(logits) > 0), Refiner(emb, logits, module, features)


def query_model(
    db: Database, checkpoint: str | os.PathLike | None = None
) -> DistanceEmbeddingModule:
    """The database's own model; an explicitly given checkpoint must be that same model."""
    module = db.load_model()
    expected = db.manifest["model_fingerprint"]
    if checkpoint is not None:
        given = model_fingerprint(load_module(checkpoint))
        if given != expected:
            raise DatabaseError(
                f"{checkpoint}: a different model (fingerprint {given[:16]}) from the one that "
                f"built database {db.path} ({expected[:16]}); its codes are not comparable. "
                "Search without --ckpt (the database's own model) or rebuild the database with "
                "this model"
            )
    return module


def search_file(
    db: Database,
    module: DistanceEmbeddingModule,
    queries: str,
    out: TextIO,
    *,
    k: int = 10,
    rerank: bool = False,
    candidates: int | None = None,
    refine: float | None = None,
    batch_size: int = 256,
    strand: str = "both",
    alignment: str = "auto",
    by_region: bool = False,
    step: int | str | None = AUTO_STEP,
) -> None:
    """Search every record of the FASTA/FASTQ ``queries`` (``-``: stdin) and write TSV to ``out``.

    Queries stream in chunks of ``QUERY_CHUNK``: cleaned as the model was trained, cut into
    regions as the database's shards were (on both strands unless ``strand="plus"``), embedded,
    searched (whole queries of at most ``CANDIDATE_BUDGET`` region shortlists at a time, so
    long tiled queries keep memory bounded); a progress bar goes to stderr. ``step`` tiles
    query strands too (``tile_step``). ``candidates`` (default
    ``DEFAULT_CANDIDATES_FACTOR * k``) targets per query region are re-ranked with ``rerank``,
    by the distance ``alignment`` chooses (see ``infix_rows``); by default the regions of a
    query of two windows or more share them (``long_queries``). ``refine`` defaults to
    ``DEFAULT_REFINE_FACTOR``.
    """
    from rich.console import Console
    from rich.progress import Progress

    from neurohash.data.cleaning import inference_cleaning

    if rerank and not db.has_sequences:
        raise DatabaseError(
            f"{db.path}: stores no region sequences, so --rerank is impossible (write shards with "
            "sequences and rebuild)"
        )
    cleaning, max_len = stored_cleaning(module, str(db.model_path))
    options = {
        "rerank": rerank,
        "candidates_factor": candidates / k if candidates else DEFAULT_CANDIDATES_FACTOR,
        "refine_factor": DEFAULT_REFINE_FACTOR if refine is None else refine,
        "alignment": alignment,
        "by_region": by_region,
    }
    settings = db.manifest.get("regions")
    shortlist = n_candidates(k, rerank, options["candidates_factor"]) * options["refine_factor"]
    limit = max(1, int(CANDIDATE_BUDGET // shortlist))
    out.write(tsv_header(rerank))
    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("searching queries", total=None)
        for chunk in chunked(iter_queries(queries, inference_cleaning(cleaning)), QUERY_CHUNK):
            seqs, query_of, minus, starts = query_regions(chunk, max_len, settings, strand, step)
            for first, end in record_batches(query_of, len(chunk), limit):
                a, b = np.searchsorted(query_of, [first, end])
                codes, refiner = embed_queries(
                    module, seqs[a:b], max_len, batch_size, db.has_embeddings
                )
                long = long_queries(chunk[first:end], settings)
                hits = search(
                    db,
                    codes,
                    k,
                    query_seqs=seqs[a:b],
                    query_of=query_of[a:b] - first,
                    query_minus=minus[a:b],
                    refiner=refiner,
                    shared=None if candidates else long,
                    query_start=starts[a:b],
                    by_locus=long,
                    **options,
                )
                ids = [rec.id for rec in chunk[first:end]]
                out.writelines(tsv_rows((h for q in hits for h in q), ids, rerank))
            bar.advance(task, len(chunk))


def long_queries(records: Sequence[SequenceRecord], settings: dict | None) -> np.ndarray | None:
    """Which queries share their candidates among their regions by default, and have one
    re-ranked hit per locus (``pair_loci``): those of two region windows or more. Such a query
    holds several stored regions, each near a region of its own, so a few candidates each find
    it; a read holds one or two, which only the tile lying over one finds, among its own deep
    shortlist (``all_candidates``)."""
    window = (settings or {}).get("window")
    if not window:
        return None
    return np.array([len(rec.seq) >= 2 * int(window) for rec in records], dtype=bool)


def record_batches(query_of: np.ndarray, n_records: int, limit: int) -> Iterator[tuple[int, int]]:
    """(first, end) ranges of whole records whose regions (``query_of``: each region's record,
    in order) number at most ``limit``, or one record alone where it has more."""
    ends = np.cumsum(np.bincount(query_of, minlength=n_records))
    first = 0
    while first < n_records:
        before = ends[first - 1] if first else 0
        end = max(first + 1, int(np.searchsorted(ends, before + limit, side="right")))
        yield first, end
        first = end


def chunked(items: Iterable, size: int) -> Iterator[list]:
    """Lists of up to ``size`` consecutive items (queries are streamed in chunks)."""
    chunk: list = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def tsv_header(rerank: bool) -> str:
    return "\t".join((*TSV_COLUMNS, *RERANK_COLUMNS) if rerank else TSV_COLUMNS) + "\n"


def tsv_rows(hits: Iterable[Hit], query_ids: Sequence[str], rerank: bool) -> Iterator[str]:
    """One TSV line per hit (columns of ``tsv_header``)."""
    for hit in hits:
        fields = [
            query_ids[hit.query],
            hit.target_id,
            hit.strand,
            str(hit.rank),
            str(hit.hamming),
            f"{hit.est_distance:.2f}",
            str(hit.region_start),
            str(hit.region_end),
        ]
        if rerank:
            fields += [str(hit.edit_distance), str(hit.alignment)]
        yield "\t".join(fields) + "\n"
