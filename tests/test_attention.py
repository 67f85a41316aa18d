"""masked_attention: every path agrees with the closed form and with each other."""

import pytest
import torch
import torch.nn.functional as F

import gmmlib
from gmmlib.attention import MaskedAttention, masked_attention
from gmmlib.masks import create


def reference(q, k, v, mask, combine, prefix):
    """The definition, written out: full (H, T, T) mask with the prefix left alone."""
    t = q.shape[2]
    s = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5
    full = torch.ones(mask.shape[0], t, t) if combine == "multiply" else torch.zeros(mask.shape[0], t, t)
    full[:, prefix:, prefix:] = mask
    s = s * full if combine == "multiply" else s + full
    return s.softmax(-1) @ v


@pytest.fixture
def qkv():
    torch.manual_seed(0)
    return torch.randn(3, 2, 4, 17, 8).unbind(0)  # B=2, H=4, T=17 = 1 prefix + 4x4 grid


@pytest.mark.parametrize("kind", ["gmm", "elm", "retnet", "alibi2d", "relpos"])
@pytest.mark.parametrize("backend", ["auto", "fused", "manual", "flex"])
def test_paths_agree_with_reference(qkv, kind, backend):
    q, k, v = qkv
    torch.manual_seed(1)
    m = create(kind, grid=(4, 4), num_heads=4)
    if kind == "elm":
        torch.nn.init.normal_(m.weight)
    mask = m().detach()
    out = masked_attention(q, k, v, mask, m.combine, backend=backend)
    assert torch.allclose(out, reference(q, k, v, mask, m.combine, prefix=1), atol=1e-5)


def test_add_mask_fused_and_manual_agree_with_gradients(qkv):
    q, k, v = (t.clone().requires_grad_() for t in qkv)
    m = create("relpos", grid=(4, 4), num_heads=4)
    grads = []
    for backend in ("fused", "manual"):
        out = masked_attention(q, k, v, m(), "add", backend=backend)
        grads.append(torch.autograd.grad(out.square().sum(), (q, k, v, m.table)))
    for a, b in zip(*grads):
        assert torch.allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("combine", ["multiply", "add"])
@pytest.mark.parametrize("heads_in_mask", [4, 1])
@pytest.mark.parametrize("chunk", [1, 2])
def test_cache_blocked_backward_matches_autograd_twin(combine, heads_in_mask, chunk, monkeypatch):
    """The cache-blocked kernel (multiplicative masks; additive ones on CPU) against plain autograd."""
    import gmmlib.attention

    monkeypatch.setattr(gmmlib.attention, "_chunk_size", lambda q: chunk)  # 1: two chunks of the batch
    torch.manual_seed(0)
    q, k, v = (t.double().requires_grad_() for t in torch.randn(3, 2, 4, 17, 8).unbind(0))
    # non-contiguous q, k, v as they come out of a qkv projection
    q, k, v = (t.transpose(1, 2).contiguous().transpose(1, 2) for t in (q, k, v))
    mask = torch.randn(heads_in_mask, 16, 16, dtype=torch.double, requires_grad=True)
    grad = torch.randn(2, 4, 17, 8, dtype=torch.double)
    results = []
    for backend in ("fused", "manual"):
        out = masked_attention(q, k, v, mask, combine, backend=backend)
        results.append((out, *torch.autograd.grad(out, (q, k, v, mask), grad)))
    for a, b in zip(*results):
        assert torch.allclose(a, b, atol=1e-10)
    assert torch.autograd.gradcheck(
        lambda q, k, v, m: masked_attention(q, k, v, m, combine, backend="fused"),
        (
            q.detach()[:1, :2].requires_grad_(),
            k.detach()[:1, :2].requires_grad_(),
            v.detach()[:1, :2].requires_grad_(),
            torch.randn(2, 16, 16, dtype=torch.double, requires_grad=True),
        ),
    )


