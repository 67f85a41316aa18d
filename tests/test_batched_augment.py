"""The GPU data path, checked on CPU tensors: each op against torchvision on fixed parameters, and the
sampling frequencies against the CPU path's transforms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms as T
from torchvision.transforms import InterpolationMode
from torchvision.transforms import autoaugment as tv_autoaugment
from torchvision.transforms import functional as TF

from gmmlib.data import DeviceLoader, build_transforms, get_info, load_arrays
from gmmlib.data.batched_augment import (
    BatchedAugment,
    ErasingParams,
    applied_variants,
    apply_autoaugment,
    apply_crop,
    apply_erasing,
    apply_flip,
    apply_op,
    autoaugment_variants,
    normalize,
    sample_autoaugment,
    sample_crop,
    sample_erasing,
    sample_flip,
)

POLICIES = list(T.AutoAugmentPolicy)
GEOMETRIC = {"ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate"}


@pytest.fixture(scope="module")
def images() -> tuple[np.ndarray, torch.Tensor]:
    x, _ = load_arrays("synthetic", "test", limit=48, seed=3)
    return x, torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()


def _pil_batch(x: np.ndarray, fn) -> torch.Tensor:
    return torch.from_numpy(np.stack([np.asarray(fn(Image.fromarray(im))) for im in x])).permute(0, 3, 1, 2)


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.value)
def test_every_autoaugment_op_matches_torchvision(policy, images) -> None:
    """Each (op, signed magnitude) of the policy, batched, against torchvision applied image by image:
    its tensor op within 1 grey level; its PIL op (the CPU path) within 1 level for colour ops, and on
    at least 90% of pixels for geometric ops (nearest-neighbour ties at half pixels break differently)."""
    x_np, x = images
    variants, _, _ = autoaugment_variants(policy, (32, 32))
    assert len({op for op, _ in variants}) >= 5
    for op, magnitude in variants:
        ours = apply_op(x, op, magnitude).int()
        tensor_ref = torch.stack(
            [tv_autoaugment._apply_op(im, op, magnitude, InterpolationMode.NEAREST, None) for im in x]
        ).int()
        assert (ours - tensor_ref).abs().max() <= 1, (op, magnitude)
        pil_ref = _pil_batch(
            x_np, lambda im: tv_autoaugment._apply_op(im, op, magnitude, InterpolationMode.NEAREST, None)
        ).int()
        diff = (ours - pil_ref).abs()
        if op in GEOMETRIC:
            assert (diff > 1).float().mean() <= 0.10, (op, magnitude)
        else:
            assert diff.max() <= 1, (op, magnitude)


def test_unknown_op_is_named() -> None:
    with pytest.raises(ValueError, match="unknown AutoAugment op 'Warp'"):
        apply_op(torch.zeros(1, 3, 4, 4, dtype=torch.uint8), "Warp", 1.0)


def test_crop_flip_erasing_match_torchvision_on_fixed_parameters(images) -> None:
    _, x = images
    offsets = torch.tensor([[0, 8], [3, 5], [8, 0]] * 16)
    ours = apply_crop(x, offsets, padding=4)
    for i in range(len(x)):
        ref = TF.crop(TF.pad(x[i], 4), int(offsets[i, 0]), int(offsets[i, 1]), 32, 32)
        assert torch.equal(ours[i], ref)
    flip = torch.arange(len(x)) % 2 == 0
    flipped = apply_flip(x, flip)
    assert torch.equal(flipped[0], TF.hflip(x[0])) and torch.equal(flipped[1], x[1])

    info = get_info("cifar10")
    xf = normalize(x, info.mean, info.std)
    ref0 = TF.normalize(TF.to_tensor(Image.fromarray(x[0].permute(1, 2, 0).numpy())), info.mean, info.std)
    torch.testing.assert_close(xf[0], ref0)
    n = len(x)
    params = ErasingParams(
        erase=torch.arange(n) % 3 != 0,
        top=torch.full((n,), 2),
        left=torch.full((n,), 5),
        height=torch.full((n,), 7),
        width=torch.full((n,), 11),
    )
    erased = apply_erasing(xf, params, info.mean)
    value = torch.tensor(info.mean)[:, None, None]
    torch.testing.assert_close(erased[1], TF.erase(xf[1], 2, 5, 7, 11, value))
    torch.testing.assert_close(erased[0], xf[0])


def test_autoaugment_applies_each_image_its_own_sub_policy(images) -> None:
    """Grouping by variant gives what applying each image's two ops one by one gives."""
    _, x = images
    variants, table, probability = autoaugment_variants(T.AutoAugmentPolicy.CIFAR10, (32, 32))
    g = torch.Generator().manual_seed(5)
    params = sample_autoaugment(len(x), len(table), g, torch.device("cpu"))
    ids = applied_variants(params, table, probability)
    ours = apply_autoaugment(x, ids, variants)
    policies = T.AutoAugment(T.AutoAugmentPolicy.CIFAR10).policies
    for i in range(len(x)):
        ref = x[i : i + 1]
        for pos, (op, p, _) in enumerate(policies[int(params.policy_id[i])]):
            if params.probs[i, pos] <= p:
                assert variants[int(ids[i, pos])][0] == op
                ref = apply_op(ref, *variants[int(ids[i, pos])])
            else:
                assert ids[i, pos] == -1
        assert torch.equal(ours[i : i + 1], ref)


