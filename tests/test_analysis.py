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


def test_a_learned_elm_is_packed_exactly_to_6_decimals_and_small_parameters_stay_lists():
    import json

    from gmmlib.training.record import recorded_mask_parameters

    record, model, _ = _record("vit", "elm", shift=0.123456789)
    packed = record["mask_parameters"]
    for name, params in packed.items():
        assert params["kind"] == "ELM" and set(params["weight"]) == {"shape", "packing", "millionths"}
        weight = recorded_mask_parameters(record)[name]["weight"]
        exact = model.get_submodule(name).weight.detach().double().round(decimals=6)
        assert torch.equal(weight, exact), "packing keeps every number's 6 decimals exactly"
    # the writer's lists, as every record before packing holds them, read the same
    as_lists = {n: {"weight": t["weight"].tolist(), "kind": "ELM"} for n, t in recorded_mask_parameters(record).items()}
    from_lists = recorded_mask_parameters({"mask_parameters": as_lists})
    assert all(torch.equal(from_lists[n]["weight"], recorded_mask_parameters(record)[n]["weight"]) for n in packed)
    assert len(json.dumps(packed)) < len(json.dumps(as_lists)) / 2
    gmm, _, _ = _record("vit", "gmm")
    assert all(isinstance(p["alpha"], list) and isinstance(p["sigma"], list) for p in gmm["mask_parameters"].values())


def test_packed_parameters_migrate_unchanged_and_an_unknown_packing_is_named():
    from gmmlib.training.record import pack_mask_parameters, recorded_mask_parameters

    record, _, _ = _record("vit", "elm")
    lists = {n: {"weight": t["weight"].tolist(), "kind": "ELM"} for n, t in recorded_mask_parameters(record).items()}
    migrated = pack_mask_parameters(lists)
    assert migrated == record["mask_parameters"] and pack_mask_parameters(migrated) == migrated
    # what int32 millionths cannot hold exactly stays a list: a value past 2,147 or one that is not finite
    for odd in (3000.0, float("nan")):
        weight = [[odd] + [0.5] * 300]
        assert pack_mask_parameters({"m": {"weight": weight}})["m"]["weight"] is weight
    name = next(iter(migrated))
    migrated[name]["weight"]["packing"] = "float16"
    with pytest.raises(ValueError, match="packed as 'float16'; expected 'int32 millionths"):
        recorded_mask_parameters({"mask_parameters": migrated})


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


def test_head_changes_and_curves_per_head():
    from gmmlib.analysis.learned_masks import head_changes, head_curves, mask_changes

    record, model, _ = _record("vit", "gmm", shift=0.5)
    rows = head_changes(record)
    heads = model.blocks[0].attn.mask.alpha.shape[1]
    assert [(r["layer"], r["head"]) for r in rows] == [(f"blocks.{i}", h) for i in range(2) for h in range(heads)]
    for r in rows:
        trained = model.get_submodule(f"{r['layer']}.attn.mask")
        assert r["|alpha change|"] == pytest.approx(0.5, abs=1e-5) and r["|sigma change|"] == pytest.approx(
            0.5, abs=1e-5
        )
        torch.testing.assert_close(torch.tensor(r["alpha, step 0"]), trained.alpha[:, r["head"]].detach() - 0.5)
        curve = trained.distance_curve().detach()[r["head"]]
        assert r["M(0), trained"] == pytest.approx(curve[0].item(), abs=1e-4)
        assert r["locality, trained"] == pytest.approx((curve[0].abs() - curve[-1].abs()).item(), abs=1e-4)
    # the per-layer table is the heads' mean
    assert mask_changes(record)[0]["heads with M(0) < 0, trained"] == sum(
        r["M(0), trained"] < 0 for r in rows if r["layer"] == "blocks.0"
    )
    curves = head_curves(record)
    assert len(curves) == len(rows) and curves[0]["distance"][0] == 0.0
    mask = model.blocks[1].attn.mask
    assert curves[-1]["distance"] == pytest.approx(mask.sq_dist_values.sqrt().tolist())
    assert curves[-1]["trained"] == pytest.approx(mask.distance_curve()[-1].tolist(), abs=1e-4)


