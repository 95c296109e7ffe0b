"""Segmentation networks trained through hard masks: CIRS and AIR (Bishop, 2020).

Both share the segmenter S, a small U-Net giving K channels whose argmax is taken in place
(:mod:`unseg.models.straight_through`), so the K masked images are exact segments while S still
receives gradients.

* CIRS (cross-instance representation similarity): a feature network g embeds each masked
  image together with its segment index k. The loss is ``alpha1 * within - alpha2 *
  between``: ``within`` asks one segment to look alike across the images of a batch,
  ``between`` the segments' mean embeddings to differ. With the thesis's sums
  (``reduction="sum"``), ``within = (1/K) sum_k sum_i |g_ik - mean_k|^2`` and ``between =
  sum_k |mean_k - mean|^2``; ``reduction="mean"`` averages over images and segments instead.
  In the thesis g minimises the same loss as S (``g_training="shared"``), and the between term
  keeps g from mapping everything to one point; ``g_training="critic"`` makes g maximise
  ``within`` instead, as S's adversary. g is fully connected, as in the thesis
  (:class:`DenseFeatureNet`, sigmoid outputs), or convolutional with global pooling and
  L2-normalised outputs (:class:`ConvFeatureNet`).
* AIR (argmax individual reconstruction): K bottleneck autoencoders, each reconstructing its
  masked segment; the reconstructions are masked again (no gradient through that second mask),
  summed and compared with the input (L2). The layer widths and the bottleneck of each are the
  totals divided by K, so the model's size stays the same as K changes.

Either can add ``balance * (log K - H(mean assignment))``, the shortfall of the entropy of the
batch's average soft assignment from its maximum (not in the thesis; 0 turns it off).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from unseg.models.straight_through import argmax_in_place


def _block(cin: int, cout: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.LeakyReLU(0.1),
        nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.LeakyReLU(0.1),
        nn.Dropout(dropout),
    )


class UNet(nn.Module):
    """A small U-Net: ``(B, in_channels, H, W)`` -> ``(B, out_channels, H, W)`` logits.

    H and W must be multiples of ``2 ** depth``. ``dropout`` follows every block of two
    convolutions (it has no weights, so the state dict does not depend on it).
    """

    def __init__(self, in_channels: int, out_channels: int, *, width: int = 16,
                 depth: int = 2, dropout: float = 0.0) -> None:
        super().__init__()
        widths = [width * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList(
            _block(cin, cout, dropout) for cin, cout in zip([in_channels, *widths[:-1]], widths,
                                                            strict=True))
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2) for i in range(depth))
        self.merge = nn.ModuleList(_block(2 * widths[i], widths[i], dropout)
                                   for i in range(depth))
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


def _with_index(segments: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, K, C, H, W)`` segments -> ``(B * K, C, H, W)`` and their ``(B * K, K)`` one-hot
    segment indices."""
    b, k, c, h, w = segments.shape
    index = torch.eye(k, device=segments.device).repeat(b, 1)
    return segments.reshape(b * k, c, h, w), index


class DenseFeatureNet(nn.Module):
    """g as in the thesis: a fully connected network of the flattened masked image and its
    segment index (one-hot), with ``dropout`` after each hidden layer and sigmoid outputs."""

    def __init__(self, in_channels: int, k: int, size: int, *, hidden: tuple[int, ...] = (256, 128),
                 dim: int = 32, dropout: float = 0.0) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_channels * size * size + k
        for units in hidden:
            layers += [nn.Linear(width, units), nn.ReLU(), nn.Dropout(dropout)]
            width = units
        self.net = nn.Sequential(*layers, nn.Linear(width, dim), nn.Sigmoid())

    def forward(self, segments: torch.Tensor) -> torch.Tensor:
        """``(B, K, C, H, W)`` masked images -> ``(B, K, dim)`` vectors in (0, 1)."""
        b, k = segments.shape[:2]
        flat, index = _with_index(segments)
        return self.net(torch.cat([flat.flatten(1), index], dim=1)).reshape(b, k, -1)


class ConvFeatureNet(nn.Module):
    """g as a critic: convolutions of the masked image with its segment index (one-hot
    planes), global average pooling, an L2-normalised vector."""

    def __init__(self, in_channels: int, k: int, *, dim: int = 32, width: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channels + k, width, 3, stride=2, padding=1), nn.LeakyReLU(0.1),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.LeakyReLU(0.1),
            nn.Conv2d(2 * width, 2 * width, 3, stride=2, padding=1), nn.LeakyReLU(0.1),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * width, dim),
        )

    def forward(self, segments: torch.Tensor) -> torch.Tensor:
        """``(B, K, C, H, W)`` masked images -> ``(B, K, dim)`` unit vectors."""
        b, k, _, h, w = segments.shape
        flat, index = _with_index(segments)
        planes = index[:, :, None, None].expand(-1, -1, h, w)
        return F.normalize(self.net(torch.cat([flat, planes], dim=1)), dim=1).reshape(b, k, -1)


