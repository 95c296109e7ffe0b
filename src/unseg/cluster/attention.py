"""Attention-based clustering (ABC) of feature vectors.

A learnable matrix ``M`` (k, d) of cluster centres is the *key* and *value* of a cross-attention
whose *queries* are the vectors ``X`` (N, d): the network re-expresses every vector in the space
of the centres, ``Y = f(X; M)`` (N, d). With ``architecture="attn-mlp"`` (the default) ``f`` is
one transformer step with post-normalization::

    Y' = LayerNorm(X + Attention(X, M, M))
    Y  = LayerNorm(Y' + MLP(Y'))

``"2attn-mlp"`` stacks two attention steps before the MLP, ``"mlp"`` keeps the MLP step only
and ``"identity"`` leaves ``Y = X`` (only ``M`` is learned). The soft assignment of vector
``i`` to cluster ``j`` is ``A_ij = ReLU(cos(Y_i, M_j))``, and the network is trained without
labels on the sum of

* coverage, three hinge terms: every vector's assignments sum to at least 1, and every
  cluster's mass ``sum_i A_ij`` lies between ``low * N`` and ``high * N``
  (``mean_i ReLU(1 - sum_j A_ij) + mean_j ReLU(low N - sum_i A_ij)
  + mean_j ReLU(sum_i A_ij - high N)``, with ``N`` the rows of the batch);
* disjointness: the sum of the off-diagonal entries of ``A^T A`` (k, k).

A vector is labelled by the argmax of its assignment, i.e. its most cosine-similar centre in the
re-expressed space. Each vector attends to the centres only, so labels of new vectors do not
depend on the other vectors given with them.
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

#: Network architectures: the attention steps before the MLP step (None: no MLP either).
ARCHITECTURES: dict[str, int | None] = {"attn-mlp": 1, "2attn-mlp": 2, "mlp": 0, "identity": None}
#: How the centres ``M`` start: k distinct vectors of the data, or a standard normal draw.
INITS = ("samples", "normal")


class AttentionClustering(nn.Module):
    """Vectors ``X`` (N, d) re-expressed by cross-attention to learnable centres ``M`` (k, d).

    Parameters
    ----------
    k : int
        Number of clusters (rows of ``M``).
    dim : int
        Dimension ``d`` of the vectors.
    architecture : str
        One of :data:`ARCHITECTURES`.
    heads : int
        Attention heads (``dim`` must be divisible by it).
    hidden : int, optional
        Width of the MLP's hidden layer; ``4 * dim`` by default.
    """

    def __init__(self, k: int, dim: int, *, architecture: str = "attn-mlp", heads: int = 1,
                 hidden: int | None = None) -> None:
        super().__init__()
        if architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {tuple(ARCHITECTURES)}, "
                             f"got {architecture!r}")
        self.centres = nn.Parameter(torch.randn(k, dim))
        n_attention = ARCHITECTURES[architecture]
        self.attention = nn.ModuleList(
            nn.MultiheadAttention(dim, heads, batch_first=True) for _ in range(n_attention or 0))
        self.attention_norm = nn.ModuleList(nn.LayerNorm(dim) for _ in range(n_attention or 0))
        self.mlp: nn.Module | None = None
        self.mlp_norm: nn.Module | None = None
        if n_attention is not None:
            width = hidden if hidden is not None else 4 * dim
            self.mlp = nn.Sequential(nn.Linear(dim, width), nn.GELU(), nn.Linear(width, dim))
            self.mlp_norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``Y`` (N, d): the vectors ``x`` (N, d) in the space of the centres."""
        y = x
        centres = self.centres[None]
        for attend, norm in zip(self.attention, self.attention_norm, strict=True):
            y = norm(y + attend(y[None], centres, centres, need_weights=False)[0][0])
        if self.mlp is not None and self.mlp_norm is not None:
            y = self.mlp_norm(y + self.mlp(y))
        return y

    def cosines(self, x: torch.Tensor) -> torch.Tensor:
        """``cos(Y, M)`` (N, k) of the vectors ``x`` (N, d)."""
        return F.normalize(self(x), dim=1) @ F.normalize(self.centres, dim=1).T

    def assignments(self, x: torch.Tensor, *, temperature: float | None = None
                    ) -> torch.Tensor:
        """The soft assignments (N, k) of the vectors ``x`` (N, d).

        ``ReLU(cos(Y, M))`` by default; with a ``temperature``, ``softmax(cos(Y, M) / t)``
        over the clusters instead (every row sums to 1, and no cluster's gradient vanishes).
        """
        if temperature is not None:
            return torch.softmax(self.cosines(x) / temperature, dim=1)
        return F.relu(self.cosines(x))