def test_own_patch_weight_and_head_locality():
    from gmmlib.analysis.attention_maps import head_locality, own_patch_weight

    grid = (4, 4)
    assert torch.equal(own_patch_weight(torch.eye(16).expand(2, 3, 16, 16), grid), torch.ones(3))
    uniform = torch.full((1, 2, 17, 17), 1 / 17)  # CLS first, left out
    torch.testing.assert_close(own_patch_weight(uniform, grid), torch.full((2,), 1 / 16))
    torch.manual_seed(0)
    model = gmmlib.create_model("vit", mask="gmm", **SMALL["vit"])
    x = torch.randn(2, 3, 32, 32)
    rows = head_locality(model, x, (8, 8))
    maps = attention_maps(model, x)
    assert len(rows) == sum(p.shape[1] for p in maps.values())
    first = mean_attention_distance(maps["blocks.0.attn"], (8, 8))
    assert [r["distance"] for r in rows if r["layer"] == 0] == pytest.approx(first.tolist())
    assert {r["name"] for r in rows} == set(maps)


def test_query_attention_is_one_row_per_head_on_the_grid():
    from gmmlib.analysis.attention_maps import query_attention

    torch.manual_seed(0)
    model = gmmlib.create_model("vit", pool="cls", **SMALL["vit"])
    images = torch.randn(2, 3, 32, 32)
    full = attention_maps(model, images)["blocks.0.attn"][:, :, 1:, 1:]  # CLS token dropped
    row = full[:, :, 3 * 8 + 4] / full[:, :, 3 * 8 + 4].sum(-1, keepdim=True)
    rows = query_attention(model, images, (3, 4), (8, 8))
    torch.testing.assert_close(rows["blocks.0.attn"], row.mean(0).reshape(-1, 8, 8))  # the mean over images
    one = query_attention(model, images[0], (3, 4), (8, 8))
    torch.testing.assert_close(one["blocks.0.attn"], row[0].reshape(-1, 8, 8))
    with pytest.raises(ValueError, match="outside the 8 x 8 grid"):
        query_attention(model, images, (8, 0), (8, 8))


def test_load_test_images_are_normalised_like_the_run():
    from gmmlib.analysis.attention_maps import load_test_images
    from gmmlib.data import get_info

    images, labels, raw = load_test_images("synthetic", 8, {"config": {"dataset": "cifar10"}})
    info = get_info("cifar10")
    assert images.shape == (8, 3, 32, 32) and labels.shape == (8,) and raw.shape == (8, 32, 32, 3)
    pixel = raw[0, 0, 0, 0] / 255.0
    assert images[0, 0, 0, 0].item() == pytest.approx((pixel - info.mean[0]) / info.std[0], abs=1e-5)


def test_mask_gradients_show_that_a_wide_sigma_cannot_move():
    """At the identity start (sigma = 1000) the loss barely depends on sigma: |dM/dsigma| <= |alpha| d^2 / sigma^3."""
    from gmmlib.analysis.learned_masks import mask_gradients

    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    ratios = {}
    for init in ("identity", "local"):
        torch.manual_seed(0)
        model = gmmlib.create_model("vit", mask="gmm", mask_options={"init": init}, **SMALL["vit"]).train()
        rows = mask_gradients(model, x, y)
        assert model.training and all(p.grad is None for p in model.parameters())  # mode and .grad left alone
        assert [r["layer"] for r in rows] == ["blocks.0", "blocks.1"]
        ratios[init] = max(r["mean |dL/dsigma|"] / r["mean |dL/dalpha|"] for r in rows)
    assert ratios["identity"] < 1e-6 < 1e-3 < ratios["local"]
    assert rows[0]["mean sigma"] == pytest.approx(model.blocks[0].attn.mask.sigma.mean().item())
    with pytest.raises(ValueError, match="has no GMM mask"):
        mask_gradients(gmmlib.create_model("vit", **SMALL["vit"]), x, y)


def test_elm_structure_finds_distance_rows_and_the_diagonal():
    from gmmlib.analysis.learned_masks import elm_structure, explained_share

    grid = (4, 4)
    d = gmmlib.masks.pairwise_distance(grid, "euclidean")
    by_distance = elm_structure(torch.exp(-d), grid, shuffles=50)
    assert by_distance["distance"] == pytest.approx(1.0)
    assert by_distance["distance, shuffled (95%)"] < 0.5
    assert (
        by_distance["diagonal mean"] == pytest.approx(1.0)
        and by_distance["diagonal mean"] > by_distance["off-diagonal mean"]
    )
    by_row = elm_structure(torch.arange(16.0)[:, None].expand(16, 16), grid, shuffles=10)
    assert by_row["query (row)"] == pytest.approx(1.0) and by_row["key (column)"] == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match=r"\(16, 16\)"):
        elm_structure(torch.zeros(8, 8), grid)
    with pytest.raises(ValueError, match="same shape"):
        explained_share(torch.zeros(4), torch.zeros(5, dtype=torch.long))
