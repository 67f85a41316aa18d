"""Masked multi-head attention: the functional core and the module the models use.

Two ways to put a mask ``M`` (shape (H, N, N), over the patch tokens) into attention:

* ``combine="multiply"``: ``softmax(M * (Q K^T) * scale) V``. This is the official
  ELM/GMM placement. SDPA's fused kernels cannot express it (their mask is
  additive), so it runs a hand-written autograd function (or FlexAttention when
  asked for), with a plain-autograd manual twin.
* ``combine="add"``: ``softmax((Q K^T) * scale + M) V``, which goes through
  ``scaled_dot_product_attention`` and its fused kernels on CUDA, and on CPU through the same
  hand-written function, which is faster there than SDPA with a bias.

When the sequence is longer than the mask (T = N + P prefix tokens such as CLS),
the mask covers the last N tokens; prefix rows and columns stay unmasked. P is the
count the model declares (``num_prefix_tokens``; undeclared, 0 or 1), so that a mask
built for another grid than the tokens' is an error rather than a longer prefix.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable, Final, Iterator, Literal, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .masks import AttentionMask

__all__ = [
    "FLEX_MIN_CAPABILITY",
    "FLEX_MIN_TORCH",
    "mask_values",
    "masked_attention",
    "masked_logits",
    "MaskedAttention",
    "pad_mask_for_prefix",
    "recording",
    "record_probabilities",
    "use_flex_attention",
]

Backend = Literal["auto", "fused", "manual", "flex"]
_COMBINES = ("multiply", "add")

# FlexAttention inside a compiled model needs a captured mask with gradients (pytorch/pytorch#145460),
# PiT's head dimension 48, and a float32 mask beside bf16 queries in the backward (#174018, fixed by
# #174251, opened 4 February 2026, days before 2.11's branch cut of 16-19 February). 2.12 (cut in April
# 2026) surely carries all three; 2.11 may, but is not relied on. Only on GPUs with native bf16.
FLEX_MIN_TORCH = (2, 12)
FLEX_MIN_CAPABILITY = (8, 0)

# Whether compiled models on CUDA run multiplicative masks through FlexAttention. Off unless a run plan
# (gmmlib.training.plan) turned it on: an untested path is never taken by default. A module global, so
# that a compiled graph guards on it.
_flex_enabled = False


def use_flex_attention(enabled: bool) -> None:
    """Let compiled models on CUDA run multiplicative masks through FlexAttention (``backend="auto"``).

    Args:
        enabled: True only where the run plan allows it (capability >= :data:`FLEX_MIN_CAPABILITY`,
            torch >= :data:`FLEX_MIN_TORCH`); False: inductor fuses the plain ops instead.
    """
    global _flex_enabled
    _flex_enabled = bool(enabled)


def mask_values(mask: AttentionMask, device_type: str) -> Tensor:
    """The mask module's (H, N, N) values in its parameters' dtype (float32), even inside autocast.

    Under bf16 autocast the mixture's einsum would run in bf16 (up to 0.36 % error in the mask, 1-3.5 %
    in the alpha/sigma gradients); the official code is float32 throughout, so the mask is computed
    with autocast off.

    Args:
        mask: the mask module.
        device_type: the device type of the attention's inputs ("cpu", "cuda"), whose autocast is paused.
    """
    with torch.autocast(device_type, enabled=False):
        return mask()


def pad_mask_for_prefix(
    mask: Tensor,
    num_tokens: int,
    combine: str,
    num_prefix_tokens: Optional[int] = None,
    grid: Optional[Sequence[int]] = None,
) -> Tensor:
    """Extend an (H, N, N) mask to (H, T, T) so that the first T - N tokens are unmasked.

    The neutral value is 1 for "multiply" and 0 for "add".

    Args:
        mask: (H, N, N) mask over the patch tokens.
        num_tokens: T, the length of the sequence.
        combine: "multiply" or "add".
        num_prefix_tokens: the prefix tokens (CLS, distillation, registers) the model puts before its
            patch tokens: T must be N + this; None (undeclared): no prefix token or one (a CLS token).
        grid: the mask's patch grid, to name it in an error.

    Raises:
        ValueError: the tokens are not the mask's N plus the prefix (a mask built for another grid),
            naming both sizes.
    """
    n = mask.shape[-1]
    prefix = num_tokens - n
    covers = f"the {grid[0]}x{grid[1]} grid ({n} tokens)" if grid is not None else f"{n} tokens"
    if prefix < 0:
        raise ValueError(f"the mask covers {covers} but the sequence has only {num_tokens}")
    allowed = (0, 1) if num_prefix_tokens is None else (num_prefix_tokens,)
    if prefix not in allowed:
        # surplus tokens are patches of another grid, not prefix tokens: masking them as such is silently wrong
        expected = f"{n} or {n + 1} (no prefix token or a CLS token; declare num_prefix_tokens for more)"
        if num_prefix_tokens is not None:
            expected = f"{n} + {num_prefix_tokens} prefix token(s) = {n + num_prefix_tokens}"
        raise ValueError(
            f"the mask covers {covers} but the sequence has {num_tokens} tokens, expected {expected}: "
            "build the mask for the tokens' grid"
        )
    if prefix == 0:
        return mask
    return F.pad(mask, (prefix, 0, prefix, 0), value=1.0 if combine == "multiply" else 0.0)


_probe: ContextVar[Optional[Callable[[Tensor], None]]] = ContextVar("gmmlib_attention_probe", default=None)


@contextmanager
def recording(callback: Callable[[Tensor], None]) -> Iterator[None]:
    """Within this block every attention layer hands its probabilities to ``callback``.

    :func:`masked_attention` takes its manual path while recording (the fused kernels never
    materialise the probabilities), and attention modules that compute their own (CaiT's
    talking heads) call :func:`record_probabilities`. :func:`gmmlib.analysis.attention_maps`
    builds on this.
    """
    token = _probe.set(callback)
    try:
        yield
    finally:
        _probe.reset(token)


def record_probabilities(probs: Tensor) -> None:
    """Give ``probs`` (B, H, T, S) to the active :func:`recording`, if any."""
    probe = _probe.get()
    if probe is not None:
        probe(probs)


def masked_logits(q: Tensor, k: Tensor, mask: Optional[Tensor], combine: str, scale: float) -> Tensor:
    """The attention logits with the mask in place: ``M * (Q K^T) * scale`` or ``(Q K^T) * scale + M``.

    This is the operation the paper is about, written out; ``mask`` is already padded to the
    sequence (see :func:`pad_mask_for_prefix`). For "multiply" the scale is folded into the
    (H, T, T) mask so the (B, H, T, T) logits are touched once less.
    """
    logits = q @ k.transpose(-2, -1)
    if mask is not None and combine == "multiply":
        return logits * (mask * scale)
    logits = logits * scale
    return logits if mask is None else logits + mask


_compiled_flex = None


def _flex(q: Tensor, k: Tensor, v: Tensor, mask: Tensor, combine: str, scale: float) -> Tensor:
    """FlexAttention with the mask as a score modification (compiled on CUDA)."""
    global _compiled_flex
    from torch.nn.attention.flex_attention import flex_attention

    fn = flex_attention
    if q.is_cuda and not torch.compiler.is_compiling():  # inside a compiled model, dynamo traces it itself
        if _compiled_flex is None:
            _compiled_flex = torch.compile(flex_attention)
        fn = _compiled_flex

    if combine == "multiply":

        def score_mod(score, b, h, q_idx, kv_idx):
            return score * mask[h, q_idx, kv_idx]

    else:

        def score_mod(score, b, h, q_idx, kv_idx):
            return score + mask[h, q_idx, kv_idx]

    return fn(q, k, v, score_mod=score_mod, scale=scale)


def _chunk_size(q: Tensor) -> int:
    """Batch elements per chunk so that one chunk's (c, H, T, T) block stays in cache (CPU).

    The budget is about 1.5 MB per pair of threads: each thread's share stays in its own core's
    cache, and with more threads fewer, larger chunks keep the number of parallel regions (and
    their fork/join cost) down.
    """
    b, h, t, _ = q.shape
    if q.device.type != "cpu":  # a GPU (CUDA, MPS) runs the whole batch in one launch
        return b
    budget = (3 << 19) * max(1, torch.get_num_threads() // 2)
    return max(1, min(b, budget // (h * t * t * q.element_size())))


class _BlockedMaskedAttention(torch.autograd.Function):
    """``softmax(M * (Q K^T)) V`` (multiply) or ``softmax(scale * Q K^T + M) V`` (add), with a hand-written,
    cache-blocked backward.

    For the multiplicative mask the scale is already folded into M (``scale`` is None). Versus plain autograd
    this works in place where it can, runs every batched matmul on contiguous (B*H, T, *) blocks, and walks
    the batch in chunks whose (T x T) blocks stay in cache: a mask is memory-bound on CPU, and this brings
    the multiplicative one close to fused SDPA, and the additive one below SDPA with a bias on CPU
    (``benchmarks/gmm_overhead.py`` measures both). ``masked_attention(..., backend="manual")`` is its
    plain-autograd twin; the tests check that both agree, gradients included.
    """

    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda", cast_inputs=torch.float32)
    def forward(ctx, q: Tensor, k: Tensor, v: Tensor, mask: Tensor, scale: Optional[float] = None) -> Tensor:
        b, h, t, d = q.shape
        dv = v.shape[-1]
        q3, k3, v3 = q.reshape(b * h, t, d), k.reshape(b * h, t, d), v.reshape(b * h, t, dv)
        s = q.new_empty(b, h, t, t)
        p = torch.empty_like(s)
        out = q.new_empty(b, h, t, dv)
        c = _chunk_size(q)
        for i in range(0, b, c):
            rows, flat = slice(i, i + c), slice(i * h, (i + c) * h)
            torch.bmm(q3[flat], k3[flat].transpose(1, 2), out=s[rows].view(-1, t, t))
            logits = s[rows] * mask if scale is None else s[rows].mul_(scale).add_(mask)
            torch.softmax(logits, dim=-1, out=p[rows])
            torch.bmm(p[rows].view(-1, t, t), v3[flat], out=out[rows].view(-1, t, dv))
        # the multiplicative mask's gradient needs the scores; the additive one's does not
        ctx.save_for_backward(q3, k3, v3, mask, s if scale is None else None, p, out)
        ctx.scale = scale
        return out

    @staticmethod
    @torch.amp.custom_bwd(device_type="cuda")
    def backward(ctx, grad_out: Tensor):
        q3, k3, v3, mask, s, p, out = ctx.saved_tensors
        scale = ctx.scale
        b, h, t, _ = p.shape
        grad_out = grad_out.contiguous()
        g3 = grad_out.view(b * h, t, -1)
        # softmax backward: dL = P * (dP - rowsum(dP * P)), and rowsum(dP * P) = rowsum(dO * O).
        row = (grad_out * out).sum(-1, keepdim=True)
        grad_q, grad_k, grad_v = torch.empty_like(q3), torch.empty_like(k3), torch.empty_like(v3)
        grad_mask = torch.zeros(h, t, t, dtype=mask.dtype, device=mask.device) if ctx.needs_input_grad[3] else None
        c = _chunk_size(p)
        for i in range(0, b, c):
            rows, flat = slice(i, i + c), slice(i * h, (i + c) * h)
            p3 = p[rows].view(-1, t, t)
            torch.bmm(p3.transpose(1, 2), g3[flat], out=grad_v[flat])
            grad_l = torch.bmm(g3[flat], v3[flat].transpose(1, 2)).view(-1, h, t, t)
            grad_l.sub_(row[rows]).mul_(p[rows])  # the gradient of the logits
            if grad_mask is not None:
                grad_mask.add_((grad_l * s[rows]).sum(0) if scale is None else grad_l.sum(0))
            grad_s = (grad_l.mul_(mask) if scale is None else grad_l.mul_(scale)).view(-1, t, t)
            torch.bmm(grad_s, k3[flat], out=grad_q[flat])
            torch.bmm(grad_s.transpose(1, 2), q3[flat], out=grad_k[flat])
        if grad_mask is not None and mask.shape[0] == 1:
            grad_mask = grad_mask.sum(0, keepdim=True)
        shape = (b, h, t, -1)
        return grad_q.view(shape), grad_k.view(shape), grad_v.view(shape), grad_mask, None


def _blocked_add(q: Tensor) -> bool:
    """Whether an additive mask takes the cache-blocked kernel: on CPU, in eager mode. On a GPU (CUDA, MPS)
    SDPA's fused kernels take a bias well; under torch.compile inductor fuses SDPA's graph instead."""
    return q.device.type == "cpu" and not torch.compiler.is_compiling()


def masked_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Optional[Tensor | AttentionMask] = None,
    combine: Optional[str] = None,
    scale: Optional[float] = None,
    attn_bias: Optional[Tensor] = None,
    backend: Backend = "auto",
    num_prefix_tokens: Optional[int] = None,
) -> Tensor:
    """Scaled dot-product attention with a multiplicative or additive mask.

    Args:
        q, k, v: (B, H, T, d) queries, keys and values.
        mask: (H, N, N) or (1, N, N) mask over the last N tokens, N <= T, or an
            :class:`~gmmlib.masks.AttentionMask` module (called here); None for plain
            attention.
        combine: "multiply" (mask scales the logits) or "add" (mask is a logit bias);
            default: the mask module's own, "multiply" for a tensor.
        scale: logit scale; defaults to 1 / sqrt(d).
        attn_bias: optional additive bias over all T tokens, broadcastable to
            (B, H, T, T), added after the mask (Swin's relative bias and shift mask).
        backend: "fused" (for "multiply" a hand-written, cache-blocked autograd function;
            for "add" SDPA's fused kernels on CUDA, or with ``attn_bias``, or compiled, and
            the cache-blocked function otherwise), "manual" (plain autograd ops, the
            reference twin), "flex" (FlexAttention, compiled on CUDA; forward only on
            CPU), or "auto": fused unless ``attn_bias`` comes with a multiplicative
            mask, which takes the manual path; when compiled, multiplicative masks take the
            flex path on CUDA and the manual path on CPU.
        num_prefix_tokens: tokens before the masked ones (CLS, ...): T must be N + this
            (see :func:`pad_mask_for_prefix`; None: 0 or 1).

    Returns:
        (B, H, T, d) attention output.
    """
    grid = None
    if isinstance(mask, AttentionMask):
        if combine is not None and combine != mask.combine:
            raise ValueError(f"combine {combine!r} contradicts the mask module's {mask.combine!r}")
        combine, grid, mask = mask.combine, mask.grid, mask_values(mask, q.device.type)
    combine = "multiply" if combine is None else combine
    if combine not in _COMBINES:
        raise ValueError(f"combine must be 'multiply' or 'add', got {combine!r}")
    if q.dim() != 4:
        raise ValueError(f"q, k, v must be (B, H, T, d), got q of shape {tuple(q.shape)}")
    if backend not in ("auto", "fused", "manual", "flex"):
        raise ValueError(f"backend must be 'auto', 'fused', 'manual' or 'flex', got {backend!r}")
    num_heads, num_tokens, head_dim = q.shape[1], q.shape[2], q.shape[3]
    scale = head_dim**-0.5 if scale is None else scale

    if mask is not None:
        if mask.dim() != 3 or mask.shape[-1] != mask.shape[-2] or mask.shape[0] not in (1, num_heads):
            raise ValueError(
                f"mask must be ({num_heads}, N, N) or (1, N, N), got {tuple(mask.shape)} "
                f"for q of shape {tuple(q.shape)}"
            )
        # the mask keeps its float32 under autocast (bf16 queries): never rounded to the queries' dtype
        mask = pad_mask_for_prefix(
            mask.to(torch.promote_types(mask.dtype, q.dtype)), num_tokens, combine, num_prefix_tokens, grid
        )

    multiply = mask is not None and combine == "multiply"
    if _probe.get() is not None and not torch.compiler.is_compiling():
        backend = "manual"  # recording: the probabilities must exist
    if backend == "auto":
        if multiply and torch.compiler.is_compiling():
            # The hand-written autograd function is an eager-mode kernel; under torch.compile the
            # multiply runs as FlexAttention on CUDA (no T x T logits kept) or as plain ops that
            # inductor fuses on CPU.
            backend = "flex" if q.is_cuda and attn_bias is None and _flex_enabled else "manual"
        else:
            backend = "manual" if multiply and attn_bias is not None else "fused"

    if backend == "fused" and multiply and attn_bias is not None:
        raise ValueError("backend 'fused' takes no attn_bias with a multiplicative mask; use 'manual'")
    if backend == "fused" and mask is not None and attn_bias is None and (multiply or _blocked_add(q)):
        # the kernel works in one dtype: the mask's float32 when autocast made the queries bf16/fp16
        work = mask.dtype
        scaled = (mask * scale,) if multiply else (mask, scale)  # the multiplicative mask takes the scale folded in
        return _BlockedMaskedAttention.apply(q.to(work), k.to(work), v.to(work), *scaled).to(q.dtype)

    if backend == "fused":
        bias = None if mask is None else mask.to(q.dtype)  # SDPA takes a bias of the queries' dtype only
        if attn_bias is not None:
            bias = attn_bias if bias is None else bias + attn_bias
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=scale)

    if backend == "flex":
        if attn_bias is not None:
            raise ValueError("backend 'flex' does not take attn_bias; use 'manual'")
        if mask is None:
            mask = (
                q.new_ones(1, num_tokens, num_tokens)
                if combine == "multiply"
                else q.new_zeros(1, num_tokens, num_tokens)
            )
        return _flex(q, k, v, mask.expand(num_heads, -1, -1), combine, scale)

    # Manual path, plain autograd.
    logits = masked_logits(q, k, mask, combine, scale)
    if attn_bias is not None:
        logits = logits + attn_bias
    probs = logits.softmax(dim=-1)  # float32 with a float32 mask: back to the values' dtype for the product
    record_probabilities(probs)
    return probs.to(v.dtype) @ v


class MaskedAttention(nn.Module):
    """Multi-head self-attention with an optional attention mask.

    Args:
        dim: token dimension.
        num_heads: number of heads.
        head_dim: dimension per head (default ``dim // num_heads``).
        qkv_bias: bias in the qkv projection.
        proj_drop: dropout after the output projection.
        mask: an :class:`~gmmlib.masks.AttentionMask` over the patch tokens, or None.
        num_prefix_tokens: tokens before the patch tokens (1 for a CLS token); None: 0 or 1.
    """

    fused_attn: Final[bool] = True

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        head_dim: Optional[int] = None,
        qkv_bias: bool = False,
        proj_drop: float = 0.0,
        mask: Optional[AttentionMask] = None,
        num_prefix_tokens: Optional[int] = None,
    ) -> None:
        super().__init__()
        if head_dim is None:
            if dim % num_heads:
                raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}; pass head_dim")
            head_dim = dim // num_heads
        if mask is not None and mask.num_heads != num_heads:
            raise ValueError(f"mask has {mask.num_heads} heads, attention has {num_heads}")
        self.num_heads = num_heads
        self.head_dim = head_dim
        self.scale = head_dim**-0.5
        inner = num_heads * head_dim
        self.qkv = nn.Linear(dim, inner * 3, bias=qkv_bias)
        self.proj = nn.Linear(inner, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        self.mask = mask
        self.num_prefix_tokens = num_prefix_tokens

    def forward(self, x: Tensor) -> Tensor:
        b, t, _ = x.shape
        q, k, v = self.qkv(x).reshape(b, t, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        backend = "auto" if self.fused_attn else "manual"
        out = masked_attention(
            q, k, v, self.mask, scale=self.scale, backend=backend, num_prefix_tokens=self.num_prefix_tokens
        )
        return self.proj_drop(self.proj(out.transpose(1, 2).reshape(b, t, -1)))
