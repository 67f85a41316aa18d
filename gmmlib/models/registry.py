"""Model registry: ``create_model(name, ...)`` looks the family up here, no if-chains."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Optional, Sequence, Tuple

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


def create_model(
    name: str,
    num_classes: int = 10,
    img_size: int = 32,
    mask: Optional[str] = None,
    pool: Optional[str] = None,
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
    return entry.builder(num_classes=num_classes, img_size=img_size, mask=mask, pool=pool, **options)


def build_mask(
    kind: Optional[str], grid: Sequence[int], num_heads: int, options: Optional[dict] = None
) -> Optional[AttentionMask]:
    """A fresh mask for one attention layer, or None when ``kind`` is None.

    The official code evaluates ``exp(-d^2)`` in float32, which underflows to 0 for
    ``d^2 > 103``: on grids with such distances (9 x 9 and larger; PiT's 16 x 16 stage,
    T2T's token transformers) its Gaussians are truncated at a radius of about 10
    patches. For ``kind="gmm"`` on such grids this passes ``truncate_like_official=True``
    unless ``options`` set it; on smaller grids the flag would change nothing.
    """
    if kind is None:
        if options:
            raise ValueError(f"mask_options {options} given without a mask kind")
        return None
    options = dict(options or {})
    h, w = grid
    if kind == "gmm" and (h - 1) ** 2 + (w - 1) ** 2 > OFFICIAL_UNDERFLOW_SQ_DIST:
        options.setdefault("truncate_like_official", True)
    return create(kind, grid=(int(h), int(w)), num_heads=num_heads, **options)


def check_patch_size(img_size: int, patch_size: int) -> None:
    """Raise a clear error when the patch does not tile the image."""
    if patch_size < 1 or img_size % patch_size:
        raise ValueError(f"img_size {img_size} is not divisible by patch_size {patch_size}")


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