def coverage_loss(assign: torch.Tensor, *, low: float, high: float | None) -> torch.Tensor:
    """The three coverage hinge terms of soft assignments ``assign`` (N, k).

    Parameters
    ----------
    assign : torch.Tensor
        Soft assignments (N, k), non-negative.
    low, high : float
        Cluster-mass bounds as fractions of N: each column should sum to at least ``low * N``
        and at most ``high * N`` (``high=None``: no upper bound).

    Returns
    -------
    torch.Tensor
        ``mean_i ReLU(1 - rowsum_i) + mean_j ReLU(low N - colsum_j)
        + mean_j ReLU(colsum_j - high N)``, a scalar.
    """
    n = assign.shape[0]
    rows, cols = assign.sum(1), assign.sum(0)
    loss = F.relu(1 - rows).mean() + F.relu(low * n - cols).mean()
    if high is not None:
        loss = loss + F.relu(cols - high * n).mean()
    return loss


def disjointness_loss(assign: torch.Tensor) -> torch.Tensor:
    """The sum of the off-diagonal entries of ``assign^T assign`` (k, k), a scalar."""
    gram = assign.T @ assign
    return gram.sum() - gram.diagonal().sum()


def abc_loss(assign: torch.Tensor, *, low: float, high: float | None) -> torch.Tensor:
    """Coverage + disjointness of soft assignments (N, k): the training loss of ABC."""
    return coverage_loss(assign, low=low, high=high) + disjointness_loss(assign)


@dataclass
class FittedABC:
    """A trained attention-based clustering: its centres, network and input standardization.

    Attributes
    ----------
    centres : ndarray (k, d) float32
        The learned centres ``M``.
    mean, scale : ndarray (d,) float32 or None
        The standardization of the inputs (None: raw inputs).
    state : dict of str to torch.Tensor
        The network's state dict (it holds ``centres`` too).
    architecture : str
        One of :data:`ARCHITECTURES`.
    heads : int
        Attention heads.
    """

    centres: NDArray[np.float32]
    mean: NDArray[np.float32] | None = None
    scale: NDArray[np.float32] | None = None
    state: dict[str, torch.Tensor] | None = None
    architecture: str = "attn-mlp"
    heads: int = 1

    def network(self) -> AttentionClustering:
        """The trained network, built once and kept (in eval mode)."""
        cached = self.__dict__.get("_network")
        if cached is None:
            if self.state is None:
                raise ValueError("the fitted clustering holds no network state; fit it again")
            k, dim = self.centres.shape
            cached = AttentionClustering(k, dim, architecture=self.architecture,
                                         heads=self.heads)
            cached.load_state_dict(self.state)
            cached.eval()
            self.__dict__["_network"] = cached
        return cached

    def prepare(self, x: NDArray[np.floating]) -> NDArray[np.float32]:
        """Rows of ``x`` (N, d) standardized as the training vectors were (or as they are)."""
        z = np.asarray(x, np.float32)
        if self.mean is not None and self.scale is not None:
            z = (z - self.mean) / self.scale
        return np.ascontiguousarray(z, dtype=np.float32)

    def cosines(self, x: NDArray[np.floating]) -> NDArray[np.float32]:
        """``cos(Y, M)`` (N, k) of the rows of ``x`` (N, d)."""
        with torch.no_grad():
            out = self.network().cosines(torch.from_numpy(self.prepare(x)))
        return out.numpy()

    def assign(self, x: NDArray[np.floating]) -> NDArray[np.int64]:
        """The cluster of each row of ``x`` (N, d): the argmax of its assignment.

        The argmax is taken over ``cos(Y, M)``, which equals the argmax of ``ReLU(cos(Y, M))``
        wherever some cosine is positive and still ranks the clusters where none is.
        """
        return np.argmax(self.cosines(x), axis=1)


