"""Swin, CaiT, PiT and T2T: parameter counts, mask placement, official quirks, shapes, errors."""

import math

import pytest
import torch

import gmmlib
from gmmlib.cost import count_parameters
from gmmlib.masks import ELM, AttentionMask, GaussianMixtureMask
from gmmlib.models.cait import TalkingHeadsAttention
from gmmlib.models.swin import WindowAttention, shift_window_mask, window_partition, window_reverse
from gmmlib.models.t2t import T2TBlock, sinusoid_table

FAMILIES = ["swin", "cait", "pit", "t2t"]

# Trainable parameters at num_classes=100, img 32. The official counts (paper-facts 4) are
# 7.11M, 5.08M, 7.01M, 6.51M. Ours are exact except T2T, where the official carries two dead
# parameters (an unused CLS token, 256, and an unused LayerNorm(576), 1,152).
OURS = {"swin": 7_107_838, "cait": 5_088_644, "pit": 7_007_236, "t2t": 6_507_802}
OFFICIAL = {"swin": 7.11e6, "cait": 5.08e6, "pit": 7.01e6, "t2t": 6.51e6}
GMM_EXTRA = {"swin": 900, "cait": 960, "pit": 600, "t2t": 490}
# Swin: the official cannot build ELM; ours puts one 16 x 16 matrix (4 x 4 window) in each of the 12 blocks.
ELM_EXTRA = {"swin": 12 * 16**2, "cait": 98_304, "pit": 156_672, "t2t": 114_688}

# Narrow versions with the same token grids, windows and splits, for fast forward tests.
SMALL = {
    "swin": dict(dim=24, depth=(2, 2, 2), drop_path=0.0),
    "cait": dict(dim=32, depth=2, cls_depth=1, head_dim=8, mlp_dim=32, drop_path=0.0),
    "pit": dict(dim=16, depth=(1, 1, 1), head_dim=8, drop_path=0.0),
    "t2t": dict(token_dim=16, dim=32, depth=2, drop_path=0.0),
}


def masks_of(model):
    return [m for m in model.modules() if isinstance(m, AttentionMask)]


@pytest.mark.parametrize("name", FAMILIES)
def test_parameter_counts_match_official(name):
    base = count_parameters(gmmlib.create_model(name, num_classes=100))
    assert base == OURS[name]
    assert abs(base - OFFICIAL[name]) / OFFICIAL[name] < 0.01
    gmm = count_parameters(gmmlib.create_model(name, num_classes=100, mask="gmm"))
    assert gmm - base == GMM_EXTRA[name]
    elm = count_parameters(gmmlib.create_model(name, num_classes=100, mask="elm"))
    assert elm - base == ELM_EXTRA[name]


def test_t2t_tiny_imagenet_gmm_params():
    # Two token transformers (1 head each) + 12 blocks x 4 heads, K=5: 500 (paper-facts 2.2).
    base = count_parameters(gmmlib.create_model("t2t", num_classes=200, img_size=64, **SMALL["t2t"]))
    gmm = count_parameters(gmmlib.create_model("t2t", num_classes=200, img_size=64, mask="gmm", **SMALL["t2t"]))
    assert gmm - base == 2 * 5 * (1 + 1) + 2 * 2 * 5 * 4


@pytest.mark.parametrize("img_size, num_classes", [(32, 10), (64, 200)])
@pytest.mark.parametrize("mask", [None, "gmm", "elm", "retnet", "relpos"])
@pytest.mark.parametrize("name", FAMILIES)
def test_forward_shapes(name, mask, img_size, num_classes):
    m = gmmlib.create_model(name, num_classes=num_classes, img_size=img_size, mask=mask, **SMALL[name])
    y = m(torch.randn(2, 3, img_size, img_size))
    assert y.shape == (2, num_classes) and torch.isfinite(y).all()


@pytest.mark.parametrize("name", FAMILIES)
def test_full_size_forward_at_64px(name):
    m = gmmlib.create_model(name, num_classes=200, img_size=64, mask="gmm").eval()
    with torch.no_grad():
        assert m(torch.randn(1, 3, 64, 64)).shape == (1, 200)


