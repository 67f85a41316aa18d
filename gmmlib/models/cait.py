"""The paper's small-data CaiT ("cait-tiny"): 24 patch self-attention layers, then 2 class-attention layers.

All 26 layers use talking-heads attention (a learned H x H mix of the heads before and
after the softmax) and LayerScale. The mask sits in the 24 patch self-attention layers
only, on the 8 x 8 patch grid, and scales (or biases) the logits *before* the
pre-softmax head mixing, as in the official code. The class-attention layers, where a
CLS token reads the patch tokens, are unmasked.
"""

from __future__ import annotations

from typing import Optional

import torch
from timm.layers import DropPath, Mlp
from torch import Tensor, nn

from ..attention import mask_values, masked_logits, record_probabilities
from ..masks import AttentionMask
from .registry import build_mask, check_pool, init_weights, register_model
from .vit import PatchEmbed

__all__ = ["CaiT", "TalkingHeadsAttention", "LayerScaleBlock"]


def layer_scale_init(layer_index: int) -> float:
    """LayerScale's initial value for the ``layer_index``-th layer (1-based) of a stack.

    The official code picks it per layer index rather than per network depth: 0.1 up
    to layer 18, 1e-5 up to layer 24, 1e-6 beyond.
    """
    if layer_index <= 18:
        return 0.1
    return 1e-5 if layer_index <= 24 else 1e-6


class TalkingHeadsAttention(nn.Module):
    """Talking-heads attention with an optional mask on the patch tokens.

    Queries come from ``x``; keys and values from ``context`` (``x`` itself for
    self-attention). Per head h the logits are ``S_h = q_h k_h^T * scale``; then

        S = M * S (or S + M)          mask, per head, before any mixing
        S'_g = sum_h S_h W_pre[h, g]  pre-softmax head mixing
        A_g = softmax(S'_g)
        A'_g = sum_h A_h W_post[h, g] post-softmax head mixing
        out_g = A'_g v_g

    Args:
        dim: token dimension.
        num_heads: attention heads.
        head_dim: dimension per head.
        mask: attention mask over the context tokens, or None.
    """

    def __init__(self, dim: int, num_heads: int = 4, head_dim: int = 64, mask: Optional[AttentionMask] = None) -> None:
        super().__init__()
        if mask is not None and mask.num_heads != num_heads:
            raise ValueError(f"mask has {mask.num_heads} heads, attention has {num_heads}")
        self.num_heads = num_heads
        self.head_dim = head_dim
        self.scale = head_dim**-0.5
        inner = num_heads * head_dim
        self.q = nn.Linear(dim, inner, bias=False)
        self.kv = nn.Linear(dim, 2 * inner, bias=False)
        # Official init: both mixing matrices ~ N(0, 1).
        self.mix_pre = nn.Parameter(torch.randn(num_heads, num_heads))
        self.mix_post = nn.Parameter(torch.randn(num_heads, num_heads))
        self.proj = nn.Linear(inner, dim)
        self.mask = mask

    def forward(self, x: Tensor, context: Optional[Tensor] = None) -> Tensor:
        context = x if context is None else context
        b, t, _ = x.shape
        q = self.q(x).reshape(b, t, self.num_heads, self.head_dim).transpose(1, 2)
        k, v = self.kv(context).reshape(b, context.shape[1], 2, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        mask, combine = (
            (None, "multiply") if self.mask is None else (mask_values(self.mask, x.device.type), self.mask.combine)
        )
        logits = masked_logits(q, k, mask, combine, self.scale)  # (B, H, T, S), mask before any mixing
        logits = torch.einsum("bhij,hg->bgij", logits, self.mix_pre)
        attn = torch.einsum("bhij,hg->bgij", logits.softmax(dim=-1), self.mix_post)
        record_probabilities(attn)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, t, -1))


