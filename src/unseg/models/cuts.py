"""The CUTS pixel encoder and its training losses.

The encoder is four 5x5 convolutions with BatchNorm and LeakyReLU and no pooling, so each pixel
gets an embedding whose receptive field is the 17x17 patch centred on it. Training picks anchor
pixels, mines each anchor's positive in its neighbourhood by the structural similarity (SSIM)
of their patches, and asks that an anchor's embedding be closer (in cosine) to its own positive
than to the other anchors' positives (NT-Xent), while a linear head rebuilds the anchor's patch
from its embedding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

KERNEL = 5
LAYERS = 4
#: Pixels from the centre to the edge of an embedding's receptive field.
RECEPTIVE_RADIUS = LAYERS * (KERNEL // 2)
_SSIM_C1, _SSIM_C2 = 0.01**2, 0.03**2


class CUTSEncoder(nn.Module):
    """(B, C, H, W) images -> (B, D, H, W) pixel embeddings.

    Parameters
    ----------
    in_channels : int
        1 for grayscale, 3 for RGB.
    embedding_dim : int
        Channels of the last convolution: the embedding size.
    width : int
        Filters of the first convolution, doubled by each of the next two (16, 32, 64).
    """

    def __init__(self, in_channels: int, embedding_dim: int = 128, width: int = 16) -> None:
        super().__init__()
        channels = [in_channels, width, 2 * width, 4 * width, embedding_dim]
        layers: list[nn.Module] = []
        for c_in, c_out in zip(channels[:-1], channels[1:], strict=True):
            layers += [
                nn.Conv2d(c_in, c_out, KERNEL, padding=KERNEL // 2, padding_mode="reflect"),
                nn.BatchNorm2d(c_out),
                nn.LeakyReLU(0.1),
            ]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def patches_at(x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, size: int
               ) -> torch.Tensor:
    """The ``size`` x ``size`` patches of ``x`` (B, C, H, W) centred on given pixels.

    ``rows`` and ``cols`` are (B, A) centres at least ``size // 2`` from the edges; the
    result is (B, A, C * size * size).
    """
    r = size // 2
    offsets = torch.arange(-r, r + 1, device=x.device)
    b, c, h, w = x.shape
    yy = (rows[..., None, None] + offsets[:, None]).expand(*rows.shape, size, size)
    xx = (cols[..., None, None] + offsets[None, :]).expand(*cols.shape, size, size)
    flat = (yy * w + xx).reshape(b, -1)  # (B, A * size * size)
    picked = x.reshape(b, c, h * w).gather(2, flat[:, None, :].expand(b, c, flat.shape[1]))
    return picked.reshape(b, c, rows.shape[1], size * size).transpose(1, 2).reshape(
        b, rows.shape[1], c * size * size)


def patch_ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """SSIM of flattened patches (..., P) computed over each whole patch, for data in [0, 1]."""
    mu_a, mu_b = a.mean(-1), b.mean(-1)
    var_a, var_b = a.var(-1, unbiased=False), b.var(-1, unbiased=False)
    cov = ((a - mu_a[..., None]) * (b - mu_b[..., None])).mean(-1)
    return ((2 * mu_a * mu_b + _SSIM_C1) * (2 * cov + _SSIM_C2)) / (
        (mu_a**2 + mu_b**2 + _SSIM_C1) * (var_a + var_b + _SSIM_C2))


def mine_pairs(x: torch.Tensor, n_anchors: int, patch_size: int, radius: int,
               generator: torch.Generator | None = None
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Anchor pixels and, for each, the neighbour whose patch is most similar by SSIM.

    Anchors are drawn uniformly among the pixels far enough from the edges that their
    receptive field, and that of every candidate within ``radius`` (a square neighbourhood,
    the anchor excluded), lie inside the image.

    Returns
    -------
    rows, cols : (B, A) anchor pixels
    pos_rows, pos_cols : (B, A) the positive of each anchor
    similarity : (B, A) SSIM of each anchor's patch with its positive's
    """
    b, _, h, w = x.shape
    margin = max(RECEPTIVE_RADIUS, patch_size // 2) + radius
    if h <= 2 * margin or w <= 2 * margin:
        raise ValueError(f"crops of {h}x{w} are too small for a margin of {margin} pixels")
    device = x.device
    rows = torch.randint(margin, h - margin, (b, n_anchors), generator=generator).to(device)
    cols = torch.randint(margin, w - margin, (b, n_anchors), generator=generator).to(device)
    anchor = patches_at(x, rows, cols, patch_size)
    offsets = [(dy, dx) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)
               if (dy, dx) != (0, 0)]
    scores = torch.stack([patch_ssim(anchor, patches_at(x, rows + dy, cols + dx, patch_size))
                          for dy, dx in offsets], -1)  # (B, A, n_offsets)
    similarity, best = scores.max(-1)
    shift = torch.tensor(offsets, device=device)[best]  # (B, A, 2)
    return rows, cols, rows + shift[..., 0], cols + shift[..., 1], similarity


def embeddings_at(z: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """Embeddings (B, A, D) at given pixels of an embedding map (B, D, H, W)."""
    return patches_at(z, rows, cols, 1)


def nt_xent(anchors: torch.Tensor, positives: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent: each anchor (N, D) against every positive (N, D) by cosine / temperature,
    its own positive the target; averaged over both directions."""
    a, p = F.normalize(anchors, dim=1), F.normalize(positives, dim=1)
    logits = a @ p.T / temperature
    target = torch.arange(len(a), device=a.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def cuts_loss(encoder: CUTSEncoder, head: nn.Linear, x: torch.Tensor, *, n_anchors: int,
              patch_size: int, radius: int, ssim_threshold: float, temperature: float,
              contrastive_weight: float, generator: torch.Generator | None = None
              ) -> torch.Tensor:
    """``contrastive_weight * NT-Xent + (1 - contrastive_weight) * patch reconstruction``.

    The contrastive term is intra-image: each image's anchors are set against the positives of
    the same image, and the terms are averaged over the images. Anchors whose best neighbour's
    SSIM is below ``ssim_threshold`` have no positive and stay out of it (an image with fewer
    than two positives adds nothing); every anchor counts in the reconstruction, the mean
    squared error of its patch rebuilt from its embedding by ``head``.
    """
    with torch.no_grad():
        rows, cols, pos_rows, pos_cols, similarity = mine_pairs(
            x, n_anchors, patch_size, radius, generator)
    z = encoder(x)
    anchors = embeddings_at(z, rows, cols)  # (B, A, D)
    target = patches_at(x, rows, cols, patch_size)
    reconstruction = F.mse_loss(head(anchors), target)
    kept = similarity >= ssim_threshold
    positives = embeddings_at(z, pos_rows, pos_cols)
    terms = [nt_xent(a[k], p[k], temperature)
             for a, p, k in zip(anchors, positives, kept, strict=True) if int(k.sum()) >= 2]
    contrastive = torch.stack(terms).mean() if terms else z.new_zeros(())
    return contrastive_weight * contrastive + (1 - contrastive_weight) * reconstruction
