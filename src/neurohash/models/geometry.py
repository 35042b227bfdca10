"""Distances between embeddings, each with a learnable output scale (NeuroSEED's ``scaling``).

Every geometry maps two (..., D) embeddings to (...) distances in the units of ED / L. ``pairwise``
gives the (N, M) matrix for evaluation; it is computed in float32 even under autocast.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

EPS = 1e-6


def safe_norm(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Euclidean norm whose gradient is finite (zero) at the origin."""
    return torch.sqrt(torch.clamp_min((x * x).sum(dim), EPS**2))


class Geometry(nn.Module):
    """Base class: learnable positive scale applied to a raw distance."""

    def __init__(self, init_scale: float = 1.0, learn_scale: bool = True) -> None:
        super().__init__()
        self.log_scale = nn.Parameter(torch.tensor(math.log(init_scale)), requires_grad=learn_scale)

    @property
    def scale(self) -> torch.Tensor:
        return self.log_scale.exp()

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """Map raw encoder output into the space (identity except on manifolds)."""
        return x

    def raw(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        u, v = self.project(u.float()), self.project(v.float())
        return self.scale * self.raw(u, v)

    def raw_matrix(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """(N, M) raw distances between projected rows; geometries override it with a kernel
        that avoids the (N, M, D) broadcast."""
        return self.raw(u[:, None, :], v[None, :, :])

    def pairwise(self, u: torch.Tensor, v: torch.Tensor, block: int = 1024) -> torch.Tensor:
        """(N, M) distances between rows of u and rows of v, in float32 and in row blocks."""
        return self._pairwise(u, v, block, self.project)

    def pairwise_projected(
        self, u: torch.Tensor, v: torch.Tensor, block: int = 1024
    ) -> torch.Tensor:
        """``pairwise`` of rows already mapped into the space by ``project``, which is not
        idempotent on manifolds, so they are not projected again."""
        return self._pairwise(u, v, block, lambda x: x)

    def _pairwise(
        self,
        u: torch.Tensor,
        v: torch.Tensor,
        block: int,
        project: Callable[[torch.Tensor], torch.Tensor],
    ) -> torch.Tensor:
        with torch.autocast(u.device.type, enabled=False):
            v = project(v.float())
            rows = [
                self.scale * self.raw_matrix(project(u[i : i + block].float()), v)
                for i in range(0, len(u), block)
            ]
        return torch.cat(rows) if rows else u.new_zeros((0, len(v)), dtype=torch.float32)


def direct_cdist(u: torch.Tensor, v: torch.Tensor, p: float = 2.0) -> torch.Tensor:
    """p-norm distances of all row pairs, summed directly (no |u|^2 + |v|^2 - 2uv cancellation,
    so identical rows give exactly 0, as the pairwise formula does)."""
    return torch.cdist(u, v, p=p, compute_mode="donot_use_mm_for_euclid_dist")


class Euclidean(Geometry):
    def raw(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return safe_norm(u - v)

    def raw_matrix(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return direct_cdist(u, v).clamp_min(EPS)


class Square(Geometry):
    def raw(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return ((u - v) ** 2).sum(-1)

    def raw_matrix(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return direct_cdist(u, v) ** 2


class Manhattan(Geometry):
    def raw(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return (u - v).abs().sum(-1)

    def raw_matrix(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return direct_cdist(u, v, p=1.0)


class Cosine(Geometry):
    def raw(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return 1.0 - (u * v).sum(-1) / (safe_norm(u) * safe_norm(v))

    def raw_matrix(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return 1.0 - (u / safe_norm(u)[:, None]) @ (v / safe_norm(v)[:, None]).T


class Hyperbolic(Geometry):
    """Poincare-ball distance with a learnable ball radius; finite everywhere, NaN-free.

    Embeddings are mapped into the ball by x -> r * tanh(|x|) * x / |x| with r = sigmoid(param)
    kept below ``max_radius``, so every point is strictly inside. The distance
    arcosh(1 + 2|u-v|^2 / ((1-|u|^2)(1-|v|^2))) is evaluated as 2 * asinh(|u-v| / sqrt(...)),
    the same function without arcosh's infinite slope at 1; |u-v| uses a clamped norm, so
    identical inputs give distance ~0 with a zero (not NaN) gradient.
    """

    def __init__(
        self,
        init_radius: float = 0.5,
        max_radius: float = 1 - 1e-3,
        init_scale: float = 1.0,
        learn_scale: bool = True,
    ) -> None:
        super().__init__(init_scale, learn_scale)
        self.max_radius = max_radius
        self.radius_logit = nn.Parameter(torch.tensor(math.log(init_radius / (1 - init_radius))))

    @property
    def radius(self) -> torch.Tensor:
        return torch.sigmoid(self.radius_logit).clamp(1e-3, self.max_radius)

    def project(self, x: torch.Tensor) -> torch.Tensor:
        norm = safe_norm(x)[..., None]
        return self.radius * torch.tanh(norm) * x / norm

    def raw(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        denom = (1 - (u * u).sum(-1)).clamp_min(EPS) * (1 - (v * v).sum(-1)).clamp_min(EPS)
        return 2 * torch.asinh(safe_norm(u - v) / torch.sqrt(denom))

    def raw_matrix(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        one_minus = [(1 - (x * x).sum(-1)).clamp_min(EPS) for x in (u, v)]
        denom = one_minus[0][:, None] * one_minus[1][None, :]
        return 2 * torch.asinh(direct_cdist(u, v).clamp_min(EPS) / torch.sqrt(denom))
