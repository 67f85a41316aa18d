"""Model registry: ``create_model(name, ...)`` looks the family up here, no if-chains."""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, Optional, Sequence, Tuple

import torch
from torch import nn

from ..masks import OFFICIAL_UNDERFLOW_SQ_DIST, AttentionMask, create

__all__ = [
    "ModelEntry",
    "register_model",
    "create_model",
    "list_models",
    "display_name",
    "PAPER_FAMILIES",
    "build_mask",
    "mask_init_stream",
    "MASK_RNG_CHOICES",
    "check_patch_size",
    "check_pool",
    "init_weights",
]


@dataclass(frozen=True)
class ModelEntry:
    """A model family.

    Args:
        name: registry name ("vit").
        builder: ``fn(num_classes, img_size, mask, pool, **options)``.
        default_pool: pooling when none is asked for.
        pools: the poolings the family supports.
        display_name: the name tables and plots print ("ViT").
    """

    name: str
    builder: Callable[..., nn.Module]
    default_pool: str
    pools: Tuple[str, ...]
    display_name: str = ""


_MODELS: Dict[str, ModelEntry] = {}

# The paper's five families, in the order of its tables (the rows of Experiment 1), with the
# names the tables print; a family registered without a display name takes its entry here.
PAPER_FAMILIES: Tuple[str, ...] = ("vit", "swin", "cait", "pit", "t2t")
_DISPLAY_NAMES = {"vit": "ViT", "swin": "Swin", "cait": "CaiT", "pit": "PiT", "t2t": "T2T"}


