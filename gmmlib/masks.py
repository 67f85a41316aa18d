"""Attention masks over a grid of patch tokens.

Every mask here is an ``nn.Module`` that, when called with no argument, returns a
tensor of shape ``(num_heads, N, N)`` over the ``N = h * w`` patch tokens of an
``h x w`` grid in row-major order. Its ``combine`` attribute says how attention
uses it (see :func:`gmmlib.attention.masked_attention`):

* ``"multiply"``: the mask scales the pre-softmax logits, ``softmax(M * QK^T / sqrt(d))``.
  This is where the official code puts ELM and GMM.
* ``"add"``: the mask is an additive logit bias, ``softmax(QK^T / sqrt(d) + M)``; a
  log-space decay (RetNet, RMT, ALiBi) or a learned relative-position table (Swin).

Fixed geometry (distances, index tables) lives in non-persistent buffers, so it is
neither a parameter nor saved in checkpoints.

Create masks through the registry::

    mask = gmmlib.masks.create("gmm", grid=(8, 8), num_heads=12, num_kernels=5)
    mask().shape  # torch.Size([12, 64, 64])
"""

from __future__ import annotations

import inspect
import math
from typing import Callable, Dict, Literal, Sequence, Tuple, Type

import torch
from torch import Tensor, nn

__all__ = [
    "AttentionMask",
    "ELM",
    "GaussianMixtureMask",
    "RetNetDecay",
    "DECAY_RATES",
    "decay_rates",
    "ALiBi2D",
    "RelativePositionBias",
    "GMM_INITS",
    "OFFICIAL_UNDERFLOW_SQ_DIST",
    "create",
    "list_masks",
    "register_mask",
    "grid_coordinates",
    "relative_position_index",
    "pairwise_distance",
]

Combine = Literal["multiply", "add"]
Grid = Tuple[int, int]

# In the official code exp(-d^2) is evaluated in float32 before any power is taken:
# it underflows to exactly 0 for d^2 > ~103.97, so on grids of 9x9 and larger (max d^2 = 128) the
# official Gaussian is truncated at a radius of about 10 patches (paper-facts 2.3).
OFFICIAL_UNDERFLOW_SQ_DIST = 103.0

# The official code adds this to sigma^2 to avoid a division by zero.
SIGMA_EPS = 1e-5


def _check_grid(grid: Sequence[int]) -> Grid:
    pair = isinstance(grid, (tuple, list)) and len(grid) == 2
    if not pair or not all(isinstance(g, int) and not isinstance(g, bool) and g > 0 for g in grid):
        raise ValueError(f"grid must be a pair of positive ints (height, width), got {grid!r}")
    return int(grid[0]), int(grid[1])


def grid_coordinates(grid: Sequence[int]) -> Tensor:
    """(row, column) of every patch of an ``h x w`` grid in row-major order, shape (N, 2)."""
    h, w = _check_grid(grid)
    rows, cols = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    return torch.stack([rows.flatten(), cols.flatten()], dim=1).float()


def relative_position_index(grid: Sequence[int]) -> Tensor:
    """Index of the 2-D offset between every pair of patches into a ``(2h - 1)(2w - 1)`` table (Swin's), (N, N)."""
    h, w = _check_grid(grid)
    p = grid_coordinates(grid).long()
    delta = p[:, None, :] - p[None, :, :]  # (N, N, 2), in [-(h-1), h-1] x [-(w-1), w-1]
    return (delta[..., 0] + h - 1) * (2 * w - 1) + (delta[..., 1] + w - 1)


def pairwise_distance(grid: Sequence[int], metric: str = "euclidean") -> Tensor:
    """Distances between all pairs of patches of a grid, shape (N, N).

    Args:
        grid: (height, width) of the patch grid.
        metric: "euclidean", "squared" (squared Euclidean) or "manhattan".
    """
    p = grid_coordinates(grid)
    delta = p[:, None, :] - p[None, :, :]
    if metric == "squared":
        return (delta**2).sum(-1)
    if metric == "euclidean":
        return (delta**2).sum(-1).sqrt()
    if metric == "manhattan":
        return delta.abs().sum(-1)
    raise ValueError(f"metric must be 'euclidean', 'squared' or 'manhattan', got {metric!r}")


class AttentionMask(nn.Module):
    """Base class: a mask over the patch tokens of a grid, one (N, N) slice per head.

    Args:
        grid: (height, width) of the patch grid; tokens are in row-major order.
        num_heads: number of attention heads.
    """

    combine: Combine = "multiply"

    def __init__(self, grid: Sequence[int], num_heads: int) -> None:
        super().__init__()
        self.grid = _check_grid(grid)
        if not isinstance(num_heads, int) or num_heads < 1:
            raise ValueError(f"num_heads must be a positive int, got {num_heads!r}")
        self.num_heads = num_heads
        self.num_tokens = self.grid[0] * self.grid[1]

    def forward(self) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"grid={self.grid}, num_heads={self.num_heads}, combine={self.combine!r}"


