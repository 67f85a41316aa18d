"""The paper's ViT: parameter counts, pooling, masks, overfitting, profile and timm interop."""

import pytest
import timm
import torch

import gmmlib
from gmmlib.apply import TimmMaskedAttention, apply_mask
from gmmlib.cost import count_parameters, profile


def test_parameter_count_matches_official():
    # official: 2.71M trainable at num_classes=100, img 32 (paper-facts 4), counted layer by layer:
    embed = (4 * 4 * 3 * 192 + 192) + 65 * 192 + 192  # patch projection, positions (64 + CLS), CLS token
    attention = 2 * 192 + 192 * 3 * 12 * 16 + (192 * 192 + 192)  # LayerNorm, qkv (no bias), projection
    mlp = 2 * 192 + (192 * 384 + 384) + (384 * 192 + 192)  # LayerNorm, two linear layers
    head = 2 * 192 + 192 * 100 + 100
    n = count_parameters(gmmlib.create_model("vit", num_classes=100, pool="cls"))
    assert n == embed + 9 * (attention + mlp) + head == 2_709_796


@pytest.mark.parametrize("pool", ["gap", "cls"])
def test_gmm_adds_exactly_2KH_per_layer(pool):
    base = count_parameters(gmmlib.create_model("vit", num_classes=100, pool=pool))
    gmm = count_parameters(gmmlib.create_model("vit", num_classes=100, pool=pool, mask="gmm"))
    assert gmm - base == 9 * 2 * 5 * 12 == 1080
    k3 = count_parameters(gmmlib.create_model("vit", pool=pool, mask="gmm", mask_options={"num_kernels": 3}))
    assert k3 - count_parameters(gmmlib.create_model("vit", pool=pool)) == 9 * 2 * 3 * 12
    elm = count_parameters(gmmlib.create_model("vit", num_classes=100, pool=pool, mask="elm"))
    assert elm - base == 9 * 64 * 64


def test_pooling_and_mask_are_independent():
    gap = gmmlib.create_model("vit", mask="gmm", pool="gap")
    cls = gmmlib.create_model("vit", mask="gmm", pool="cls")
    assert gap.cls_token is None and gap.pos_embed.shape[1] == 64
    assert cls.cls_token is not None and cls.pos_embed.shape[1] == 65
    for m in (gap, cls):
        assert all(b.attn.mask is not None for b in m.blocks)


def test_masks_sit_in_every_layer_with_their_own_parameters():
    m = gmmlib.create_model("vit", mask="gmm")
    alphas = [b.attn.mask.alpha for b in m.blocks]
    assert len(alphas) == 9 and len({a.data_ptr() for a in alphas}) == 9


@pytest.mark.parametrize("img_size, grid", [(32, (8, 8)), (64, (8, 8))])
def test_forward_shapes(img_size, grid):
    m = gmmlib.create_model("vit", num_classes=200, img_size=img_size, mask="gmm")
    assert m.grid == grid
    assert m(torch.randn(2, 3, img_size, img_size)).shape == (2, 200)


def test_non_square_grid_model():
    m = gmmlib.create_model("vit", img_size=32, patch_size=8, dim=32, depth=1, num_heads=2, mask="gmm")
    assert m(torch.randn(1, 3, 32, 32)).shape == (1, 10)


def test_elm_zero_init_means_uniform_attention_in_every_layer():
    m = gmmlib.create_model("vit", mask="elm", dim=32, depth=2, num_heads=2, head_dim=16).eval()
    captured = []
    for b in m.blocks:
        b.attn.register_forward_hook(lambda mod, args, out: captured.append(args[0]))
    m(torch.randn(2, 3, 32, 32))
    # with all-zero logits the attention output before proj is the mean of the values
    attn = m.blocks[0].attn
    x = captured[0]
    v = attn.qkv(x).reshape(2, 64, 3, 2, 16)[:, :, 2]
    expected = attn.proj(v.mean(dim=1, keepdim=True).expand(-1, 64, -1, -1).reshape(2, 64, 32))
    assert torch.allclose(attn(x), expected, atol=1e-5)


@pytest.mark.parametrize("mask", [None, "gmm"])
def test_overfits_one_small_batch_in_seconds(mask):
    torch.manual_seed(0)
    m = gmmlib.create_model("vit", mask=mask, dim=64, depth=2, num_heads=4, head_dim=16, drop_path=0.0)
    x, y = torch.randn(16, 3, 32, 32), torch.arange(16) % 10
    opt = torch.optim.AdamW(m.parameters(), lr=2e-3)
    for _ in range(60):
        loss = torch.nn.functional.cross_entropy(m(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05
    assert (m(x).argmax(1) == y).all()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(name="vit", img_size=33), "img_size 33 is not divisible by patch_size 4"),
        (dict(name="vit", img_size=32, patch_size=5), "img_size 32 is not divisible by patch_size 5"),
        (dict(name="resnet"), "unknown model 'resnet'; choices: .*vit"),
        (dict(name="vit", pool="token"), "supports pool in .*got 'token'"),
        (dict(name="vit", mask="gauss"), "unknown mask kind 'gauss'"),
        (dict(name="vit", mask="gmm", mask_options={"num_kernels": 0}), "num_kernels must be an int >= 1, got 0"),
        (dict(name="vit", mask_options={"num_kernels": 3}), "without a mask kind"),
    ],
)
def test_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gmmlib.create_model(**kwargs)


