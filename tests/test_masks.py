"""Mask values in closed form, shapes, registry and bad input."""

import math

import pytest
import torch

from gmmlib import masks
from gmmlib.masks import OFFICIAL_UNDERFLOW_SQ_DIST, create, pairwise_distance


def test_registry_lists_the_required_kinds():
    assert {"elm", "gmm", "retnet", "alibi2d", "relpos"} <= set(masks.list_masks())


@pytest.mark.parametrize("kind", ["elm", "gmm", "retnet", "alibi2d", "relpos"])
@pytest.mark.parametrize("grid", [(8, 8), (3, 5)])
def test_every_mask_has_shape_heads_by_tokens(kind, grid):
    m = create(kind, grid=grid, num_heads=3)
    n = grid[0] * grid[1]
    assert m().shape == (3, n, n)
    assert m.combine in ("multiply", "add")


def test_grid_distances_are_row_major():
    d2 = pairwise_distance((2, 3), "squared")
    # token 0 = (0, 0), token 5 = (1, 2)
    assert d2[0, 5] == 1 + 4
    assert pairwise_distance((2, 3), "manhattan")[0, 5] == 3
    assert torch.allclose(pairwise_distance((2, 3), "euclidean")[0, 5], torch.tensor(math.sqrt(5)))


def test_gmm_matches_closed_form():
    m = create("gmm", grid=(4, 5), num_heads=2, num_kernels=2)
    with torch.no_grad():
        m.alpha.copy_(torch.tensor([[1.0, -0.5], [0.25, 2.0]]))
        m.sigma.copy_(torch.tensor([[1.5, 3.0], [0.5, 2.0]]))
    d2 = pairwise_distance((4, 5), "squared")
    expected = torch.stack(
        [sum(m.alpha[k, h] * torch.exp(-d2 / (2 * (m.sigma[k, h] ** 2 + 1e-5))) for k in range(2)) for h in range(2)]
    )
    assert torch.allclose(m(), expected, atol=1e-6)


def test_gmm_single_kernel_is_a_gaussian_of_distance():
    m = create("gmm", grid=(8, 8), num_heads=1, num_kernels=1)
    with torch.no_grad():
        m.alpha.fill_(1.0)
        m.sigma.fill_(2.0)
    out = m()[0].detach()
    assert out[0, 0] == pytest.approx(1.0)
    assert out[0, 1] == pytest.approx(math.exp(-1 / 8), rel=1e-5)  # neighbour at distance 1
    assert out[0, 9] == pytest.approx(math.exp(-2 / 8), rel=1e-5)  # diagonal neighbour


def test_gmm_parameter_shapes_and_count():
    m = create("gmm", grid=(8, 8), num_heads=12, num_kernels=5)
    assert m.alpha.shape == m.sigma.shape == (5, 12)
    assert sum(p.numel() for p in m.parameters()) == 2 * 5 * 12
    # the geometry is a buffer, not a parameter, and not in the state dict
    assert set(m.state_dict()) == {"alpha", "sigma"}


def test_gmm_official_init_statistics():
    torch.manual_seed(0)
    m = create("gmm", grid=(8, 8), num_heads=500, num_kernels=20)
    assert m.sigma.mean().item() == pytest.approx(10, abs=0.3)
    assert m.sigma.std().item() == pytest.approx(10, abs=0.3)
    assert m.alpha.mean().item() == pytest.approx(0, abs=0.06)
    assert m.alpha.std().item() == pytest.approx(2, abs=0.06)


@pytest.mark.parametrize("init", sorted(masks.GMM_INITS))
def test_gmm_inits(init):
    m = create("gmm", grid=(8, 8), num_heads=4, num_kernels=3, init=init)
    out = m()
    assert torch.isfinite(out).all()
    if init == "identity":
        assert torch.allclose(out, torch.ones_like(out), atol=1e-3)
    if init == "zeros":
        assert (out == 0).all()


def test_gmm_truncation_like_official():
    m = create("gmm", grid=(16, 16), num_heads=1, num_kernels=1, truncate_like_official=True)
    with torch.no_grad():
        m.alpha.fill_(1.0)
        m.sigma.fill_(10.0)
    out = m()[0].detach()
    d2 = pairwise_distance((16, 16), "squared")
    far = d2 > OFFICIAL_UNDERFLOW_SQ_DIST
    assert (out[far] == 0).all()
    assert (out[~far] > 0).all()
    # 33% of a 16x16 grid's entries vanish in the official code (paper-facts 2.3)
    assert int(far.sum()) == 21792
    assert torch.equal(m.kernels()[0, 0].detach(), out)
    # on the 8x8 grid nothing is truncated
    small = create("gmm", grid=(8, 8), num_heads=1, truncate_like_official=True)
    assert bool(small.support.all())


def test_gmm_profile_is_the_mask_by_distance():
    m = create("gmm", grid=(8, 8), num_heads=3)
    assert m.sq_dist_values.numel() < 64  # few distinct squared distances on a grid
    full, prof = m().detach(), m.distance_curve().detach()
    for u, d2 in enumerate(m.sq_dist_values):
        assert torch.allclose(full[:, m.sq_dist == d2], prof[:, u : u + 1])


