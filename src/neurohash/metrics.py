"""Evaluation metrics, defined as NeuroSEED defines them (docs in README "Metrics").

All take a predicted distance matrix in ED / L units and the exact edit-distance matrix (in edits)
over the same sequences; pairs are the upper triangle (i < j).
- ``rmse_pct``: 100 * sqrt(mean((d_pred - ED / L)^2)), L the dataset's fixed length normaliser.
- ``mae``: mean |L * d_pred - ED|, in edit operations.
- ``spearman``: rank correlation of predicted and true distances over the pairs.
- ``top{k}``: closest-string retrieval. The first half of the sequences are references, the rest
  queries; a query counts when its true nearest reference (kept only if unique) is among the k
  references with the smallest predicted distance (ties counted against the model).
- ``hash_*``: Spearman and top-k of the Hamming distances between binary hash codes.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr

TOP_K = (1, 5, 10)


def rmse_pct(pred: np.ndarray, true_norm: np.ndarray) -> float:
    return float(100.0 * np.sqrt(np.mean((pred - true_norm) ** 2)))


def mae(pred: np.ndarray, true_ed: np.ndarray, normaliser: float) -> float:
    return float(np.mean(np.abs(pred * normaliser - true_ed)))


def spearman(pred: np.ndarray, true: np.ndarray) -> float:
    if len(pred) < 2 or np.ptp(true) == 0 or np.ptp(pred) == 0:
        return 0.0
    return float(spearmanr(pred, true).statistic)


def closest_string_topk(
    pred: np.ndarray, true: np.ndarray, ks: tuple[int, ...] = TOP_K
) -> dict[str, float]:
    """Top-k retrieval of each query's unique true nearest reference; pred, true are (Q, R)."""
    nearest = true.argmin(axis=1)
    best = true[np.arange(len(true)), nearest]
    unique = (true == best[:, None]).sum(axis=1) == 1
    if not unique.any():
        return {f"top{k}": float("nan") for k in ks}
    pred, nearest = pred[unique], nearest[unique]
    target = pred[np.arange(len(pred)), nearest]
    rank = (pred <= target[:, None]).sum(axis=1)  # 1 when the true nearest is strictly first
    return {f"top{k}": float(np.mean(rank <= k)) for k in ks}


def distance_metrics(
    pred_matrix: np.ndarray, exact: np.ndarray, normaliser: float
) -> dict[str, float]:
    """All metrics for a square predicted matrix against the exact matrix of the same sequences."""
    n = len(exact)
    i, j = np.triu_indices(n, k=1)
    pred, true = pred_matrix[i, j], exact[i, j].astype(np.float64)
    out = {
        "rmse_pct": rmse_pct(pred, true / normaliser),
        "mae": mae(pred, true, normaliser),
        "spearman": spearman(pred, true),
    }
    refs = n - n // 2
    out.update(closest_string_topk(pred_matrix[refs:, :refs], exact[refs:, :refs]))
    return out


def hamming_metrics(codes: np.ndarray, exact: np.ndarray) -> dict[str, float]:
    """Spearman and closest-string top-k when packed binary codes rank by Hamming distance."""
    from neurohash.hashing import hamming_matrix

    n = len(exact)
    ham = hamming_matrix(codes, codes).astype(np.float64)
    i, j = np.triu_indices(n, k=1)
    out = {"spearman": spearman(ham[i, j], exact[i, j].astype(np.float64))}
    refs = n - n // 2
    out.update(closest_string_topk(ham[refs:, :refs], exact[refs:, :refs]))
    return out