def register_model(
    name: str, default_pool: str, pools: Sequence[str], display_name: Optional[str] = None
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator that registers a builder ``fn(num_classes, img_size, mask, pool, **options)``.

    Args:
        name: registry name.
        default_pool: pooling when none is asked for.
        pools: the poolings the family supports.
        display_name: the name tables print (default: the paper's name for its families, else ``name``).
    """

    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        shown = display_name or _DISPLAY_NAMES.get(name, name)
        _MODELS[name] = ModelEntry(name, fn, default_pool, tuple(pools), shown)
        return fn

    return wrap


def list_models() -> list[str]:
    """Names accepted by :func:`create_model`."""
    return sorted(_MODELS)


def display_name(name: str) -> str:
    """The name tables print for family ``name`` ("vit" -> "ViT"); an unknown name is returned as is."""
    entry = _MODELS.get(name)
    return entry.display_name if entry is not None else name


# Where mask parameters draw their random initial values from: "own" (a generator of
# their own, derived from a seed, so the backbone starts exactly as the unmasked model's:
# a paired comparison by construction) or "global" (the global generator in the middle
# of the model's construction, as runs recorded before init scheme 2 did).
MASK_RNG_CHOICES: Tuple[str, ...] = ("own", "global")

_MASK_STREAM: contextvars.ContextVar[Optional[torch.Generator]] = contextvars.ContextVar("mask_stream", default=None)


def _derived_seed(seed: int) -> int:
    # A seed for the mask stream that is not the model's seed itself, so the mask's draws
    # are not the same numbers as the first draws of the backbone.
    digest = hashlib.sha256(f"gmmlib-mask-init-{int(seed)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


@contextlib.contextmanager
def mask_init_stream(seed: int) -> Iterator[torch.Generator]:
    """Within this context, :func:`build_mask` draws random mask values from a stream of their own.

    Each mask built inside gets a seed from a generator derived from ``seed`` and draws
    its values under :func:`torch.random.fork_rng`, so the global generator is left
    exactly where it was: the backbone's weights do not depend on the mask.
    """
    generator = torch.Generator().manual_seed(_derived_seed(seed))
    token = _MASK_STREAM.set(generator)
    try:
        yield generator
    finally:
        _MASK_STREAM.reset(token)


def create_model(
    name: str,
    num_classes: int = 10,
    img_size: int = 32,
    mask: Optional[str] = None,
    pool: Optional[str] = None,
    mask_rng: str = "own",
    mask_seed: Optional[int] = None,
    **options,
) -> nn.Module:
    """Build one of the paper's small-data models.

    Args:
        name: model family, one of :func:`list_models` ("vit", "swin", "cait", "pit", "t2t").
        num_classes: classifier outputs.
        img_size: input side in pixels (32 for CIFAR/SVHN, 64 for Tiny-ImageNet).
        mask: mask kind put where the official code puts GMM/ELM ("gmm", "elm",
            "retnet", "alibi2d", "relpos"), or None.
        pool: "gap" or "cls" where the family offers both; None takes the family's own.
        mask_rng: "own" (default): random mask values come from a generator of their own,
            seeded from ``mask_seed``, so at a given global seed every weight the model shares
            with the unmasked one is equal (a paired comparison by construction); "global":
            they come from the global generator mid-construction (runs recorded before init
            scheme 2; see :class:`gmmlib.training.config.RunConfig`).
        mask_seed: seed of the mask stream; None takes ``torch.initial_seed()`` (the seed last
            given to ``torch.manual_seed``).
        **options: architecture overrides (``dim``, ``depth``, ...) and ``mask_options``
            (a dict passed to :func:`gmmlib.masks.create`).
    """
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}; choices: {', '.join(list_models())}")
    pool = check_pool(name, pool)
    entry = _MODELS[name]
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    if not isinstance(img_size, int) or img_size < 1:
        raise ValueError(f"img_size must be a positive int, got {img_size!r}")
    if mask_rng not in MASK_RNG_CHOICES:
        raise ValueError(f"mask_rng must be one of {MASK_RNG_CHOICES}, got {mask_rng!r}")
    build = lambda: entry.builder(num_classes=num_classes, img_size=img_size, mask=mask, pool=pool, **options)  # noqa: E731
    if mask_rng == "global":
        return build()
    with mask_init_stream(torch.initial_seed() if mask_seed is None else mask_seed):
        return build()


def build_mask(
    kind: Optional[str], grid: Sequence[int], num_heads: int, options: Optional[dict] = None
) -> Optional[AttentionMask]:
    """A fresh mask for one attention layer, or None when ``kind`` is None.

    The official code evaluates ``exp(-d^2)`` in float32, which underflows to 0 for
    ``d^2 > 103``: on grids with such distances (9 x 9 and larger; PiT's 16 x 16 stage,
    T2T's token transformers) its Gaussians are truncated at a radius of about 10
    patches. For ``kind="gmm"`` on such grids this passes ``truncate_like_official=True``
    unless ``options`` set it; on smaller grids the flag would change nothing.

    Inside :func:`create_model` (its default ``mask_rng="own"``), random initial values come
    from the model's mask stream (:func:`mask_init_stream`) and leave the global generator
    untouched.
    """
    if kind is None:
        if options:
            raise ValueError(f"mask_options {options} given without a mask kind")
        return None
    options = dict(options or {})
    h, w = grid
    if kind == "gmm" and (h - 1) ** 2 + (w - 1) ** 2 > OFFICIAL_UNDERFLOW_SQ_DIST:
        options.setdefault("truncate_like_official", True)
    stream = _MASK_STREAM.get()
    if stream is None:  # outside create_model: the global generator, as any torch module
        return create(kind, grid=(int(h), int(w)), num_heads=num_heads, **options)
    seed = int(torch.randint(2**62, (1,), generator=stream))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return create(kind, grid=(int(h), int(w)), num_heads=num_heads, **options)


def check_patch_size(img_size: int, patch_size: int) -> None:
    """Raise a clear error when the patch does not tile the image."""
    if patch_size < 1 or img_size % patch_size:
        raise ValueError(f"img_size {img_size} is not divisible by patch_size {patch_size}")


def check_stages(img_size: int, patch_size: int, depth: Sequence[int], num_heads: Sequence[int]) -> int:
    """The side of the first stage's token grid, after checking that the patch tiles the image and that
    the grid halves once per later stage (PiT's pooling, Swin's patch merging).

    Raises:
        ValueError: naming the values that do not fit together.
    """
    if len(depth) != len(num_heads):
        raise ValueError(f"depth {tuple(depth)} and num_heads {tuple(num_heads)} must have one entry per stage")
    check_patch_size(img_size, patch_size)
    side = img_size // patch_size
    if side % 2 ** (len(depth) - 1):
        raise ValueError(
            f"the {side} x {side} token grid cannot be halved {len(depth) - 1} times; "
            f"choose img_size and patch_size so that it can"
        )
    return side


def check_pool(name: str, pool: Optional[str]) -> str:
    """The pooling of family ``name``: ``pool``, or the family's default when None.

    Raises:
        ValueError: the family does not offer ``pool``; the message lists what it offers.
    """
    entry = _MODELS[name]
    pool = entry.default_pool if pool is None else pool
    if pool not in entry.pools:
        raise ValueError(f"model {name!r} supports pool in {entry.pools}, got {pool!r}")
    return pool


def init_weights(model: nn.Module, types: Tuple[type, ...] = (nn.Linear,)) -> None:
    """The official init of the ViT-style families: Xavier-normal weights and zero biases for ``types``."""
    for m in model.modules():
        if isinstance(m, types):
            nn.init.xavier_normal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
