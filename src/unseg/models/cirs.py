"""Segmentation networks trained through hard masks: CIRS and AIR.

Both share the segmenter S, a small U-Net giving K channels whose argmax is taken in place
(:mod:`unseg.models.straight_through`), so the K masked images are exact segments while S still
receives gradients.

* CIRS (cross-instance representation similarity): a feature network g embeds each masked
  image together with its segment index; S minimises ``alpha1 * within - alpha2 * between``,
  asking one segment to look alike across the images of a batch (``within``: the variance of g
  over the batch, per segment) and the segments to differ (``between``: the variance of the
  segment means). g is S's critic: it maximises ``within``, looking for whatever tells the
  instances of one segment apart. (Were g to minimise the same loss, it could ignore the image
  and embed the segment index alone, which satisfies both terms for any S.) Embeddings are
  L2-normalised, so neither term can grow without bound.
* AIR (segment-wise autoencoders): K bottleneck autoencoders, each reconstructing its masked
  segment; the reconstructions are masked again (without gradient through that second mask),
  summed and compared with the input (L2). Each bottleneck has ``capacity // K`` channels, so
  the total capacity stays the same as K changes.

Both add ``balance * (log K - H(mean assignment))``, the shortfall of the entropy of the batch's
average soft assignment from its maximum, so that S does not empty all segments but one (an
empty segment is trivially alike across images).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from unseg.models.straight_through import argmax_in_place


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.LeakyReLU(0.1),
        nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.LeakyReLU(0.1),
    )


class UNet(nn.Module):
    """A small U-Net: ``(B, in_channels, H, W)`` -> ``(B, out_channels, H, W)`` logits.

    H and W must be multiples of ``2 ** depth``.
    """

    def __init__(self, in_channels: int, out_channels: int, *, width: int = 16,
                 depth: int = 2) -> None:
        super().__init__()
        widths = [width * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList(
            _block(cin, cout) for cin, cout in zip([in_channels, *widths[:-1]], widths,
                                                   strict=True))
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2) for i in range(depth))
        self.merge = nn.ModuleList(_block(2 * widths[i], widths[i]) for i in range(depth))
        self.head = nn.Conv2d(widths[0], out_channels, 1)
        self.depth = depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, block in enumerate(self.down):
            x = block(x)
            if i < self.depth:
                skips.append(x)
                x = F.max_pool2d(x, 2)
        for i in reversed(range(self.depth)):
            x = self.merge[i](torch.cat([self.up[i](x), skips[i]], dim=1))
        return self.head(x)


def balance_penalty(logits: torch.Tensor) -> torch.Tensor:
    """``log K - H(p)`` of the batch's mean soft assignment ``p`` (0 when segments are equal)."""
    p = torch.softmax(logits, dim=1).mean(dim=(0, 2, 3))
    return math.log(p.numel()) + (p * torch.log(p.clamp_min(1e-12))).sum()


class FeatureNet(nn.Module):
    """g: a masked image with its segment index (one-hot planes) -> an L2-normalised vector."""

    def __init__(self, in_channels: int, k: int, *, dim: int = 32, width: int = 32) -> None:
        super().__init__()
        self.k = k
        self.net = nn.Sequential(
            nn.Conv2d(in_channels + k, width, 3, stride=2, padding=1), nn.LeakyReLU(0.1),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.LeakyReLU(0.1),
            nn.Conv2d(2 * width, 2 * width, 3, stride=2, padding=1), nn.LeakyReLU(0.1),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * width, dim),
        )

    def forward(self, segments: torch.Tensor) -> torch.Tensor:
        """``(B, K, C, H, W)`` masked images -> ``(B, K, dim)`` unit vectors."""
        b, k, c, h, w = segments.shape
        index = torch.eye(k, device=segments.device)[None, :, :, None, None].expand(
            b, k, k, h, w)
        x = torch.cat([segments, index], dim=2).reshape(b * k, c + k, h, w)
        return F.normalize(self.net(x), dim=1).reshape(b, k, -1)


def masked_segments(x: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W)`` images and ``(B, K, H, W)`` masks -> ``(B, K, C, H, W)`` segments."""
    return x[:, None] * masks[:, :, None]


def cirs_losses(x: torch.Tensor, segmenter: nn.Module, g: FeatureNet, *, alpha1: float,
                alpha2: float, balance: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The losses of S and of its critic g on a batch ``x`` (B, C, H, W), through hard masks.

    Returns ``alpha1 * within - alpha2 * between + balance * penalty`` (S's) and ``-within``
    (g's).
    """
    logits = segmenter(x)
    feats = g(masked_segments(x, argmax_in_place(logits)))  # (B, K, dim)
    within = feats.var(dim=0, unbiased=False).sum(-1).mean()
    between = feats.mean(dim=0).var(dim=0, unbiased=False).sum()
    return alpha1 * within - alpha2 * between + balance * balance_penalty(logits), -within


class SegmentAutoencoders(nn.Module):
    """K bottleneck autoencoders; each bottleneck has ``capacity // K`` channels at 1/8 scale."""

    def __init__(self, in_channels: int, k: int, *, capacity: int = 16, width: int = 16
                 ) -> None:
        super().__init__()
        code = max(1, capacity // k)
        self.coders = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(in_channels, width, 3, stride=2, padding=1), nn.LeakyReLU(0.1),
                nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.LeakyReLU(0.1),
                nn.Conv2d(2 * width, code, 3, stride=2, padding=1), nn.LeakyReLU(0.1),
                nn.ConvTranspose2d(code, 2 * width, 4, stride=2, padding=1), nn.LeakyReLU(0.1),
                nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1), nn.LeakyReLU(0.1),
                nn.ConvTranspose2d(width, in_channels, 4, stride=2, padding=1),
            ) for _ in range(k))

    def forward(self, segments: torch.Tensor) -> torch.Tensor:
        """``(B, K, C, H, W)`` masked images -> their reconstructions, same shape."""
        return torch.stack([coder(segments[:, i]) for i, coder in enumerate(self.coders)], 1)


def air_loss(x: torch.Tensor, segmenter: nn.Module, coders: SegmentAutoencoders, *,
             balance: float) -> torch.Tensor:
    """The AIR loss of a batch ``x`` (B, C, H, W): L2 of the re-masked, summed reconstructions."""
    logits = segmenter(x)
    masks = argmax_in_place(logits)
    recon = coders(masked_segments(x, masks))
    image = (recon * masks.detach()[:, :, None]).sum(1)
    return F.mse_loss(image, x) + balance * balance_penalty(logits)