class LayerScaleBlock(nn.Module):
    """Pre-norm block with LayerScale: ``x + gamma1 * attn(norm(x))``, ``x + gamma2 * mlp(norm(x))``.

    Args:
        dim: token dimension.
        num_heads: attention heads.
        head_dim: dimension per head.
        mlp_dim: hidden width of the MLP.
        init_scale: initial value of both LayerScale vectors.
        drop_path: stochastic-depth rate of both residual branches.
        mask: attention mask of this block, or None.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        head_dim: int,
        mlp_dim: int,
        init_scale: float,
        drop_path: float = 0.0,
        mask: Optional[AttentionMask] = None,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = TalkingHeadsAttention(dim, num_heads, head_dim, mask)
        self.gamma1 = nn.Parameter(torch.full((dim,), init_scale))
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, mlp_dim)
        self.gamma2 = nn.Parameter(torch.full((dim,), init_scale))
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: Tensor, context: Optional[Tensor] = None) -> Tensor:
        """Self-attention when ``context`` is None; otherwise ``x`` (the CLS token) attends to ``context``.

        As in the official code, the context (the patch tokens) enters class attention
        without a LayerNorm and without the CLS token itself.
        """
        x = x + self.drop_path(self.gamma1 * self.attn(self.norm1(x), context))
        return x + self.drop_path(self.gamma2 * self.mlp(self.norm2(x)))


class CaiT(nn.Module):
    """CaiT for small images: patch self-attention, then class attention, then a linear head.

    Args:
        img_size: input side in pixels.
        patch_size: patch side in pixels.
        num_classes: classifier outputs.
        dim: token dimension.
        depth: patch self-attention layers (masked).
        cls_depth: class-attention layers (unmasked).
        num_heads: attention heads.
        head_dim: dimension per head.
        mlp_dim: hidden width of every MLP (not a ratio: 384 for dim 108 and 192 alike).
        pool: "cls" (class attention), the only choice.
        drop_path: stochastic-depth rate, the same in every layer (official).
        mask: mask kind for every patch self-attention layer, or None.
        mask_options: options of that mask kind.
        in_chans: input channels.
    """

    def __init__(
        self,
        img_size: int = 32,
        patch_size: int = 4,
        num_classes: int = 10,
        dim: int = 108,
        depth: int = 24,
        cls_depth: int = 2,
        num_heads: int = 4,
        head_dim: int = 64,
        mlp_dim: int = 384,
        pool: str = "cls",
        drop_path: float = 0.1,
        mask: Optional[str] = None,
        mask_options: Optional[dict] = None,
        in_chans: int = 3,
    ) -> None:
        super().__init__()
        check_pool("cait", pool)  # class attention: "cls" only
        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, dim)
        self.grid = self.patch_embed.grid
        # Official init: pos-embedding and CLS ~ N(0, 1); Linear layers Xavier-normal.
        self.pos_embed = nn.Parameter(torch.randn(1, self.grid[0] * self.grid[1], dim))
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim))
        self.blocks = nn.ModuleList(
            LayerScaleBlock(
                dim,
                num_heads,
                head_dim,
                mlp_dim,
                layer_scale_init(i + 1),
                drop_path,
                build_mask(mask, self.grid, num_heads, mask_options),
            )
            for i in range(depth)
        )
        self.cls_blocks = nn.ModuleList(
            LayerScaleBlock(dim, num_heads, head_dim, mlp_dim, layer_scale_init(i + 1), drop_path)
            for i in range(cls_depth)
        )
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)
        init_weights(self)

    def forward_features(self, x: Tensor) -> Tensor:
        """The CLS token after class attention, shape (B, 1, dim)."""
        x = self.patch_embed(x) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        for block in self.cls_blocks:
            cls = block(cls, context=x)
        return cls

    def forward_head(self, x: Tensor) -> Tensor:
        return self.head(self.norm(x[:, 0]))

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


@register_model("cait", default_pool="cls", pools=("cls",))
def cait(num_classes: int = 10, img_size: int = 32, mask: Optional[str] = None, pool: str = "cls", **options) -> CaiT:
    """The paper's "cait-tiny": dim 108, 24 + 2 layers, 4 heads x 64, MLP 384, patch 4 (8 at 64 px)."""
    cfg = dict(
        patch_size=max(img_size // 8, 1),
        dim=108,
        depth=24,
        cls_depth=2,
        num_heads=4,
        head_dim=64,
        mlp_dim=384,
    )
    cfg.update(options)
    return CaiT(img_size=img_size, num_classes=num_classes, pool=pool, mask=mask, **cfg)
