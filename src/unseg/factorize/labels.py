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


def upsample_argmax(scores: torch.Tensor, size: tuple[int, int], chunk: int = 32
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Argmax over channels of ``scores`` (K, h, w) upsampled bilinearly to ``size``.

    Returns the label ``(H, W)`` and the margin ``(best - second) / best`` in [0, 1]. Channels
    are upsampled ``chunk`` at a time, so memory stays at ``chunk * H * W`` floats.
    """

    def upsampled(start: int) -> torch.Tensor:
        return F.interpolate(scores[None, start : start + chunk].float(), size=size,
                             mode="bilinear", align_corners=False)[0]

    up = upsampled(0)
    top = up.topk(min(2, up.shape[0]), dim=0)
    best, label = top.values[0], top.indices[0]
    second = top.values[1] if up.shape[0] > 1 else torch.zeros_like(best)
    for start in range(chunk, scores.shape[0], chunk):
        values = torch.cat([best[None], second[None], upsampled(start)])
        top = values.topk(2, dim=0)
        chosen = top.indices[0]
        label = torch.where(chosen < 2, label, chosen - 2 + start)  # 0, 1: the running best
        best, second = top.values[0], top.values[1]
    margin = (best - second) / best.clamp_min(1e-12)
    return label, margin.clamp(0, 1)


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
