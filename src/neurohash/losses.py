"""Training objectives on a batch of B triplets.

Each loss receives predicted and true distances (true normalised to ED / L) of the batch's P
pairs, ordered as ``neurohash.data.triplets.batch_pairs`` makes them: the first B are
(anchor, partner1), the next B (anchor, partner2), then further pairs.
"""

from __future__ import annotations

import torch
from torch import nn


class MSEDistanceLoss(nn.Module):
    """NeuroSEED's objective: mean squared error between embedding distance and ED / L."""

    def forward(self, pred: torch.Tensor, true: torch.Tensor, n_triplets: int) -> torch.Tensor:
        return torch.mean((pred - true) ** 2)


class TripletLoss(nn.Module):
    """Margin ranking of the anchor's two partners: the truly closer one must be closer by at
    least ``margin`` (optionally scaled by the true distance gap, so ties ask for nothing)."""

    def __init__(self, margin: float = 0.01, scaled: bool = True) -> None:
        super().__init__()
        self.margin, self.scaled = margin, scaled

    def forward(self, pred: torch.Tensor, true: torch.Tensor, n_triplets: int) -> torch.Tensor:
        b = n_triplets
        pred, true = pred[: 2 * b].view(2, b).T, true[: 2 * b].view(2, b).T
        first_closer = true[:, 0] <= true[:, 1]
        near = torch.where(first_closer, pred[:, 0], pred[:, 1])
        far = torch.where(first_closer, pred[:, 1], pred[:, 0])
        gap = (true[:, 0] - true[:, 1]).abs()
        margin = (
            self.margin * (gap > 0)
            if not self.scaled
            else torch.minimum(gap, gap.new_tensor(self.margin))
        )
        return torch.relu(near - far + margin).mean()


class WeightedLoss(nn.Module):
    """A weighted sum of named losses, e.g. MSE plus a small triplet term."""

    def __init__(self, losses: dict[str, nn.Module], weights: dict[str, float]) -> None:
        super().__init__()
        self.losses = nn.ModuleDict(losses)
        self.weights = dict(weights)

    def forward(self, pred: torch.Tensor, true: torch.Tensor, n_triplets: int) -> torch.Tensor:
        return sum(
            w * self.losses[name](pred, true, n_triplets) for name, w in self.weights.items()
        )
