"""W-Net's soft normalised cut and reconstruction."""

from __future__ import annotations

import pytest
import torch

from unseg.models.cirs import UNet
from unseg.models.wnet import reconstruction_loss, soft_ncut_loss


def _halves() -> tuple[torch.Tensor, torch.Tensor]:
    """A red left half and a blue right half, and that segmentation as hard probabilities."""
    x = torch.zeros(1, 3, 16, 16)
    x[:, 0, :, :8] = 1.0
    x[:, 2, :, 8:] = 1.0
    probs = torch.zeros(1, 2, 16, 16)
    probs[:, 0, :, :8] = 1.0
    probs[:, 1, :, 8:] = 1.0
    return x, probs


def test_the_cut_is_zero_along_a_colour_edge_and_k_minus_one_for_uniform_segments():
    x, probs = _halves()
    assert soft_ncut_loss(x, probs).item() == pytest.approx(0.0, abs=1e-6)
    uniform = torch.full((1, 2, 16, 16), 0.5)
    assert soft_ncut_loss(x, uniform).item() == pytest.approx(1.0, abs=1e-6)
    across = torch.zeros(1, 2, 16, 16)  # top and bottom: cuts through both colours
    across[:, 0, :8] = 1.0
    across[:, 1, 8:] = 1.0
    assert soft_ncut_loss(x, across).item() > 0.05


def test_a_radius_of_one_links_each_pixel_to_itself_only():
    x = torch.rand(1, 3, 12, 12)
    probs = torch.softmax(torch.randn(1, 3, 12, 12), dim=1)
    # w_ii = 1: assoc(A_k, A_k) = sum_i p_ik^2 and assoc(A_k, V) = sum_i p_ik
    expected = 3 - sum(float((probs[:, k] ** 2).sum() / probs[:, k].sum()) for k in range(3))
    assert soft_ncut_loss(x, probs, radius=1).item() == pytest.approx(expected, rel=1e-5)
    assert soft_ncut_loss(x, probs, radius=5).item() != pytest.approx(expected, rel=1e-3)


def test_reconstruction_trains_both_networks():
    torch.manual_seed(0)
    encoder, decoder = UNet(3, 2), UNet(2, 3)
    x = torch.rand(2, 3, 16, 16)
    loss = reconstruction_loss(x, encoder, decoder)
    loss.backward()
    assert 0 < loss.item() < 1
    assert encoder.head.weight.grad.abs().sum() > 0 and decoder.head.weight.grad.abs().sum() > 0
