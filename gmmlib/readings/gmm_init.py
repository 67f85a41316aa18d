"""Chapter 4's reading of a GMM initialisation at step 0: sample it many times and say what its heads do.

A head's mask multiplies its logits, so its curve ``M(d)`` is a distance-dependent temperature. An
initialisation is a *locality prior* when it makes heads sharpen near patches more than far ones by design.
The official one (``sigma ~ N(10, 10^2)``, ``alpha ~ N(0, 2^2)``) does not: ``alpha``'s sign is symmetric, so
a head that happens to sharpen its near logits is as likely as one that reverses them. Some heads are local at
step 0 by chance (chapter 8 finds such heads in trained models too); the initialisation does not favour them.

Example:
    >>> survey = survey_init("official")
    >>> print(init_text(survey))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

from pathlib import Path
from typing import Optional

import torch

from ..cost import count_parameters
from ..masks import create
from ..models.registry import create_model
from .speed import load_benchmark, overhead_text

__all__ = ["InitSurvey", "survey_init", "init_text", "FLAT_BAND", "answer_text", "gmm_answer"]

# A head counts as roughly flat when M at the far corner is within this factor of M(0).
FLAT_BAND: Tuple[float, float] = (0.5, 1.5)


@dataclass(frozen=True)
class InitSurvey:
    """What an initialisation does at step 0, over many sampled heads (shares are fractions of heads).

    Attributes:
        init, heads, kernels, grid: what was sampled (``heads`` in all).
        distance: the grid's distinct distances; ``curves``: ``(heads, distances)``, M at each.
        negative_at_0: M(0) < 0: the head reverses the content preference of a patch's own logit.
        flat: M(far) within :data:`FLAT_BAND` times M(0).
        sign_flips: M(far) and M(0) of opposite signs.
        cancel: |M(0)| < 1 (a head's alphas nearly cancel).
        near_sharpened: M(0) > 0 and |M(far)| < half of M(0): the head sharpens near logits more than far ones.
        near_reversed: M(0) < 0 and |M(far)| < half of |M(0)|: the mirror image, it reverses near logits most.
        faded_kernels: share of *kernels* whose Gaussian is below half its height at the far corner.
        local_kernels: share of kernels with |sigma| < 1 patch.
        negative_sigma: share of kernels with sigma < 0 (only sigma^2 matters).
    """

    init: str
    heads: int
    kernels: int
    grid: Tuple[int, int]
    distance: torch.Tensor
    curves: torch.Tensor
    negative_at_0: float
    flat: float
    sign_flips: float
    cancel: float
    near_sharpened: float
    near_reversed: float
    faded_kernels: float
    local_kernels: float
    negative_sigma: float

    @property
    def is_locality_prior(self) -> bool:
        """Whether the initialisation favours near patches by design: far more heads sharpen near logits than
        reverse them (a margin of 10 points of heads, well beyond sampling error at thousands of heads)."""
        return self.near_sharpened - self.near_reversed > 0.10


def survey_init(
    init: str = "official",
    heads: int = 24_000,
    kernels: int = 5,
    grid: Tuple[int, int] = (8, 8),
    seed: int = 1,
) -> InitSurvey:
    """Sample ``heads`` heads of a GMM with ``init`` (one layer of that many heads: every head is drawn
    independently) and measure, per head, its multiplier at d = 0 and at the far corner."""
    if heads < 1 or kernels < 1:
        raise ValueError(f"heads and kernels must be positive, got {heads} and {kernels}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layer = create("gmm", grid=grid, num_heads=heads, num_kernels=kernels, init=init)
    with torch.no_grad():
        curves = layer.distance_curve()
        distance = layer.sq_dist_values.sqrt()
        sigma = layer.sigma
        g_far = torch.exp(-(distance[-1] ** 2) / (2 * (sigma**2 + 1e-5)))
    m0, far = curves[:, 0], curves[:, -1]
    ratio = far / m0
    # near dominates: the far multiplier is below the flat band's lower edge, in size
    near_dominates = far.abs() < FLAT_BAND[0] * m0.abs()

    def share(x: torch.Tensor) -> float:
        return x.float().mean().item()

    return InitSurvey(
        init=init,
        heads=heads,
        kernels=kernels,
        grid=tuple(grid),
        distance=distance,
        curves=curves,
        negative_at_0=share(m0 < 0),
        flat=share((ratio >= FLAT_BAND[0]) & (ratio <= FLAT_BAND[1])),
        sign_flips=share(far.sign() != m0.sign()),
        cancel=share(m0.abs() < 1),
        near_sharpened=share((m0 > 0) & near_dominates),
        near_reversed=share((m0 < 0) & near_dominates),
        faded_kernels=share(g_far < 0.5),
        local_kernels=share(sigma.abs() < 1),
        negative_sigma=share(sigma < 0),
    )


def init_text(s: InitSurvey) -> str:
    """What the survey shows, in the chapter's words: how far from flat the heads are, and whether the
    initialisation is a locality prior (read from the heads, not assumed)."""
    lo, hi = FLAT_BAND
    prior = (
        "a locality prior: it sharpens near logits in more heads than it reverses them"
        if s.is_locality_prior
        else "not a locality prior: it sharpens near logits in about as many heads as it reverses them, so "
        "some heads start local by chance, and none is made local on purpose"
    )
    return (
        f"Over {s.heads:,} sampled heads, the multiplier at the far corner stays between {lo} and {hi} times "
        f"the one at d = 0 in only **{s.flat:.0%}** of the heads: most heads are far from flat. In "
        f"**{s.sign_flips:.0%}** of them M(far) and M(0) have opposite signs, so the head sharpens the content "
        f"scores at one distance and reverses them at the other. Two things keep the heads from being flat. "
        f"{s.faded_kernels:.0%} of the kernels have fallen below half their height by the far corner. And M(0) "
        f"is the sum of a head's {s.kernels} alphas, of random sign, which nearly cancel (|M(0)| < 1) in "
        f"{s.cancel:.0%} of the heads, so the kernels that fade with distance change the ratio a lot.\n\n"
        f"Is it a locality prior? In {s.near_sharpened:.0%} of the heads M(0) is positive and |M(far)| less "
        f"than half of it: by chance, they sharpen near logits more than far ones. In {s.near_reversed:.0%} "
        f"M(0) is negative and |M(far)| less than half of |M(0)|: they *reverse* the near logits most. The `{s.init}` "
        f"initialisation is {prior}."
    )


def answer_text(survey: InitSurvey, extra_params: int, base_params: int, overhead: str) -> str:
    """Chapter 4's answer paragraph from its parts: what the GMM is, its parameters, what its initialisation
    does (``survey``) and its measured training-step overhead (``overhead``, a sentence)."""
    prior = "is" if survey.is_locality_prior else "is not"
    return (
        "**Question:** what is the GMM, what does it cost, and what does its official initialisation do at "
        "step 0? **Answer:** per head, a mixture of K Gaussians of the distance between patches, summed into a "
        "matrix that *multiplies* the attention logits: a per-head, distance-dependent temperature on the "
        "content scores, not a fixed kernel. It adds 2KH numbers per layer, "
        f"{extra_params:,} to the paper's ViT ({extra_params / base_params:.2%} of its parameters). Its "
        f"`{survey.init}` initialisation {prior} a locality prior: over {survey.heads:,} sampled heads, "
        f"{survey.near_sharpened:.0%} {'sharpen' if survey.is_locality_prior else 'happen to sharpen'} near "
        f"logits more than far ones and "
        f"{survey.near_reversed:.0%} reverse them, and M(0) is negative in {survey.negative_at_0:.0%}. {overhead}"
    )


def gmm_answer(results: Optional[str | Path] = None) -> str:
    """Chapter 4's answer: the official initialisation surveyed, the paper ViT's parameters counted, the
    overhead read from the recorded benchmark (``results/benchmarks/gmm_overhead.json``)."""
    base = count_parameters(create_model("vit", pool="gap"))
    extra = count_parameters(create_model("vit", mask="gmm", pool="gap")) - base
    overhead = overhead_text(load_benchmark("gmm_overhead", results), "paper", detail=False)
    return answer_text(survey_init("official"), extra, base, overhead)
