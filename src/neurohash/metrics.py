"""Evaluation metrics, defined as NeuroSEED defines them (docs in README "Metrics").

All take a predicted distance matrix in ED / L units and the exact edit-distance matrix (in edits)
over the same sequences; pairs are the upper triangle (i < j).
- ``rmse_pct``: 100 * sqrt(mean((d_pred - ED / L)^2)), L the dataset's fixed length normaliser.
- ``rmse_pct_nearest``: the same over each sequence's pair with its exact nearest (first on ties;
  each pair once): the distances a search must get right. Where most pairs are unrelated (genome
  windows) ``rmse_pct`` mostly scores how well the model knows "unrelated"; this does not.
- ``mae``: mean |L * d_pred - ED|, in edit operations.
- ``spearman``: rank correlation of predicted and true distances over the pairs.
- ``top{k}``: closest-string retrieval. The first half of the sequences are references, the rest
  queries; a query counts when its true nearest reference (kept only if unique) is among the k
  references with the smallest predicted distance (ties counted against the model).
- ``hash_*``: Spearman and top-k of the Hamming distances between binary hash codes, and
  ``hash_recall10_at{C}``: candidate recall, how much of each sequence's exact top 10 (all others
  are its references; ties at the 10th distance count as true) is among its C nearest by Hamming
  distance (ties in FAISS's order, by position). Since an exact re-rank of those C puts the found
  ones first, it is also recall@10 after exact re-ranking of the Hamming top C, no float refine.
  Left out for a C not smaller than the set (1 trivially), so no metric is NaN by design.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr

TOP_K = (1, 5, 10)
RECALL_K = 10
CANDIDATES = (10, 100, 1000)


def rmse_pct(pred: np.ndarray, true_norm: np.ndarray) -> float:
    return float(100.0 * np.sqrt(np.mean((pred - true_norm) ** 2)))


def mae(pred: np.ndarray, true_ed: np.ndarray, normaliser: float) -> float:
    return float(np.mean(np.abs(pred * normaliser - true_ed)))


MIN_PAIRS = 3  # fewer pairs rank nothing: Spearman is undefined (NaN), not 0


def spearman(pred: np.ndarray, true: np.ndarray) -> float:
    """Rank correlation over at least MIN_PAIRS pairs (else NaN); 0 when either side is
    constant (a constant prediction ranks nothing)."""
    if len(pred) < MIN_PAIRS:
        return float("nan")
    if np.ptp(true) == 0 or np.ptp(pred) == 0:
        return 0.0
    return float(spearmanr(pred, true).statistic)


def closest_string_topk(
    pred: np.ndarray, true: np.ndarray, ks: tuple[int, ...] = TOP_K
) -> dict[str, float]:
    """Top-k retrieval of each query's unique true nearest reference; pred, true are (Q, R).
    NaN for a k not smaller than the number of references (every query would count)."""
    nearest = true.argmin(axis=1)
    best = true[np.arange(len(true)), nearest]
    unique = (true == best[:, None]).sum(axis=1) == 1
    if not len(true) or not unique.any():
        return {f"top{k}": float("nan") for k in ks}
    pred, nearest = pred[unique], nearest[unique]
    target = pred[np.arange(len(pred)), nearest]
    rank = (pred <= target[:, None]).sum(axis=1)  # 1 when the true nearest is strictly first
    refs = true.shape[1]
    return {f"top{k}": float(np.mean(rank <= k)) if k < refs else float("nan") for k in ks}


def distance_metrics(
    pred_matrix: np.ndarray, exact: np.ndarray, normaliser: float
) -> dict[str, float]:
    """All metrics for a square predicted matrix against the exact matrix of the same sequences."""
    n = len(exact)
    i, j = np.triu_indices(n, k=1)
    pred, true = pred_matrix[i, j], exact[i, j].astype(np.float64)
    out = {
        "rmse_pct": rmse_pct(pred, true / normaliser),
        "rmse_pct_nearest": nearest_rmse_pct(pred_matrix, exact, normaliser),
        "mae": mae(pred, true, normaliser),
        "spearman": spearman(pred, true),
    }
    refs = n - n // 2
    out.update(closest_string_topk(pred_matrix[refs:, :refs], exact[refs:, :refs]))
    return out


def nearest_rmse_pct(pred_matrix: np.ndarray, exact: np.ndarray, normaliser: float) -> float:
    """``rmse_pct`` over the pairs of each sequence with its exact nearest (see module doc); NaN
    for one sequence, which has no pair."""
    if len(exact) < 2:
        return float("nan")
    off_diagonal = exact.astype(np.float64) + np.diag(np.full(len(exact), np.inf))
    nearest = off_diagonal.argmin(axis=1)
    pairs = np.unique(np.sort(np.stack([np.arange(len(exact)), nearest], axis=1), axis=1), axis=0)
    i, j = pairs.T
    return rmse_pct(pred_matrix[i, j], exact[i, j] / normaliser)


def candidate_recall(
    dist: np.ndarray, exact: np.ndarray, k: int = RECALL_K, candidates: tuple[int, ...] = CANDIDATES
) -> dict[str, float]:
    """Mean fraction of each sequence's exact top ``k`` found among its ``C`` nearest by ``dist``
    (square matrices over the same sequences; each sequence queries all the others). A ``C``
    not smaller than the number of references would give 1 trivially: it is left out."""
    n = len(exact)
    out: dict[str, float] = {}
    if n - 1 <= k:
        return out
    off_diagonal = ~np.eye(n, dtype=bool)
    true = np.where(off_diagonal, exact, np.inf)
    kth = np.partition(true, k - 1, axis=1)[:, k - 1]
    relevant = true <= kth[:, None]
    order = np.argsort(np.where(off_diagonal, dist, np.inf), axis=1, kind="stable")
    for c in candidates:
        if c < n - 1:
            found = np.take_along_axis(relevant, order[:, :c], axis=1).sum(axis=1)
            out[f"recall{k}_at{c}"] = float(np.mean(np.minimum(found, k) / k))
    return out


def hamming_metrics(codes: np.ndarray, exact: np.ndarray) -> dict[str, float]:
    """Spearman, closest-string top-k and candidate recall when packed binary codes rank by
    Hamming distance."""
    from neurohash.hashing import hamming_matrix

    n = len(exact)
    ham = hamming_matrix(codes, codes).astype(np.float64)
    i, j = np.triu_indices(n, k=1)
    out = {"spearman": spearman(ham[i, j], exact[i, j].astype(np.float64))}
    refs = n - n // 2
    out.update(closest_string_topk(ham[refs:, :refs], exact[refs:, :refs]))
    out.update(candidate_recall(ham, exact))
    return out