_MASKS: Dict[str, Type[AttentionMask]] = {}


def register_mask(name: str) -> Callable[[Type[AttentionMask]], Type[AttentionMask]]:
    """Class decorator that adds a mask to the registry under ``name``."""

    def wrap(cls: Type[AttentionMask]) -> Type[AttentionMask]:
        _MASKS[name] = cls
        return cls

    return wrap


def list_masks() -> list[str]:
    """Names accepted by :func:`create`."""
    return sorted(_MASKS)


def create(kind: str, grid: Sequence[int], num_heads: int, **options) -> AttentionMask:
    """Build a mask by name.

    Args:
        kind: one of :func:`list_masks` ("elm", "gmm", "retnet", "alibi2d", "relpos").
        grid: (height, width) of the patch grid.
        num_heads: number of attention heads.
        **options: options of that mask class (e.g. ``num_kernels`` for "gmm").
    """
    if kind not in _MASKS:
        raise ValueError(f"unknown mask kind {kind!r}; choices: {', '.join(list_masks())}")
    cls = _MASKS[kind]
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "grid", "num_heads")]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(
            f"unknown option(s) {', '.join(unknown)} for mask {kind!r}; accepted: {', '.join(accepted) or 'none'}"
        )
    return cls(grid, num_heads, **options)


@register_mask("elm")
class ELM(AttentionMask):
    """Element-wise learnable mask: a free N x N matrix that multiplies the logits.

    Zero-initialised as in the official code, so every logit is 0 at step 0 and the
    initial attention is exactly uniform. One matrix per layer, shared by the heads
    (official) unless ``per_head=True``.

    Args:
        grid: (height, width) of the patch grid.
        num_heads: number of attention heads.
        per_head: one N x N matrix per head instead of one shared matrix.
    """

    combine: Combine = "multiply"

    def __init__(self, grid: Sequence[int], num_heads: int, per_head: bool = False) -> None:
        super().__init__(grid, num_heads)
        n = self.num_tokens
        self.per_head = per_head
        self.weight = nn.Parameter(torch.zeros(num_heads if per_head else 1, n, n))

    def forward(self) -> Tensor:
        return self.weight.expand(self.num_heads, -1, -1)


def _init_official(sigma: Tensor, alpha: Tensor, grid: Grid) -> None:
    # sigma ~ 10 + 10 N(0, 1), alpha ~ 2 N(0, 1): a random per-head temperature at step 0.
    sigma.normal_(10.0, 10.0)
    alpha.normal_(0.0, 2.0)


def _init_identity(sigma: Tensor, alpha: Tensor, grid: Grid) -> None:
    # Very wide kernels with weights summing to 1: M = 1, i.e. plain attention at step 0.
    sigma.fill_(1e3)
    alpha.fill_(1.0 / alpha.shape[0])


def _init_zeros(sigma: Tensor, alpha: Tensor, grid: Grid) -> None:
    # alpha = 0 gives M = 0: uniform attention at step 0, like ELM's zero init.
    sigma.normal_(10.0, 10.0)
    alpha.zero_()


def _init_local(sigma: Tensor, alpha: Tensor, grid: Grid) -> None:
    # Widths spread geometrically from 1 patch to the grid diagonal, weights summing to 1.
    k = sigma.shape[0]
    diag = math.hypot(*grid)
    widths = torch.logspace(0.0, math.log10(max(diag, 1.0)), k) if k > 1 else torch.tensor([diag])
    sigma.copy_(widths[:, None].expand_as(sigma))
    alpha.fill_(1.0 / k)


GMM_INITS: Dict[str, Callable[[Tensor, Tensor, Grid], None]] = {
    "official": _init_official,
    "identity": _init_identity,
    "zeros": _init_zeros,
    "local": _init_local,
}


