"""neurohash.metrics on hand-computed cases (definitions in the module docstring)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from neurohash.metrics import (
    TOP_K,
    candidate_recall,
    closest_string_topk,
    distance_metrics,
    mae,
    rmse_pct,
    spearman,
)


def test_rmse_pct() -> None:
    # differences 0 and 0.2 -> sqrt(0.04 / 2) = 0.1414...
    assert rmse_pct(np.array([0.1, 0.2]), np.array([0.1, 0.4])) == pytest.approx(
        100 * math.sqrt(0.02)
    )
    assert rmse_pct(np.array([0.5, 0.25]), np.array([0.5, 0.25])) == 0.0
    assert rmse_pct(np.array([0.0, 0.0, 0.0, 0.0]), np.array([0.1] * 4)) == pytest.approx(10.0)
    assert isinstance(rmse_pct(np.array([0.1]), np.array([0.2])), float)


def test_mae_in_edit_operations() -> None:
    # L * pred = [10, 20] against ED [10, 30]
    assert mae(np.array([0.1, 0.2]), np.array([10, 30]), 100.0) == pytest.approx(5.0)
    assert mae(np.array([0.5, 0.5]), np.array([2, 8]), 10.0) == pytest.approx(3.0)
    assert mae(np.array([0.3]), np.array([3]), 10.0) == pytest.approx(0.0)


def test_spearman() -> None:
    up = np.array([1.0, 2.0, 3.0, 4.0])
    assert spearman(up, np.array([10.0, 20.0, 30.0, 40.0])) == pytest.approx(1.0)
    assert spearman(up, np.array([40.0, 30.0, 20.0, 10.0])) == pytest.approx(-1.0)
    assert spearman(up**3, np.array([1.0, 5.0, 6.0, 100.0])) == pytest.approx(1.0)  # ranks only
    # ties: ranks [1, 2.5, 2.5, 4] vs [1, 2, 3, 4] -> 4.5 / sqrt(4.5 * 5)
    tied = spearman(np.array([1.0, 2.0, 2.0, 3.0]), up)
    assert tied == pytest.approx(4.5 / math.sqrt(4.5 * 5))


def test_spearman_degenerate_is_zero() -> None:
    assert math.isnan(spearman(np.array([1.0]), np.array([2.0])))  # too few pairs: undefined
    assert math.isnan(spearman(np.array([]), np.array([])))
    assert spearman(np.array([1.0, 2.0, 3.0]), np.array([5.0, 5.0, 5.0])) == 0.0
    assert spearman(np.array([0.2, 0.2, 0.2]), np.array([1.0, 2.0, 3.0])) == 0.0


def test_closest_string_topk_hand_computed() -> None:
    true = np.array(
        [
            [1, 5, 3, 4],  # nearest ref 0, unique
            [2, 1, 6, 9],  # nearest ref 1, unique
            [2, 2, 5, 7],  # two nearest: dropped
            [4, 1, 5, 5],  # nearest ref 1, unique
        ]
    )
    pred = np.array(
        [
            [0.1, 0.5, 0.2, 0.3],  # target 0.1 is first: rank 1
            [0.1, 0.3, 0.2, 0.4],  # target 0.3 is third: rank 3
            [0.9, 0.9, 0.0, 0.0],  # ignored (would be a miss)
            [0.2, 0.2, 0.5, 0.1],  # target 0.2 ties with ref 0, ref 3 is lower: rank 3
        ]
    )
    out = closest_string_topk(pred, true, ks=(1, 2, 3, 4))
    assert out["top1"] == pytest.approx(1 / 3) and out["top2"] == pytest.approx(1 / 3)
    assert out["top3"] == 1.0
    assert math.isnan(out["top4"])  # 4 references: top-4 would count every query


def test_closest_string_ties_count_against_the_model() -> None:
    true = np.array([[1, 2, 3]])
    out = closest_string_topk(np.array([[0.2, 0.2, 0.2]]), true, ks=(1, 2, 3))
    assert out["top1"] == out["top2"] == 0.0 and math.isnan(out["top3"])
    assert closest_string_topk(np.array([[0.1, 0.2, 0.2]]), true, ks=(1,)) == {"top1": 1.0}


def test_closest_string_default_ks_and_all_ties() -> None:
    rng = np.random.default_rng(0)
    true = rng.permutation(12 * 20).reshape(12, 20)  # distinct values: every nearest unique
    out = closest_string_topk(true / 100.0, true)  # perfect predictions
    assert out == {f"top{k}": 1.0 for k in TOP_K}
    reversed_pred = -true.astype(float)  # true nearest predicted farthest of 20
    assert closest_string_topk(reversed_pred, true) == {f"top{k}": 0.0 for k in TOP_K}
    ties = np.ones((3, 4))
    out = closest_string_topk(np.zeros((3, 4)), ties)
    assert set(out) == {"top1", "top5", "top10"} and all(math.isnan(v) for v in out.values())


def test_distance_metrics_hand_computed() -> None:
    exact = np.array(
        [
            [0, 2, 4, 6],
            [2, 0, 6, 2],
            [4, 6, 0, 8],
            [6, 2, 8, 0],
        ]
    )
    pred = exact / 10.0
    pred[0, 1] = pred[1, 0] = 0.3  # true 0.2
    pred[1, 3] = pred[3, 1] = 0.7  # true 0.2
    out = distance_metrics(pred, exact, normaliser=10.0)
    assert set(out) == {"rmse_pct", "rmse_pct_nearest", "mae", "spearman", "top1", "top5", "top10"}
    # upper-triangle pairs: errors 0.1 and 0.5 among 6 pairs
    assert out["rmse_pct"] == pytest.approx(100 * math.sqrt((0.01 + 0.25) / 6))
    # nearest: 0 -> 1, 1 -> 0 (tied with 3: the first), 2 -> 0, 3 -> 1; pairs (0, 1), (0, 2),
    # (1, 3) with errors 0.1, 0 and 0.5
    assert out["rmse_pct_nearest"] == pytest.approx(100 * math.sqrt((0.01 + 0.25) / 3))
    assert math.isnan(distance_metrics(pred[:1, :1], exact[:1, :1], 10.0)["rmse_pct_nearest"])
    assert out["mae"] == pytest.approx((1 + 5) / 6)
    # ranks pred [1, 2, 3.5, 3.5, 5, 6] vs true [1.5, 3, 4.5, 4.5, 1.5, 6]
    assert out["spearman"] == pytest.approx(9 / math.sqrt(17 * 16.5))
    # references = sequences 0, 1; queries = 2, 3. Query 2: nearest ref 0 (4 < 6), predicted
    # first. Query 3: nearest ref 1 (2 < 6) but predicted 0.7 > 0.6: rank 2.
    assert out["top1"] == 0.5  # two references: top-5 and top-10 are undefined
    assert math.isnan(out["top5"]) and math.isnan(out["top10"])


def test_distance_metrics_perfect_and_odd_size() -> None:
    rng = np.random.default_rng(1)
    n, length = 9, 50
    points = rng.integers(0, 1000, size=n)
    exact = np.abs(points[:, None] - points[None, :]) % 37 + 1  # a symmetric integer matrix
    exact = np.triu(exact, 1) + np.triu(exact, 1).T
    out = distance_metrics(exact / length, exact, normaliser=length)
    assert out["rmse_pct"] == pytest.approx(0.0, abs=1e-12)
    assert out["mae"] == pytest.approx(0.0, abs=1e-12)
    assert out["spearman"] == pytest.approx(1.0)
    refs = n - n // 2  # 5 references, 4 queries
    block = exact[refs:, :refs]
    unique = [(row == row.min()).sum() == 1 for row in block]
    assert any(unique)
    assert out["top1"] == 1.0


def test_distance_metrics_constant_prediction() -> None:
    exact = np.array([[0, 1, 5], [1, 0, 3], [5, 3, 0]])
    out = distance_metrics(np.full((3, 3), 0.2), exact, normaliser=10.0)
    # pairs true [0.1, 0.5, 0.3] vs 0.2
    assert out["rmse_pct"] == pytest.approx(100 * math.sqrt((0.01 + 0.09 + 0.01) / 3))
    assert out["mae"] == pytest.approx((1 + 3 + 1) / 3)
    assert out["spearman"] == 0.0
    # refs 0, 1; query 2 nearest ref 1 (3 < 5), all predictions tie -> rank 2
    assert out["top1"] == 0.0 and math.isnan(out["top5"])


def test_candidate_recall_on_points_of_a_line() -> None:
    """Sequences at positions 0..29 of a line, exact distance |i - j|."""
    pos = np.arange(30)
    exact = np.abs(pos[:, None] - pos[None, :])
    perfect = candidate_recall(exact.astype(float), exact, k=10, candidates=(10, 20, 29))
    assert perfect == {"recall10_at10": 1.0, "recall10_at20": 1.0}  # C = 29 of 29: left out
    reverse = candidate_recall(-exact.astype(float), exact, k=10, candidates=(10, 28))
    assert reverse["recall10_at10"] == 0.0  # the farthest ten first: none of the nearest ten
    assert reverse["recall10_at28"] == pytest.approx(0.9)  # all but the very nearest


def test_candidate_recall_counts_ties_at_the_kth_distance_as_true() -> None:
    """Query 0 at distance 1 from every other sequence: any 2 of them are its true top 2."""
    exact = np.ones((6, 6)) - np.eye(6)
    dist = np.random.default_rng(0).random((6, 6))
    assert candidate_recall(dist, exact, k=2, candidates=(2,))["recall2_at2"] == 1.0


def test_candidate_recall_is_left_out_on_too_few_sequences() -> None:
    exact = np.abs(np.arange(5)[:, None] - np.arange(5)[None, :])
    assert candidate_recall(exact, exact, k=10) == {}


def test_too_few_sequences_give_nan_not_a_perfect_score() -> None:
    """2-3 sequences once scored Spearman 0.0 and top-k 1.0."""
    for n in (2, 3):
        pos = np.arange(n, dtype=float)
        exact = np.abs(pos[:, None] - pos[None, :]) * 10
        metrics = distance_metrics(exact / 100.0, exact, 100.0)
        assert math.isnan(metrics["top5"]) and math.isnan(metrics["top10"])
        assert math.isnan(metrics["spearman"]) == (n == 2)
    many = np.abs(np.arange(30.0)[:, None] - np.arange(30.0)[None, :])
    assert not math.isnan(distance_metrics(many / 100, many, 100.0)["top10"])