def test_gmm_sigma_zero_is_finite_with_gradients():
    m = create("gmm", grid=(8, 8), num_heads=2, num_kernels=2)
    with torch.no_grad():
        m.sigma.zero_()
    out = m()
    assert torch.isfinite(out).all()
    out.sum().backward()
    assert torch.isfinite(m.sigma.grad).all() and torch.isfinite(m.alpha.grad).all()


def test_elm_is_zero_shared_or_per_head():
    shared = create("elm", grid=(4, 4), num_heads=3)
    assert sum(p.numel() for p in shared.parameters()) == 16 * 16
    assert (shared() == 0).all()
    per_head = create("elm", grid=(4, 4), num_heads=3, per_head=True)
    assert sum(p.numel() for p in per_head.parameters()) == 3 * 16 * 16


@pytest.mark.parametrize("distance", ["manhattan", "euclidean"])
@pytest.mark.parametrize("rates", ["auto", "rmt", "retnet"])
def test_retnet_decay_is_log_gamma_times_distance(distance, rates):
    m = create("retnet", grid=(3, 4), num_heads=4, distance=distance, rates=rates)
    h = torch.arange(4.0)
    # on the 2-D grid RMT's rates 1 - 2^(-2 - 4h/H) are the default; RetNet's 1 - 2^(-5-h) on request
    gammas = 1 - 2.0 ** (-5 - h) if rates == "retnet" else 1 - 2.0 ** (-2 - 4 * h / 4)
    d = pairwise_distance((3, 4), distance)
    assert torch.allclose(m().exp(), gammas[:, None, None] ** d, atol=1e-6)
    assert m.combine == "add" and m.rates == ("retnet" if rates == "retnet" else "rmt")


def test_decay_rates_match_the_papers():
    rmt = masks.decay_rates(12, "rmt")  # the paper-size ViT: RMT's rates run from 0.75 to about 0.98
    assert rmt[0] == 0.75 and rmt[-1] == pytest.approx(1 - 2 ** (-2 - 4 * 11 / 12)) and 0.979 < rmt[-1] < 0.981
    assert torch.equal(masks.decay_rates(3, "retnet"), torch.tensor([1 - 2.0**-5, 1 - 2.0**-6, 1 - 2.0**-7]).double())
    assert create("retnet", grid=(1, 6), num_heads=2, distance="causal").rates == "retnet"
    assert create("retnet", grid=(2, 2), num_heads=2, gammas=[0.5, 0.9]).rates == "given"
    with pytest.raises(ValueError, match="rates must be one of auto, rmt, retnet, got 'alibi'"):
        create("retnet", grid=(2, 2), num_heads=2, rates="alibi")


def test_retnet_causal_is_toeplitz_lower_triangular():
    m = create("retnet", grid=(1, 6), num_heads=2, distance="causal")
    b = m()[1]
    assert torch.isinf(b.triu(1)[b.triu(1) != 0]).all()
    lower = b.tril()
    # Toeplitz: constant along each diagonal
    for off in range(6):
        assert torch.allclose(lower.diagonal(-off), lower.diagonal(-off)[0].expand(6 - off))
    assert b[3, 1].exp().item() == pytest.approx((1 - 2.0**-6) ** 2, rel=1e-6)


def test_alibi2d_slopes_and_sign():
    m = create("alibi2d", grid=(4, 4), num_heads=8)
    out = m()
    assert (out <= 0).all() and (out.diagonal(dim1=1, dim2=2) == 0).all()
    slopes = 2.0 ** (-8.0 * torch.arange(1, 9) / 8)
    assert torch.allclose(-out[:, 0, 1], slopes)  # neighbour at distance 1


def test_relpos_is_translation_invariant():
    m = create("relpos", grid=(4, 5), num_heads=2)
    assert sum(p.numel() for p in m.parameters()) == 7 * 9 * 2
    out = m()
    # token (0,0)->(1,1) has the same offset as (2,3)->(3,4)
    assert torch.equal(out[:, 0, 6], out[:, 13, 19])


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: create("nope", grid=(8, 8), num_heads=2), "unknown mask kind 'nope'; choices: alibi2d"),
        (lambda: create("gmm", grid=(8, 8), num_heads=2, num_kernels=0), "num_kernels must be an int >= 1, got 0"),
        (lambda: create("gmm", grid=(8, 8), num_heads=2, init="bad"), "unknown GMM init 'bad'"),
        (lambda: create("gmm", grid=(8, 8), num_heads=2, kernels=3), "unknown option.*kernels.*num_kernels"),
        (lambda: create("gmm", grid=(8, 0), num_heads=2), r"grid must be .* got \(8, 0\)"),
        (lambda: create("gmm", grid=64, num_heads=2), "got 64"),
        (lambda: create("elm", grid=(8, 8), num_heads=0), "num_heads must be a positive int, got 0"),
        (lambda: create("retnet", grid=(8, 8), num_heads=2, distance="l3"), "'l3'"),
    ],
)
def test_bad_input_is_a_clear_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()