def _binomial_ok(count: int, n: int, p: float, sigmas: float = 5.0) -> bool:
    return abs(count - n * p) <= sigmas * math.sqrt(n * p * (1 - p)) + 1


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.value)
def test_autoaugment_frequencies_match_the_cpu_path(policy) -> None:
    """How often each (op, signed magnitude) is applied at each position: batched draws against
    torchvision's AutoAugment.get_params, both against the exact expectation."""
    n = 40_000
    variants, table, probability = autoaugment_variants(policy, (32, 32))
    g = torch.Generator().manual_seed(11)
    ids = applied_variants(sample_autoaugment(n, len(table), g, torch.device("cpu")), table, probability)
    aa = T.AutoAugment(policy)
    torch.manual_seed(12)
    cpu = torch.full((n, 2), -1)
    for i in range(n):
        pid, probs, signs = aa.get_params(len(aa.policies))
        for pos in range(2):
            if probs[pos] <= aa.policies[pid][pos][1]:
                cpu[i, pos] = table[pid, pos, int(signs[pos])]
    expected = torch.zeros(2, len(variants) + 1, dtype=torch.float64)
    for pid in range(len(table)):
        for pos in range(2):
            p = float(probability[pid, pos])
            for sign in (0, 1):
                expected[pos, int(table[pid, pos, sign]) + 1] += p / 2 / len(table)
            expected[pos, 0] += (1 - p) / len(table)
    for pos in range(2):
        for counts in (torch.bincount(ids[:, pos] + 1, minlength=len(variants) + 1),
                       torch.bincount(cpu[:, pos] + 1, minlength=len(variants) + 1)):  # fmt: skip
            for v in range(len(variants) + 1):
                assert _binomial_ok(int(counts[v]), n, float(expected[pos, v])), (pos, v)


def test_crop_flip_erasing_frequencies_match_the_cpu_path() -> None:
    n = 40_000
    g = torch.Generator().manual_seed(2)
    cpu = torch.device("cpu")
    offsets = sample_crop(n, 4, g, cpu)
    counts = torch.bincount(offsets[:, 0] * 9 + offsets[:, 1], minlength=81)
    assert len(counts) == 81 and all(_binomial_ok(int(c), n, 1 / 81) for c in counts)
    assert _binomial_ok(int(sample_flip(n, g, cpu).sum()), n, 0.5)

    ours = sample_erasing(n, (32, 32), 0.25, g, cpu)
    torch.manual_seed(3)
    erasing = T.RandomErasing(p=0.25, scale=(0.02, 0.4), ratio=(0.3, 3.3))
    img = torch.zeros(3, 32, 32)
    ref_boxes = []
    for _ in range(n):
        if torch.rand(1) < erasing.p:
            i, j, h, w, _ = erasing.get_params(img, erasing.scale, erasing.ratio, value=[0.0])
            if (h, w) != (32, 32):
                ref_boxes.append((i, j, h, w))
    ref = torch.tensor(ref_boxes, dtype=torch.float64)
    assert _binomial_ok(int(ours.erase.sum()), n, len(ref) / n, sigmas=6)
    sel = ours.erase
    mine = torch.stack([ours.top[sel], ours.left[sel], ours.height[sel], ours.width[sel]], 1).double()
    assert ((mine[:, 0] + mine[:, 2]) <= 32).all() and ((mine[:, 1] + mine[:, 3]) <= 32).all()
    for k in range(4):  # mean and spread of top, left, height, width within a few standard errors
        se = ref[:, k].std() * math.sqrt(1 / len(ref) + 1 / len(mine))
        assert abs(mine[:, k].mean() - ref[:, k].mean()) <= 5 * se, k
        assert abs(mine[:, k].std() - ref[:, k].std()) <= 0.05 * ref[:, k].std(), k


