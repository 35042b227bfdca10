"""neurohash.data.splits: partitions, requested sizes, determinism and no leakage into train."""

from __future__ import annotations

import string
from pathlib import Path

import numpy as np
import pytest

from neurohash.data.cleaning import Cleaning
from neurohash.data.edit_distance import distance_matrix, nearest_by_edit_distance
from neurohash.data.fasta import SequenceRecord
from neurohash.data.kmers import nearest_relatives
from neurohash.data.sources import greengenes_tree, load_records
from neurohash.data.splits import (
    CladeSplit,
    ClusterSplit,
    GroupSplit,
    RandomSplit,
    Split,
    clade_groups,
)


def assert_partition(split: Split, n: int) -> None:
    parts = [split.train, split.val, split.test]
    assert all(p.dtype.kind == "i" for p in parts)
    joined = np.concatenate(parts)
    assert len(joined) == n  # disjoint ...
    assert np.array_equal(np.sort(joined), np.arange(n))  # ... and covering everything
    assert all(len(p) > 0 for p in parts)


def assert_same(a: Split, b: Split) -> None:
    for part in ("train", "val", "test"):
        assert np.array_equal(getattr(a, part), getattr(b, part))
    assert a.held_out_groups == b.held_out_groups


def sample_id(rec: SequenceRecord) -> str:
    return rec.id.split(".")[0]


def fake_records(n: int) -> list[SequenceRecord]:
    rng = np.random.default_rng(n)
    return [SequenceRecord(f"s{i}", "".join(rng.choice(list("ACGT"), 30))) for i in range(n)]


# ---- RandomSplit --------------------------------------------------------------------------------


def test_random_split(v4_records: list[SequenceRecord]) -> None:
    n = len(v4_records)
    split = RandomSplit(val=0.1, test=0.2, seed=3)(v4_records)
    assert_partition(split, n)
    assert (len(split.val), len(split.test)) == (round(0.1 * n), round(0.2 * n))
    assert split.held_out_groups == []
    assert_same(split, RandomSplit(val=0.1, test=0.2, seed=3)(v4_records))
    other = RandomSplit(val=0.1, test=0.2, seed=4)(v4_records)
    assert not np.array_equal(split.test, other.test)


def test_split_too_small_raises() -> None:
    with pytest.raises(ValueError, match="cannot split"):
        RandomSplit()(fake_records(4))  # 10% of 4 rounds to no validation record
    with pytest.raises(ValueError, match="cannot split"):
        RandomSplit(val=0.5, test=0.5)(fake_records(10))  # nothing left to train on


# ---- ClusterSplit -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster_split(v4_records: list[SequenceRecord]) -> Split:
    return ClusterSplit(val=0.1, test=0.1, depth=3, seed=0)(v4_records)


def test_cluster_split_partition_and_sizes(
    cluster_split: Split, v4_records: list[SequenceRecord]
) -> None:
    n = len(v4_records)
    assert_partition(cluster_split, n)
    group = 1 + 2**3
    for part in (cluster_split.val, cluster_split.test):  # quota, overshooting by < one group
        assert round(0.1 * n) <= len(part) < round(0.1 * n) + group
    assert_same(cluster_split, ClusterSplit(depth=3, seed=0)(v4_records))
    assert not np.array_equal(cluster_split.test, ClusterSplit(depth=3, seed=1)(v4_records).test)


