"""The paper's small-data Swin Transformer: three stages of shifted-window attention.

A 2 x 2 conv patch-embedding (4 x 4 at 64 px) gives a 16 x 16 grid. Attention runs in
4 x 4 windows, shifted by 2 in every second block, with Swin's learned relative
position bias. The mask (GMM, ELM, ...) lives on the window grid, in every block
including the shifted ones, and is applied where the official code applies GMM:

    logits = M * (q * scale @ k^T) + B_rel (+ shift mask)

i.e. a multiplicative mask scales the raw logits *before* the relative bias and the
shift mask are added. When a stage's grid is no larger than the window (the last
stage, 4 x 4), the window shrinks to the grid and the shift is 0, as in Swin; its
masks are built for that window grid.

ELM: the official code cannot enable it for Swin. Here it works, one 16 x 16 matrix per
block on 4 x 4 windows (shared by all windows and heads).
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from timm.layers import DropPath, Mlp, trunc_normal_
from torch import Tensor, nn

from ..attention import masked_attention
from ..masks import AttentionMask, relative_position_index
from .registry import build_mask, check_pool, check_stages, register_model

__all__ = ["SwinTransformer", "SwinBlock", "WindowAttention", "PatchMerging"]


def window_partition(x: Tensor, window: int) -> Tensor:
    """(B, H, W, C) -> (B * num_windows, window * window, C), windows in row-major order."""
    b, h, w, c = x.shape
    x = x.reshape(b, h // window, window, w // window, window, c).transpose(2, 3)
    return x.reshape(-1, window * window, c)


def window_reverse(windows: Tensor, window: int, h: int, w: int) -> Tensor:
    """Inverse of :func:`window_partition`: (B * num_windows, window * window, C) -> (B, H, W, C)."""
    c = windows.shape[-1]
    x = windows.reshape(-1, h // window, w // window, window, window, c).transpose(2, 3)
    return x.reshape(-1, h, w, c)


def shift_window_mask(side: int, window: int, shift: int) -> Tensor:
    """Swin's additive mask for shifted windows, shape (num_windows, N, N).

    After the cyclic shift a window can hold tokens from up to four image regions
    that are not neighbours; pairs from different regions get -100 (Swin's value).
    """
    region = torch.zeros(1, side, side, 1)
    bands = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
    for i, rows in enumerate(bands):
        for j, cols in enumerate(bands):
            region[:, rows, cols, :] = 3 * i + j
    region = window_partition(region, window).squeeze(-1)  # (num_windows, N)
    different = region[:, None, :] != region[:, :, None]
    return torch.zeros(different.shape).masked_fill(different, -100.0)


class WindowAttention(nn.Module):
    """Multi-head attention inside windows, with Swin's relative position bias and a mask.

    Args:
        dim: token dimension.
        window: window side.
        num_heads: attention heads.
        qkv_bias: bias in the qkv projection.
        mask: attention mask over the window grid, or None.
    """

    def __init__(
        self, dim: int, window: int, num_heads: int, qkv_bias: bool = True, mask: Optional[AttentionMask] = None
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        # Swin's own relative position bias: one learned scalar per head and 2-D offset,
        # (2w - 1)^2 per head, trunc-normal(0.02). Part of the architecture, not a study mask.
        self.rel_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, num_heads))
        trunc_normal_(self.rel_bias_table, std=0.02)
        self.register_buffer("rel_index", relative_position_index((window, window)), persistent=False)
        self.mask = mask

    def rel_bias(self) -> Tensor:
        """Relative position bias of the window, shape (H, N, N)."""
        return self.rel_bias_table[self.rel_index].permute(2, 0, 1)

    def forward(self, x: Tensor, shift_mask: Optional[Tensor] = None) -> Tensor:
        """Attend within each window.

        Args:
            x: (B * num_windows, N, dim) window tokens, batch-major.
            shift_mask: (num_windows, N, N) additive mask of shifted windows, or None.
        """
        bw, n, c = x.shape
        q, k, v = self.qkv(x).reshape(bw, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        bias = self.rel_bias()[None]  # (1, H, N, N)
        if shift_mask is not None:
            num_windows = shift_mask.shape[0]
            bias = (bias + shift_mask[:, None]).repeat(bw // num_windows, 1, 1, 1)  # (B * nW, H, N, N)
        out = masked_attention(q, k, v, self.mask, scale=self.scale, attn_bias=bias, num_prefix_tokens=0)  # a window
        return self.proj(out.transpose(1, 2).reshape(bw, n, c))


class SwinBlock(nn.Module):
    """Swin block: (shifted-)window attention and an MLP, both pre-norm with residuals.

    Args:
        dim: token dimension.
        side: side of the (square) token grid.
        num_heads: attention heads.
        window: window side; shrinks to ``side`` when ``side <= window``.
        shift: cyclic shift (0 for regular windows); forced to 0 when the window shrinks.
        mlp_ratio: MLP hidden width over ``dim``.
        qkv_bias: bias in the qkv projection.
        drop_path: stochastic-depth rate of both residual branches.
        mask: mask kind on the window grid, or None.
        mask_options: options of that mask kind.
    """

    def __init__(
        self,
        dim: int,
        side: int,
        num_heads: int,
        window: int = 4,
        shift: int = 0,
        mlp_ratio: float = 2.0,
        qkv_bias: bool = True,
        drop_path: float = 0.0,
        mask: Optional[str] = None,
        mask_options: Optional[dict] = None,
    ) -> None:
        super().__init__()
        if side <= window:
            window, shift = side, 0
        if side % window:
            raise ValueError(f"the {side} x {side} token grid is not divisible by window {window}")
        self.side, self.window, self.shift = side, window, shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(
            dim, window, num_heads, qkv_bias, build_mask(mask, (window, window), num_heads, mask_options)
        )
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        shift_mask = shift_window_mask(side, window, shift) if shift else None
        self.register_buffer("shift_mask", shift_mask, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        b, n, c = x.shape
        y = self.norm1(x).reshape(b, self.side, self.side, c)
        if self.shift:
            y = torch.roll(y, shifts=(-self.shift, -self.shift), dims=(1, 2))
        y = self.attn(window_partition(y, self.window), self.shift_mask)
        y = window_reverse(y, self.window, self.side, self.side)
        if self.shift:
            y = torch.roll(y, shifts=(self.shift, self.shift), dims=(1, 2))
        x = x + self.drop_path(y.reshape(b, n, c))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PatchMerging(nn.Module):
    """Concatenate each 2 x 2 group of tokens (4 dim), normalise, project to 2 dim.

    Args:
        dim: input token dimension.
        side: side of the (square) input grid.
    """

    def __init__(self, dim: int, side: int) -> None:
        super().__init__()
        self.side = side
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        b, _, c = x.shape
        x = x.reshape(b, self.side // 2, 2, self.side // 2, 2, c)
        # (row offset, col offset) order (0,0), (1,0), (0,1), (1,1), as in Swin.
        x = x.permute(0, 1, 3, 4, 2, 5).reshape(b, (self.side // 2) ** 2, 4 * c)
        return self.reduction(self.norm(x))


class SwinTransformer(nn.Module):
    """Swin Transformer for small images with an optional mask in every window attention.

    Args:
        img_size: input side in pixels.
        patch_size: patch side in pixels (conv patch-embedding followed by LayerNorm).
        num_classes: classifier outputs.
        dim: width of the first stage; each patch merging doubles it.
        depth: blocks per stage; blocks alternate regular and shifted windows.
        num_heads: attention heads per stage.
        window: window side.
        mlp_ratio: MLP hidden width over the stage width.
        qkv_bias: bias in the qkv projections.
        pool: "gap" (mean of the final tokens), the only choice.
        drop_path: stochastic-depth rate of the last block, rising linearly from 0.
        mask: mask kind for every block, on its window grid, or None.
        mask_options: options of that mask kind.
        in_chans: input channels.
    """

    def __init__(
        self,
        img_size: int = 32,
        patch_size: int = 2,
        num_classes: int = 10,
        dim: int = 96,
        depth: Sequence[int] = (2, 6, 4),
        num_heads: Sequence[int] = (3, 6, 12),
        window: int = 4,
        mlp_ratio: float = 2.0,
        qkv_bias: bool = True,
        pool: str = "gap",
        drop_path: float = 0.1,
        mask: Optional[str] = None,
        mask_options: Optional[dict] = None,
        in_chans: int = 3,
    ) -> None:
        super().__init__()
        check_pool("swin", pool)
        side = check_stages(img_size, patch_size, depth, num_heads)
        self.patch_embed = nn.Conv2d(in_chans, dim, kernel_size=patch_size, stride=patch_size)
        self.patch_norm = nn.LayerNorm(dim)
        # Absolute position embedding ("ape"), on in the paper's config.
        self.pos_embed = nn.Parameter(torch.zeros(1, side * side, dim))
        trunc_normal_(self.pos_embed, std=0.02)

        rates = torch.linspace(0, drop_path, sum(depth)).tolist()
        stages = []
        for i, (stage_depth, heads) in enumerate(zip(depth, num_heads)):
            for j in range(stage_depth):
                stages.append(
                    SwinBlock(
                        dim,
                        side,
                        heads,
                        window,
                        shift=window // 2 if j % 2 else 0,
                        mlp_ratio=mlp_ratio,
                        qkv_bias=qkv_bias,
                        drop_path=rates[sum(depth[:i]) + j],
                        mask=mask,
                        mask_options=mask_options,
                    )
                )
            if i < len(depth) - 1:
                stages.append(PatchMerging(dim, side))
                dim, side = 2 * dim, side // 2
        self.layers = nn.Sequential(*stages)
        self.norm = nn.LayerNorm(dim)
        # A pooling module rather than .mean() so that module-hook MAC counters see it, as in the official.
        self.avgpool = nn.AdaptiveAvgPool1d(1)
        self.head = nn.Linear(dim, num_classes)
        # The official keeps PyTorch's default init for Linear, Conv2d and LayerNorm
        # (it never applies Swin's trunc-normal init); only the two position tables are
        # trunc-normal(0.02).

    def forward_features(self, x: Tensor) -> Tensor:
        """Tokens after the last stage, shape (B, N_last, dim_last)."""
        x = self.patch_norm(self.patch_embed(x).flatten(2).transpose(1, 2))
        return self.norm(self.layers(x + self.pos_embed))

    def forward_head(self, x: Tensor) -> Tensor:
        return self.head(self.avgpool(x.transpose(1, 2)).flatten(1))

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


@register_model("swin", default_pool="gap", pools=("gap",))
def swin(
    num_classes: int = 10, img_size: int = 32, mask: Optional[str] = None, pool: str = "gap", **options
) -> SwinTransformer:
    """The paper's Swin: widths 96/192/384, depths (2, 6, 4), heads (3, 6, 12), window 4, patch 2 (4 at 64 px)."""
    cfg = dict(
        patch_size=max(img_size // 16, 1),
        dim=96,
        depth=(2, 6, 4),
        num_heads=(3, 6, 12),
        window=4,
        mlp_ratio=2.0,
    )
    cfg.update(options)
    return SwinTransformer(img_size=img_size, num_classes=num_classes, pool=pool, mask=mask, **cfg)