@register_mask("gmm")
class GaussianMixtureMask(AttentionMask):
    """Gaussian mixture mask (GMM) that multiplies the logits.

    ``M_h(i, j) = sum_k alpha[k, h] * exp(-d_ij^2 / (2 (sigma[k, h]^2 + 1e-5)))`` with
    ``d_ij`` the Euclidean distance between patches i and j on the grid. That is
    ``2 * K * H`` learnable scalars per layer.

    Args:
        grid: (height, width) of the patch grid.
        num_heads: number of attention heads.
        num_kernels: number of Gaussians K (official default 5).
        init: initialisation of alpha/sigma, one of :data:`GMM_INITS` ("official":
            sigma ~ 10 + 10 N(0,1), alpha ~ 2 N(0,1)).
        truncate_like_official: zero the entries with d^2 > 103, as the float32
            underflow of the official code does on grids of 9 x 9 and larger.
    """

    combine: Combine = "multiply"

    def __init__(
        self,
        grid: Sequence[int],
        num_heads: int,
        num_kernels: int = 5,
        init: str = "official",
        truncate_like_official: bool = False,
    ) -> None:
        super().__init__(grid, num_heads)
        if not isinstance(num_kernels, int) or isinstance(num_kernels, bool) or num_kernels < 1:
            raise ValueError(f"num_kernels must be an int >= 1, got {num_kernels!r}")
        if init not in GMM_INITS:
            raise ValueError(f"unknown GMM init {init!r}; choices: {', '.join(GMM_INITS)}")
        self.num_kernels = num_kernels
        self.init = init
        self.truncate_like_official = truncate_like_official
        sq_dist = pairwise_distance(self.grid, "squared")
        # M depends on the pair only through d^2, which takes few distinct values on a
        # grid (34 on 8 x 8 against 4,096 pairs): evaluate the mixture once per value
        # and gather. This is the convolution view made concrete, and it is fast.
        values, index = torch.unique(sq_dist, return_inverse=True)
        self.register_buffer("sq_dist", sq_dist, persistent=False)
        self.register_buffer("sq_dist_values", values, persistent=False)
        self.register_buffer("sq_dist_index", index, persistent=False)
        self.register_buffer("support", (values <= OFFICIAL_UNDERFLOW_SQ_DIST).float(), persistent=False)
        self.alpha = nn.Parameter(torch.empty(num_kernels, num_heads))
        self.sigma = nn.Parameter(torch.empty(num_kernels, num_heads))
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        GMM_INITS[self.init](self.sigma, self.alpha, self.grid)

    def kernels(self) -> Tensor:
        """The K x H Gaussians before they are weighted by alpha, shape (K, H, N, N)."""
        return self._kernels_by_distance()[:, :, self.sq_dist_index]

    def distance_curve(self) -> Tensor:
        """The mask as a function of squared distance: (H, U) over ``sq_dist_values``."""
        return torch.einsum("kh,khu->hu", self.alpha, self._kernels_by_distance())

    def _kernels_by_distance(self) -> Tensor:
        var2 = 2.0 * (self.sigma.square() + SIGMA_EPS)
        g = torch.exp(-self.sq_dist_values / var2[:, :, None])
        if self.truncate_like_official:
            g = g * self.support
        return g

    def forward(self) -> Tensor:
        return self.distance_curve()[:, self.sq_dist_index]

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, num_kernels={self.num_kernels}, init={self.init!r}"


DECAY_RATES = ("auto", "rmt", "retnet")
RMT_INITIAL, RMT_RANGE = 2.0, 4.0  # RMT's a and b: gamma_h = 1 - 2^(-a - b h / H)


def decay_rates(num_heads: int, rates: str = "rmt") -> Tensor:
    """Per-head decay rates gamma_h, float64 (H,).

    * ``"retnet"``: RetNet's language-model rates ``1 - 2^(-5 - h)`` (0.969 ... 0.9998 for 8 heads),
      made for sequences of thousands of tokens.
    * ``"rmt"``: RMT's vision rates ``1 - 2^(-a - b h / H)`` with a = 2, b = 4: from 0.75 up to
      about 0.98, a decay that is felt on a grid of 8 x 8 patches.

    Args:
        num_heads: H.
        rates: "rmt" or "retnet".
    """
    h = torch.arange(num_heads, dtype=torch.float64)
    if rates == "retnet":
        return 1.0 - 2.0 ** (-5.0 - h)
    if rates == "rmt":
        return 1.0 - 2.0 ** (-RMT_INITIAL - RMT_RANGE * h / num_heads)
    raise ValueError(f"rates must be 'rmt' or 'retnet', got {rates!r}")


