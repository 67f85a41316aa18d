"""Attention maps recorded from every model family, and the locality statistics built on them."""

import pytest
import timm
import torch

import gmmlib
from gmmlib.analysis import attention_maps, mean_attention_distance
from gmmlib.attention import MaskedAttention, masked_attention
from gmmlib.config import PRESETS

SMALL = {name: dict(options) for name, options in PRESETS["quick"].model_overrides.items()}


@pytest.mark.parametrize("family", list(SMALL))
@pytest.mark.parametrize("mask", [None, "gmm"])
def test_every_family_gives_one_map_per_attention_layer(family, mask):
    torch.manual_seed(0)
    model = gmmlib.create_model(family, mask=mask, **SMALL[family])
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        before = model.eval()(x)
    maps = attention_maps(model.train(), x)
    assert model.training, "the model's mode is restored"
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), before)  # recording changes nothing
    assert len(maps) >= 2
    for name, p in maps.items():
        assert p.dim() == 4 and torch.isfinite(p).all(), name
        rows = torch.ones(p.shape[1])
        if family == "cait":  # talking heads mix the probabilities after the softmax: rows sum to W_post's columns
            rows = model.get_submodule(name).mix_post.detach().sum(0)
        torch.testing.assert_close(p.sum(-1), rows[None, :, None].expand_as(p.sum(-1)), msg=name)
    if family == "vit":
        assert list(maps) == ["blocks.0.attn", "blocks.1.attn"]
        assert maps["blocks.0.attn"].shape == (2, 2, 64, 64)


def test_recorded_maps_are_the_layers_own():
    """The recorded probabilities are the ones the layer multiplies its values with."""
    torch.manual_seed(1)
    model = gmmlib.create_model("vit", mask="gmm", pool="cls", **SMALL["vit"]).eval()
    x = torch.randn(3, 3, 32, 32)
    inputs = {}
    layer = model.blocks[1].attn
    handle = layer.register_forward_pre_hook(lambda m, args: inputs.setdefault("x", args[0]))
    maps = attention_maps(model, x)
    handle.remove()
    b, t, _ = inputs["x"].shape
    q, k, _ = layer.qkv(inputs["x"]).reshape(b, t, 3, layer.num_heads, layer.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
    eye = torch.eye(t).expand(b, layer.num_heads, t, t)  # P @ I = P, through the fused path
    torch.testing.assert_close(maps["blocks.1.attn"], masked_attention(q, k, eye, layer.mask, scale=layer.scale))


def test_timm_models_with_a_mask_are_recorded():
    vit = timm.create_model(
        "vit_tiny_patch16_224", pretrained=False, img_size=32, patch_size=4, num_classes=10, depth=2
    )
    gmmlib.apply_mask(vit, "gmm", num_kernels=3)
    maps = attention_maps(vit, torch.randn(1, 3, 32, 32))
    assert list(maps) == ["blocks.0.attn", "blocks.1.attn"] and maps["blocks.0.attn"].shape == (1, 3, 65, 65)


def test_mean_attention_distance():
    grid = (4, 4)
    eye = torch.eye(16).expand(2, 3, 16, 16)
    assert torch.equal(mean_attention_distance(eye, grid), torch.zeros(3))
    uniform = torch.full((1, 1, 17, 17), 1 / 17)  # a CLS token first: left out, rows renormalised
    d = gmmlib.masks.pairwise_distance(grid, "euclidean")
    torch.testing.assert_close(mean_attention_distance(uniform, grid), d.mean().reshape(1))
    with pytest.raises(ValueError, match="cover fewer than the 16 tokens"):
        mean_attention_distance(torch.ones(1, 1, 9, 9), grid)


def test_a_model_without_attention_is_an_error():
    with pytest.raises(ValueError, match="Linear ran no attention layer"):
        attention_maps(torch.nn.Linear(4, 2), torch.randn(1, 4))


def test_masked_attention_is_exposed_unchanged():
    assert MaskedAttention is gmmlib.MaskedAttention