def test_pipeline_statistics_match_the_cpu_transforms() -> None:
    """The whole recipe, batched, against build_transforms on the same images: per-channel mean and
    std of the augmented pixels agree within sampling error."""
    x, _ = load_arrays("synthetic", "train", limit=600, seed=0)
    reps = 4
    xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous().repeat(reps, 1, 1, 1)
    ours = BatchedAugment(get_info("synthetic"))(xt, torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    transform = build_transforms("synthetic", train=True)
    ref = torch.stack([transform(Image.fromarray(im)) for im in np.concatenate([x] * reps)])
    assert ours.shape == ref.shape and ours.dtype == ref.dtype
    for stat in (lambda t: t.mean((0, 2, 3)), lambda t: t.std((0, 2, 3))):
        torch.testing.assert_close(stat(ours), stat(ref), atol=0.04, rtol=0.03)


def test_batched_augment_is_deterministic_per_generator_and_validates(images) -> None:
    _, x = images
    aug = BatchedAugment(get_info("cifar10"))
    a = aug(x, torch.Generator().manual_seed(4))
    b = aug(x, torch.Generator().manual_seed(4))
    c = aug(x, torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and not torch.equal(a, c)
    with pytest.raises(ValueError, match=r"images must be uint8 \(B, 3, H, W\), got torch.float32"):
        aug(x.float(), torch.Generator())
    with pytest.raises(ValueError, match="random_erasing must be a probability in \\[0, 1\\], got 2"):
        BatchedAugment(get_info("cifar10"), random_erasing=2)


def test_device_loader_walks_the_given_order_in_batches() -> None:
    x, y = load_arrays("synthetic", "test", limit=100, seed=0)
    loader = DeviceLoader(x, y, None, batch_size=16, device="cpu", chunk_size=40)
    assert loader.chunk_size == 32
    order = torch.randperm(100, generator=torch.Generator().manual_seed(0))
    batches = list(loader.epoch(order, seed=0))
    assert [len(b[1]) for b in batches] == [16] * 6  # drop_last: 96 of 100
    seen = torch.cat([b[1] for b in batches])
    assert torch.equal(seen, torch.from_numpy(y)[order[:96]])
    assert torch.equal(batches[0][0], torch.from_numpy(x).permute(0, 3, 1, 2)[order[:16]])
    aug = DeviceLoader(x, y, BatchedAugment(get_info("synthetic")), batch_size=16, device="cpu")
    first = [b[0] for b in aug.epoch(order, seed=7)]
    again = [b[0] for b in aug.epoch(order, seed=7)]
    assert all(torch.equal(a, b) for a, b in zip(first, again)) and first[0].dtype == torch.float32
    with pytest.raises(ValueError, match="images must be uint8 \\(N, H, W, 3\\)"):
        DeviceLoader(x.astype(np.float32), y, None, 16, "cpu")


def test_every_data_path_has_a_batch_builder_and_an_unknown_one_is_named() -> None:
    from gmmlib.training.batches import DATA_PATHS, batches_for
    from gmmlib.training.config import RunConfig

    assert batches_for("workers") is DATA_PATHS["workers"] and batches_for("batched") is DATA_PATHS["batched"]
    assert set(DATA_PATHS) == {RunConfig(data_path=p).data_path for p in ("workers", "batched")}
    with pytest.raises(ValueError, match=r"unknown data path 'gpu2'; expected one of \['batched', 'workers'\]"):
        batches_for("gpu2")
