"""Parameters, MACs and FLOPs of a model, counted two ways.

* ``macs``: module-level multiply-accumulates counted as the paper's table counts
  them (ptflops 0.7 hooks on Linear, Conv, norm, GELU/ReLU and pooling layers, batch
  1); this reproduces the table's MACs for all five families exactly. The
  attention products QK^T and AV and the mask arithmetic are *not* counted, so a
  model has the same MACs with and without GMM by construction.
* ``flops``: every floating-point operation of the forward pass that PyTorch's
  ``torch.utils.flop_counter`` sees, attention products included (2 per MAC).
"""

from __future__ import annotations

import math
from typing import Dict

import torch
from torch import Tensor, nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["profile", "count_parameters", "module_macs"]


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters; buffers such as fixed distance tables are not parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _linear(m: nn.Linear, inp: Tensor, out: Tensor) -> int:
    # ptflops 0.7: the bias is counted once per layer, not once per token.
    return inp.numel() * out.shape[-1] + (out.shape[-1] if m.bias is not None else 0)


def _conv(m: nn.modules.conv._ConvNd, inp: Tensor, out: Tensor) -> int:
    per_position = math.prod(m.kernel_size) * m.in_channels * (m.out_channels // m.groups)
    active = out.shape[0] * math.prod(out.shape[2:])
    return per_position * active + (m.out_channels * active if m.bias is not None else 0)


def _norm(m: nn.Module, inp: Tensor, out: Tensor) -> int:
    # ptflops doubles only for modules with an ``affine`` attribute (BatchNorm, GroupNorm);
    # LayerNorm's is called ``elementwise_affine``, so LayerNorm counts once.
    return inp.numel() * (2 if getattr(m, "affine", False) else 1)


def _elementwise(m: nn.Module, inp: Tensor, out: Tensor) -> int:
    return inp.numel()


_MAC_RULES = {
    nn.Linear: _linear,
    nn.Conv1d: _conv,
    nn.Conv2d: _conv,
    nn.LayerNorm: _norm,
    nn.BatchNorm1d: _norm,
    nn.BatchNorm2d: _norm,
    nn.GroupNorm: _norm,
    nn.ReLU: _elementwise,
    nn.GELU: _elementwise,
    nn.MaxPool2d: _elementwise,
    nn.AvgPool2d: _elementwise,
    nn.AdaptiveAvgPool1d: _elementwise,
    nn.AdaptiveAvgPool2d: _elementwise,
}


@torch.no_grad()
def module_macs(model: nn.Module, x: Tensor) -> int:
    """MACs of ``model(x)`` under the module-level rules of ptflops 0.7 (see module doc)."""
    total = 0

    def hook(m: nn.Module, args, out) -> None:
        nonlocal total
        total += _MAC_RULES[type(m)](m, args[0], out)

    handles = [m.register_forward_hook(hook) for m in model.modules() if type(m) in _MAC_RULES]
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
    return total


def profile(model: nn.Module, img_size: int = 32, in_chans: int = 3) -> Dict[str, int]:
    """Cost of one image through ``model``.

    Args:
        model: any image classifier.
        img_size: input side in pixels.
        in_chans: input channels.

    Returns:
        ``{"params": trainable parameters, "macs": module-level MACs as the paper
        counts them, "flops": total forward FLOPs incl. attention products}``.
    """
    was_training = model.training
    model.eval()
    p = next(model.parameters())
    x = torch.zeros(1, in_chans, img_size, img_size, device=p.device, dtype=p.dtype)
    try:
        macs = module_macs(model, x)
        counter = FlopCounterMode(display=False)
        # The math backend decomposes SDPA into matmuls the counter sees on every device.
        # Grad mode stays on: the counter's module tracker hooks autograd (kwargs inputs).
        with sdpa_kernel(SDPBackend.MATH), counter:
            model(x)
    finally:
        model.train(was_training)
    return {"params": count_parameters(model), "macs": macs, "flops": int(counter.get_total_flops())}
