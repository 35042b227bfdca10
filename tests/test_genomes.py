"""neurohash.data.genomes (`data=genomes`) on the real genomes of ../shared/data/genomes: seeded
windows and batches, whole genomes held out, mostly-N windows skipped and counted, exact targets
from near to far, the reverse-complement term, and `python train.py data=genomes` end to end."""

from __future__ import annotations

import glob
import math
from itertools import islice
from pathlib import Path

import edlib
import numpy as np
import pytest
import torch

from neurohash.data.cleaning import Cleaning, CleaningStats
from neurohash.data.fasta import reverse_complement
from neurohash.data.genomes import (
    GenomeSplit,
    GenomeWindowDataModule,
    StrandCollate,
    WindowPairs,
    read_genomes,
    tile,
)
from neurohash.data.tokens import encode
from neurohash.train import build_training_module, train
from tests.helpers import ROOT, SHARED_DATA, compose_train

GENOMES = SHARED_DATA / "genomes"
# the smaller real files (2.5 Mb of the 26 Mb), so that each set-up reads in about a second
SMALL = [
    "KK037166.fna.gz",
    "MIIJ01000039.fna.gz",  # E. coli contig: 432,770 of its 869,782 bases are one run of N
    "SRR492066.fna.gz",
    "akkermansia.fa.gz",
    "shew_os185.fa.gz",
    "shew_os223.fa.gz",
]
WINDOW = 400


def edit_distance(a: str, b: str) -> int:
    return edlib.align(a, b, task="distance")["editDistance"]