def fit_abc(x: NDArray[np.floating], k: int, *, architecture: str = "attn-mlp",
            heads: int = 1, epochs: int = 500, batch_size: int = 4096, lr: float = 3e-5,
            weight_decay: float = 0.01, size_bounds: tuple[float, float | None] | None = None,
            standardize: bool = False, init: str = "samples",
            temperature: float | None = None, random_state: int | None = 0,
            **train_options: Any) -> FittedABC:
    """Train attention-based clustering on the rows of ``x`` (N, d).

    Parameters
    ----------
    x : ndarray (N, d)
        The vectors (segment features).
    k : int
        Number of clusters.
    architecture : str
        One of :data:`ARCHITECTURES`: ``"attn-mlp"`` (one attention + MLP step),
        ``"2attn-mlp"``, ``"mlp"`` or ``"identity"``.
    heads : int
        Attention heads.
    epochs, batch_size : int
        Passes over the shuffled vectors and vectors per step (the last batch may be smaller).
    lr, weight_decay : float
        AdamW's learning rate and weight decay.
    size_bounds : (float, float or None), optional
        The lower and upper cluster masses as fractions of a batch's rows; by default
        ``1 / k^2`` and ``1 / sqrt(k)``. An upper bound of None (or 1) sets none.
    standardize : bool
        Standardize each feature (zero mean, unit variance over ``x``) first.
    init : str
        ``"samples"``: the centres start at k distinct random rows of ``x`` (after
        standardization); ``"normal"``: as a standard normal draw.
    temperature : float, optional
        None: train on the soft assignments ``ReLU(cos(Y, M))``; a number: on
        ``softmax(cos(Y, M) / temperature)`` instead. Labels are the argmax either way.
    random_state : int or None
        Seeds the initialization, the network and the batches.
    **train_options
        Passed to :func:`unseg.train.train` (``checkpoint``, ``key``, ``desc``).

    Returns
    -------
    FittedABC
    """
    from unseg.errors import ParameterError
    from unseg.train import seeded, train

    x = np.asarray(x, np.float32)
    if x.ndim != 2 or len(x) < k:
        raise ParameterError(
            f"cannot make {k} clusters of {len(x)} vectors. Fix: give more images, or a "
            "smaller k."
        )
    if init not in INITS:
        raise ParameterError(f"init must be one of {INITS}, got {init!r}.")
    if x.shape[1] % heads:
        raise ParameterError(
            f"{heads} attention heads cannot split {x.shape[1]} feature channels. Fix: give a "
            "number of heads that divides the channels (1 always does)."
        )
    mean = scale = None
    if standardize:
        mean = x.mean(0)
        scale = np.maximum(x.std(0), 1e-6).astype(np.float32)
    fitted = FittedABC(np.zeros((k, x.shape[1]), np.float32), mean, scale,
                       architecture=architecture, heads=heads)
    data = torch.from_numpy(fitted.prepare(x))
    low, high = size_bounds if size_bounds is not None else (1 / k**2, 1 / math.sqrt(k))
    with seeded(random_state):
        model = AttentionClustering(k, x.shape[1], architecture=architecture, heads=heads)
        if init == "samples":
            rows = np.random.default_rng(random_state).choice(len(data), k, replace=False)
            with torch.no_grad():
                model.centres.copy_(data[torch.from_numpy(np.sort(rows))])
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)

        def step(batch: NDArray[np.int64], _: int) -> float:
            assign = model.assignments(data[torch.from_numpy(batch)], temperature=temperature)
            loss = abc_loss(assign, low=low, high=high)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            return loss.item()

        def batches(rng: np.random.Generator) -> list[NDArray[np.int64]]:
            order = rng.permutation(len(data))
            return [order[i : i + batch_size] for i in range(0, len(data), batch_size)]

        train({"abc": model}, {"adamw": optimizer}, step, batches, epochs=epochs,
              random_state=random_state, **({"desc": "attention clustering"} | train_options))
    fitted.state = {name: v.detach().clone() for name, v in model.state_dict().items()}
    fitted.centres = model.centres.detach().numpy().astype(np.float32).copy()
    fitted.__dict__["_network"] = model
    return fitted