@pytest.mark.parametrize("name", FAMILIES)
def test_backward_reaches_alpha_and_sigma(name):
    m = gmmlib.create_model(name, mask="gmm", **SMALL[name])
    m(torch.randn(2, 3, 32, 32)).logsumexp(-1).sum().backward()
    gmms = [g for g in masks_of(m) if isinstance(g, GaussianMixtureMask)]
    assert gmms
    reached = []
    for g in gmms:
        for p in (g.alpha, g.sigma):
            assert p.grad is not None and torch.isfinite(p.grad).all()
        reached.append(bool(g.alpha.grad.abs().sum() > 0 and g.sigma.grad.abs().sum() > 0))
    # PiT's head reads the CLS token, which the mask leaves alone: the patch-patch mask of
    # the very last block cannot change the output (also true of the official model).
    assert reached == [True] * (len(gmms) - 1) + [name != "pit"]


# ---------------------------------------------------------------- Swin


def test_swin_masks_live_on_window_grids_in_every_block():
    m = gmmlib.create_model("swin", mask="gmm")
    blocks = [b for b in m.layers if hasattr(b, "attn")]
    assert len(blocks) == 12
    assert all(b.attn.mask.grid == (4, 4) and b.attn.mask.num_heads == b.attn.num_heads for b in blocks)
    # Shifted windows in every second block of stages 1-2; stage 3 (4 x 4 grid = one window) has no shift.
    assert [b.shift for b in blocks] == [0, 2] + [0, 2] * 3 + [0] * 4
    assert [b.attn.mask.num_heads for b in blocks] == [3] * 2 + [6] * 6 + [12] * 4


def test_swin_relative_bias_is_architecture_not_a_mask():
    m = gmmlib.create_model("swin", **SMALL["swin"])
    assert masks_of(m) == []
    attn = next(b.attn for b in m.layers if hasattr(b, "attn"))
    assert attn.rel_bias_table.shape == (49, 3) and attn.rel_bias().shape == (3, 16, 16)
    # Same offset, same bias: token 0 -> 5 and token 10 -> 15 are both one step down-right.
    assert torch.equal(attn.rel_bias()[:, 0, 5], attn.rel_bias()[:, 10, 15])


def test_swin_window_shrinks_to_small_stages():
    m = gmmlib.create_model("swin", window=8, dim=24, mask="gmm")
    blocks = [b for b in m.layers if hasattr(b, "attn")]
    assert [(b.side, b.window, b.shift) for b in blocks[:4]] == [(16, 8, 0), (16, 8, 4), (8, 8, 0), (8, 8, 0)]
    assert blocks[-1].window == 4 and blocks[-1].attn.mask.grid == (4, 4)
    assert m(torch.randn(1, 3, 32, 32)).shape == (1, 10)


def test_swin_elm_is_one_window_matrix_per_block():
    m = gmmlib.create_model("swin", mask="elm", **SMALL["swin"])
    elms = [e for e in masks_of(m) if isinstance(e, ELM)]
    assert len(elms) == 6 and all(e.weight.shape == (1, 16, 16) for e in elms)


def test_swin_window_partition_round_trip():
    x = torch.randn(2, 8, 8, 5)
    w = window_partition(x, 4)
    assert w.shape == (2 * 4, 16, 5)
    assert torch.equal(w[1].reshape(4, 4, 5), x[0, :4, 4:])  # second window: top-right
    assert torch.equal(window_reverse(w, 4, 8, 8), x)


def test_swin_shift_mask_separates_regions():
    mask = shift_window_mask(8, 4, 2)  # 4 windows
    assert mask.shape == (4, 16, 16)
    assert torch.equal(mask, mask.transpose(1, 2)) and (mask.diagonal(dim1=1, dim2=2) == 0).all()
    assert (mask[0] == 0).all()  # top-left window holds one region only
    assert (mask[3] == -100).any() and set(mask.unique().tolist()) == {-100.0, 0.0}


