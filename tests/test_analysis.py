"""Attention maps recorded from every model family, and the locality statistics built on them."""

import pytest
import timm
import torch

import gmmlib
from gmmlib.analysis.attention_maps import attention_maps, mean_attention_distance
from gmmlib.attention import MaskedAttention, masked_attention
from gmmlib.training.config import PRESETS

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


# --- masks rebuilt from a run record ----------------------------------------------------------


def _record(family: str, mask: str, seed: int = 3, shift: float = 0.25) -> tuple:
    """A run record as train() writes it (config and mask_parameters), its masks moved by ``shift``."""
    from gmmlib.training.config import RunConfig
    from gmmlib.training.loop import seed_everything
    from gmmlib.training.record import mask_parameters

    config = RunConfig(model=family, mask=mask, dataset="synthetic", preset="quick", seed=seed)
    seed_everything(seed)
    model = config.build_model()
    start = {k: v.clone() for k, v in model.state_dict().items() if ".mask." in k or k.startswith("mask.")}
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, gmmlib.masks.AttentionMask):
                for p in m.parameters():
                    p.add_(shift)
    return {"name": config.name(), "config": config.resolved(), "mask_parameters": mask_parameters(model)}, model, start


def test_layer_masks_rebuild_every_layer_on_its_own_grid():
    from gmmlib.analysis.learned_masks import layer_masks
    from gmmlib.masks import AttentionMask

    record, model, _ = _record("pit", "gmm")
    mine = {n: m for n, m in model.named_modules() if isinstance(m, AttentionMask)}
    state = torch.random.get_rng_state()
    trained = layer_masks(record)
    assert torch.equal(torch.random.get_rng_state(), state), "the caller's random state is left alone"
    assert list(trained) == list(mine)
    assert len({m.grid for m in trained.values()}) > 1  # PiT's stages have different grids, none hard-coded
    for name, m in trained.items():
        assert m.grid == mine[name].grid
        torch.testing.assert_close(m(), mine[name](), atol=1e-5, rtol=0)  # parameters kept to 6 decimals


def test_layer_masks_at_step_0_are_the_runs_own_initialisation():
    from gmmlib.analysis.learned_masks import layer_masks

    record, model, _ = _record("vit", "gmm", shift=0.0)
    fresh = layer_masks(record, initial=True)
    for name, m in fresh.items():
        torch.testing.assert_close(m.alpha, model.get_submodule(name).alpha)
        torch.testing.assert_close(m.sigma, model.get_submodule(name).sigma)


def test_layer_masks_refuse_a_record_of_another_model():
    from gmmlib.analysis.learned_masks import layer_masks

    record, _, _ = _record("vit", "gmm")
    record["mask_parameters"] = {"blocks.9.attn.mask": {}}
    with pytest.raises(ValueError, match="recorded masks"):
        layer_masks(record)


def test_mask_changes_measure_how_far_training_moved_each_layer():
    from gmmlib.analysis.learned_masks import mask_changes

    record, model, _ = _record("vit", "gmm", shift=0.5)
    rows = mask_changes(record)
    assert [r["layer"] for r in rows] == ["blocks.0", "blocks.1"]
    for r in rows:
        assert r["mean |alpha change|"] == pytest.approx(0.5, abs=1e-5)
        assert r["mean |sigma change|"] == pytest.approx(0.5, abs=1e-5)
        assert 0 <= r["heads with M(0) < 0, start"] <= 2 and 0 <= r["heads with M(0) < 0, trained"] <= 2
    assert mask_changes(_record("vit", "elm")[0]) == []  # an ELM has no alpha or sigma


def test_curve_statistics():
    from gmmlib.analysis.learned_masks import curve_statistics

    profile = torch.tensor([[2.0, 1.0, 0.5], [-1.0, -0.5, 0.0]])  # one local head, one negative head
    stats = curve_statistics(profile)
    assert stats == {"heads with M(0) < 0": 1, "mean |M(0)|": 1.5, "mean |M(0)| - |M(far)|": 1.25}
