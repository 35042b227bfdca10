"""neurohash.losses on hand-made values: the first B pairs are (anchor, partner1), the next B
(anchor, partner2)."""

from __future__ import annotations

import pytest
import torch

from neurohash.losses import MSEDistanceLoss, TripletLoss, WeightedLoss


def test_mse_is_the_mean_squared_error() -> None:
    pred, true = torch.tensor([0.1, 0.4, 0.3]), torch.tensor([0.1, 0.2, 0.0])
    assert MSEDistanceLoss()(pred, true, n_triplets=1).item() == pytest.approx((0.04 + 0.09) / 3)


def test_triplet_asks_the_truly_closer_partner_to_be_closer_by_the_margin() -> None:
    # two triplets: pairs (a0, p1), (a1, p1), (a0, p2), (a1, p2)
    true = torch.tensor([0.1, 0.5, 0.3, 0.2])  # triplet 0: partner 1 closer; triplet 1: partner 2
    right = torch.tensor([0.1, 0.6, 0.4, 0.2])  # both ordered right, gaps beyond the margin
    assert TripletLoss(margin=0.01, scaled=False)(right, true, n_triplets=2).item() == 0.0
    wrong = torch.tensor([0.4, 0.2, 0.3, 0.5])  # both reversed
    # triplet 0: near 0.4 - far 0.3 + 0.01 = 0.11; triplet 1: near 0.5 - far 0.2 + 0.01 = 0.31
    loss = TripletLoss(margin=0.01, scaled=False)(wrong, true, n_triplets=2)
    assert loss.item() == pytest.approx((0.11 + 0.31) / 2)


def test_scaled_margin_asks_nothing_of_ties() -> None:
    true = torch.tensor([0.2, 0.2])  # one triplet whose partners are equally far
    pred = torch.tensor([0.3, 0.3])
    assert TripletLoss(margin=0.05, scaled=True)(pred, true, n_triplets=1).item() == 0.0
    assert TripletLoss(margin=0.05, scaled=False)(pred, true, n_triplets=1).item() == 0.0
    gap = torch.tensor([0.2, 0.21])  # a gap of 0.01 asks for a margin of 0.01, not 0.05
    assert TripletLoss(margin=0.05, scaled=True)(pred, gap, n_triplets=1).item() == pytest.approx(
        0.01
    )


def test_weighted_sum() -> None:
    pred, true = torch.tensor([0.4, 0.2]), torch.tensor([0.2, 0.3])
    mse, triplet = MSEDistanceLoss(), TripletLoss(margin=0.0, scaled=False)
    both = WeightedLoss({"mse": mse, "triplet": triplet}, {"mse": 1.0, "triplet": 0.5})
    expected = mse(pred, true, 1) + 0.5 * triplet(pred, true, 1)
    assert both(pred, true, n_triplets=1).item() == pytest.approx(expected.item())
