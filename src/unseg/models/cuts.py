"""The CUTS pixel encoder and its training losses.

The encoder is four 5x5 convolutions with BatchNorm and LeakyReLU and no pooling, so each pixel
gets an embedding whose receptive field is the 17x17 patch centred on it (``RECEPTIVE_FIELD``).
Training picks anchor pixels and mines each anchor's positives among its neighbours: those whose
patch passes a structural similarity (SSIM) threshold with the anchor's patch. The contrastive
loss of the paper (section 3.1.1) asks that an anchor's embedding be close (in cosine) to its
own positives, the other anchors' positives serving as its negatives:
``-log(sum over positives / sum over negatives)`` of ``exp(cosine / temperature)``. A linear
head rebuilds each anchor's patch from its embedding.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

KERNEL = 5
LAYERS = 4
#: Pixels from the centre to the edge of an embedding's receptive field.
RECEPTIVE_RADIUS = LAYERS * (KERNEL // 2)
#: Side of the square patch an embedding sees: 17 for four 5x5 convolutions.
RECEPTIVE_FIELD = 2 * RECEPTIVE_RADIUS + 1
#: How positives are chosen among the neighbours that pass the SSIM threshold.
POSITIVE_RULES = ("random", "all", "best")
#: The contrastive losses: the paper's (negatives only in the denominator) and InfoNCE.
CONTRASTIVE_LOSSES = ("paper", "info-nce")
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


def neighbour_offsets(radius: int) -> torch.Tensor:
    """The (O, 2) offsets ``(dy, dx)`` of a square neighbourhood of ``radius``, centre excluded:
    ``O = (2 * radius + 1) ** 2 - 1``."""
    span = torch.arange(-radius, radius + 1)
    grid = torch.stack(torch.meshgrid(span, span, indexing="ij"), -1).reshape(-1, 2)
    return grid[(grid != 0).any(1)]


class Mined(NamedTuple):
    """Anchors and their positives, as :func:`mine_positives` finds them."""

    #: (B, A) anchor pixels.
    rows: torch.Tensor
    cols: torch.Tensor
    #: (O, 2) the neighbour offsets examined, the same for every anchor.
    offsets: torch.Tensor
    #: (B, A, O) SSIM of each anchor's patch with the patch of each neighbour.
    similarity: torch.Tensor
    #: (B, A, O) which neighbours are the anchor's positives.
    positive: torch.Tensor


def mine_positives(x: torch.Tensor, n_anchors: int, patch_size: int, radius: int,
                   ssim_threshold: float, rule: str = "random",
                   generator: torch.Generator | None = None) -> Mined:
    """Anchor pixels and their positives: neighbours whose patch passes the SSIM threshold.

    Anchors are drawn uniformly among the pixels far enough from the edges that their
    receptive field, and that of every neighbour within ``radius`` (a square neighbourhood,
    the anchor excluded), lie inside the image. A neighbour is a candidate when the SSIM of
    its ``patch_size`` patch with the anchor's is at least ``ssim_threshold``; of the
    candidates, ``rule`` keeps

    - ``"random"``: one drawn uniformly (one positive per anchor),
    - ``"all"``: every one (the set of positives of the paper's loss),
    - ``"best"``: the one of highest SSIM.

    An anchor without candidates has no positive (its row of ``positive`` is all False).

    Parameters
    ----------
    x : (B, C, H, W) images in [0, 1]
    n_anchors, patch_size, radius, ssim_threshold, rule
        As above.
    generator : torch.Generator, optional
        Draws the anchors and the random positives.

    Returns
    -------
    Mined
    """
    if rule not in POSITIVE_RULES:
        raise ValueError(f"rule must be one of {POSITIVE_RULES}, got {rule!r}")
    b, _, h, w = x.shape
    margin = max(RECEPTIVE_RADIUS, patch_size // 2) + radius
    if h <= 2 * margin or w <= 2 * margin:
        raise ValueError(f"images of {h}x{w} are too small for a margin of {margin} pixels")
    device = x.device
    rows = torch.randint(margin, h - margin, (b, n_anchors), generator=generator).to(device)
    cols = torch.randint(margin, w - margin, (b, n_anchors), generator=generator).to(device)
    offsets = neighbour_offsets(radius).to(device)
    anchor = patches_at(x, rows, cols, patch_size)
    similarity = torch.stack(
        [patch_ssim(anchor, patches_at(x, rows + dy, cols + dx, patch_size))
         for dy, dx in offsets.tolist()], -1)  # (B, A, O)
    passes = similarity >= ssim_threshold
    if rule == "all":
        return Mined(rows, cols, offsets, similarity, passes)
    if rule == "random":
        score = torch.rand(similarity.shape, generator=generator).to(device)
    else:
        score = similarity
    chosen = torch.where(passes, score, torch.full_like(score, -torch.inf)).argmax(-1)
    positive = F.one_hot(chosen, len(offsets)).bool() & passes
    return Mined(rows, cols, offsets, similarity, positive)


def embeddings_at(z: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """Embeddings (B, A, D) at given pixels of an embedding map (B, D, H, W)."""
    return patches_at(z, rows, cols, 1)


def contrastive_from_similarity(similarity: torch.Tensor, owner: torch.Tensor,
                                temperature: float, loss: str = "paper") -> torch.Tensor:
    """The contrastive loss of anchors against a pool of positives, from their similarities.

    Parameters
    ----------
    similarity : (A, P)
        Cosine similarity of each anchor with each pooled positive.
    owner : (P,) int
        The anchor each pooled positive belongs to: it is a positive of that anchor and a
        negative of every other anchor.
    temperature : float
    loss : {"paper", "info-nce"}
        ``"paper"``: ``-log(sum_own e^(s/t) / sum_others e^(s/t))``, the negatives only in
        the denominator (CUTS, section 3.1.1). ``"info-nce"``: ``-log(sum_own e^(s/t) /
        sum_all e^(s/t))``, the anchor's own positives in the denominator too (NT-Xent with
        one positive per anchor).

    Returns
    -------
    () tensor
        The mean over the anchors that own at least one positive and have at least one
        negative; 0 when there are none.
    """
    if loss not in CONTRASTIVE_LOSSES:
        raise ValueError(f"loss must be one of {CONTRASTIVE_LOSSES}, got {loss!r}")
    logits = similarity / temperature
    own = owner[None, :] == torch.arange(len(similarity), device=similarity.device)[:, None]
    minus_inf = torch.full_like(logits, -torch.inf)
    numerator = torch.where(own, logits, minus_inf).logsumexp(1)
    pool = logits if loss == "info-nce" else torch.where(own, minus_inf, logits)
    denominator = pool.logsumexp(1)
    counted = own.any(1) & (~own).any(1)
    if not bool(counted.any()):
        return similarity.new_zeros(())
    return (denominator - numerator)[counted].mean()


def cuts_loss(encoder: CUTSEncoder, head: nn.Linear, x: torch.Tensor, *, n_anchors: int,
              patch_size: int, radius: int, ssim_threshold: float, temperature: float,
              contrastive_weight: float, positives: str = "random", contrastive: str = "paper",
              generator: torch.Generator | None = None) -> torch.Tensor:
    """``contrastive_weight * contrastive + (1 - contrastive_weight) * patch reconstruction``.

    The contrastive term is intra-image: each image's anchors are set against the positives
    mined in the same image (:func:`mine_positives` with ``positives`` as its rule), each
    anchor's own positives in the numerator and the other anchors' positives as its negatives
    (:func:`contrastive_from_similarity` with ``contrastive`` as its loss), and the terms are
    averaged over the images. Anchors without a positive stay out of it (an image with fewer
    than two such anchors adds nothing); every anchor counts in the reconstruction, the mean
    squared error of its ``patch_size`` patch rebuilt from its embedding by ``head``.
    """
    with torch.no_grad():
        mined = mine_positives(x, n_anchors, patch_size, radius, ssim_threshold, positives,
                               generator)
    z = encoder(x)
    rows, cols = mined.rows, mined.cols
    anchors = embeddings_at(z, rows, cols)  # (B, A, D)
    target = patches_at(x, rows, cols, patch_size)
    reconstruction = F.mse_loss(head(anchors), target)
    terms = []
    for i in range(x.shape[0]):
        which, offset = torch.nonzero(mined.positive[i], as_tuple=True)  # (P,), (P,)
        if len(torch.unique(which)) < 2:
            continue
        shift = mined.offsets[offset]
        pool = embeddings_at(z[i : i + 1], (rows[i, which] + shift[:, 0])[None],
                             (cols[i, which] + shift[:, 1])[None])[0]  # (P, D)
        similarity = F.normalize(anchors[i], dim=1) @ F.normalize(pool, dim=1).T
        terms.append(contrastive_from_similarity(similarity, which, temperature, contrastive))
    loss_c = torch.stack(terms).mean() if terms else z.new_zeros(())
    return contrastive_weight * loss_c + (1 - contrastive_weight) * reconstruction
