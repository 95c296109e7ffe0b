"""The mask networks: U-Net, the CIRS terms and losses, g, the AIR autoencoders."""

from __future__ import annotations

import math

import pytest
import torch

from unseg.models.cirs import (
    ConvFeatureNet,
    ConvSegmentAutoencoders,
    DenseFeatureNet,
    DenseSegmentAutoencoders,
    UNet,
    air_loss,
    balance_penalty,
    cirs_losses,
    cirs_terms,
    masked_segments,
)


def test_unet_keeps_the_size_and_dropout_adds_no_weights():
    assert UNet(3, 4)(torch.rand(2, 3, 32, 24)).shape == (2, 4, 32, 24)
    assert UNet(3, 4, dropout=0.4).state_dict().keys() == UNet(3, 4).state_dict().keys()
    net = UNet(3, 4, dropout=0.4)
    x = torch.rand(2, 3, 16, 16)
    assert not torch.equal(net(x), net(x))  # training mode drops
    net.eval()
    assert torch.equal(net(x), net(x))


def test_balance_penalty_is_zero_for_equal_use_and_log_k_for_one_segment():
    assert float(balance_penalty(torch.zeros(2, 4, 3, 3))) == pytest.approx(0, abs=1e-6)
    one = torch.full((2, 4, 3, 3), -50.0)
    one[:, 0] = 50
    assert float(balance_penalty(one)) == pytest.approx(math.log(4), abs=1e-4)


def test_segments_partition_the_image():
    x = torch.rand(2, 3, 8, 8)
    masks = torch.nn.functional.one_hot(torch.randint(0, 3, (2, 8, 8)), 3).permute(0, 3, 1, 2)
    assert torch.allclose(masked_segments(x, masks.float()).sum(1), x)


def test_cirs_terms_are_the_thesis_sums_and_the_means_divide_them():
    # 2 images, 2 segments, 1-d embeddings: segment 0 at 0 and 2, segment 1 at 5 and 5
    feats = torch.tensor([[[0.0], [5.0]], [[2.0], [5.0]]])
    within, between = cirs_terms(feats, "sum")
    # within: (1/K) * sum_k sum_i (f - m_k)^2 = (1 + 1 + 0 + 0) / 2; means 1 and 5, centre 3
    assert within.item() == pytest.approx(1.0)
    assert between.item() == pytest.approx(4.0 + 4.0)
    mean_within, mean_between = cirs_terms(feats, "mean")
    assert mean_within.item() == pytest.approx(1.0 / 2)  # over the batch of 2
    assert mean_between.item() == pytest.approx(8.0 / 2)  # over K = 2
    with pytest.raises(ValueError, match="reduction"):
        cirs_terms(feats, "median")


@pytest.mark.parametrize("make_g", [lambda: DenseFeatureNet(3, 2, 16),
                                    lambda: ConvFeatureNet(3, 2)])
def test_the_within_term_vanishes_for_identical_images(make_g):
    torch.manual_seed(0)
    s, g = UNet(3, 2).eval(), make_g().eval()
    same = torch.rand(1, 3, 16, 16).repeat(4, 1, 1, 1)
    loss_s, _ = cirs_losses(same, s, g, alpha1=1, alpha2=0, balance=0)
    assert loss_s.item() == pytest.approx(0, abs=1e-6)
    _, loss_g = cirs_losses(torch.rand(4, 3, 16, 16), s, g, alpha1=1, alpha2=0, balance=0,
                            g_training="critic")
    assert loss_g.item() < 0  # the critic's loss is minus the within term


def test_g_shares_the_loss_of_s_in_the_thesis_and_is_a_critic_as_an_option():
    torch.manual_seed(0)
    x = torch.rand(4, 3, 16, 16)
    s, g = UNet(3, 2).eval(), DenseFeatureNet(3, 2, 16).eval()
    loss_s, loss_g = cirs_losses(x, s, g, alpha1=1, alpha2=1, balance=0)
    assert loss_g is loss_s
    loss_s, loss_g = cirs_losses(x, s, g, alpha1=0, alpha2=1, balance=0, g_training="critic")
    within, between = cirs_terms(g(masked_segments(x, torch.nn.functional.one_hot(
        s(x).argmax(1), 2).permute(0, 3, 1, 2).float())), "sum")
    assert loss_s.item() == pytest.approx(-between.item(), rel=1e-5)
    assert loss_g.item() == pytest.approx(-within.item(), rel=1e-5)
    with pytest.raises(ValueError, match="g_training"):
        cirs_losses(x, s, g, alpha1=1, alpha2=1, balance=0, g_training="both")


def test_dense_g_sees_the_segment_index_and_gives_vectors_in_the_unit_interval():
    torch.manual_seed(0)
    g = DenseFeatureNet(3, 3, 8, dim=5).eval()
    feats = g(torch.zeros(2, 3, 3, 8, 8))
    assert feats.shape == (2, 3, 5)
    assert ((feats > 0) & (feats < 1)).all()
    assert not torch.allclose(feats[:, 0], feats[:, 1])  # empty segments differ by index


@pytest.mark.parametrize("k", [2, 4, 8])
def test_air_widths_and_bottlenecks_are_shared_by_the_segments(k):
    dense = DenseSegmentAutoencoders(3, k, 16, capacity=64, width=512)
    linears = [[m for m in coder if isinstance(m, torch.nn.Linear)] for coder in dense.coders]
    assert sum(layers[0].out_features for layers in linears) == 512  # first hidden layer
    assert sum(layers[1].out_features for layers in linears) == 64  # the code
    conv = ConvSegmentAutoencoders(3, k, capacity=16, width=64)
    convs = [[m for m in coder if isinstance(m, torch.nn.Conv2d)] for coder in conv.coders]
    assert sum(layers[0].out_channels for layers in convs) == 64
    assert sum(layers[2].out_channels for layers in convs) == 16


@pytest.mark.parametrize("coders", [DenseSegmentAutoencoders(3, 2, 16, capacity=4, width=32),
                                    ConvSegmentAutoencoders(3, 2, capacity=4, width=16)])
def test_air_loss_trains_the_segmenter_through_hard_masks(coders):
    torch.manual_seed(0)
    x = torch.rand(2, 3, 16, 16)
    s = UNet(3, 2)
    assert coders(masked_segments(x, torch.ones(2, 2, 16, 16))).shape == (2, 2, 3, 16, 16)
    loss = air_loss(x, s, coders, balance=0.0)
    loss.backward()
    assert s.head.weight.grad is not None and s.head.weight.grad.abs().sum() > 0