def test_swin_mask_multiplies_logits_before_bias_and_shift():
    torch.manual_seed(0)
    heads, n = 3, 16
    gmm = gmmlib.masks.create("gmm", grid=(4, 4), num_heads=heads)
    attn = WindowAttention(12, 4, heads, mask=gmm)
    shift = shift_window_mask(8, 4, 2)
    x = torch.randn(2 * 4, n, 12)
    q, k, v = attn.qkv(x).reshape(8, n, 3, heads, 4).permute(2, 0, 3, 1, 4)
    logits = gmm()[None] * ((q * attn.scale) @ k.transpose(-2, -1))
    logits = logits + attn.rel_bias()[None] + shift.repeat(2, 1, 1)[:, None]
    ref = attn.proj((logits.softmax(-1) @ v).transpose(1, 2).reshape(8, n, 12))
    torch.testing.assert_close(attn(x, shift), ref, rtol=1e-4, atol=1e-5)


def test_swin_drop_path_rises_linearly():
    m = gmmlib.create_model("swin")
    rates = [getattr(b.drop_path, "drop_prob", 0.0) for b in m.layers if hasattr(b, "attn")]
    assert rates == pytest.approx(torch.linspace(0, 0.1, 12).tolist())


# ---------------------------------------------------------------- CaiT


def test_cait_masks_only_patch_layers():
    m = gmmlib.create_model("cait", mask="gmm")
    assert len(m.blocks) == 24 and len(m.cls_blocks) == 2
    assert all(b.attn.mask.grid == (8, 8) and b.attn.mask.num_heads == 4 for b in m.blocks)
    assert all(b.attn.mask is None for b in m.cls_blocks)


def test_cait_mask_applies_before_talking_heads_mixing():
    torch.manual_seed(0)
    heads, hd, n = 3, 4, 9
    gmm = gmmlib.masks.create("gmm", grid=(3, 3), num_heads=heads)
    attn = TalkingHeadsAttention(10, heads, hd, mask=gmm)
    x = torch.randn(2, n, 10)
    q = attn.q(x).reshape(2, n, heads, hd)
    k, v = attn.kv(x).reshape(2, n, 2, heads, hd).unbind(2)
    m, w_pre, w_post = gmm(), attn.mix_pre, attn.mix_post
    s = [m[h] * (q[:, :, h] @ k[:, :, h].transpose(1, 2)) * hd**-0.5 for h in range(heads)]
    a = [sum(s[h] * w_pre[h, g] for h in range(heads)).softmax(-1) for g in range(heads)]
    out = [sum(a[h] * w_post[h, g] for h in range(heads)) @ v[:, :, g] for g in range(heads)]
    ref = attn.proj(torch.cat(out, dim=-1))
    torch.testing.assert_close(attn(x), ref, rtol=1e-4, atol=1e-5)


def test_cait_layer_scale_and_constant_drop_path():
    m = gmmlib.create_model("cait")
    inits = [b.gamma1[0].item() for b in m.blocks]
    assert inits == pytest.approx([0.1] * 18 + [1e-5] * 6)
    assert all(b.gamma2[0].item() == pytest.approx(0.1) for b in m.cls_blocks)
    assert {b.drop_path.drop_prob for b in [*m.blocks, *m.cls_blocks]} == {0.1}


# ---------------------------------------------------------------- PiT


def test_pit_masks_per_stage_grid_with_official_truncation():
    m = gmmlib.create_model("pit", mask="gmm")
    found = [(g.grid, g.num_heads, g.truncate_like_official) for g in masks_of(m)]
    assert found == [((16, 16), 2, True)] * 2 + [((8, 8), 4, False)] * 6 + [((4, 4), 8, False)] * 4
    off = gmmlib.create_model("pit", mask="gmm", mask_options={"truncate_like_official": False})
    assert not any(g.truncate_like_official for g in masks_of(off))


def test_pit_pools_and_constant_drop_path():
    cls = gmmlib.create_model("pit")
    assert cls.cls_token is not None and cls.pos_embed.shape == (1, 257, 96)
    assert {b.drop_path.drop_prob for s in cls.stages for b in s} == {0.1}
    gap = gmmlib.create_model("pit", pool="gap", mask="gmm", **SMALL["pit"])
    assert gap.cls_token is None and gap(torch.randn(1, 3, 32, 32)).shape == (1, 10)


# ---------------------------------------------------------------- T2T


