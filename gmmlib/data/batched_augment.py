"""The paper's training augmentation, per sample, on a whole batch of uint8 images at once (any device).

The CPU path (:func:`gmmlib.data.build_transforms`) augments one PIL image at a time in
DataLoader workers: random crop (padding 4), horizontal flip, AutoAugment, normalisation,
random erasing. Here the same recipe runs on a ``(B, 3, H, W)`` uint8 tensor where it lives,
so on a GPU the data never leaves the device. Every image still draws its own parameters
(crop offset, flip, AutoAugment sub-policy, apply-probabilities and signs, erasing box), with
the same distributions as torchvision's transforms. AutoAugment's magnitudes are fixed per
sub-policy, so images are grouped by (operation, signed magnitude) and each group goes through
one batched call of ``torchvision.transforms.v2.functional``: a few dozen calls per batch,
whatever its size.

Each random step is split in two, ``sample_*`` (draw the parameters) and ``apply_*`` (use
them), so tests can check the ops on fixed parameters against torchvision and the sampling
frequencies against the CPU path.

Example:
    >>> augment = BatchedAugment(get_info("cifar10"))
    >>> x = augment(images_uint8, torch.Generator().manual_seed(0))   # float, normalised
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torchvision.transforms.v2.functional as F
from torch import Tensor
from torchvision import transforms as T

from .info import DatasetInfo

__all__ = [
    "BatchedAugment",
    "AutoAugmentParams",
    "ErasingParams",
    "sample_crop",
    "apply_crop",
    "sample_flip",
    "apply_flip",
    "autoaugment_variants",
    "sample_autoaugment",
    "applied_variants",
    "apply_autoaugment",
    "apply_op",
    "sample_erasing",
    "apply_erasing",
    "normalize",
]


def _check_images(images: Tensor) -> None:
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be uint8 (B, 3, H, W), got {images.dtype} {tuple(images.shape)}")


# ----------------------------------------------------------------------------------------- crop and flip


def sample_crop(batch: int, padding: int, generator: torch.Generator, device: torch.device) -> Tensor:
    """Per-image (top, left) offsets into the padded image, uniform over ``0..2 * padding``; shape (B, 2)."""
    return torch.randint(2 * padding + 1, (batch, 2), generator=generator, device=device)


def apply_crop(images: Tensor, offsets: Tensor, padding: int) -> Tensor:
    """``RandomCrop(size, padding)`` with given offsets: zero-pad every image, cut each at its own (top, left)."""
    b, c, h, w = images.shape
    padded = torch.nn.functional.pad(images, (padding,) * 4)
    rows = (offsets[:, 0, None] + torch.arange(h, device=images.device))[:, :, None]  # (B, H, 1)
    cols = (offsets[:, 1, None] + torch.arange(w, device=images.device))[:, None, :]  # (B, 1, W)
    batch = torch.arange(b, device=images.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2).contiguous()


def sample_flip(batch: int, generator: torch.Generator, device: torch.device, p: float = 0.5) -> Tensor:
    """Which images to flip, each with probability ``p``; bool (B,)."""
    return torch.rand(batch, generator=generator, device=device) < p


def apply_flip(images: Tensor, flip: Tensor) -> Tensor:
    """Mirror the images where ``flip`` is true."""
    return torch.where(flip[:, None, None, None], images.flip(-1), images)


# ------------------------------------------------------------------------------------------- AutoAugment


def apply_op(images: Tensor, op: str, magnitude: float) -> Tensor:
    """One AutoAugment operation with one magnitude on a batch, as torchvision's AutoAugment applies it.

    Geometric ops use nearest interpolation and fill 0, shears are about the top-left corner,
    translations are whole pixels (torchvision's ``_apply_op`` semantics).

    Args:
        images: uint8 (B, 3, H, W).
        op: an AutoAugment op name (``"ShearX"``, ``"Rotate"``, ``"Equalize"``, ...).
        magnitude: the signed magnitude, in torchvision's units.
    """
    if op == "ShearX":
        shear = [math.degrees(math.atan(magnitude)), 0.0]
        return F.affine(images, angle=0.0, translate=[0, 0], scale=1.0, shear=shear, center=[0, 0])
    if op == "ShearY":
        shear = [0.0, math.degrees(math.atan(magnitude))]
        return F.affine(images, angle=0.0, translate=[0, 0], scale=1.0, shear=shear, center=[0, 0])
    if op == "TranslateX":
        return F.affine(images, angle=0.0, translate=[int(magnitude), 0], scale=1.0, shear=[0.0, 0.0])
    if op == "TranslateY":
        return F.affine(images, angle=0.0, translate=[0, int(magnitude)], scale=1.0, shear=[0.0, 0.0])
    if op == "Rotate":
        return F.rotate(images, magnitude)
    if op == "Brightness":
        return F.adjust_brightness(images, 1.0 + magnitude)
    if op == "Color":
        return F.adjust_saturation(images, 1.0 + magnitude)
    if op == "Contrast":
        return F.adjust_contrast(images, 1.0 + magnitude)
    if op == "Sharpness":
        return F.adjust_sharpness(images, 1.0 + magnitude)
    if op == "Posterize":
        return F.posterize(images, int(magnitude))
    if op == "Solarize":
        return F.solarize(images, magnitude)
    if op == "AutoContrast":
        return F.autocontrast(images)
    if op == "Equalize":
        return F.equalize(images)
    if op == "Invert":
        return F.invert(images)
    raise ValueError(f"unknown AutoAugment op {op!r}")


@dataclass(frozen=True)
class AutoAugmentParams:
    """Per-image AutoAugment draws, as torchvision's ``AutoAugment.get_params`` makes them.

    Args:
        policy_id: (B,) sub-policy index.
        probs: (B, 2) uniform draws; op ``i`` is applied when ``probs[:, i] <= p_i``.
        signs: (B, 2) 0 or 1; a signed op's magnitude is negated where the sign is 0.
    """

    policy_id: Tensor
    probs: Tensor
    signs: Tensor


def autoaugment_variants(policy: T.AutoAugmentPolicy, image_size: tuple[int, int]) -> tuple[list, Tensor, Tensor]:
    """The distinct (op, signed magnitude) pairs of a policy, and lookup tables into them.

    Returns:
        ``(variants, table, probability)``: ``variants[v] = (op name, magnitude)``;
        ``table[policy, position, sign]`` is a variant index (sign 0 negates a signed op's
        magnitude, as in torchvision); ``probability[policy, position]`` is the op's probability.
    """
    aa = T.AutoAugment(policy)
    space = aa._augmentation_space(10, image_size)  # torchvision's magnitudes, not a copy of them
    variants: list[tuple[str, float]] = []
    index: dict[tuple[str, float], int] = {}
    table = torch.zeros(len(aa.policies), 2, 2, dtype=torch.long)
    probability = torch.zeros(len(aa.policies), 2, dtype=torch.float64)
    for pid, sub in enumerate(aa.policies):
        for pos, (op, p, magnitude_id) in enumerate(sub):
            magnitudes, signed = space[op]
            magnitude = float(magnitudes[magnitude_id].item()) if magnitude_id is not None else 0.0
            for sign in (0, 1):
                key = (op, -magnitude if signed and sign == 0 else magnitude)
                if key not in index:
                    index[key] = len(variants)
                    variants.append(key)
                table[pid, pos, sign] = index[key]
            probability[pid, pos] = p
    return variants, table, probability


def sample_autoaugment(
    batch: int, num_policies: int, generator: torch.Generator, device: torch.device
) -> AutoAugmentParams:
    """Per-image sub-policy, apply-probability draws and signs (torchvision's ``get_params``, per image)."""
    policy_id = torch.randint(num_policies, (batch,), generator=generator, device=device)
    probs = torch.rand((batch, 2), generator=generator, device=device)
    signs = torch.randint(2, (batch, 2), generator=generator, device=device)
    return AutoAugmentParams(policy_id, probs, signs)


def applied_variants(params: AutoAugmentParams, table: Tensor, probability: Tensor) -> Tensor:
    """(B, 2) variant index of each image's two ops, or -1 where the op is not applied."""
    dev = params.policy_id.device
    variant = table.to(dev)[params.policy_id].gather(-1, params.signs[..., None]).squeeze(-1)
    # probs <= p as torchvision compares them: its float32 draw against the Python float p
    applied = params.probs.double() <= probability.to(dev)[params.policy_id]
    return torch.where(applied, variant, torch.full_like(variant, -1))


def apply_autoaugment(images: Tensor, variant_ids: Tensor, variants: list) -> Tensor:
    """Apply each image's two ops in order, one batched call per (position, variant) group."""
    out = images.clone()
    num = len(variants)
    for pos in range(2):
        vid = variant_ids[:, pos]
        order = torch.argsort(vid, stable=True)
        counts = torch.bincount(vid + 1, minlength=num + 1).tolist()  # one host sync per position
        start = counts[0]  # images whose op is not applied come first (-1)
        for v in range(num):
            n = counts[v + 1]
            if n:
                idx = order[start : start + n]
                out[idx] = apply_op(out[idx], *variants[v])
                start += n
    return out


# ---------------------------------------------------------------------------- normalisation and erasing


def normalize(images: Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> Tensor:
    """uint8 -> float in [0, 1] -> ``(x - mean) / std`` per channel (``ToTensor`` then ``Normalize``)."""
    x = images.float().div_(255)
    m = torch.tensor(mean, device=x.device).view(1, -1, 1, 1)
    s = torch.tensor(std, device=x.device).view(1, -1, 1, 1)
    return x.sub_(m).div_(s)


@dataclass(frozen=True)
class ErasingParams:
    """Per-image erasing boxes: ``erase`` (B,) bool, and top, left, height, width (B,) ints."""

    erase: Tensor
    top: Tensor
    left: Tensor
    height: Tensor
    width: Tensor


def sample_erasing(
    batch: int,
    image_size: tuple[int, int],
    p: float,
    generator: torch.Generator,
    device: torch.device,
    scale: tuple[float, float] = (0.02, 0.4),
    ratio: tuple[float, float] = (0.3, 3.3),
    attempts: int = 10,
) -> ErasingParams:
    """torchvision's ``RandomErasing`` draws, per image: with probability ``p``, the first of ``attempts``
    (area, aspect) draws whose box fits; an image with no fitting draw is left as it is."""
    h, w = image_size
    kw = dict(generator=generator, device=device)
    area = h * w * (scale[0] + (scale[1] - scale[0]) * torch.rand((batch, attempts), **kw))
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    aspect = torch.exp(log_lo + (log_hi - log_lo) * torch.rand((batch, attempts), **kw))
    bh = torch.sqrt(area * aspect).round().long()
    bw = torch.sqrt(area / aspect).round().long()
    fits = (bh < h) & (bw < w)
    first = fits.int().argmax(1, keepdim=True)
    bh, bw = bh.gather(1, first).squeeze(1), bw.gather(1, first).squeeze(1)
    erase = (torch.rand(batch, **kw) < p) & fits.any(1)
    top = (torch.rand(batch, **kw) * (h - bh + 1)).long()
    left = (torch.rand(batch, **kw) * (w - bw + 1)).long()
    return ErasingParams(erase, top, left, bh, bw)


def apply_erasing(x: Tensor, params: ErasingParams, value: tuple[float, ...]) -> Tensor:
    """Fill each chosen box with ``value`` (per channel), as ``RandomErasing(value=...)`` does."""
    _, c, h, w = x.shape
    rows = torch.arange(h, device=x.device)[None, :, None]
    cols = torch.arange(w, device=x.device)[None, None, :]
    p = params
    inside = (
        (rows >= p.top[:, None, None])
        & (rows < (p.top + p.height)[:, None, None])
        & (cols >= p.left[:, None, None])
        & (cols < (p.left + p.width)[:, None, None])
        & p.erase[:, None, None]
    )
    fill = torch.tensor(value, dtype=x.dtype, device=x.device).view(1, c, 1, 1)
    return torch.where(inside[:, None], fill, x)


# ------------------------------------------------------------------------------------------ the pipeline


class BatchedAugment:
    """The paper's training augmentation for a whole batch, each image with its own random draws.

    Crop (padding 4) -> flip -> AutoAugment (the data set's policy) -> normalise -> random erasing
    (filled with the mean tuple, as the CPU path and the official code do). Mixup/CutMix come after,
    in the training loop, as on the CPU path.

    Args:
        info: the data set (image size, mean/std, AutoAugment policy).
        autoaugment: include AutoAugment.
        random_erasing: erasing probability (0 disables it).
        padding: crop padding.
    """

    def __init__(self, info: DatasetInfo, autoaugment: bool = True, random_erasing: float = 0.25, padding: int = 4):
        if not 0.0 <= random_erasing <= 1.0:
            raise ValueError(f"random_erasing must be a probability in [0, 1], got {random_erasing}")
        self.info = info
        self.autoaugment = autoaugment
        self.random_erasing = random_erasing
        self.padding = padding
        size = (info.image_size, info.image_size)
        self.variants, self.table, self.probability = autoaugment_variants(info.autoaugment_policy, size)

    def __call__(self, images: Tensor, generator: torch.Generator) -> Tensor:
        """Augment a batch.

        Args:
            images: uint8 (B, 3, H, W) on any device.
            generator: a generator on the images' device; it alone decides every draw.

        Returns:
            float32 (B, 3, H, W), normalised.
        """
        _check_images(images)
        b, dev = len(images), images.device
        x = apply_crop(images, sample_crop(b, self.padding, generator, dev), self.padding)
        x = apply_flip(x, sample_flip(b, generator, dev))
        if self.autoaugment:
            params = sample_autoaugment(b, len(self.table), generator, dev)
            x = apply_autoaugment(x, applied_variants(params, self.table, self.probability), self.variants)
        x = normalize(x, self.info.mean, self.info.std)
        if self.random_erasing > 0:
            size = tuple(x.shape[-2:])
            x = apply_erasing(x, sample_erasing(b, size, self.random_erasing, generator, dev), self.info.mean)
        return x