def masked_segments(x: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W)`` images and ``(B, K, H, W)`` masks -> ``(B, K, C, H, W)`` segments."""
    return x[:, None] * masks[:, :, None]


def cirs_terms(feats: torch.Tensor, reduction: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``within`` and ``between`` of ``(B, K, dim)`` segment embeddings.

    ``"sum"`` (the thesis): ``within = (1/K) sum_k sum_i |f_ik - m_k|^2`` and ``between =
    sum_k |m_k - m|^2``, with ``m_k`` the mean over the batch and ``m`` the mean of the ``m_k``.
    ``"mean"``: ``within`` divided by the batch size, ``between`` by K.
    """
    centres = feats.mean(dim=0)  # (K, dim)
    within = (feats - centres).pow(2).sum(dim=(0, 2)).mean()
    between = (centres - centres.mean(dim=0)).pow(2).sum()
    if reduction == "mean":
        return within / feats.shape[0], between / feats.shape[1]
    if reduction != "sum":
        raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")
    return within, between


def cirs_losses(x: torch.Tensor, segmenter: nn.Module, g: nn.Module, *, alpha1: float,
                alpha2: float, balance: float, reduction: str = "sum",
                g_training: str = "shared") -> tuple[torch.Tensor, torch.Tensor]:
    """The losses of S and of g on a batch ``x`` (B, C, H, W), through hard masks.

    S's loss is ``alpha1 * within - alpha2 * between + balance * penalty``. g's is the same
    tensor under ``g_training="shared"`` (the thesis), ``-within`` under ``"critic"``.
    """
    logits = segmenter(x)
    feats = g(masked_segments(x, argmax_in_place(logits)))  # (B, K, dim)
    within, between = cirs_terms(feats, reduction)
    loss = alpha1 * within - alpha2 * between
    if balance:
        loss = loss + balance * balance_penalty(logits)
    if g_training == "shared":
        return loss, loss
    if g_training != "critic":
        raise ValueError(f"g_training must be 'shared' or 'critic', got {g_training!r}")
    return loss, -within


class DenseSegmentAutoencoders(nn.Module):
    """K fully connected bottleneck autoencoders of flattened masked images, each with
    ``width // K`` hidden units on either side of a ``capacity // K`` unit code and
    sigmoid outputs; ``dropout`` after each hidden layer."""

    def __init__(self, in_channels: int, k: int, size: int, *, capacity: int = 64,
                 width: int = 512, dropout: float = 0.0) -> None:
        super().__init__()
        pixels, hidden, code = in_channels * size * size, max(1, width // k), max(1, capacity // k)
        self.coders = nn.ModuleList(
            nn.Sequential(
                nn.Flatten(), nn.Linear(pixels, hidden), nn.ReLU(), nn.Dropout(dropout),
                nn.Linear(hidden, code), nn.Linear(code, hidden), nn.ReLU(), nn.Dropout(dropout),
                nn.Linear(hidden, pixels), nn.Sigmoid(),
            ) for _ in range(k))

    def forward(self, segments: torch.Tensor) -> torch.Tensor:
        """``(B, K, C, H, W)`` masked images -> their reconstructions, same shape."""
        return torch.stack([coder(segments[:, i]).reshape(segments[:, i].shape)
                            for i, coder in enumerate(self.coders)], 1)


class ConvSegmentAutoencoders(nn.Module):
    """K convolutional bottleneck autoencoders, each with ``width // K`` channels and a
    ``capacity // K`` channel code at 1/8 scale."""

    def __init__(self, in_channels: int, k: int, *, capacity: int = 16, width: int = 64
                 ) -> None:
        super().__init__()
        w, code = max(1, width // k), max(1, capacity // k)
        self.coders = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(in_channels, w, 3, stride=2, padding=1), nn.LeakyReLU(0.1),
                nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), nn.LeakyReLU(0.1),
                nn.Conv2d(2 * w, code, 3, stride=2, padding=1), nn.LeakyReLU(0.1),
                nn.ConvTranspose2d(code, 2 * w, 4, stride=2, padding=1), nn.LeakyReLU(0.1),
                nn.ConvTranspose2d(2 * w, w, 4, stride=2, padding=1), nn.LeakyReLU(0.1),
                nn.ConvTranspose2d(w, in_channels, 4, stride=2, padding=1),
            ) for _ in range(k))

    def forward(self, segments: torch.Tensor) -> torch.Tensor:
        """``(B, K, C, H, W)`` masked images -> their reconstructions, same shape."""
        return torch.stack([coder(segments[:, i]) for i, coder in enumerate(self.coders)], 1)


def air_loss(x: torch.Tensor, segmenter: nn.Module, coders: nn.Module, *,
             balance: float) -> torch.Tensor:
    """The AIR loss of a batch ``x`` (B, C, H, W): L2 of the re-masked, summed reconstructions."""
    logits = segmenter(x)
    masks = argmax_in_place(logits)
    recon = coders(masked_segments(x, masks))
    image = (recon * masks.detach()[:, :, None]).sum(1)
    loss = F.mse_loss(image, x)
    return loss + balance * balance_penalty(logits) if balance else loss
