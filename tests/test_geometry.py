"""neurohash.models.geometry: finite values and gradients everywhere, correct formulas."""

from __future__ import annotations

import math

import pytest
import torch

from neurohash.models.geometry import (
    EPS,
    Cosine,
    Euclidean,
    Geometry,
    Hyperbolic,
    Manhattan,
    Square,
    safe_norm,
)

GEOMETRIES = [Euclidean, Manhattan, Square, Cosine, Hyperbolic]
DIM = 16


@pytest.fixture(params=GEOMETRIES, ids=lambda cls: cls.__name__)
def geometry(request: pytest.FixtureRequest) -> Geometry:
    return request.param()


def random_pair(seed: int, n: int = 8, scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return scale * torch.randn(n, DIM, generator=gen), scale * torch.randn(n, DIM, generator=gen)


def value_and_grads(
    geometry: Geometry, u: torch.Tensor, v: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    u = u.clone().requires_grad_(True)
    v = v.clone().requires_grad_(True)
    geometry.zero_grad()
    d = geometry(u, v)
    d.sum().backward()
    params = [p.grad for p in geometry.parameters() if p.grad is not None]
    return d.detach(), u.grad, v.grad, params


def assert_finite(*tensors: torch.Tensor) -> None:
    for t in tensors:
        assert torch.isfinite(t).all(), t


def ones(scale: float) -> torch.Tensor:
    return torch.full((4, DIM), scale)


CASES = {
    "identical": lambda: (ones(0.3), ones(0.3)),
    "identical-random": lambda: (random_pair(0)[0], random_pair(0)[0]),
    "zero-zero": lambda: (torch.zeros(4, DIM), torch.zeros(4, DIM)),
    "zero-random": lambda: (torch.zeros(8, DIM), random_pair(1)[0]),
    "huge": lambda: random_pair(2, scale=1e6),
    "huge-identical": lambda: (ones(1e6), ones(1e6)),
    "huge-opposite": lambda: (ones(1e6), ones(-1e6)),
    "tiny": lambda: random_pair(3, scale=1e-12),
    "tiny-identical": lambda: (ones(1e-9), ones(1e-9)),
    "tiny-vs-unit": lambda: (ones(1e-9), ones(1.0)),
    "mixed-scales": lambda: (random_pair(4, scale=1e-8)[0], random_pair(4, scale=1e5)[1]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_values_and_gradients_finite(geometry: Geometry, case: str) -> None:
    u, v = CASES[case]()
    d, gu, gv, gp = value_and_grads(geometry, u, v)
    assert d.shape == u.shape[:-1] and d.dtype == torch.float32
    assert_finite(d, gu, gv, *gp)
    assert (d >= -1e-5).all()
    assert gp, "the learnable scale receives a gradient"


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_inputs_are_computed_in_float32(geometry: Geometry, dtype: torch.dtype) -> None:
    u, v = random_pair(5)
    d = geometry(u.to(dtype), v.to(dtype))
    assert d.dtype == torch.float32
    torch.testing.assert_close(d, geometry(u.to(dtype).float(), v.to(dtype).float()))


def test_pairwise_of_projected_rows_is_pairwise_of_raw_rows(geometry: Geometry) -> None:
    """``pairwise_projected`` takes rows ``project`` already mapped (the hash coder's bank) and
    gives the same matrix as ``pairwise`` on the raw rows, in blocks too."""
    gen = torch.Generator().manual_seed(0)
    u, v = torch.randn(7, 5, generator=gen), torch.randn(4, 5, generator=gen)
    with torch.no_grad():
        expected = geometry.pairwise(u, v)
        got = geometry.pairwise_projected(geometry.project(u), geometry.project(v), block=3)
    assert torch.allclose(got, expected, atol=1e-6)


def test_identity_and_symmetry(geometry: Geometry) -> None:
    u, v = random_pair(6, n=32)
    torch.testing.assert_close(geometry(u, v), geometry(v, u))
    same = geometry(u, u)
    assert (same.abs() < 1e-5).all(), same
    assert (geometry(u, v) > 1e-3).all()


@pytest.mark.parametrize("scale", [1e-5, 1e-3, 1e3, 1e6])
def test_identity_at_other_scales(geometry: Geometry, scale: float) -> None:
    u, _ = random_pair(7, scale=scale)
    d = geometry(u, u)
    assert (d.abs() < 1e-5).all(), d


def test_cosine_of_identical_vectors_below_norm_clamp_is_finite_but_not_zero() -> None:
    # documents the trade-off of safe_norm's clamp: below |u| = EPS cosine is not scale-invariant,
    # in exchange the gradient at the origin stays bounded (~ 1 / EPS)
    u = torch.full((1, DIM), 1e-9)
    d = Cosine()(u, u)
    assert torch.isfinite(d).all() and (d > 0.5).all()
    _, gu, _, _ = value_and_grads(Cosine(), torch.zeros(1, DIM), torch.ones(1, DIM))
    assert gu.abs().max() <= 2 / EPS


def test_scale_is_learnable_and_multiplies(geometry: Geometry) -> None:
    u, v = random_pair(8)
    base = geometry(u, v)
    scaled = type(geometry)(init_scale=2.5)
    torch.testing.assert_close(scaled(u, v), 2.5 * base)
    frozen = type(geometry)(learn_scale=False)
    assert not frozen.log_scale.requires_grad


def test_simple_values() -> None:
    u = torch.tensor([[0.0, 0.0], [1.0, 2.0]])
    v = torch.tensor([[3.0, 4.0], [1.0, 0.0]])
    torch.testing.assert_close(Euclidean()(u, v), torch.tensor([5.0, 2.0]))
    torch.testing.assert_close(Manhattan()(u, v), torch.tensor([7.0, 2.0]))
    torch.testing.assert_close(Square()(u, v), torch.tensor([25.0, 4.0]))
    torch.testing.assert_close(Cosine()(u, v), torch.tensor([1.0, 1 - 1 / math.sqrt(5)]))
    x, y = torch.tensor([[1.0, 0.0]]), torch.tensor([[-1.0, 0.0]])
    torch.testing.assert_close(Cosine()(x, y), torch.tensor([2.0]))


def test_safe_norm() -> None:
    x = torch.tensor([[3.0, 4.0], [0.0, 0.0]], requires_grad=True)
    n = safe_norm(x)
    torch.testing.assert_close(n, torch.tensor([5.0, EPS]))
    n.sum().backward()
    torch.testing.assert_close(x.grad, torch.tensor([[0.6, 0.8], [0.0, 0.0]]))


# ---- hyperbolic ---------------------------------------------------------------------------------


def poincare64(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Textbook Poincare-ball distance, in float64."""
    u, v = u.double(), v.double()
    sq = ((u - v) ** 2).sum(-1)
    return torch.acosh(1 + 2 * sq / ((1 - (u * u).sum(-1)) * (1 - (v * v).sum(-1))))


def random_ball_points(seed: int, n: int, max_norm: float) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, DIM, generator=gen, dtype=torch.float64)
    radius = max_norm * torch.rand(n, 1, generator=gen, dtype=torch.float64)
    return radius * x / x.norm(dim=-1, keepdim=True)


@pytest.mark.parametrize("max_norm", [0.3, 0.9, 0.99])
def test_hyperbolic_raw_matches_arcosh(max_norm: float) -> None:
    u = random_ball_points(0, 200, max_norm)
    v = random_ball_points(1, 200, max_norm)
    g = Hyperbolic()
    torch.testing.assert_close(g.raw(u, v), poincare64(u, v), rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(  # float32 too, as used in training
        g.raw(u.float(), v.float()).double(), poincare64(u, v), rtol=2e-3, atol=1e-4
    )


@pytest.mark.parametrize("init_radius", [0.1, 0.5, 0.99])
def test_hyperbolic_forward_is_projection_then_poincare(init_radius: float) -> None:
    g = Hyperbolic(init_radius=init_radius, init_scale=1.7)
    u, v = random_pair(9, n=64)
    pu, pv = g.project(u), g.project(v)
    radius = float(g.radius.detach())
    assert radius == pytest.approx(init_radius, rel=1e-5)
    # x -> r tanh(|x|) x / |x|
    expected_pu = (
        radius * torch.tanh(u.norm(dim=-1, keepdim=True)) * u / u.norm(dim=-1, keepdim=True)
    )
    torch.testing.assert_close(pu, expected_pu)
    assert (pu.norm(dim=-1) < radius).all()
    torch.testing.assert_close(g(u, v).double(), 1.7 * poincare64(pu, pv), rtol=1e-4, atol=1e-5)


def test_hyperbolic_near_boundary() -> None:
    g = Hyperbolic(init_radius=0.9999)  # above max_radius: clamped to it
    assert float(g.radius.detach()) == pytest.approx(g.max_radius)
    u, v = random_pair(10, scale=1e6)
    pu = g.project(u)
    assert (pu.norm(dim=-1) <= g.max_radius + 1e-6).all()
    d, gu, gv, gp = value_and_grads(g, u, v)
    assert_finite(d, gu, gv, *gp)
    torch.testing.assert_close(d.double(), poincare64(pu, g.project(v)), rtol=1e-3, atol=1e-3)
    # both points at the boundary, opposite directions: large but finite distance
    far = g(ones(1e6), ones(-1e6)).detach()
    r = g.max_radius
    assert torch.isfinite(far).all()
    assert float(far[0]) == pytest.approx(2 * math.log((1 + r) / (1 - r)), rel=1e-3)


def test_hyperbolic_radius_beyond_float32_resolution() -> None:
    g = Hyperbolic(init_radius=0.5, max_radius=1 - 1e-9)  # rounds to 1.0 in float32
    with torch.no_grad():
        g.radius_logit.fill_(30.0)
    d, gu, gv, gp = value_and_grads(g, *random_pair(11, scale=1e6))
    assert_finite(d, gu, gv, *gp)


def test_hyperbolic_radius_gradient() -> None:
    g = Hyperbolic(init_radius=0.5)
    u, v = random_pair(12)
    g(u, v).sum().backward()
    assert g.radius_logit.grad is not None and float(g.radius_logit.grad) > 0  # bigger ball, longer


# ---- pairwise -----------------------------------------------------------------------------------


@pytest.mark.parametrize("block", [1, 5, 128])
def test_pairwise_equals_forward_over_all_pairs(geometry: Geometry, block: int) -> None:
    u, _ = random_pair(13, n=11)
    _, v = random_pair(14, n=7)
    out = geometry.pairwise(u, v, block=block)
    assert out.shape == (11, 7) and out.dtype == torch.float32
    expected = torch.stack(
        [torch.stack([geometry(u[i], v[j]) for j in range(7)]) for i in range(11)]
    )
    torch.testing.assert_close(out, expected)


def test_pairwise_square_matrix_is_symmetric_with_zero_diagonal(geometry: Geometry) -> None:
    u, _ = random_pair(15, n=20)
    out = geometry.pairwise(u, u, block=6)
    torch.testing.assert_close(out, out.T)
    assert (out.diagonal().abs() < 1e-5).all()


def test_pairwise_empty_and_half_precision(geometry: Geometry) -> None:
    _, v = random_pair(16, n=3)
    assert geometry.pairwise(torch.zeros(0, DIM), v).shape == (0, 3)
    u, v = random_pair(17, n=5)
    out = geometry.pairwise(u.half(), v.half())
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, geometry.pairwise(u.half().float(), v.half().float()))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        auto = geometry.pairwise(u, v)
    assert auto.dtype == torch.float32
    torch.testing.assert_close(auto, geometry.pairwise(u, v))
