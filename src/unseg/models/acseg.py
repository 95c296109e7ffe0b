"""The Adaptive Concept Generator of ACSeg and its modularity loss.

Learnable prototypes are updated over ``n_steps`` blocks of cross-attention to one image's
pixel (cell) features, self-attention among the prototypes and a feed-forward layer, each
residual with layer normalisation. Cells are assigned to the resulting concepts by cosine
similarity; training maximises the modularity of that assignment on the cells' affinity graph.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class ConceptGenerator(nn.Module):
    """Prototypes ``(n_prototypes, dim)`` adapted to each image's features ``(N, dim)``.

    Parameters
    ----------
    dim : int
        Channels of the features.
    n_prototypes : int
        Learnable prototypes: the most concepts per image (6 in the two-step report).
    n_steps : int
        Update blocks (cross-attention, self-attention, feed-forward; 6 in the report).
    heads : int
        Attention heads.
    temperature : float
        Of the softmax over cosine similarities in :meth:`forward`.
    """

    def __init__(self, dim: int, *, n_prototypes: int = 6, n_steps: int = 6, heads: int = 1,
                 temperature: float = 0.1) -> None:
        super().__init__()
        self.prototypes = nn.Parameter(torch.randn(n_prototypes, dim) / math.sqrt(dim))
        self.cross = nn.ModuleList(
            nn.MultiheadAttention(dim, heads, batch_first=True) for _ in range(n_steps))
        self.self_attention = nn.ModuleList(
            nn.MultiheadAttention(dim, heads, batch_first=True) for _ in range(n_steps))
        self.feed_forward = nn.ModuleList(
            nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
            for _ in range(n_steps))
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(3 * n_steps))
        self.temperature = temperature

    def concepts(self, x: torch.Tensor) -> torch.Tensor:
        """The prototypes adapted to the features ``x`` (N, dim): (n_prototypes, dim)."""
        p = self.prototypes[None]
        feats = x[None]
        for i, (cross, attend, ffn) in enumerate(
                zip(self.cross, self.self_attention, self.feed_forward, strict=True)):
            p = self.norms[3 * i](p + cross(p, feats, feats, need_weights=False)[0])
            p = self.norms[3 * i + 1](p + attend(p, p, p, need_weights=False)[0])
            p = self.norms[3 * i + 2](p + ffn(p))
        return p[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Soft assignments ``(N, n_prototypes)``: softmax of cosine similarity / temperature."""
        cos = F.normalize(x, dim=1) @ F.normalize(self.concepts(x), dim=1).T
        return torch.softmax(cos / self.temperature, dim=1)


def modularity_loss(assign: torch.Tensor, affinity: torch.Tensor) -> torch.Tensor:
    """Negative modularity of soft assignments ``(N, n)`` on a graph ``affinity`` (N, N).

    ``Q = (tr(S^T A S) - (d^T S)(S^T d) / 2m) / 2m`` with degrees ``d`` and ``2m = sum(A)``.
    """
    degree = affinity.sum(1)
    total = degree.sum().clamp_min(1e-12)
    within = (assign * (affinity @ assign)).sum()
    expected = ((degree @ assign) ** 2).sum() / total
    return -(within - expected) / total
