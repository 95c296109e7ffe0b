"""Argmax in place: a hard one-hot segmentation forward, the softmax's gradient backward."""

from __future__ import annotations

from typing import Any, cast

import torch


class ArgmaxInPlace(torch.autograd.Function):
    """Forward: the one-hot of the argmax over ``dim``. Backward: the gradient the softmax
    over ``dim`` would pass (straight-through), so a segmenter can be trained through hard
    masks."""

    @staticmethod
    def forward(ctx: Any, logits: torch.Tensor, dim: int = 1) -> torch.Tensor:
        soft = torch.softmax(logits, dim=dim)
        ctx.save_for_backward(soft)
        ctx.dim = dim
        index = logits.argmax(dim=dim, keepdim=True)
        return torch.zeros_like(logits).scatter_(dim, index, 1.0)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (soft,) = ctx.saved_tensors
        # the softmax's vector-Jacobian product: s * (g - <g, s>)
        return soft * (grad - (grad * soft).sum(dim=ctx.dim, keepdim=True)), None


def argmax_in_place(logits: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Hard one-hot masks of ``logits`` (B, K, H, W by default) with softmax gradients."""
    return cast(torch.Tensor, ArgmaxInPlace.apply(logits, dim))
