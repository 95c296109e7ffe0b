"""The mask networks: U-Net, the CIRS losses, the AIR autoencoders."""

from __future__ import annotations

import math

import pytest
import torch

from unseg.models.cirs import (
    FeatureNet,
    SegmentAutoencoders,
    UNet,
    air_loss,
    balance_penalty,
    cirs_losses,
    masked_segments,
)


def test_unet_keeps_the_size():
    assert UNet(3, 4)(torch.rand(2, 3, 32, 24)).shape == (2, 4, 32, 24)


def test_balance_penalty_is_zero_for_equal_use_and_log_k_for_one_segment():
    assert float(balance_penalty(torch.zeros(2, 4, 3, 3))) == pytest.approx(0, abs=1e-6)
    one = torch.full((2, 4, 3, 3), -50.0)
    one[:, 0] = 50
    assert float(balance_penalty(one)) == pytest.approx(math.log(4), abs=1e-4)


def test_segments_partition_the_image():
    x = torch.rand(2, 3, 8, 8)
    masks = torch.nn.functional.one_hot(torch.randint(0, 3, (2, 8, 8)), 3).permute(0, 3, 1, 2)
    assert torch.allclose(masked_segments(x, masks.float()).sum(1), x)


def test_cirs_within_term_vanishes_for_identical_images():
    torch.manual_seed(0)
    x = torch.rand(1, 3, 16, 16).repeat(4, 1, 1, 1)
    s, g = UNet(3, 2).eval(), FeatureNet(3, 2).eval()
    loss_s, loss_g = cirs_losses(x, s, g, alpha1=1, alpha2=0, balance=0)
    assert loss_g.item() == pytest.approx(0, abs=1e-6)
    assert loss_s.item() == pytest.approx(0, abs=1e-6)
    different = torch.rand(4, 3, 16, 16)
    assert cirs_losses(different, s, g, alpha1=1, alpha2=0, balance=0)[1].item() < 0


@pytest.mark.parametrize("k", [2, 4, 8])
def test_air_capacity_is_shared_by_the_segments(k):
    coders = SegmentAutoencoders(3, k, capacity=16)
    codes = [next(c for c in coder if isinstance(c, torch.nn.Conv2d) and c.stride == (2, 2)
                  and c.out_channels not in (16, 32)) for coder in coders.coders]
    assert sum(c.out_channels for c in codes) == 16


def test_air_loss_trains_the_segmenter_through_hard_masks():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 16, 16)
    s, coders = UNet(3, 2), SegmentAutoencoders(3, 2, capacity=4)
    loss = air_loss(x, s, coders, balance=0.0)
    loss.backward()
    assert s.head.weight.grad is not None and s.head.weight.grad.abs().sum() > 0