@pytest.fixture(scope="module")
def small_genomes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of links to the real files of SMALL (the files themselves are not copied)."""
    if not GENOMES.is_dir():
        pytest.skip(f"real genomes not found in {GENOMES}")
    folder = tmp_path_factory.mktemp("genomes")
    for name in SMALL:
        (folder / name).symlink_to(GENOMES / name)
    return folder


def datamodule(folder: Path, seed: int = 0, **settings) -> GenomeWindowDataModule:
    """Windows of WINDOW bases of the files in ``folder``, set up."""
    defaults = {
        "split": GenomeSplit(val=1, test=1, seed=seed),
        "pairs": WindowPairs(anchors=64, cross_pairs=2),
        "max_len": WINDOW,
        "stride": 50,
        "eval_size": 40,
        "batch_size": 8,
        "seed": seed,
    }
    dm = GenomeWindowDataModule(str(folder / "*"), **{**defaults, **settings})
    dm.setup()
    return dm


@pytest.fixture(scope="module")
def dm(small_genomes: Path) -> GenomeWindowDataModule:
    return datamodule(small_genomes)


def first_batches(dm: GenomeWindowDataModule, n: int = 2) -> list[dict[str, torch.Tensor]]:
    return list(islice(dm.train_dataloader(), n))


def test_same_seed_same_windows_and_batches(small_genomes: Path, dm: GenomeWindowDataModule):
    again = datamodule(small_genomes, num_workers=1)  # a loader worker draws nothing itself
    assert again.files == dm.files
    assert again.seqs["val"] == dm.seqs["val"] and again.seqs["test"] == dm.seqs["test"]
    for a, b in zip(first_batches(dm), first_batches(again), strict=True):
        assert a.keys() == b.keys() >= {"tokens", "pairs", "edit_distance", "strand_tokens"}
        assert all(torch.equal(a[key], b[key]) for key in a)
    later = dm.train_dataloader()
    later.sampler.set_epoch(1)  # each epoch draws other windows
    assert not torch.equal(next(iter(later))["tokens"], first_batches(dm, 1)[0]["tokens"])
    other = datamodule(small_genomes, seed=1)
    assert other.seqs["val"] != dm.seqs["val"]
    assert not torch.equal(first_batches(other, 1)[0]["tokens"], first_batches(dm, 1)[0]["tokens"])


def test_genome_split_holds_out_whole_files_by_count_or_name() -> None:
    files = [f"/data/{name}" for name in SMALL]
    parts = GenomeSplit(val=1, test=2, seed=3)(files)
    assert sorted(f for part in parts.values() for f in part) == files  # each file once
    assert (len(parts["train"]), len(parts["val"]), len(parts["test"])) == (3, 1, 2)
    assert GenomeSplit(val=1, test=2, seed=3)(files) == parts
    assert GenomeSplit(val=1, test=2, seed=4)(files) != parts
    named = GenomeSplit(val=["shew_os223.fa.gz"], test=["akkermansia.fa.gz", SMALL[0]])(files)
    assert named["test"] == ["/data/KK037166.fna.gz", "/data/akkermansia.fa.gz"]
    assert "/data/shew_os223.fa.gz" not in named["train"] and len(named["train"]) == 3
    with pytest.raises(ValueError, match="not among the input files"):
        GenomeSplit(test=["ecoli.fa"])(files)
    with pytest.raises(ValueError, match="already held out"):
        GenomeSplit(val=[SMALL[0]], test=[SMALL[0]])(files)
    with pytest.raises(ValueError, match="cannot hold out"):
        GenomeSplit(val=3, test=3)(files)


def test_no_genome_has_windows_in_train_and_test(small_genomes: Path) -> None:
    split = GenomeSplit(val=["shew_os223.fa.gz"], test=["akkermansia.fa.gz", "KK037166.fna.gz"])
    dm = datamodule(small_genomes, split=split)
    assert {Path(f).name for f in dm.files["test"]} == {"akkermansia.fa.gz", "KK037166.fna.gz"}
    assert not set(dm.files["train"]) & (set(dm.files["test"]) | set(dm.files["val"]))
    assert len(dm.files["train"]) == 3
    test_records, train_records = dm.windows["test"].records, dm.windows["train"].records
    held_out = [seq for seq in dm.seqs["test"] if any(seq in rec for rec in test_records)]
    assert len(held_out) == len(dm.seqs["test"]) // 2  # the windows; the others their mutants
    assert not any(seq in rec for seq in dm.seqs["test"] for rec in train_records)
    train = dm.windows["train"]
    assert {Path(dm.files["train"][g]).name for g in np.unique(train.genome)} <= set(SMALL)


def test_mostly_n_windows_are_skipped_and_counted(small_genomes: Path) -> None:
    cleaning = Cleaning(ambiguous="keep", min_len=1, dedupe=False)
    records, genome = read_genomes([str(GENOMES / SMALL[1])], cleaning, CleaningStats())
    (seq,) = records
    assert seq.count("N") >= 432_770
    windows, skipped = tile(records, genome, 1000, 1000, max_n=0.1)
    starts = range(0, len(seq) - 1000 + 1, 1000)
    assert skipped == sum(seq[s : s + 1000].count("N") > 100 for s in starts) >= 432
    assert len(windows) + skipped == len(starts)
    assert max(windows[i].count("N") for i in range(len(windows))) <= 100
    assert tile(records, genome, 1000, 1000, max_n=1.0)[1] == 0
    # the datamodule counts them per part, like the cleaning statistics of records
    split = GenomeSplit(val=["akkermansia.fa.gz"], test=["KK037166.fna.gz"])
    stats = datamodule(small_genomes, split=split).window_stats
    assert stats["train"]["dropped"]["mostly_n"] >= 432_770 // 50 - 10
    assert stats["val"]["dropped"]["mostly_n"] == 0
    for part in stats.values():
        assert part["seen"] == part["kept"] + part["dropped"]["mostly_n"]


def test_targets_are_exact_edit_distances_from_near_to_far(dm: GenomeWindowDataModule) -> None:
    loader = dm.train_dataloader()
    rows = list(islice(loader.sampler, dm.batch_size))
    triplets = [loader.dataset[row] for row in rows]
    seqs = [t[k] for k in range(3) for t in triplets]  # anchors, partners1, partners2
    batch = next(iter(loader))
    assert torch.equal(batch["tokens"], encode(seqs, WINDOW))
    for (i, j), d in zip(batch["pairs"].tolist(), batch["edit_distance"].tolist(), strict=True):
        assert d == edit_distance(seqs[i], seqs[j])
    # mutants of the anchor at 1-30% edits: the targets cover near and far
    windows, spread = dm.windows["train"], dm.pairs.spread
    mutants = loader.sampler.rows()
    mutants = mutants[mutants[:, 2] >= 0][:60]
    assert (mutants[:, 1] == mutants[:, 0]).all()
    near = [
        edit_distance(windows[a], spread.mutant(windows[a], int(s), WINDOW)) / WINDOW
        for a, s in mutants[:, :3:2]
    ]
    assert min(near) < 0.03 and max(near) > 0.2
    far = edit_distance(windows[0], windows[len(windows) - 1]) / WINDOW  # other genomes
    assert far > 0.4
    # validation: each held-out window has its mutant, so near distances appear there too
    exact = dm.exact_distances("val")
    assert exact.shape == (40, 40) and (np.diag(exact) == 0).all()
    assert ((exact < 0.35 * WINDOW).sum() - 40) // 2 >= 20


def test_strand_collate_adds_reverse_complements_of_the_anchors() -> None:
    batch = [("ACGTTA", "ACG", "TT"), ("GGCA", "A", "C")]
    out = StrandCollate(8, strand_weight=0.5)(batch)
    assert torch.equal(out["strand_tokens"], encode(["TAACGT", "TGCC"], 8))
    assert out["strand_weight"].item() == 0.5
    plain = StrandCollate(8)(batch)  # weight 0: the batch of every other data source
    assert plain.keys() == {"tokens", "pairs", "edit_distance"}


@pytest.mark.filterwarnings("ignore:.*self.trainer. reference is not registered")  # steps by hand
def test_strand_term_is_zero_on_palindromes_and_trains_finite(
    dm: GenomeWindowDataModule, tmp_path: Path, one_thread: None
) -> None:
    cfg = compose_train(tmp_path, "data=genomes", f"data.max_len={WINDOW}")
    module = build_training_module(cfg)
    half = [dm.windows["train"][i][: WINDOW // 2] for i in range(4)]
    palindromes = [s + reverse_complement(s) for s in half]  # each its own reverse complement
    assert [reverse_complement(p) for p in palindromes] == palindromes
    emb = module(encode(palindromes, WINDOW))
    reverse = module(encode([reverse_complement(p) for p in palindromes], WINDOW))
    assert module.strand_loss(emb, reverse, torch.tensor(1.0)).item() < 1e-9
    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-3)
    for batch in first_batches(dm, 3):
        assert batch["strand_weight"].item() > 0
        anchors, reverse = module(batch["tokens"][:8]), module(batch["strand_tokens"])
        assert module.strand_loss(anchors, reverse, batch["strand_weight"]).item() > 0
        optimizer.zero_grad()
        loss = module.training_step(batch, 0)
        loss.backward()
        assert math.isfinite(loss.item())
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads)
        optimizer.step()


def test_experiment_genomes_composes_on_the_real_genomes(tmp_path: Path) -> None:
    cfg = compose_train(tmp_path, "experiment=genomes")
    assert cfg.task_name == "genomes"
    assert cfg.data._target_.endswith("GenomeWindowDataModule")
    assert cfg.model._target_.endswith("TransformerEncoder") and cfg.model.max_len == 1000
    assert cfg.data.strand_weight == 0 < compose_train(tmp_path, "data=genomes").data.strand_weight
    # the codes the genome figures were measured with, not the default neighbour head's bank
    assert cfg.hashing._target_.endswith("RankHash") and cfg.hashing.bits == 128
    names = {Path(f).name for f in glob.glob(str(ROOT / cfg.data.path))}  # from the project root
    held_out = [*cfg.data.split.val, *cfg.data.split.test]
    assert len(names) == 12 and set(held_out) <= names and len(set(held_out)) == 4
    assert "strand_weight" not in compose_train(tmp_path).data  # off for the other sources


def test_experiment_genomes_reads_is_the_genome_model_on_read_scale_windows(
    tmp_path: Path,
) -> None:
    base = compose_train(tmp_path, "experiment=genomes")
    cfg = compose_train(tmp_path, "experiment=genomes_reads")
    assert cfg.task_name == "genomes_reads"
    assert cfg.data.max_len == cfg.model.max_len == cfg.data.cleaning.min_len == 100
    assert cfg.data.pairs.anchors == 4 * base.data.pairs.anchors
    assert cfg.data.strand_weight == base.data.strand_weight == 0
    assert cfg.data.split == base.data.split and cfg.model._target_ == base.model._target_
    assert cfg.trainer.max_epochs == 3 < base.trainer.max_epochs  # 4x longer epochs
    assert cfg.hashing.bits == 32 < base.hashing.bits  # 4 bytes per region


def test_train_py_data_genomes_fast_dev_run(
    small_genomes: Path, tmp_path: Path, one_thread: None
) -> None:
    overrides = [
        "data=genomes",
        "debug=fdr",
        "logger=none",
        f"data.path={small_genomes}/*",
        f"data.max_len={WINDOW}",
        "data.eval_size=16",
        "data.batch_size=4",
        "data.strand_weight=0.5",  # a sweep's override, without +
        f"paths.cache_dir={tmp_path / 'cache'}",
    ]
    metrics = train(compose_train(tmp_path, *overrides))
    for key in ("rmse_pct", "spearman"):
        assert math.isfinite(metrics[f"test/{key}"]) and math.isfinite(metrics[f"baseline/{key}"])
    assert metrics["data/normaliser"] == WINDOW and metrics["data/test_seqs"] == 16
