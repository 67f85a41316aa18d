"""The small-data ViT of the paper (SPT-LSA lineage): 9 layers, 12 heads of 16 dims.

With an image of 32 px and patches of 4 px the tokens form an 8 x 8 grid, and a mask
(GMM, ELM, ...) sits in every attention layer. Pooling is a separate choice from the
mask: the official code switches to GAP whenever a mask is on, which confounds the
two, so here ``pool`` is always explicit.
"""

from __future__ import annotations

from typing import Optional

import torch
from timm.layers import DropPath, Mlp
from torch import Tensor, nn

from ..attention import MaskedAttention
from ..masks import AttentionMask
from .registry import build_mask, check_patch_size, check_pool, init_weights, register_model

__all__ = ["Block", "PatchEmbed", "VisionTransformer"]


class PatchEmbed(nn.Module):
    """Cut the image into ``patch_size`` squares and project each with one Linear.

    Args:
        img_size: input side in pixels.
        patch_size: patch side in pixels; must divide ``img_size``.
        in_chans: input channels.
        dim: token dimension.
    """

    def __init__(self, img_size: int, patch_size: int, in_chans: int, dim: int) -> None:
        super().__init__()
        check_patch_size(img_size, patch_size)
        self.patch_size = patch_size
        self.grid = (img_size // patch_size, img_size // patch_size)
        self.proj = nn.Linear(patch_size * patch_size * in_chans, dim)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        p = self.patch_size
        # (B, C, H, W) -> (B, H/p * W/p, p * p * C), patches in row-major order.
        x = x.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1)
        return self.proj(x.reshape(b, (h // p) * (w // p), p * p * c))


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm(x))``, then ``x + mlp(norm(x))``.

    Args:
        dim: token dimension.
        num_heads: attention heads.
        head_dim: dimension per head.
        mlp_ratio: hidden width of the MLP over ``dim``.
        qkv_bias: bias in the qkv projection.
        drop_path: stochastic-depth rate of both residual branches.
        mask: attention mask of this block, or None.
        num_prefix_tokens: tokens before the patch tokens (1 for a CLS token); None: 0 or 1.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        head_dim: Optional[int] = None,
        mlp_ratio: float = 2.0,
        qkv_bias: bool = False,
        drop_path: float = 0.0,
        mask: Optional[AttentionMask] = None,
        num_prefix_tokens: Optional[int] = None,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = MaskedAttention(
            dim, num_heads, head_dim, qkv_bias=qkv_bias, mask=mask, num_prefix_tokens=num_prefix_tokens
        )
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class VisionTransformer(nn.Module):
    """ViT for small images with an optional attention mask in every layer.

    Args:
        img_size: input side in pixels.
        patch_size: patch side in pixels.
        num_classes: classifier outputs.
        dim: token dimension.
        depth: number of blocks.
        num_heads: attention heads.
        head_dim: dimension per head.
        mlp_ratio: MLP hidden width over ``dim``.
        qkv_bias: bias in the qkv projections.
        pool: "gap" (mean of the patch tokens, no CLS token) or "cls" (a CLS token).
        drop_path: stochastic-depth rate, the same in every block (official).
        mask: mask kind for every layer (see :func:`gmmlib.masks.create`) or None.
        mask_options: options of that mask kind.
        in_chans: input channels.
    """

    def __init__(
        self,
        img_size: int = 32,
        patch_size: int = 4,
        num_classes: int = 10,
        dim: int = 192,
        depth: int = 9,
        num_heads: int = 12,
        head_dim: Optional[int] = 16,
        mlp_ratio: float = 2.0,
        qkv_bias: bool = False,
        pool: str = "gap",
        drop_path: float = 0.1,
        mask: Optional[str] = None,
        mask_options: Optional[dict] = None,
        in_chans: int = 3,
    ) -> None:
        super().__init__()
        check_pool("vit", pool)
        self.pool = pool
        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, dim)
        self.grid = self.patch_embed.grid
        self.num_prefix_tokens = 1 if pool == "cls" else 0
        num_tokens = self.grid[0] * self.grid[1] + self.num_prefix_tokens
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim)) if pool == "cls" else None
        # Official init: pos-embedding ~ N(0, 1), Linear layers Xavier-normal.
        self.pos_embed = nn.Parameter(torch.randn(1, num_tokens, dim))
        self.blocks = nn.Sequential(
            *[
                Block(
                    dim,
                    num_heads,
                    head_dim,
                    mlp_ratio,
                    qkv_bias,
                    drop_path,
                    build_mask(mask, self.grid, num_heads, mask_options),
                    self.num_prefix_tokens,
                )
                for _ in range(depth)
            ]
        )
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)
        init_weights(self)

    def forward_features(self, x: Tensor) -> Tensor:
        """Tokens after the last block, shape (B, prefix + N, dim)."""
        x = self.patch_embed(x)
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        return self.blocks(x + self.pos_embed)

    def forward_head(self, x: Tensor) -> Tensor:
        x = x[:, 0] if self.pool == "cls" else x.mean(dim=1)
        return self.head(self.norm(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


@register_model("vit", default_pool="gap", pools=("gap", "cls"))
def vit(
    num_classes: int = 10, img_size: int = 32, mask: Optional[str] = None, pool: str = "gap", **options
) -> VisionTransformer:
    """The paper's ViT: dim 192, depth 9, 12 heads x 16, MLP ratio 2, patch 4 (8 at 64 px)."""
    cfg = dict(patch_size=max(img_size // 8, 1), dim=192, depth=9, num_heads=12, head_dim=16, mlp_ratio=2.0)
    cfg.update(options)
    return VisionTransformer(img_size=img_size, num_classes=num_classes, pool=pool, mask=mask, **cfg)
