"""Attention-based clustering (ABC) of feature vectors.

Learnable centres are refined by ``n_steps`` blocks of cross-attention to the vectors followed
by an MLP (both residual). Vectors are softly assigned to the refined centres by a softmax of
cosine similarities, and the whole is trained without labels by

* coverage: every vector should lie close to the centres it is assigned to,
  ``mean_i (1 - sum_j a_ij cos(x_i, c_j))``;
* disjointness: every vector should belong to one cluster, ``mean_i (1 - sum_j a_ij^2)``;
* size bounds: each cluster's mass ``sum_i a_ij`` should lie in ``[N / k^2, N / sqrt(k)]``,
  the shortfall or excess divided by N.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from torch import nn


class AttentionClustering(nn.Module):
    """Centres ``(k, d)`` refined by cross-attention to a set of vectors ``(N, d)``."""

    def __init__(self, k: int, dim: int, *, n_steps: int = 3, heads: int = 1,
                 temperature: float = 0.1) -> None:
        super().__init__()
        self.centres = nn.Parameter(torch.randn(k, dim) / math.sqrt(dim))
        self.attention = nn.ModuleList(
            nn.MultiheadAttention(dim, heads, batch_first=True) for _ in range(n_steps))
        self.mlp = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, 2 * dim), nn.GELU(),
                          nn.Linear(2 * dim, dim)) for _ in range(n_steps))
        self.temperature = temperature

    def refine(self, x: torch.Tensor) -> torch.Tensor:
        """The centres after the attention steps over the vectors ``x`` (N, d): (k, d)."""
        c = self.centres[None]
        for attend, mlp in zip(self.attention, self.mlp, strict=True):
            c = c + attend(c, x[None], x[None], need_weights=False)[0]
            c = c + mlp(c)
        return c[0]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Soft assignments ``(N, k)`` and cosine similarities ``(N, k)`` of ``x`` (N, d)."""
        centres = self.refine(x)
        cos = F.normalize(x, dim=1) @ F.normalize(centres, dim=1).T
        return torch.softmax(cos / self.temperature, dim=1), cos


def abc_loss(assign: torch.Tensor, cos: torch.Tensor, *, low: float, high: float,
             weights: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> torch.Tensor:
    """Coverage + disjointness + size-bound loss of soft assignments (N, k).

    ``low`` and ``high`` are cluster-size bounds as fractions of N.
    """
    coverage = (1 - (assign * cos).sum(1)).mean()
    disjoint = (1 - (assign**2).sum(1)).mean()
    mass = assign.mean(0)
    size = (F.relu(low - mass) + F.relu(mass - high)).sum()
    return weights[0] * coverage + weights[1] * disjoint + weights[2] * size


@dataclass
class FittedABC:
    """The refined centres of a trained model, and the standardisation of its inputs."""

    centres: NDArray[np.float32]
    mean: NDArray[np.float32]
    scale: NDArray[np.float32]

    def assign(self, x: NDArray[np.floating]) -> NDArray[np.int64]:
        """The most cosine-similar refined centre of each row of ``x`` (N, d)."""
        z = (np.asarray(x, np.float32) - self.mean) / self.scale
        z /= np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
        return np.argmax(z @ self.centres.T, axis=1)


def fit_abc(x: NDArray[np.floating], k: int, *, n_steps: int = 3, epochs: int = 100,
            batch_size: int = 512, lr: float = 1e-3, temperature: float = 0.1,
            size_bounds: tuple[float, float] | None = None,
            weights: tuple[float, float, float] = (1.0, 1.0, 1.0),
            random_state: int | None = 0, **train_options: Any) -> FittedABC:
    """Train attention-based clustering on the rows of ``x`` (N, d) and refine its centres.

    ``size_bounds`` are the lower and upper cluster masses as fractions of the batch; by
    default ``1 / k^2`` and ``1 / sqrt(k)``. Vectors are standardised first. Extra keyword
    arguments go to :func:`unseg.train.train` (``checkpoint``, ``key``, ``desc``).
    """
    from unseg.errors import ParameterError
    from unseg.train import seeded, train

    x = np.asarray(x, np.float32)
    if x.ndim != 2 or len(x) < k:
        raise ParameterError(
            f"cannot make {k} clusters of {len(x)} vectors. Fix: give more images, or a "
            "smaller k."
        )
    mean = x.mean(0)
    scale = np.maximum(x.std(0), 1e-6).astype(np.float32)
    data = torch.from_numpy((x - mean) / scale)
    low, high = size_bounds if size_bounds is not None else (1 / k**2, 1 / math.sqrt(k))
    with seeded(random_state):
        model = AttentionClustering(k, x.shape[1], n_steps=n_steps, temperature=temperature)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)

        def step(batch: NDArray[np.int64], _: int) -> float:
            assign, cos = model(data[batch])
            loss = abc_loss(assign, cos, low=low, high=high, weights=weights)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            return loss.item()

        def batches(rng: np.random.Generator) -> list[NDArray[np.int64]]:
            order = rng.permutation(len(data))
            return [order[i : i + batch_size] for i in range(0, len(data), batch_size)]

        train({"abc": model}, {"adam": optimizer}, step, batches, epochs=epochs,
              random_state=random_state, **({"desc": "attention clustering"} | train_options))
        with torch.no_grad():
            centres = F.normalize(model.refine(data), dim=1).numpy()
    return FittedABC(centres.astype(np.float32), mean, scale)
