"""From factor memberships on a feature grid to labels at pixels.

Memberships live on the backbone's feature grid ``(K, h, w)``; a pixel's memberships are their
bilinear upsampling by the backbone's stride (pixel centres, ``align_corners=False``).
:func:`upsample_argmax` labels every pixel with its strongest factor without holding all ``K``
upsampled channels at once; :func:`sample_upsampled` reads the upsampled memberships at chosen
pixels only.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def upsample_argmax(scores: torch.Tensor, stride: int, band: int = 16
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Argmax over channels of ``scores`` (K, h, w) upsampled bilinearly by ``stride``.

    Returns the label ``(h * stride, w * stride)`` (the first channel on ties) and the margin
    ``(best - second) / best`` in [0, 1]. The upsampling is done ``band`` grid rows at a time,
    each band with one grid row of context on either side: bilinear interpolation reads at most
    the neighbouring row, so every pixel gets exactly the values of the whole upsampling, and
    memory stays at ``K * band * stride * w * stride`` floats (the whole map of a 4-megapixel
    image at K = 8 would be 128 MB). The best and second values are kept as running maxima over
    the channels, one pass each, rather than by sorting the channels of every pixel.
    """
    n, gh, gw = scores.shape
    label = torch.empty(gh * stride, gw * stride, dtype=torch.int64, device=scores.device)
    margin = torch.empty(gh * stride, gw * stride, dtype=torch.float32, device=scores.device)
    for top in range(0, gh, band):
        bottom = min(gh, top + band)
        above, below = max(0, top - 1), min(gh, bottom + 1)
        up = F.interpolate(scores[None, :, above:below].float(),
                           size=((below - above) * stride, gw * stride), mode="bilinear",
                           align_corners=False)[0]
        up = up[:, (top - above) * stride : (bottom - above) * stride]
        rows = slice(top * stride, bottom * stride)
        best, owner = up[0].clone(), label[rows]
        second = torch.full_like(best, 0.0 if n == 1 else -torch.inf)
        owner.zero_()
        for channel in range(1, n):
            value = up[channel]
            owner.masked_fill_(value > best, channel)
            torch.maximum(second, torch.minimum(best, value), out=second)
            torch.maximum(best, value, out=best)
        margin[rows] = ((best - second) / best.clamp_min(1e-12)).clamp_(0, 1)
    return label, margin


def sample_upsampled(scores: torch.Tensor, stride: int, ys: np.ndarray, xs: np.ndarray
                     ) -> np.ndarray:
    """Memberships ``(P, K)`` at pixels ``(ys, xs)`` of ``scores`` (K, h, w) upsampled by
    ``stride``: the values :func:`upsample_argmax` compares there."""
    gh, gw = scores.shape[1:]
    gy = (ys + 0.5) / (gh * stride) * 2 - 1
    gx = (xs + 0.5) / (gw * stride) * 2 - 1
    grid = torch.from_numpy(np.stack([gx, gy], axis=1).astype(np.float32))[None, None]
    values = F.grid_sample(scores[None].float(), grid.to(scores.device), mode="bilinear",
                           align_corners=False)
    return values[0, :, 0].T.cpu().numpy()
