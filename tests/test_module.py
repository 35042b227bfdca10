"""DistanceEmbeddingModule: the closed-form output scales, evaluation on known matrices and what
its coder reads."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from neurohash.hashing import Features, LearnedHash
from neurohash.losses import MSEDistanceLoss
from neurohash.models.encoders import KmerEncoder
from neurohash.models.encoders.linear import LinearEncoder
from neurohash.models.geometry import Cosine, Euclidean
from neurohash.module import FAST_DEV_BANK, DistanceEmbeddingModule
from neurohash.train import build_training_module
from tests.helpers import compose_train, v4_cpu_run

MAX_LEN, DIM, L = 12, 4, 10


def module() -> DistanceEmbeddingModule:
    torch.manual_seed(0)
    return DistanceEmbeddingModule(LinearEncoder(DIM, MAX_LEN), Euclidean(), MSEDistanceLoss(), L)


def test_fit_scale_recovers_a_known_scale() -> None:
    """Targets made as 0.37 x the unscaled distance (in ED / L): least squares gives 0.37."""
    model = module()
    tokens = torch.randint(0, 4, (8, MAX_LEN))
    pairs = torch.tensor([[0, 1], [2, 3], [4, 5], [6, 7], [0, 7]])
    with torch.no_grad():
        model.geometry.log_scale.zero_()
        raw = model.pair_distances(tokens, pairs)
    batch = {"tokens": tokens, "pairs": pairs, "edit_distance": 0.37 * raw * L}
    assert model.fit_scale([batch, batch]) == pytest.approx(0.37, rel=1e-5)
    assert model.geometry.scale.item() == pytest.approx(0.37, rel=1e-5)


def test_matrix_metrics_on_points_of_a_line() -> None:
    """Embeddings at 0, 1, ..., 11 on one axis; exact distances L x |i - j| (scale 1): the
    model's distances are exact, so %RMSE and MAE are 0 and the ranking is perfect."""
    model = module()
    with torch.no_grad():
        model.geometry.log_scale.zero_()
    emb = torch.zeros(12, DIM)
    emb[:, 0] = torch.arange(12.0)
    exact = np.abs(np.arange(12)[:, None] - np.arange(12)[None, :]) * L
    with torch.no_grad():
        code_logits = model.hashing.logits(emb)
    metrics, pred = model.matrix_metrics(emb, code_logits, exact)
    assert pred == pytest.approx(exact / L, abs=1e-5)
    assert metrics["rmse_pct"] == pytest.approx(0.0, abs=1e-3)
    assert metrics["mae"] == pytest.approx(0.0, abs=1e-3)
    assert metrics["spearman"] == pytest.approx(1.0)
    # 1.5x too far: error 0.5 |i - j|
    shifted, _ = model.matrix_metrics(emb * 1.5, code_logits, exact)
    pairs = np.abs(np.subtract.outer(np.arange(12), np.arange(12)))[np.triu_indices(12, 1)]
    assert shifted["rmse_pct"] == pytest.approx(100 * math.sqrt(np.mean((0.5 * pairs) ** 2)))
    assert shifted["spearman"] == pytest.approx(1.0)  # ranks unchanged
    assert {"hash_spearman", "hash_top1", "hash_recall10_at10"} <= set(metrics)


def test_a_coder_with_features_of_its_own_reads_the_tokens_not_the_embedding() -> None:
    """With ``features`` (here positional 2-mer profiles) the codes of tokens are the coder's
    own view of them whatever the model's embedding, and their distance's scale is fitted to
    ED / L in closed form, as the geometry's is."""
    features = Features(KmerEncoder(MAX_LEN, k=2, segments=2), Cosine(learn_scale=False))
    coder = LearnedHash(DIM, bits=16, features=features)
    model = DistanceEmbeddingModule(
        LinearEncoder(DIM, MAX_LEN), Euclidean(), MSEDistanceLoss(), L, hashing=coder
    ).eval()
    tokens = torch.randint(0, 4, (8, MAX_LEN))
    emb = model(tokens)
    logits = model.code_logits(tokens, emb)
    assert logits.shape == (8, 16) and coder.input_dim == 2 * 4**2
    assert torch.equal(logits, model.code_logits(tokens, emb + 1))  # the embedding is not read
    with torch.no_grad():
        assert torch.equal(logits, coder.logits(features(tokens)))
    pairs = torch.tensor([[0, 1], [2, 3], [4, 5], [6, 7], [0, 7]])
    profiles = features(tokens)
    with torch.no_grad():
        raw = features.distance.raw(profiles[pairs[:, 0]], profiles[pairs[:, 1]])
    batch = {"tokens": tokens, "pairs": pairs, "edit_distance": 0.21 * raw * L}
    assert model.fit_scales([batch], [(features.distance, features)]) == [pytest.approx(0.21)]
    assert features.distance.scale.item() == pytest.approx(0.21, rel=1e-5)


def test_a_fast_dev_run_fills_a_small_bank(v4_small: Path, tmp_path: Path, one_thread: None):
    """``debug=fdr`` checks the default neighbour coder on ``FAST_DEV_BANK`` sequences, not on
    its 30,000 (minutes on Greengenes before the one batch)."""
    overrides = [*v4_cpu_run(v4_small, tmp_path / "cache"), "model=linear", "debug=fdr"]
    cfg = compose_train(tmp_path, *overrides, "logger=none")
    assert cfg.hashing.bank > FAST_DEV_BANK
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    module = build_training_module(cfg)
    instantiate(cfg.trainer, logger=False).fit(module, datamodule=datamodule)
    assert len(module.hashing.bank) == FAST_DEV_BANK
