"""The training job, composed through Hydra exactly as `python train.py ...` composes it."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from itertools import islice
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from neurohash.checkpoint import WEIGHTS_DIGEST, load_module, weights_sha256
from neurohash.train import build_training_module, train
from tests.helpers import compose_train, v4_cpu_run

ROOT = Path(__file__).resolve().parents[1]
MODELS = ["linear", "mlp", "cnn", "gru", "transformer", "transformer_local", "kmer"]
DISTANCES = ["euclidean", "manhattan", "square", "cosine", "hyperbolic"]


def small_v4(data: Path, run_dir: Path, *overrides: str) -> list[str]:
    """Overrides for a quick CPU run on 300 real V4 reads sampled from ``data``."""
    return [*v4_cpu_run(data, run_dir / "cache"), "logger=none", *overrides]


@pytest.mark.parametrize("distance", DISTANCES)
@pytest.mark.parametrize("model", MODELS)
def test_every_model_and_geometry_trains_without_nan(
    v4_small: Path, tmp_path: Path, model: str, distance: str, one_thread: None
) -> None:
    cfg = compose_train(
        tmp_path,
        *small_v4(v4_small, tmp_path, f"model={model}", f"distance={distance}", "debug=fdr"),
    )
    metrics = train(cfg)
    for key in ("rmse_pct", "mae", "spearman", "top1", "top5", "top10"):
        assert math.isfinite(metrics[f"test/{key}"]), (key, metrics)
        assert math.isfinite(metrics[f"baseline/{key}"]), (key, metrics)
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["test/rmse_pct"] == pytest.approx(metrics["test/rmse_pct"])


@pytest.mark.parametrize("model", MODELS)
def test_every_model_trains_the_ranking_codes_jointly_without_nan(
    v4_small: Path, tmp_path: Path, model: str, one_thread: None
) -> None:
    """The retrieval objective, shaping the encoder too, runs with every encoder (a fast dev
    run) and stays finite, candidate recall included."""
    overrides = [f"model={model}", "hashing=rank", "hashing.detach=false", "debug=fdr"]
    metrics = train(compose_train(tmp_path, *small_v4(v4_small, tmp_path, *overrides)))
    for key in ("rmse_pct", "hash_spearman", "hash_recall10_at10"):
        assert math.isfinite(metrics[f"test/{key}"]), (key, metrics)


@pytest.mark.parametrize("hashing", ["rank", "neighbours", "itq", "learned"])
def test_retrieval_coders_are_saved_fitted_and_reload(
    v4_small: Path, tmp_path: Path, hashing: str, one_thread: None
) -> None:
    """A run's checkpoint rebuilds its coder with what training fitted (ITQ's projection is
    refitted at validation, so it is no longer its seeded start); checkpoints of the former
    default (``hashing=learned``) keep loading."""
    overrides = ["model=cnn", f"hashing={hashing}", "trainer.max_epochs=1"]
    overrides += ["trainer.limit_train_batches=3"]
    cfg = compose_train(tmp_path, *small_v4(v4_small, tmp_path, *overrides))
    train(cfg)
    module = load_module(tmp_path / "checkpoints" / "last.ckpt")
    names = {"itq": "ItqHash", "rank": "RankHash", "learned": "LearnedHash"}
    names["neighbours"] = "NeighbourHash"
    assert type(module.hashing).__name__ == names[hashing]
    fresh = build_training_module(cfg)
    emb = torch.randn(16, module.hashing.input_dim)  # what the coder reads
    module.eval(), fresh.eval()
    assert not torch.equal(module.hashing.codes(emb), fresh.hashing.codes(emb))


def test_codes_kmer_experiment_keeps_the_epoch_of_best_candidate_recall(
    v4_small: Path, tmp_path: Path, one_thread: None
) -> None:
    """experiment=codes_kmer: positional 5-mer profiles under the head distilled from their
    neighbour lists, checkpoints kept by validation candidate recall (the head leaves %RMSE
    unchanged)."""
    overrides = ["experiment=codes_kmer", "trainer.max_epochs=2", "trainer.limit_train_batches=3"]
    overrides.append("hashing.hidden=16")  # the hidden-layer head trains, saves and loads too
    cfg = compose_train(tmp_path, *small_v4(v4_small, tmp_path, *overrides))
    assert cfg.callbacks.model_checkpoint.monitor == "val/hash_recall10_at10"
    assert cfg.callbacks.model_checkpoint.mode == "max"
    metrics = train(cfg)
    assert 0 <= metrics["test/hash_recall10_at10"] <= 1
    module = load_module(tmp_path / "checkpoints" / "last.ckpt")
    assert type(module.hashing).__name__ == "NeighbourHash"
    assert module.hashing.head[0].out_features == 16
    assert module.encoder.embedding_dim == 8 * 4**5


@pytest.mark.parametrize("model", ["linear", "mlp", "cnn", "gru", "transformer"])
def test_embedding_dim_is_one_key(v4_small: Path, tmp_path: Path, model: str) -> None:
    cfg = compose_train(
        tmp_path, *small_v4(v4_small, tmp_path, f"model={model}", "model.embedding_dim=16")
    )
    module = build_training_module(cfg)
    tokens = torch.randint(1, 5, (6, 152))
    assert module(tokens).shape == (6, 16)
    assert module.pair_distances(tokens, torch.tensor([[0, 1], [2, 5]])).shape == (2,)


@pytest.mark.slow
def test_train_writes_run_directory_and_repeats_exactly(v4_small: Path, tmp_path: Path) -> None:
    overrides = [
        "model=cnn",
        "distance=hyperbolic",
        "trainer.max_epochs=2",
        "trainer.limit_train_batches=4",
    ]
    first = train(compose_train(tmp_path / "a", *small_v4(v4_small, tmp_path / "a", *overrides)))
    second = train(compose_train(tmp_path / "b", *small_v4(v4_small, tmp_path / "b", *overrides)))
    run = tmp_path / "a"
    assert (
        load_module(run / "checkpoints" / "last.ckpt")
        .hparams.config["model"]["_target_"]
        .endswith("CNNEncoder")
    )
    assert any(p.name.startswith("best") for p in (run / "checkpoints").iterdir())
    assert OmegaConf.load(run / "config.yaml").trainer.max_epochs == 2
    assert (run / "pred_vs_true.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (run / "pred_vs_true.png").stat().st_size > 10_000
    written = json.loads((run / "metrics.json").read_text())
    for key in ("rmse_pct", "mae", "spearman", "top1", "top5", "top10"):
        assert f"test/{key}" in written and f"baseline/{key}" in written
    assert first["test/rmse_pct"] == second["test/rmse_pct"]
    assert first["test/top10"] == second["test/top10"]
    assert first["test/hash_recall10_at10"] == second["test/hash_recall10_at10"]
    module = load_module(run / "checkpoints" / "last.ckpt")
    assert module.normaliser == 152
    # the default codes are the best measured: the neighbour head, 256 bits, one hidden layer,
    # on positional 5-mer profiles of their own (eight segments), not the transformer's embedding
    assert type(module.hashing).__name__ == "NeighbourHash" and module.hashing.bits == 256
    assert module.hashing.head[0].out_features == 512
    assert module.hashing.features.encoder.segments == 8 and module.hashing.input_dim == 8 * 4**5


def test_last_checkpoint_is_the_latest_epoch_even_without_a_new_best(
    v4_small: Path, tmp_path: Path, one_thread: None
) -> None:
    """``ckpt_path=.../last.ckpt`` resumes from the latest epoch. With a zero learning rate the
    validation %RMSE never improves after the first epoch, so only that one is a best; Lightning
    2.6's own ``save_last`` would leave last.ckpt there too."""
    overrides = ["model=linear", "optimizer.lr=0", "scheduler=none", "trainer.max_epochs=3"]
    overrides += ["trainer.limit_train_batches=2", "callbacks.early_stopping.patience=5"]
    train(compose_train(tmp_path, *small_v4(v4_small, tmp_path, *overrides)))
    checkpoints = tmp_path / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["best_epoch000.ckpt", "last.ckpt"]
    last = torch.load(checkpoints / "last.ckpt", weights_only=False, map_location="cpu")
    assert last["epoch"] == 2 and last["global_step"] == 6


