"""The CUTS encoder, patch extraction, SSIM mining and losses."""

from __future__ import annotations

import numpy as np
import torch

from unseg.models.cuts import (
    RECEPTIVE_RADIUS,
    CUTSEncoder,
    cuts_loss,
    mine_pairs,
    nt_xent,
    patch_ssim,
    patches_at,
)


def test_encoder_gives_one_embedding_per_pixel_from_a_17_pixel_patch():
    torch.manual_seed(0)
    encoder = CUTSEncoder(3, embedding_dim=12).eval()
    x = torch.rand(1, 3, 40, 44)
    z = encoder(x)
    assert z.shape == (1, 12, 40, 44)
    assert RECEPTIVE_RADIUS == 8
    changed = x.clone()
    changed[0, :, 20, 30] = 5.0
    moved = (encoder(changed) - z).abs().sum(1)[0] > 0
    rows, cols = np.nonzero(moved.numpy())
    assert rows.min() == 12 and rows.max() == 28 and cols.min() == 22 and cols.max() == 38


def test_patches_at_reads_the_centred_patches():
    x = torch.arange(2 * 3 * 9 * 10, dtype=torch.float32).reshape(2, 3, 9, 10)
    rows, cols = torch.tensor([[2, 5], [4, 3]]), torch.tensor([[3, 7], [1, 8]])
    patches = patches_at(x, rows, cols, 3)
    assert patches.shape == (2, 2, 27)
    expected = x[1, :, 2:5, 7:10].reshape(-1)
    assert torch.equal(patches[1, 1], expected)


def test_patch_ssim_is_one_for_equal_patches_and_low_for_unrelated_ones():
    a = torch.rand(5, 49)
    assert torch.allclose(patch_ssim(a, a), torch.ones(5))
    assert (patch_ssim(a, 1 - a) < 0).all()


def test_positives_are_the_most_similar_neighbour():
    # vertical stripes of period 4: the neighbour 4 columns away matches exactly, but the
    # radius is 3, so the best neighbour is straight above or below (the same column)
    stripes = torch.tensor([0.0, 0.2, 0.9, 0.5]).repeat(12)[None, None].expand(1, 1, 48, 48)
    rows, cols, pr, pc, similarity = mine_pairs(stripes.contiguous(), 16, 7, 3)
    assert torch.allclose(similarity, torch.ones_like(similarity))
    assert torch.equal(pc, cols) and ((pr - rows).abs() <= 3).all() and (pr != rows).all()


def test_nt_xent_is_low_for_matched_pairs():
    torch.manual_seed(0)
    a = torch.randn(16, 8)
    assert nt_xent(a, a + 0.01 * torch.randn(16, 8), 0.5) < nt_xent(a, torch.randn(16, 8), 0.5)


def test_training_steps_lower_the_loss():
    torch.manual_seed(0)
    x = torch.rand(4, 1, 40, 40)
    encoder, head = CUTSEncoder(1, embedding_dim=8), torch.nn.Linear(8, 25)
    optimizer = torch.optim.Adam([*encoder.parameters(), *head.parameters()], lr=1e-2)
    kwargs = {"n_anchors": 8, "patch_size": 5, "radius": 2, "ssim_threshold": -1.0,
              "temperature": 0.5, "contrastive_weight": 0.5}
    losses = []
    for _ in range(30):
        loss = cuts_loss(encoder, head, x, generator=torch.Generator().manual_seed(1), **kwargs)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]
