"""The paper's small-data PiT: a pooling-based ViT with three stages at 16, 8 and 4 tokens a side.

A conv patch-embedding (patch 2 at 32 px, 4 at 64 px) gives a 16 x 16 grid. Each stage
is a stack of pre-norm transformer blocks; between stages a depthwise-separable
3x3/stride-2 conv halves the grid and doubles the width, and a Linear does the same
for the CLS token. The mask sits in every block of every stage, on that stage's grid,
and covers only the patch-patch block of the logits: the CLS row and column stay
unmasked (:func:`gmmlib.attention.masked_attention` handles the prefix).
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor, nn

from .registry import build_mask, check_pool, check_stages, init_weights, register_model
from .vit import Block

__all__ = ["PiT", "Pool"]


class Pool(nn.Module):
    """PiT pooling: halve the grid and double the width.

    Patch tokens go through a depthwise 3x3 stride-2 conv (``dim -> 2 dim``, groups
    ``dim``) and a pointwise 1x1 conv; the CLS token, if any, through a Linear.

    Args:
        dim: input width.
        num_prefix_tokens: 1 with a CLS token, 0 without.
    """

    def __init__(self, dim: int, num_prefix_tokens: int = 1) -> None:
        super().__init__()
        self.num_prefix_tokens = num_prefix_tokens
        self.downsample = nn.Sequential(
            nn.Conv2d(dim, 2 * dim, kernel_size=3, stride=2, padding=1, groups=dim),
            nn.Conv2d(2 * dim, 2 * dim, kernel_size=1),
        )
        self.cls_ff = nn.Linear(dim, 2 * dim) if num_prefix_tokens else None

    def forward(self, x: Tensor, grid: tuple[int, int]) -> Tensor:
        p = self.num_prefix_tokens
        prefix, tokens = x[:, :p], x[:, p:]
        b, n, c = tokens.shape
        tokens = tokens.transpose(1, 2).reshape(b, c, *grid)
        tokens = self.downsample(tokens).flatten(2).transpose(1, 2)
        if self.cls_ff is None:
            return tokens
        return torch.cat([self.cls_ff(prefix), tokens], dim=1)


class PiT(nn.Module):
    """Pooling-based Vision Transformer for small images.

    Args:
        img_size: input side in pixels.
        patch_size: patch side in pixels (conv patch-embedding).
        num_classes: classifier outputs.
        dim: width of the first stage; each pooling doubles it.
        depth: blocks per stage.
        num_heads: attention heads per stage.
        head_dim: dimension per head (the same in every stage).
        mlp_ratio: MLP hidden width over the stage width.
        qkv_bias: bias in the qkv projections.
        pool: "cls" (a CLS token carried through the poolings, official) or "gap"
            (no CLS token; mean of the final patch tokens).
        drop_path: stochastic-depth rate, the same in every block (official).
        mask: mask kind for every block (see :func:`gmmlib.masks.create`) or None.
        mask_options: options of that mask kind. GMM masks on the 16 x 16 stage get
            ``truncate_like_official=True`` unless set here (see
            :func:`build_mask`).
        in_chans: input channels.
    """

    def __init__(
        self,
        img_size: int = 32,
        patch_size: int = 2,
        num_classes: int = 10,
        dim: int = 96,
        depth: Sequence[int] = (2, 6, 4),
        num_heads: Sequence[int] = (2, 4, 8),
        head_dim: int = 48,
        mlp_ratio: float = 2.0,
        qkv_bias: bool = False,
        pool: str = "cls",
        drop_path: float = 0.1,
        mask: Optional[str] = None,
        mask_options: Optional[dict] = None,
        in_chans: int = 3,
    ) -> None:
        super().__init__()
        check_pool("pit", pool)
        side = check_stages(img_size, patch_size, depth, num_heads)
        self.pool = pool
        self.num_prefix_tokens = 1 if pool == "cls" else 0
        self.patch_embed = nn.Conv2d(in_chans, dim, kernel_size=patch_size, stride=patch_size)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim)) if pool == "cls" else None
        # Official init: pos-embedding and CLS ~ N(0, 1); Linear and Conv2d Xavier-normal.
        self.pos_embed = nn.Parameter(torch.randn(1, side * side + self.num_prefix_tokens, dim))

        self.grids: list[tuple[int, int]] = []
        self.stages = nn.ModuleList()
        self.pools = nn.ModuleList()
        for i, (stage_depth, heads) in enumerate(zip(depth, num_heads)):
            grid = (side, side)
            self.grids.append(grid)
            self.stages.append(
                nn.Sequential(
                    *[
                        Block(
                            dim,
                            heads,
                            head_dim,
                            mlp_ratio,
                            qkv_bias,
                            drop_path,
                            build_mask(mask, grid, heads, mask_options),
                            self.num_prefix_tokens,
                        )
                        for _ in range(stage_depth)
                    ]
                )
            )
            if i < len(depth) - 1:
                self.pools.append(Pool(dim, self.num_prefix_tokens))
                dim, side = 2 * dim, side // 2
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)
        init_weights(self, (nn.Linear, nn.Conv2d))

    def forward_features(self, x: Tensor) -> Tensor:
        """Tokens after the last stage, shape (B, prefix + N_last, dim_last)."""
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = x + self.pos_embed
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i < len(self.pools):
                x = self.pools[i](x, self.grids[i])
        return x

    def forward_head(self, x: Tensor) -> Tensor:
        x = x[:, 0] if self.pool == "cls" else x.mean(dim=1)
        return self.head(self.norm(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


@register_model("pit", default_pool="cls", pools=("cls", "gap"))
def pit(num_classes: int = 10, img_size: int = 32, mask: Optional[str] = None, pool: str = "cls", **options) -> PiT:
    """The paper's PiT: widths 96/192/384, depths (2, 6, 4), heads (2, 4, 8) x 48, patch 2 (4 at 64 px)."""
    cfg = dict(
        patch_size=max(img_size // 16, 1),
        dim=96,
        depth=(2, 6, 4),
        num_heads=(2, 4, 8),
        head_dim=48,
        mlp_ratio=2.0,
    )
    cfg.update(options)
    return PiT(img_size=img_size, num_classes=num_classes, pool=pool, mask=mask, **cfg)