def test_fresh_run_starts_from_the_least_squares_scale_and_a_resumed_one_keeps_its_own(
    v4_small: Path, tmp_path: Path, one_thread: None
) -> None:
    """Manhattan over a linear map of one-hot bases starts orders of magnitude above ED / L;
    the scale fitted at fit start (learning rate 0 here, so nothing else moves) brings it down,
    and resuming never refits over a trained scale."""
    frozen = ["model=linear", "distance=manhattan", "optimizer.lr=0", "scheduler=none"]
    frozen += ["trainer.limit_train_batches=2"]
    fresh = [*frozen, "trainer.max_epochs=1"]
    metrics = train(compose_train(tmp_path / "a", *small_v4(v4_small, tmp_path / "a", *fresh)))
    last = tmp_path / "a" / "checkpoints" / "last.ckpt"
    module = load_module(last)
    assert module.geometry.scale < 0.05
    assert metrics["test/rmse_pct"] < 20

    state = torch.load(last, weights_only=False, map_location="cpu")
    state["state_dict"]["geometry.log_scale"] = torch.tensor(math.log(0.5))
    state[WEIGHTS_DIGEST] = weights_sha256(state["state_dict"])  # edited on purpose: re-sealed
    torch.save(state, edited := tmp_path / "edited.ckpt")
    resumed = [*frozen, "trainer.max_epochs=2", f"ckpt_path={edited}"]
    train(compose_train(tmp_path / "b", *small_v4(v4_small, tmp_path / "b", *resumed)))
    scale = load_module(tmp_path / "b" / "checkpoints" / "last.ckpt").geometry.scale
    assert scale.item() == pytest.approx(0.5)