def test_an_additive_mask_takes_the_cache_blocked_kernel_on_cpu_and_sdpa_with_a_bias(qkv, monkeypatch):
    import gmmlib.attention as attention

    calls = []
    real = attention.F.scaled_dot_product_attention
    monkeypatch.setattr(attention.F, "scaled_dot_product_attention", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    q, k, v = qkv
    mask = create("retnet", grid=(4, 4), num_heads=4)()
    masked_attention(q, k, v, mask, "add")
    assert not calls, "on CPU an additive mask alone takes the cache-blocked kernel"
    masked_attention(q, k, v, mask, "add", attn_bias=torch.zeros(17, 17))
    assert calls == [1], "with Swin's attn_bias it takes SDPA"
    # a GPU, simulated by tensors without storage: SDPA's fused kernels, as on CUDA and MPS
    gpu = [t.to("meta") for t in (q, k, v)]
    assert masked_attention(*gpu, mask.to("meta"), "add").shape == q.shape and calls == [1, 1]


def test_no_mask_is_plain_sdpa(qkv):
    q, k, v = qkv
    assert torch.allclose(masked_attention(q, k, v), F.scaled_dot_product_attention(q, k, v), atol=1e-6)
    assert torch.allclose(
        masked_attention(q, k, v, backend="manual"), F.scaled_dot_product_attention(q, k, v), atol=1e-6
    )


def test_zero_multiplicative_mask_means_uniform_attention():
    torch.manual_seed(0)
    q, k, v = torch.randn(3, 1, 2, 16, 8).unbind(0)
    out = masked_attention(q, k, v, create("elm", grid=(4, 4), num_heads=2)(), "multiply")
    assert torch.allclose(out, v.mean(dim=2, keepdim=True).expand_as(v), atol=1e-6)


def test_attn_bias_is_added_after_the_multiplicative_mask(qkv):
    q, k, v = qkv
    m = create("gmm", grid=(4, 4), num_heads=4)().detach()
    bias = torch.randn(4, 17, 17)
    s = (q @ k.transpose(-2, -1)) / 8**0.5
    full = torch.ones(4, 17, 17)
    full[:, 1:, 1:] = m
    expected = (s * full + bias).softmax(-1) @ v
    assert torch.allclose(masked_attention(q, k, v, m, "multiply", attn_bias=bias), expected, atol=1e-5)


def test_a_mask_module_brings_its_own_combine(qkv):
    q, k, v = qkv
    m = create("alibi2d", grid=(4, 4), num_heads=4)
    assert torch.equal(masked_attention(q, k, v, m), masked_attention(q, k, v, m(), "add"))
    with pytest.raises(ValueError, match="combine 'multiply' contradicts the mask module's 'add'"):
        masked_attention(q, k, v, m, "multiply")


def test_gradients_reach_alpha_and_sigma():
    m = create("gmm", grid=(4, 4), num_heads=2)
    attn = MaskedAttention(16, num_heads=2, mask=m)
    attn(torch.randn(3, 16, 16)).square().sum().backward()
    assert m.alpha.grad.abs().sum() > 0 and m.sigma.grad.abs().sum() > 0


def test_module_fused_flag_switches_to_manual_twin():
    torch.manual_seed(0)
    x = torch.randn(2, 17, 32)
    attn = MaskedAttention(32, num_heads=4, mask=create("alibi2d", grid=(4, 4), num_heads=4))
    fused = attn(x)
    attn.fused_attn = False
    assert torch.allclose(fused, attn(x), atol=1e-5)


def test_bad_input(qkv):
    q, k, v = qkv
    with pytest.raises(ValueError, match="combine must be 'multiply' or 'add', got 'mul'"):
        masked_attention(q, k, v, torch.ones(4, 16, 16), "mul")
    with pytest.raises(ValueError, match="covers 25 tokens but the sequence has only 17"):
        masked_attention(q, k, v, torch.ones(4, 25, 25))
    with pytest.raises(ValueError, match=r"mask must be \(4, N, N\) or \(1, N, N\), got \(3, 16, 16\)"):
        masked_attention(q, k, v, torch.ones(3, 16, 16))
    with pytest.raises(ValueError, match="backend 'fused' takes no attn_bias with a multiplicative mask"):
        masked_attention(q, k, v, torch.ones(4, 16, 16), "multiply", attn_bias=torch.zeros(17, 17), backend="fused")
    with pytest.raises(ValueError, match="mask has 2 heads, attention has 4"):
        MaskedAttention(16, num_heads=4, mask=create("gmm", grid=(2, 2), num_heads=2))


@pytest.mark.slow
@pytest.mark.parametrize("pool", ["gap", "cls"])
def test_compiled_gmm_vit_trains_like_eager(pool):
    """torch.compile of GMM-ViT traces in one graph (the multiply mask leaves the hand-written
    autograd function for ops inductor fuses) and gives eager's outputs and gradients."""
    torch.manual_seed(0)
    model = gmmlib.create_model("vit", mask="gmm", pool=pool, dim=32, depth=2, num_heads=2, head_dim=16, drop_path=0.0)
    x = torch.randn(64, 3, 32, 32)
    eager = model(x)
    eager.square().mean().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    compiled = torch.compile(model, fullgraph=True)(x)
    compiled.square().mean().backward()
    torch.testing.assert_close(compiled, eager, atol=1e-5, rtol=1e-5)
    for n, p in model.named_parameters():
        torch.testing.assert_close(p.grad, grads[n], atol=1e-5, rtol=1e-4, msg=n)
    assert any("mask" in n and p.grad.abs().sum() > 0 for n, p in model.named_parameters())
