"""The CUTS encoder, patch extraction, SSIM mining and losses."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from unseg.models.cuts import (
    RECEPTIVE_FIELD,
    RECEPTIVE_RADIUS,
    CUTSEncoder,
    contrastive_from_similarity,
    cuts_loss,
    embeddings_at,
    mine_positives,
    neighbour_offsets,
    patch_ssim,
    patches_at,
)


def test_encoder_gives_one_embedding_per_pixel_from_a_17_pixel_patch():
    torch.manual_seed(0)
    encoder = CUTSEncoder(3, embedding_dim=12).eval()
    x = torch.rand(1, 3, 40, 44)
    z = encoder(x)
    assert z.shape == (1, 12, 40, 44)
    assert RECEPTIVE_RADIUS == 8 and RECEPTIVE_FIELD == 17
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


def _stripes(size: int = 48) -> torch.Tensor:
    """Vertical stripes of period 4: a patch matches exactly the patches 4 columns away."""
    row = torch.tensor([0.0, 0.2, 0.9, 0.5]).repeat(size // 4)
    return row[None, None, None].expand(2, 1, size, size).contiguous()


def test_neighbour_offsets_cover_the_square_but_the_centre():
    offsets = neighbour_offsets(5)
    assert offsets.shape == (120, 2) and offsets.abs().max() == 5
    assert not (offsets == 0).all(1).any()
    assert len({tuple(o) for o in offsets.tolist()}) == 120


def test_all_positives_are_every_neighbour_that_passes_ssim():
    x = _stripes()
    mined = mine_positives(x, 16, 17, 5, 0.99, "all", torch.Generator().manual_seed(0))
    assert mined.positive.shape == (2, 16, 120)
    # exactly the neighbours a multiple of 4 columns away (dx in -4, 0, 4): 3 x 11 - 1
    expected = (mined.offsets[:, 1] % 4 == 0).expand_as(mined.positive)
    assert torch.equal(mined.positive, expected)
    assert int(mined.positive[0, 0].sum()) == 32
    assert (mined.similarity[mined.positive] >= 0.99).all()
    assert (mined.similarity[~mined.positive] < 0.99).all()


def test_a_random_positive_passes_ssim_and_lies_within_the_radius():
    x = _stripes()
    mined = mine_positives(x, 16, 17, 5, 0.99, "random", torch.Generator().manual_seed(0))
    assert (mined.positive.sum(-1) == 1).all()  # one positive per anchor
    chosen = mined.offsets[mined.positive.float().argmax(-1)]  # (B, A, 2)
    assert (chosen.abs() <= 5).all() and (chosen[..., 1] % 4 == 0).all()
    assert (mined.similarity[mined.positive] >= 0.99).all()
    assert len({tuple(o) for o in chosen.reshape(-1, 2).tolist()}) > 5  # drawn, not fixed
    best = mine_positives(x, 16, 17, 5, 0.99, "best", torch.Generator().manual_seed(0))
    picked = best.similarity.masked_fill(~best.positive, -2).max(-1).values
    assert torch.allclose(picked, best.similarity.max(-1).values)


def test_anchors_without_a_similar_neighbour_have_no_positive():
    x = torch.rand(2, 1, 40, 40, generator=torch.Generator().manual_seed(0))
    for rule in ("random", "all", "best"):
        mined = mine_positives(x, 8, 7, 2, 0.95, rule, torch.Generator().manual_seed(0))
        assert not mined.positive.any()
    with pytest.raises(ValueError, match="too small"):
        mine_positives(x[..., :20, :20], 8, 17, 5, 0.5)


def _formula(similarity: list[list[float]], owner: list[int], tau: float, with_own: bool
             ) -> float:
    losses = []
    for a, row in enumerate(similarity):
        pos = sum(math.exp(s / tau) for s, o in zip(row, owner, strict=True) if o == a)
        neg = sum(math.exp(s / tau) for s, o in zip(row, owner, strict=True) if o != a)
        if pos > 0 and neg > 0:
            losses.append(-math.log(pos / (neg + (pos if with_own else 0))))
    return sum(losses) / len(losses)


def test_the_contrastive_loss_is_the_papers_formula():
    similarity = [[0.9, 0.7, -0.2, 0.1, 0.3],
                  [0.0, 0.4, 0.8, -0.5, 0.2],
                  [0.3, -0.1, 0.2, 0.6, 0.95],
                  [0.1, 0.2, 0.3, 0.4, 0.5]]  # anchor 3 owns no positive: left out
    owner = [0, 0, 1, 2, 2]
    sim, own = torch.tensor(similarity, dtype=torch.float64), torch.tensor(owner)
    for tau in (0.5, 0.1):
        paper = contrastive_from_similarity(sim, own, tau, "paper").item()
        assert paper == pytest.approx(_formula(similarity, owner, tau, False), rel=1e-12)
        nce = contrastive_from_similarity(sim, own, tau, "info-nce").item()
        assert nce == pytest.approx(_formula(similarity, owner, tau, True), rel=1e-12)
        assert nce > 0 > contrastive_from_similarity(  # negatives far: the paper's is < 0
            torch.tensor([[1.0, -1.0], [-1.0, 1.0]]), torch.tensor([0, 1]), tau, "paper")
    lone = contrastive_from_similarity(sim[:1, :2], own[:2], 0.5)  # no negative at all
    assert lone.item() == 0


def test_the_contrastive_term_of_cuts_loss_sets_anchors_against_mined_positives():
    torch.manual_seed(0)
    x = torch.rand(2, 1, 40, 40) * 0.2 + _stripes(40) * 0.8
    encoder, head = CUTSEncoder(1, embedding_dim=6).eval(), torch.nn.Linear(6, 17 * 17)
    kwargs = {"n_anchors": 6, "patch_size": 17, "radius": 5, "ssim_threshold": 0.5,
              "temperature": 0.5, "contrastive_weight": 1.0, "positives": "all"}
    with torch.no_grad():
        loss = cuts_loss(encoder, head, x, generator=torch.Generator().manual_seed(3), **kwargs)
        mined = mine_positives(x, 6, 17, 5, 0.5, "all", torch.Generator().manual_seed(3))
        z = encoder(x)
        terms = []
        for i in range(2):
            anchors = embeddings_at(z, mined.rows, mined.cols)[i]
            sims, owners = [], []
            for a in range(6):
                for o in torch.nonzero(mined.positive[i, a])[:, 0].tolist():
                    dy, dx = mined.offsets[o].tolist()
                    r, c = int(mined.rows[i, a]) + dy, int(mined.cols[i, a]) + dx
                    sims.append(F.cosine_similarity(anchors, z[i, :, r, c][None], dim=1))
                    owners.append(a)
            terms.append(contrastive_from_similarity(torch.stack(sims, 1),
                                                     torch.tensor(owners), 0.5))
    assert mined.positive.any(-1).sum() >= 4
    assert loss.item() == pytest.approx(torch.stack(terms).mean().item(), rel=1e-5)


def test_training_steps_lower_the_loss():
    torch.manual_seed(0)
    x = torch.rand(4, 1, 40, 40)
    encoder, head = CUTSEncoder(1, embedding_dim=8), torch.nn.Linear(8, 25)
    optimizer = torch.optim.Adam([*encoder.parameters(), *head.parameters()], lr=1e-2)
    kwargs = {"n_anchors": 8, "patch_size": 5, "radius": 2, "ssim_threshold": -1.0,
              "temperature": 0.5, "contrastive_weight": 0.5, "positives": "all"}
    losses = []
    for _ in range(30):
        loss = cuts_loss(encoder, head, x, generator=torch.Generator().manual_seed(1), **kwargs)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]