def test_fitting_the_scale_leaves_batchnorm_statistics_untouched(
    v4_small: Path, tmp_path: Path, one_thread: None
) -> None:
    """The scale fit runs forward passes in train mode before step 1; the CNN's BatchNorm
    running statistics must not count them."""
    cfg = compose_train(tmp_path, *small_v4(v4_small, tmp_path, "model=cnn"))
    module = build_training_module(cfg).train()
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    before = {name: b.clone() for name, b in module.encoder.named_buffers()}
    assert any("running_mean" in name for name in before)
    scale = module.fit_scale(islice(datamodule.train_dataloader(), 2))
    assert module.geometry.scale.item() == pytest.approx(scale) and scale != 1.0
    for name, buffer in module.encoder.named_buffers():
        assert torch.equal(buffer, before[name]), name


@pytest.mark.slow
def test_train_py_command_line(v4_small: Path, tmp_path: Path) -> None:
    """The root entry point as a user runs it (a subprocess, Hydra parsing the overrides)."""
    overrides = small_v4(
        v4_small, tmp_path, "model=transformer", "distance=hyperbolic", "debug=fdr"
    )
    overrides.append(f"hydra.run.dir={tmp_path}")
    result = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *overrides],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert math.isfinite(metrics["test/rmse_pct"])


@pytest.mark.slow
def test_wandb_logger_offline(
    v4_small: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`logger=wandb` works with no account under WANDB_MODE=offline and logs the config."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    for name in ("DIR", "CACHE_DIR", "CONFIG_DIR", "DATA_DIR"):  # nothing left outside tmp_path
        monkeypatch.setenv(f"WANDB_{name}", str(tmp_path / "wandb_home" / name.lower()))
    quick = ["model=cnn", "trainer.max_epochs=1", "trainer.limit_train_batches=2"]
    overrides = [o for o in small_v4(v4_small, tmp_path, *quick) if o != "logger=none"]
    metrics = train(compose_train(tmp_path, *overrides, "logger=wandb"))
    assert math.isfinite(metrics["test/rmse_pct"])
    runs = list(tmp_path.rglob("offline-run-*"))
    assert runs, sorted(str(p) for p in tmp_path.rglob("*"))[:20]


@pytest.mark.parametrize("steps", [1, 2, 3, 10])
def test_small_runs_train(v4_small: Path, tmp_path: Path, one_thread: None, steps: int) -> None:
    """A run of exactly 10 optimizer steps once crashed in OneCycleLR (a one-step warm-up at the
    default pct_start 0.1 divides by zero)."""
    overrides = ["model=linear", "trainer.max_epochs=1", f"trainer.limit_train_batches={steps}"]
    metrics = train(compose_train(tmp_path, *small_v4(v4_small, tmp_path, *overrides)))
    assert math.isfinite(metrics["test/rmse_pct"])
    assert metrics["train/epochs"] == 1