@pytest.mark.parametrize("img_size, grids", [(32, [(16, 16)]), (64, [(32, 32), (16, 16)])])
def test_t2t_masks_in_token_transformers_and_blocks(img_size, grids):
    m = gmmlib.create_model("t2t", img_size=img_size, mask="gmm", **SMALL["t2t"])
    assert m.grids == grids and m.grid == (8, 8)
    tt = [t.attn.mask for t in m.token_transformers]
    assert [(g.grid, g.num_heads, g.truncate_like_official) for g in tt] == [(g, 1, True) for g in grids]
    assert all(b.attn.mask.grid == (8, 8) and b.attn.mask.num_heads == 4 for b in m.blocks)


def test_t2t_official_quirks():
    m = gmmlib.create_model("t2t", img_size=64)
    # Token-transformer scale uses the input width (27, then 576), not the head width 64.
    assert [t.attn.scale for t in m.token_transformers] == pytest.approx([27**-0.5, 576**-0.5])
    assert m.blocks[0].attn.scale == pytest.approx(64**-0.5)
    # Internal residual: with attention and MLP outputs zeroed, a block returns x + norm1(x).
    block = T2TBlock(8, 2).eval()
    for lin in (block.attn.proj, block.mlp.fc2):
        torch.nn.init.zeros_(lin.weight)
        torch.nn.init.zeros_(lin.bias)
    x = torch.randn(2, 5, 8)
    torch.testing.assert_close(block(x), x + block.norm1(x))
    rates = [getattr(b.drop_path, "drop_prob", 0.0) for b in m.blocks]
    assert rates == pytest.approx(torch.linspace(0, 0.1, 12).tolist())


def test_t2t_sinusoid_table():
    t = sinusoid_table(5, 6)
    assert t.shape == (1, 5, 6)
    assert t[0, 3, 2].item() == pytest.approx(math.sin(3 / 10000 ** (2 / 6)))
    assert t[0, 3, 3].item() == pytest.approx(math.cos(3 / 10000 ** (2 / 6)))
    assert not any(p is t for p in gmmlib.create_model("t2t").parameters())


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "name, options",
    [
        ("swin", dict(patch_size=3)),
        ("cait", dict(patch_size=5)),
        ("pit", dict(patch_size=3)),
        ("t2t", dict(img_size=30)),  # two soft splits: a 4-px "patch"
    ],
)
def test_patch_that_does_not_tile_the_image_is_an_error(name, options):
    options = {"img_size": 32, **options}
    with pytest.raises(ValueError, match=r"img_size \d+ is not divisible by patch_size \d+"):
        gmmlib.create_model(name, **options)


@pytest.mark.parametrize("name", ["pit", "swin"])
def test_stages_that_do_not_fit_the_grid_are_an_error(name):
    # one depth per stage and one head count per stage; the grid halves once per later stage
    with pytest.raises(ValueError, match=r"depth \(1, 1\) and num_heads \(1, 2, 4\) must have one entry per stage"):
        gmmlib.create_model(name, depth=(1, 1), num_heads=(1, 2, 4))
    with pytest.raises(ValueError, match="the 6 x 6 token grid cannot be halved 2 times"):
        gmmlib.create_model(name, img_size=24, patch_size=4, depth=(1, 1, 1), num_heads=(1, 2, 4))


@pytest.mark.parametrize("name, pool", [("swin", "cls"), ("cait", "gap"), ("t2t", "cls"), ("pit", "mean")])
def test_unsupported_pool_is_an_error(name, pool):
    with pytest.raises(ValueError, match="pool"):
        gmmlib.create_model(name, pool=pool)


@pytest.mark.parametrize("name", ["pit", "t2t"])
def test_a_run_config_builds_the_same_masks_as_create_model(name):
    """Training builds models through RunConfig: the default GMM there must be the family's own
    (truncated like the official code on grids of 9 x 9 and more), not the mask class's bare default."""
    from gmmlib.training.config import RunConfig

    built = RunConfig(model=name, mask="gmm", preset="paper").build_model()
    direct = gmmlib.create_model(name, mask="gmm")
    assert [(g.grid, g.truncate_like_official) for g in masks_of(built)] == [
        (g.grid, g.truncate_like_official) for g in masks_of(direct)
    ]
    assert any(g.truncate_like_official for g in masks_of(built))
