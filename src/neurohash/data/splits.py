"""Leakage-free train/validation/test splits.

- ``RandomSplit``: uniform.
- ``ClusterSplit`` ("phylogenetic depth n"): each held-out seed pulls its 2**n nearest relatives
  (exact edit distance) into the same split, so close relatives never straddle train and test.
- ``CladeSplit``: whole subtrees of a phylogeny (the Greengenes tree by default) are held out.
- ``GroupSplit``: records sharing a group key (sample id, strain) stay together.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from neurohash.data.edit_distance import cached_nearest
from neurohash.data.fasta import SequenceRecord


@dataclass
class Split:
    """Record indices of each part; ``held_out_groups`` lists the groups held out in test."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    held_out_groups: list[list[int]] = field(default_factory=list)


def _quotas(n: int, val: float, test: float) -> tuple[int, int]:
    n_val, n_test = int(round(n * val)), int(round(n * test))
    if n - n_val - n_test < 1 or n_val < 1 or n_test < 1:
        raise ValueError(
            f"cannot split {n} sequences into train/val/test with val={val}, test={test}"
        )
    return n_val, n_test


def _finish(assigned: np.ndarray, groups: list[list[int]]) -> Split:
    parts = [np.flatnonzero(assigned == part) for part in range(3)]
    return Split(train=parts[0], val=parts[1], test=parts[2], held_out_groups=groups)


def _fill_with_groups(
    groups: Sequence[Sequence[int]], n: int, quotas: tuple[int, int], rng: np.random.Generator
) -> Split:
    """Assign whole groups (in random order) to val, then test, until each quota is met."""
    assigned = np.zeros(n, dtype=np.int64)  # 0 train, 1 val, 2 test
    taken: list[list[int]] = []
    need = {1: quotas[0], 2: quotas[1]}
    for g in rng.permutation(len(groups)):
        members = [m for m in groups[g] if assigned[m] == 0]
        part = next((p for p in (1, 2) if need[p] > 0), None)
        if part is None:
            break
        if not members or len(members) > max(need[part], 1) * 2:
            continue
        assigned[members] = part
        need[part] -= len(members)
        if part == 2:
            taken.append(list(groups[g]))
    if max(need.values()) > 0 or (assigned == 0).sum() == 0:
        raise ValueError("could not fill val/test quotas with whole groups; use smaller groups")
    return _finish(assigned, taken)


@dataclass
class RandomSplit:
    val: float = 0.1
    test: float = 0.1
    seed: int = 0

    def __call__(self, records: Sequence[SequenceRecord]) -> Split:
        n = len(records)
        n_val, n_test = _quotas(n, self.val, self.test)
        order = np.random.default_rng(self.seed).permutation(n)
        assigned = np.zeros(n, dtype=np.int64)
        assigned[order[:n_val]] = 1
        assigned[order[n_val : n_val + n_test]] = 2
        return _finish(assigned, [])


@dataclass
class ClusterSplit:
    """Held-out seeds bring their 2**depth nearest relatives (exact edit distance) with them."""

    val: float = 0.1
    test: float = 0.1
    depth: int = 3
    seed: int = 0
    cache_dir: str | None = None  # nearest relatives are cached here by content hash

    def __call__(self, records: Sequence[SequenceRecord]) -> Split:
        seqs = [r.seq for r in records]
        relatives = cached_nearest(seqs, 2**self.depth, self.cache_dir)
        groups = [[i, *relatives[i].tolist()] for i in range(len(seqs))]
        rng = np.random.default_rng(self.seed)
        return _fill_with_groups(groups, len(seqs), _quotas(len(seqs), self.val, self.test), rng)


@dataclass
class GroupSplit:
    """Records whose ids share the part matched by ``pattern`` (e.g. a sample id) stay together."""

    val: float = 0.1
    test: float = 0.1
    pattern: str = r"^([^._]+)"
    seed: int = 0

    def __call__(self, records: Sequence[SequenceRecord]) -> Split:
        regex = re.compile(self.pattern)
        keys: dict[str, list[int]] = {}
        for i, rec in enumerate(records):
            match = regex.search(rec.id)
            keys.setdefault(match.group(1) if match else rec.id, []).append(i)
        rng = np.random.default_rng(self.seed)
        quotas = _quotas(len(records), self.val, self.test)
        return _fill_with_groups(list(keys.values()), len(records), quotas, rng)


@dataclass
class CladeSplit:
    """Whole clades of a Newick tree are held out; records missing from the tree are an error.

    ``tree`` is a Newick path, or ``greengenes`` (the default) for the Greengenes 13_8 tree.
    """

    tree: str | None = None
    val: float = 0.1
    test: float = 0.1
    min_clade_size: int = 3
    max_clade_fraction: float = 0.02
    seed: int = 0

    def __call__(self, records: Sequence[SequenceRecord]) -> Split:
        clades = clade_groups(self._tree_path(), [r.id for r in records])
        max_size = max(1, int(self.max_clade_fraction * len(records)))
        small = [c for c in clades if self.min_clade_size <= len(c) <= max_size]
        rng = np.random.default_rng(self.seed)
        return _fill_with_groups(
            small, len(records), _quotas(len(records), self.val, self.test), rng
        )

    def _tree_path(self) -> str:
        if self.tree in (None, "greengenes"):
            from neurohash.data.sources import greengenes_tree

            return greengenes_tree()
        return self.tree


def clade_groups(tree_path: str, ids: Sequence[str]) -> list[list[int]]:
    """For every node of the tree, the indices (into ``ids``) of the records below it."""
    import treeswift

    tree = treeswift.read_tree_newick(tree_path)
    position = {rid: i for i, rid in enumerate(ids)}
    below: dict[int, list[int]] = {}
    groups: list[list[int]] = []
    for node in tree.traverse_postorder():
        if node.is_leaf():
            label = str(node.label).strip("'") if node.label is not None else ""
            members = [position[label]] if label in position else []
        else:
            members = [m for child in node.children for m in below.pop(id(child))]
        below[id(node)] = members
        if members:
            groups.append(members)
    found = {m for g in groups for m in g}
    missing = [ids[i] for i in range(len(ids)) if i not in found]
    if missing:
        raise ValueError(
            f"{tree_path}: {len(missing)} records are not leaves of the tree, e.g. {missing[:3]}"
        )
    return groups
