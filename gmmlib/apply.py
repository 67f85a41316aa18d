"""Put a mask into the attention layers of a model you already have.

``apply_mask(model, "gmm")`` works on timm's ViT/DeiT family (``timm.models.vision_transformer``,
whose blocks use ``timm.layers.Attention``) and on gmmlib's own ViT. The weights stay
where they are; each attention layer gains a ``mask`` submodule, so the state dict
keeps its keys and only adds the mask's parameters.
"""

from __future__ import annotations

from typing import Optional

import torch
from timm.layers.attention import Attention as TimmAttention
from torch import Tensor, nn

from .attention import MaskedAttention, masked_attention
from .masks import create

__all__ = ["apply_mask", "TimmMaskedAttention"]


class TimmMaskedAttention(TimmAttention):
    """timm's ``Attention`` with a gmmlib mask over its patch tokens.

    ``apply_mask`` turns existing ``Attention`` instances into this class in place
    (same weights, same state-dict keys), so it is never built directly.
    """

    mask: nn.Module
    num_prefix_tokens: Optional[int] = None  # the model's (CLS, distillation, registers), set by apply_mask

    def forward(self, x: Tensor, attn_mask: Optional[Tensor] = None, is_causal: bool = False) -> Tensor:
        if is_causal:
            raise ValueError("is_causal is not supported together with a gmmlib mask")
        b, n, _ = x.shape
        gate = self.gate(x).sigmoid() if self.gate is not None else None
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        q, k = self.q_norm(q), self.k_norm(k)
        if attn_mask is not None and attn_mask.dtype == torch.bool:
            # timm/SDPA convention: True means "attend".
            attn_mask = torch.zeros_like(attn_mask, dtype=q.dtype).masked_fill(~attn_mask, float("-inf"))
        backend = "auto" if self.fused_attn else "manual"  # timm's switch to the plain-autograd path
        x = masked_attention(
            q,
            k,
            v,
            self.mask,
            scale=self.scale,
            attn_bias=attn_mask,
            backend=backend,
            num_prefix_tokens=self.num_prefix_tokens,
        )
        x = self.norm(x.transpose(1, 2).reshape(b, n, self.attn_dim))
        if gate is not None:
            x = x * gate
        return self.proj_drop(self.proj(x))


def _grid_of(model: nn.Module) -> tuple[int, int]:
    grid = getattr(getattr(model, "patch_embed", None), "grid_size", None)
    if grid is None:
        grid = getattr(model, "grid", None)
    if grid is None:
        raise ValueError(
            f"apply_mask found no patch grid on {type(model).__name__}: it supports timm ViT/DeiT-family "
            "models and gmmlib's 'vit'; for swin, cait, pit and t2t use gmmlib.create_model(..., mask=...)"
        )
    return int(grid[0]), int(grid[1])


def apply_mask(model: nn.Module, kind: str, **options) -> nn.Module:
    """Put a fresh mask of ``kind`` into every attention layer of ``model``, in place.

    Args:
        model: a timm ViT/DeiT-family model or a gmmlib "vit".
        kind: mask kind (see :func:`gmmlib.masks.create`).
        **options: options of that mask kind (e.g. ``num_kernels=5``).

    Returns:
        The same model, for chaining. The new mask parameters are trainable and on
        the model's device and dtype.
    """
    grid = _grid_of(model)
    # the tokens before the patches: a sequence must be the grid's plus these, so that an image of
    # another size (timm's dynamic_img_size) is an error, not extra tokens left unmasked
    prefix = getattr(model, "num_prefix_tokens", None)
    prefix = int(prefix) if prefix is not None else None
    layers = [m for m in model.modules() if type(m) in (TimmAttention, TimmMaskedAttention, MaskedAttention)]
    if not layers:
        raise ValueError(f"apply_mask found no attention layer it can mask in {type(model).__name__}")
    param = next(model.parameters())
    for layer in layers:
        if getattr(layer, "attn_drop", None) is not None and layer.attn_drop.p > 0:
            raise ValueError(f"attention dropout {layer.attn_drop.p} is not supported with a gmmlib mask; set it to 0")
        mask = create(kind, grid=grid, num_heads=layer.num_heads, **options).to(param.device)
        if param.is_floating_point():
            mask = mask.to(param.dtype)
        if isinstance(layer, TimmAttention):
            layer.__class__ = TimmMaskedAttention
        layer.mask = mask
        layer.num_prefix_tokens = prefix
    return model
