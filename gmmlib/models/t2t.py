"""The paper's small-data T2T-ViT: soft splits with token transformers, then 12 blocks.

Tokens-to-token: a 3x3/stride-2 unfold ("soft split") of the image gives a 16 x 16
grid of 27-dim tokens at 32 px; a 1-head "token transformer" (width 64) processes them,
they are folded back into an image and split again. After the last split (8 x 8 grid,
576-dim tokens) a Linear projects to the width 256. At 64 px there is one more
split, so two token transformers run, on 32 x 32 and 16 x 16 grids. Then come 12
blocks with fixed sinusoidal position embeddings, no CLS token and a mean-pooled head.

The mask sits in every token transformer (on its grid, 1 head) and every main block
(8 x 8, 4 heads). Two quirks of the official code are kept because they change what
the model computes:

* Its attention carries an internal residual. Each main block computes
  ``x + drop_path(proj(attn @ v) + norm1(x))``, the normalised input added once more
  inside the attention branch (inherited from SPT's T2T). The token transformer adds
  ``v`` instead (its in/out widths differ).
* The token transformer scales the logits by ``1 / sqrt(input width)`` (27, or 576 for
  the second one at 64 px), not by ``1 / sqrt(head width 64)`` (inherited from
  T2T-ViT).

Two dead parameters of the official model are left out: an unused CLS token (256)
and an unused LayerNorm over the 576-dim tokens (1,152). So this model has 1,408
trainable parameters fewer than the official one (6,507,802 against 6,509,210 at 100
classes).
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from timm.layers import DropPath, Mlp, trunc_normal_
from torch import Tensor, nn

from ..attention import masked_attention
from ..masks import AttentionMask
from .registry import build_mask, check_patch_size, check_pool, register_model

__all__ = ["T2TViT", "T2TAttention", "TokenTransformer", "T2TBlock", "sinusoid_table"]


def sinusoid_table(num_positions: int, dim: int) -> Tensor:
    """Fixed sine/cosine position table of "Attention Is All You Need", shape (1, N, dim)."""
    pos = torch.arange(num_positions, dtype=torch.float64)[:, None]
    rate = 10000.0 ** (-(2 * (torch.arange(dim) // 2)).double() / dim)
    angle = pos * rate
    table = torch.where(torch.arange(dim) % 2 == 0, angle.sin(), angle.cos())
    return table.float()[None]


class T2TAttention(nn.Module):
    """T2T-ViT attention, with an internal residual and an optional mask.

    ``out = proj(softmax(q k^T * scale) v) + skip``, where the skip is ``v`` (token
    transformer, whose output width differs from its input width) or the input ``x``
    (main blocks).

    Args:
        dim: input token width.
        out_dim: width of q, k, v and of the output.
        num_heads: attention heads.
        scale: logit scale.
        skip: "v" or "input", the internal residual.
        qkv_bias: bias in the qkv projection.
        mask: attention mask of this layer, or None.
    """

    def __init__(
        self,
        dim: int,
        out_dim: int,
        num_heads: int,
        scale: float,
        skip: str,
        qkv_bias: bool = False,
        mask: Optional[AttentionMask] = None,
    ) -> None:
        super().__init__()
        if skip not in ("v", "input"):
            raise ValueError(f"skip must be 'v' or 'input', got {skip!r}")
        if skip == "input" and dim != out_dim:
            raise ValueError(f"an 'input' skip needs dim == out_dim, got {dim} and {out_dim}")
        if out_dim % num_heads:
            raise ValueError(f"out_dim {out_dim} is not divisible by num_heads {num_heads}")
        if skip == "v" and num_heads != 1:
            raise ValueError("a 'v' skip needs a single head")
        self.num_heads, self.head_dim = num_heads, out_dim // num_heads
        self.scale, self.skip = scale, skip
        self.qkv = nn.Linear(dim, 3 * out_dim, bias=qkv_bias)
        self.proj = nn.Linear(out_dim, out_dim)
        self.mask = mask

    def forward(self, x: Tensor) -> Tensor:
        b, t, _ = x.shape
        q, k, v = self.qkv(x).reshape(b, t, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        out = masked_attention(q, k, v, self.mask, scale=self.scale, num_prefix_tokens=0)  # T2T has no CLS token
        out = self.proj(out.transpose(1, 2).reshape(b, t, -1))
        return out + (v.squeeze(1) if self.skip == "v" else x)


class TokenTransformer(nn.Module):
    """T2T's token transformer: ``y = attn(norm1(x))`` (with a v-skip), then ``y + mlp(norm2(y))``.

    Args:
        dim: input token width (3 * 3 * channels of the soft split).
        out_dim: output token width ("token_dim", 64).
        mask: attention mask (1 head) over the grid of this soft split, or None.
    """

    def __init__(self, dim: int, out_dim: int, mask: Optional[AttentionMask] = None) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        # Official quirk: the scale uses the input width, not the head width out_dim.
        self.attn = T2TAttention(dim, out_dim, 1, scale=dim**-0.5, skip="v", mask=mask)
        self.norm2 = nn.LayerNorm(out_dim)
        self.mlp = Mlp(out_dim, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        x = self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class T2TBlock(nn.Module):
    """Main T2T block: ``x + drop_path(attn(norm1(x)) + norm1(x))``, then ``x + drop_path(mlp(norm2(x)))``.

    Args:
        dim: token width.
        num_heads: attention heads (head width ``dim // num_heads``).
        mlp_ratio: MLP hidden width over ``dim``.
        qkv_bias: bias in the qkv projection.
        drop_path: stochastic-depth rate of both residual branches.
        mask: attention mask of this block, or None.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 2.0,
        qkv_bias: bool = False,
        drop_path: float = 0.0,
        mask: Optional[AttentionMask] = None,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        # Official quirk: the internal "input" skip adds norm1(x) inside the branch.
        self.attn = T2TAttention(dim, dim, num_heads, (dim // num_heads) ** -0.5, "input", qkv_bias, mask)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class T2TViT(nn.Module):
    """T2T-ViT for small images.

    Args:
        img_size: input side in pixels.
        num_classes: classifier outputs.
        soft_splits: number of 3x3/stride-2 soft splits (2 at 32 px, 3 at 64 px);
            a token transformer runs between consecutive splits.
        token_dim: width of the token transformers.
        dim: width of the main blocks.
        depth: number of main blocks.
        num_heads: attention heads of the main blocks.
        mlp_ratio: MLP hidden width over ``dim`` in the main blocks.
        qkv_bias: bias in the qkv projections of the main blocks.
        pool: "gap" (mean of the tokens), the only choice: the official removes CLS.
        drop_path: stochastic-depth rate of the last main block, rising linearly from 0.
        mask: mask kind for every token transformer and main block, or None.
        mask_options: options of that mask kind. GMM masks on the token-transformer
            grids (16 x 16, 32 x 32) get ``truncate_like_official=True`` unless set here
            (see :func:`gmmlib.models.registry.build_mask`).
        in_chans: input channels.
    """

    def __init__(
        self,
        img_size: int = 32,
        num_classes: int = 10,
        soft_splits: int = 2,
        token_dim: int = 64,
        dim: int = 256,
        depth: int = 12,
        num_heads: int = 4,
        mlp_ratio: float = 2.0,
        qkv_bias: bool = False,
        pool: str = "gap",
        drop_path: float = 0.1,
        mask: Optional[str] = None,
        mask_options: Optional[dict] = None,
        in_chans: int = 3,
    ) -> None:
        super().__init__()
        check_pool("t2t", pool)  # "gap" only: the official removes CLS
        if soft_splits < 1:
            raise ValueError(f"soft_splits must be >= 1, got {soft_splits}")
        # Each soft split halves the grid: the image is cut into patches of 2^soft_splits px.
        check_patch_size(img_size, 2**soft_splits)
        self.unfold = nn.Unfold(kernel_size=3, stride=2, padding=1)
        self.token_transformers = nn.ModuleList()
        self.grids: list[tuple[int, int]] = []
        width, side = in_chans * 9, img_size // 2
        for _ in range(soft_splits - 1):
            grid = (side, side)
            self.grids.append(grid)
            self.token_transformers.append(TokenTransformer(width, token_dim, build_mask(mask, grid, 1, mask_options)))
            width, side = token_dim * 9, side // 2
        self.grid = (side, side)
        self.project = nn.Linear(width, dim)
        self.register_buffer("pos_embed", sinusoid_table(side * side, dim), persistent=False)
        rates = torch.linspace(0, drop_path, depth).tolist()
        self.blocks = nn.Sequential(
            *[
                T2TBlock(
                    dim,
                    num_heads,
                    mlp_ratio,
                    qkv_bias,
                    rates[i],
                    build_mask(mask, self.grid, num_heads, mask_options),
                )
                for i in range(depth)
            ]
        )
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)
        # Official init: trunc-normal(0.02) Linear weights, zero biases.
        for m in self.modules():
            if isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def tokens_to_token(self, x: Tensor) -> Tensor:
        """Soft splits and token transformers: image (B, C, H, W) -> tokens (B, N, dim)."""
        x = self.unfold(x).transpose(1, 2)
        for transformer, (h, w) in zip(self.token_transformers, self.grids):
            x = transformer(x)
            x = self.unfold(x.transpose(1, 2).reshape(x.shape[0], -1, h, w)).transpose(1, 2)
        return self.project(x)

    def forward_features(self, x: Tensor) -> Tensor:
        """Tokens after the last block and the final norm, shape (B, N, dim)."""
        x = self.tokens_to_token(x) + self.pos_embed
        return self.norm(self.blocks(x))

    def forward_head(self, x: Tensor) -> Tensor:
        return self.head(x.mean(dim=1))

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


@register_model("t2t", default_pool="gap", pools=("gap",))
def t2t(num_classes: int = 10, img_size: int = 32, mask: Optional[str] = None, pool: str = "gap", **options) -> T2TViT:
    """The paper's T2T-ViT: 2 soft splits (3 at 64 px), token dim 64, dim 256, 12 blocks, 4 heads, MLP 2."""
    cfg = dict(
        soft_splits=max(round(math.log2(img_size / 8)), 1),
        token_dim=64,
        dim=256,
        depth=12,
        num_heads=4,
        mlp_ratio=2.0,
    )
    cfg.update(options)
    return T2TViT(img_size=img_size, num_classes=num_classes, pool=pool, mask=mask, **cfg)