@pytest.mark.parametrize(
    "name, table_macs", [("vit", 170.91), ("swin", 236.94), ("cait", 305.90), ("pit", 239.08), ("t2t", 417.42)]
)
def test_macs_reproduce_the_official_table(name, table_macs):
    # README MACs (ptflops 0.7, 3x32x32, 10 classes), identical with and without GMM.
    base = profile(gmmlib.create_model(name))["macs"]
    assert round(base / 1e6, 2) == table_macs
    assert profile(gmmlib.create_model(name, mask="gmm"))["macs"] == base


def test_profile_counts_like_the_official_table():
    # CLS ViT (the current official baseline): 173.57M
    base = profile(gmmlib.create_model("vit"))
    gmm = profile(gmmlib.create_model("vit", mask="gmm"))
    assert round(profile(gmmlib.create_model("vit", pool="cls"))["macs"] / 1e6, 2) == 173.57
    assert gmm["params"] - base["params"] == 1080
    # total FLOPs include the attention products: 9 layers x 2 products x 64x64x192 MACs
    attn_flops = 9 * 2 * 2 * 64 * 64 * 192
    assert base["flops"] > 2 * 170_000_000 + attn_flops * 0.9
    assert gmm["flops"] > base["flops"]


def _timm_vit():
    torch.manual_seed(0)
    return timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, patch_size=4, num_classes=10).eval()


def test_apply_mask_on_timm_vit_keeps_weights_and_adds_2KH_per_layer():
    m = _timm_vit()
    x = torch.randn(2, 3, 32, 32)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    y0 = m(x)
    n0 = count_parameters(m)
    apply_mask(m, "gmm", init="identity")
    # weights untouched, state-dict keys kept
    for k, v in before.items():
        assert torch.equal(m.state_dict()[k], v)
    assert count_parameters(m) - n0 == 12 * 2 * 5 * 3
    assert all(isinstance(b.attn, TimmMaskedAttention) for b in m.blocks)
    # identity init: the mask is ~1 everywhere, so the model computes what it did
    assert torch.allclose(m(x), y0, atol=1e-3)
    # a trainable official init changes the function and trains
    apply_mask(m, "gmm")
    m.train()
    m(x).sum().backward()
    assert m.blocks[0].attn.mask.alpha.grad is not None


def test_apply_mask_with_a_mask_far_from_one_matches_the_manual_path():
    """A timm ViT with an ELM far from 1 gives the outputs and gradients of the same model run
    through the plain-autograd twin (``fused_attn = False``), mask gradients included."""
    torch.manual_seed(3)
    m = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, patch_size=4, num_classes=10, depth=2)
    apply_mask(m, "elm")
    with torch.no_grad():
        for b in m.blocks:
            b.attn.mask.weight.normal_(0.0, 2.0)  # signs flip, scales far from 1
    x = torch.randn(3, 3, 32, 32)
    runs = []
    for fused in (True, False):
        for b in m.blocks:
            b.attn.fused_attn = fused
        m.zero_grad()
        out = m(x)
        out.square().mean().backward()
        runs.append((out.detach(), {n: p.grad.clone() for n, p in m.named_parameters()}))
    (fused_out, fused_grads), (manual_out, manual_grads) = runs
    torch.testing.assert_close(fused_out, manual_out, atol=1e-5, rtol=1e-4)
    for n in fused_grads:
        torch.testing.assert_close(fused_grads[n], manual_grads[n], atol=1e-5, rtol=1e-3, msg=n)
    assert fused_grads["blocks.0.attn.mask.weight"].abs().sum() > 0


def test_apply_mask_on_gmmlib_vit_and_bad_models():
    m = gmmlib.create_model("vit", dim=32, depth=2, num_heads=2)
    apply_mask(m, "retnet")
    assert all(b.attn.mask.combine == "add" for b in m.blocks)
    with pytest.raises(ValueError, match="no patch grid on Linear"):
        apply_mask(torch.nn.Linear(3, 3), "gmm")
    with pytest.raises(ValueError, match="unknown mask kind"):
        apply_mask(_timm_vit(), "gauss")