def test_cluster_split_caches_nearest_relatives(
    cluster_split: Split,
    v4_records: list[SequenceRecord],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = ClusterSplit(depth=3, seed=0, cache_dir=str(tmp_path))(v4_records)
    assert_same(first, cluster_split)
    assert len(list(tmp_path.glob("nearest8_*.npy"))) == 1

    def no_scan(*args: object) -> None:
        raise AssertionError("the all-pairs scan ran again")

    monkeypatch.setattr("neurohash.data.edit_distance.nearest_by_edit_distance", no_scan)
    assert_same(ClusterSplit(depth=3, seed=0, cache_dir=str(tmp_path))(v4_records), first)


def test_cluster_split_holds_out_whole_groups(
    cluster_split: Split, v4_records: list[SequenceRecord]
) -> None:
    train = set(cluster_split.train.tolist())
    held_out = set(cluster_split.val.tolist()) | set(cluster_split.test.tolist())
    assert cluster_split.held_out_groups
    for group in cluster_split.held_out_groups:
        assert len(group) == 1 + 2**3
        assert not set(group) & train
        assert set(group) <= held_out
        assert set(group) & set(cluster_split.test.tolist())  # (the seed may already be in val)


def test_cluster_split_relatives_of_test_seeds_not_in_train(
    cluster_split: Split, v4_records: list[SequenceRecord]
) -> None:
    seqs = [r.seq for r in v4_records]
    relatives = nearest_by_edit_distance(seqs, 2**3)
    train = set(cluster_split.train.tolist())
    seeds = [group[0] for group in cluster_split.held_out_groups]
    for seed in seeds:
        assert not set(relatives[seed].tolist()) & train
    # the relatives are really close: nearer than a typical random pair of V4 reads
    exact = distance_matrix([seqs[s] for s in seeds], seqs)
    for row, seed in enumerate(seeds):
        assert exact[row, relatives[seed]].max() < np.median(exact[row])


def test_cluster_split_exact_neighbourhood_not_in_train(
    cluster_split: Split, v4_records: list[SequenceRecord]
) -> None:
    seqs = [r.seq for r in v4_records]
    relatives = nearest_by_edit_distance(seqs, 2**3)
    train = cluster_split.train
    for group in cluster_split.held_out_groups:
        seed = group[0]
        exact = distance_matrix([seqs[seed]], seqs)[0]
        radius = exact[relatives[seed]].max()
        assert not (exact[train] < radius).any()


def test_banded_nearest_scan_gives_the_full_scans_relatives(
    v4_records: list[SequenceRecord],
) -> None:
    """Rows are scanned with a small cutoff first and widened until they have their n: the
    result (ties by index included: the duplicates tie at 0) must equal a full all-pairs scan."""
    seqs = [r.seq for r in v4_records[:200]]
    seqs += seqs[:20]
    full = distance_matrix(seqs).astype(np.int64)
    np.fill_diagonal(full, np.iinfo(np.int64).max)
    expected = np.argsort(full, axis=1, kind="stable")[:, :8]
    for first_cutoff in (1, 4, 32):
        found = nearest_by_edit_distance(seqs, 8, block=64, first_cutoff=first_cutoff)
        np.testing.assert_array_equal(found, expected)


def test_nearest_relatives_are_exact_when_pool_covers_all() -> None:
    seqs = [r.seq for r in fake_records(12)]
    relatives = nearest_relatives(seqs, 3, candidates=100)  # pool = every other sequence
    exact = distance_matrix(seqs)
    np.fill_diagonal(exact, 10**6)
    for i in range(len(seqs)):
        assert i not in relatives[i]
        assert sorted(exact[i, relatives[i]]) == sorted(exact[i])[:3]


# ---- GroupSplit ---------------------------------------------------------------------------------


def test_group_split_keeps_samples_together(v4_records: list[SequenceRecord]) -> None:
    n = len(v4_records)
    split = GroupSplit(val=0.1, test=0.1, seed=0)(v4_records)
    assert_partition(split, n)
    samples = [
        {sample_id(v4_records[i]) for i in part} for part in (split.train, split.val, split.test)
    ]
    assert not samples[0] & samples[1]
    assert not samples[0] & samples[2]
    assert not samples[1] & samples[2]
    assert len(set().union(*samples)) == len({sample_id(r) for r in v4_records})
    for part in (split.val, split.test):
        assert round(0.1 * n) <= len(part) <= 2 * round(0.1 * n)
    assert_same(split, GroupSplit(seed=0)(v4_records))
    assert not np.array_equal(split.test, GroupSplit(seed=1)(v4_records).test)


def test_group_split_with_large_groups() -> None:
    # 20 samples of 10 reads each: val/test are whole samples, exactly 2 each
    records = [
        SequenceRecord(f"S{s}.{r}_{10 * s + r}", "ACGT") for s in range(20) for r in range(10)
    ]
    split = GroupSplit(seed=5)(records)
    assert_partition(split, 200)
    assert len(split.val) == len(split.test) == 20
    for part in (split.val, split.test):
        assert len({records[i].id.split(".")[0] for i in part}) == 2


def test_group_split_custom_pattern() -> None:
    records = [SequenceRecord(f"read{i}|strain={i % 10}", "ACGT") for i in range(100)]
    split = GroupSplit(pattern=r"strain=(\d+)", seed=0)(records)
    assert_partition(split, 100)
    strains = [{i % 10 for i in part} for part in (split.train, split.val, split.test)]
    assert not (strains[0] & strains[1] or strains[0] & strains[2] or strains[1] & strains[2])


@pytest.mark.parametrize("seed", range(4))
def test_group_split_unfillable_quota_raises(seed: int) -> None:
    # one sample of 90 reads and one of 10: val can take the small one, but then test would be
    # empty; that must be an error, never a silently empty test set
    records = [SequenceRecord(f"{'A' if i < 90 else 'B'}.{i}", "ACGT") for i in range(100)]
    with pytest.raises(ValueError, match="whole groups"):
        GroupSplit(seed=seed)(records)


def test_group_split_everything_held_out_raises() -> None:
    records = [SequenceRecord(f"{'A' if i < 10 else 'B'}.{i}", "ACGT") for i in range(20)]
    with pytest.raises(ValueError):
        GroupSplit(val=0.5, test=0.45)(records)


# ---- CladeSplit on a small hand-written tree ----------------------------------------------------

LETTERS = string.ascii_lowercase[:10]  # ten clades a..j of three leaves each


@pytest.fixture
def small_tree(tmp_path: Path) -> Path:
    clades = [f"({c}0:0.1,'{c}1':0.2,{c}2:0.3)" for c in LETTERS]
    # pair them up: ((a,b),(c,d)), ... so there are also clades of 6 and 12 leaves
    pairs = [f"({clades[i]}:0.5,{clades[i + 1]}:0.5)" for i in range(0, 10, 2)]
    newick = f"(({pairs[0]},{pairs[1]})0.9:1,({pairs[2]},{pairs[3]}),{pairs[4]});"
    path = tmp_path / "small.nwk"
    path.write_text(newick + "\n")
    return path


def clade_records() -> list[SequenceRecord]:
    return [SequenceRecord(f"{c}{k}", "ACGT") for c in LETTERS for k in range(3)]


def test_clade_groups_small_tree(small_tree: Path) -> None:
    records = clade_records()
    groups = clade_groups(str(small_tree), [r.id for r in records])
    as_sets = {frozenset(g) for g in groups}
    assert {frozenset([i]) for i in range(30)} <= as_sets  # leaves (quotes stripped)
    triples = {frozenset(range(3 * c, 3 * c + 3)) for c in range(10)}
    assert triples <= as_sets
    assert frozenset(range(6)) in as_sets and frozenset(range(12)) in as_sets
    assert frozenset(range(30)) in as_sets  # the root
    assert len(groups) == 30 + 10 + 5 + 2 + 1


def test_clade_split_small_tree(small_tree: Path) -> None:
    records = clade_records()
    cfg = CladeSplit(tree=str(small_tree), val=0.1, test=0.1, max_clade_fraction=0.1, seed=0)
    split = cfg(records)
    assert_partition(split, 30)
    clade_of = [i // 3 for i in range(30)]
    for part in (split.train, split.val, split.test):  # every part is made of whole clades
        for c in {clade_of[i] for i in part}:
            assert set(range(3 * c, 3 * c + 3)) <= set(part.tolist())
    assert len(split.val) == len(split.test) == 3
    assert [sorted(g) for g in split.held_out_groups] == [sorted(split.test.tolist())]
    assert_same(split, cfg(records))
    seeds = {
        tuple(CladeSplit(str(small_tree), max_clade_fraction=0.1, seed=s)(records).test)
        for s in range(6)
    }
    assert len(seeds) > 1


def test_clade_split_subset_of_leaves(small_tree: Path) -> None:
    # records need not cover the tree: absent leaves are ignored
    records = [r for r in clade_records() if not r.id.endswith("2")]
    split = CladeSplit(
        str(small_tree), val=0.1, test=0.1, min_clade_size=2, max_clade_fraction=0.1
    )(records)
    assert_partition(split, 20)
    for part in (split.val, split.test):
        assert len(part) == 2 and records[part[0]].id[0] == records[part[1]].id[0]


def test_clade_split_missing_records_raise(small_tree: Path) -> None:
    records = [*clade_records(), SequenceRecord("stranger", "ACGT")]
    with pytest.raises(ValueError) as info:
        CladeSplit(tree=str(small_tree), max_clade_fraction=0.1)(records)
    assert str(small_tree) in str(info.value) and "stranger" in str(info.value)
    assert "1 records" in str(info.value)


# ---- CladeSplit on real Greengenes --------------------------------------------------------------


@pytest.fixture(scope="module")
def greengenes_records() -> list[SequenceRecord]:
    pytest.importorskip("qiime_default_reference")
    records, _ = load_records("greengenes", Cleaning(min_len=1200, max_len=1600), max_seqs=1500)
    return records


def common_ancestor(nodes: list) -> object:
    """Most recent common ancestor of treeswift nodes, by walking parent links."""

    def path(node) -> list:
        out = []
        while node is not None:
            out.append(node)
            node = node.parent
        return out[::-1]  # root first

    paths = [path(node) for node in nodes]
    common = None
    for level in zip(*paths, strict=False):  # stops at the shortest path
        if any(node is not level[0] for node in level):
            break
        common = level[0]
    return common


@pytest.mark.slow
def test_clade_split_greengenes(greengenes_records: list[SequenceRecord]) -> None:
    import treeswift

    records = greengenes_records
    n = len(records)
    assert n == 1500
    split = CladeSplit(tree="greengenes", seed=0)(records)
    assert_partition(split, n)
    for part in (split.val, split.test):
        assert round(0.1 * n) <= len(part) <= round(0.1 * n) + int(0.02 * n)

    train = set(split.train.tolist())
    held_out = set(split.val.tolist()) | set(split.test.tolist())
    position = {r.id: i for i, r in enumerate(records)}
    tree = treeswift.read_tree_newick(greengenes_tree())
    leaves = tree.label_to_node(selection="leaves")
    assert split.held_out_groups
    for group in split.held_out_groups:
        assert 3 <= len(group) <= int(0.02 * n)
        assert not set(group) & train and set(group) <= held_out
        # independently: the group is exactly the sampled leaves below its most recent ancestor
        mrca = common_ancestor([leaves[records[i].id] for i in group])
        below = {position[leaf.label] for leaf in mrca.traverse_leaves() if leaf.label in position}
        assert below == set(group)
