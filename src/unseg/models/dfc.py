"""The network and loss of unsupervised segmentation by differentiable feature clustering
(DFC, Kim, Kanezaki and Tanaka): trained on the image it segments."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class DFCNet(nn.Module):
    """``n_convs`` 3x3 conv + BatchNorm + ReLU blocks, then a 1x1 conv + BatchNorm giving
    ``max_labels`` responses per pixel: ``(B, C, H, W)`` -> ``(B, max_labels, H, W)``."""

    def __init__(self, in_channels: int, *, width: int = 32, max_labels: int = 100,
                 n_convs: int = 2) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(n_convs + 1):
            layers += [nn.Conv2d(in_channels if i == 0 else width, width, 3, padding=1),
                       nn.BatchNorm2d(width), nn.ReLU()]
        layers += [nn.Conv2d(width, max_labels, 1), nn.BatchNorm2d(max_labels)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def dfc_loss(response: torch.Tensor, continuity: float) -> torch.Tensor:
    """Feature similarity (cross-entropy to the responses' own argmax) plus ``continuity``
    times the mean absolute difference of neighbouring pixels' responses."""
    target = response.argmax(1).detach()
    similarity = F.cross_entropy(response, target)
    dy = (response[:, :, 1:] - response[:, :, :-1]).abs().mean()
    dx = (response[:, :, :, 1:] - response[:, :, :, :-1]).abs().mean()
    return similarity + continuity * (dy + dx)