@register_mask("retnet")
class RetNetDecay(AttentionMask):
    """RetNet's distance decay gamma_h^distance as an additive log-space logit bias.

    ``softmax(S + d * log(gamma_h)) = softmax(S) * gamma_h^d``, renormalised per row:
    the decay multiplies the attention probabilities. The rates are RMT's on the 2-D grid
    (``1 - 2^(-2 - 4h/H)``) and RetNet's for its 1-D causal form (``1 - 2^(-5-h)``), unless
    ``rates`` or ``gammas`` say otherwise (see :func:`decay_rates`).

    Args:
        grid: (height, width) of the patch grid.
        num_heads: number of attention heads.
        distance: "manhattan" (RMT's 2-D decay), "euclidean", or "causal" (RetNet's
            1-D form over the row-major token order: only earlier tokens are seen).
        gammas: optional per-head decay rates in (0, 1], replacing the named ones.
        rates: "auto" (RMT's for the 2-D distances, RetNet's for "causal"), "rmt" or "retnet".
    """

    combine: Combine = "add"

    def __init__(
        self,
        grid: Sequence[int],
        num_heads: int,
        distance: str = "manhattan",
        gammas: Sequence[float] | None = None,
        rates: str = "auto",
    ) -> None:
        super().__init__(grid, num_heads)
        if distance not in ("manhattan", "euclidean", "causal"):
            raise ValueError(f"distance must be 'manhattan', 'euclidean' or 'causal', got {distance!r}")
        if rates not in DECAY_RATES:
            raise ValueError(f"rates must be one of {', '.join(DECAY_RATES)}, got {rates!r}")
        if rates == "auto":
            rates = "retnet" if distance == "causal" else "rmt"
        if gammas is None:
            g = decay_rates(num_heads, rates)
        else:
            g = torch.as_tensor(gammas, dtype=torch.float64)
            if g.shape != (num_heads,) or not bool(((g > 0) & (g <= 1)).all()):
                raise ValueError(f"gammas must be {num_heads} values in (0, 1], got {list(gammas)}")
            rates = "given"
        self.distance = distance
        self.rates = rates
        self.register_buffer("gammas", g.float(), persistent=False)
        n = self.num_tokens
        if distance == "causal":
            idx = torch.arange(n, dtype=torch.float64)
            d = idx[:, None] - idx[None, :]
            bias = d[None] * g.log()[:, None, None]
            bias = bias.masked_fill(d[None] < 0, float("-inf"))
        else:
            d = pairwise_distance(self.grid, distance).double()
            bias = d[None] * g.log()[:, None, None]
        self.register_buffer("bias", bias.float(), persistent=False)

    def forward(self) -> Tensor:
        return self.bias

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, distance={self.distance!r}, rates={self.rates!r}"


@register_mask("alibi2d")
class ALiBi2D(AttentionMask):
    """2-D ALiBi: the additive bias ``-m_h * d_ij`` with slopes ``m_h = 2^(-8 h / H)``.

    After the softmax this is the decay ``exp(-m_h d)``: the RetNet/RMT family with
    ``gamma = exp(-m)``.

    Args:
        grid: (height, width) of the patch grid.
        num_heads: number of attention heads.
        distance: "euclidean" or "manhattan".
        learnable_slopes: make the H slopes parameters (stored as log-slopes).
    """

    combine: Combine = "add"

    def __init__(
        self,
        grid: Sequence[int],
        num_heads: int,
        distance: str = "euclidean",
        learnable_slopes: bool = False,
    ) -> None:
        super().__init__(grid, num_heads)
        if distance not in ("euclidean", "manhattan"):
            raise ValueError(f"distance must be 'euclidean' or 'manhattan', got {distance!r}")
        self.distance = distance
        self.register_buffer("dist", pairwise_distance(self.grid, distance), persistent=False)
        slopes = 2.0 ** (-8.0 * torch.arange(1, num_heads + 1) / num_heads)
        if learnable_slopes:
            self.log_slopes = nn.Parameter(slopes.log())
        else:
            self.register_buffer("log_slopes", slopes.log(), persistent=False)

    def forward(self) -> Tensor:
        return -self.log_slopes.exp()[:, None, None] * self.dist


@register_mask("relpos")
class RelativePositionBias(AttentionMask):
    """Swin-style learned relative-position bias: one scalar per head and 2-D offset.

    A table of ``(2h - 1)(2w - 1)`` entries per head, indexed by the offset between
    two patches; ``(2h-1)(2w-1) * H`` parameters per layer.

    Args:
        grid: (height, width) of the patch grid.
        num_heads: number of attention heads.
        init_std: std of the truncated-normal initialisation (timm's Swin uses 0.02).
    """

    combine: Combine = "add"

    def __init__(self, grid: Sequence[int], num_heads: int, init_std: float = 0.02) -> None:
        super().__init__(grid, num_heads)
        h, w = self.grid
        self.table = nn.Parameter(torch.zeros((2 * h - 1) * (2 * w - 1), num_heads))
        self.register_buffer("index", relative_position_index(self.grid), persistent=False)
        nn.init.trunc_normal_(self.table, std=init_std)

    def forward(self) -> Tensor:
        return self.table[self.index].permute(2, 0, 1)
