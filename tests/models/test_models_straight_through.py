"""Argmax in place: hard forward, softmax gradient backward."""

from __future__ import annotations

import torch

from unseg.models.straight_through import argmax_in_place


def test_forward_is_the_one_hot_argmax():
    logits = torch.randn(2, 4, 5, 6, generator=torch.Generator().manual_seed(0))
    hard = argmax_in_place(logits)
    assert torch.equal(hard.sum(1), torch.ones(2, 5, 6))
    assert torch.equal(hard.argmax(1), logits.argmax(1))
    assert set(hard.unique().tolist()) == {0.0, 1.0}


def test_backward_is_the_softmax_gradient():
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(3, 4, 2, 2, generator=gen)
    weight = torch.randn(3, 4, 2, 2, generator=gen)
    a = logits.clone().requires_grad_()
    (argmax_in_place(a) * weight).sum().backward()
    b = logits.clone().requires_grad_()
    (torch.softmax(b, dim=1) * weight).sum().backward()
    assert a.grad is not None and b.grad is not None
    assert torch.allclose(a.grad, b.grad, atol=1e-6)
    c = logits[:, :, 0, 0].clone().requires_grad_()  # another dim
    (argmax_in_place(c, dim=1) * weight[:, :, 0, 0]).sum().backward()
    assert torch.allclose(c.grad, b.grad[:, :, 0, 0], atol=1e-6)
