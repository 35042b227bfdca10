"""Every conf/experiment/neuroseed_*.yaml composes and runs one fast_dev_run batch on real V4
reads (experiment=genomes: tests/test_genomes.py)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from omegaconf import DictConfig, OmegaConf

from neurohash.train import train
from tests.helpers import compose_train

ROOT = Path(__file__).resolve().parents[1]
V4 = ROOT.parent / "shared" / "data" / "study550_v4_amplicons.fasta.gz"
EXPERIMENTS = sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("neuroseed_*.yaml"))
PROTOCOL = "neuroseed_qiita"  # the base every neuroseed_<model> experiment extends
METRICS = ("rmse_pct", "mae", "spearman", "top1", "top5", "top10")


def compose_experiment(name: str, run_dir: Path, *overrides: str) -> DictConfig:
    return compose_train(run_dir, f"experiment={name}", *overrides)


def small_run(run_dir: Path) -> list[str]:
    """One batch of train/val/test on CPU on 200 real V4 reads."""
    return [
        f"data.path={V4}",
        "data.max_seqs=200",
        "data.eval_size=30",
        "data.batch_size=8",
        "data.num_workers=0",
        "logger=none",
        "trainer.accelerator=cpu",
        "trainer.fast_dev_run=true",
        f"paths.cache_dir={run_dir / 'cache'}",
    ]


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_reproduces_neuroseed_protocol(name: str, tmp_path: Path, monkeypatch) -> None:
    """The protocol every NeuroSEED experiment shares (from neuroseed_qiita), with the default
    data path resolved, and the model its name promises."""
    model = name.removeprefix("neuroseed_") if name != PROTOCOL else "transformer"
    plain = compose_train(tmp_path, f"model={model}").model  # as `model=...` alone selects it
    monkeypatch.delenv("NEUROHASH_V4_READS", raising=False)
    cfg = compose_experiment(name, tmp_path)
    assert cfg.task_name == name
    assert cfg.model._target_ == plain._target_
    assert cfg.model.get("attention") == plain.get("attention")
    assert cfg.data.path == "../shared/data/study550_v4_amplicons.fasta.gz"
    assert (ROOT / cfg.data.path).is_file()  # the default works from the project root
    assert cfg.data._target_.endswith("EditDistanceDataModule") and cfg.data.max_len == 152
    assert cfg.data.cleaning.min_len == 1 and cfg.data.cleaning.max_len == 152
    assert (cfg.data.max_seqs, cfg.data.eval_size, cfg.data.pairs.near_fraction) == (9200, 1500, 0)
    assert cfg.split._target_.endswith("GroupSplit")
    assert cfg.scheduler is None and cfg.optimizer.weight_decay == 0.0
    expected = "cosine" if model == "kmer" else "hyperbolic"
    assert cfg.distance._target_.lower().endswith(expected)
    if model != "kmer":
        assert cfg.model.embedding_dim == 128 and cfg.trainer.max_epochs == 500
        assert cfg.callbacks.early_stopping.patience == 50
    monkeypatch.setenv("NEUROHASH_V4_READS", str(V4))
    assert OmegaConf.to_container(cfg.data, resolve=True)["path"] == str(V4)


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_runs(name: str, tmp_path: Path, one_thread: None) -> None:
    cfg = compose_experiment(name, tmp_path, *small_run(tmp_path))
    metrics = train(cfg)
    for key in METRICS:
        assert math.isfinite(metrics[f"test/{key}"]), (name, key, metrics)
    assert metrics["data/normaliser"] == cfg.data.max_len
    # the group split held out whole samples even on a 200-read sample
    assert metrics["data/test_seqs"] > 0 and metrics["data/train_seqs"] >= 100
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["test/rmse_pct"] == pytest.approx(metrics["test/rmse_pct"])
    assert OmegaConf.load(tmp_path / "config.yaml").task_name == name
