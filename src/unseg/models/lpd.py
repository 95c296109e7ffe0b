"""Learnable class prototypes on a multi-scale encoder (LPD), and the plain CAM classifier.

LPD (Le et al., 2025) keeps ``C x M`` learnable prototype vectors in one space; a small MLP per
scale projects them to that scale's channels; the scaled cosine similarity of every pixel
feature with every projected prototype is a class activation map (CAM) per prototype. Global
average pooling gives a score per prototype, merged per class (mean in training, max at test)
and trained with multi-label BCE per scale. After a warm-up, a diversity term pushes the
prototypes of a class onto different pixels of it, and a contrastive term aligns them with
region features of a frozen encoder. docs/lpd.md lists what follows the public reference and
what differs.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

#: The reference's prototype space and projection width.
PROTOTYPE_DIM = 512
HIDDEN = 256
#: The reference's BCE weights of the four scales, finest first.
SCALE_WEIGHTS = (0.0, 0.1, 1.0, 1.0)


class PrototypeHead(nn.Module):
    """``C x M`` prototypes, one projection per scale, a learnable temperature.

    Parameters
    ----------
    channels : sequence of int
        Channels of the encoder's scales, finest first.
    n_classes, per_class : int
        C and M.
    """

    def __init__(self, channels: tuple[int, ...], n_classes: int, per_class: int) -> None:
        super().__init__()
        self.n_classes, self.per_class = n_classes, per_class
        self.prototypes = nn.Parameter(torch.randn(n_classes * per_class, PROTOTYPE_DIM))
        self.projections = nn.ModuleList(
            nn.Sequential(nn.Linear(PROTOTYPE_DIM, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, c))
            for c in channels)
        # learnable scale of the cosines, initialised to 1 / 0.07 (kept positive as a log)
        self.log_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def projected(self, scale: int) -> torch.Tensor:
        """``(C * M, C_s)`` prototypes in the space of scale ``scale`` (-1: the deepest)."""
        return self.projections[scale](self.prototypes)

    def cams(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        """Per scale, ``(B, C * M, h, w)`` scaled cosines of pixels and prototypes."""
        scale = self.log_scale.exp()
        return [scale * torch.einsum("bchw,kc->bkhw", F.normalize(f, dim=1),
                                     F.normalize(self.projected(s), dim=1))
                for s, f in enumerate(features)]

    def class_scores(self, cam: torch.Tensor, merge: str) -> torch.Tensor:
        """``(B, C)`` logits: each prototype's map averaged, merged per class by ``merge``
        (``"mean"`` in training, ``"max"`` at test)."""
        b = cam.shape[0]
        scores = cam.mean(dim=(2, 3)).view(b, self.n_classes, self.per_class)
        return scores.mean(2) if merge == "mean" else scores.amax(2)

    def class_maps(self, cam: torch.Tensor) -> torch.Tensor:
        """``(B, C, h, w)``: per class, the largest map of its prototypes."""
        b, _, h, w = cam.shape
        return cam.view(b, self.n_classes, self.per_class, h, w).amax(2)


class CAMHead(nn.Module):
    """The plain CAM classifier: a 1x1 convolution of the deepest scale, pooled globally."""

    def __init__(self, channels: tuple[int, ...], n_classes: int) -> None:
        super().__init__()
        self.classifier = nn.Conv2d(channels[-1], n_classes, 1)

    def cams(self, features: list[torch.Tensor]) -> torch.Tensor:
        """``(B, C, h, w)`` class activation maps of the deepest scale."""
        return self.classifier(features[-1])


def multilabel_loss(logits: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Multi-label BCE with logits, averaged over images and classes."""
    return F.binary_cross_entropy_with_logits(logits, present.float())


def normalized_maps(maps: torch.Tensor, present: torch.Tensor | None = None) -> torch.Tensor:
    """``(B, C, h, w)`` maps after ReLU, each divided by its own maximum, in [0, 1]; classes
    not ``present`` (``(B, C)`` bool) set to 0."""
    maps = torch.relu(maps)
    maps = maps / maps.amax(dim=(2, 3), keepdim=True).clamp_min(1e-6)
    if present is not None:
        maps = maps * present[:, :, None, None].to(maps.dtype)
    return maps


def pseudo_mask(maps: torch.Tensor, present: torch.Tensor, background: float) -> torch.Tensor:
    """``(B, h, w)`` class per pixel from class maps: the present classes' normalised maps
    beside a constant background score, argmax; ``C`` (the last index) is background."""
    norm = normalized_maps(maps, present)
    bg = torch.full_like(norm[:, :1], background)
    return torch.cat([norm, bg], dim=1).argmax(1)


def pair_similarities(features: torch.Tensor, prototypes: torch.Tensor, mask: torch.Tensor,
                      n_classes: int, per_class: int, scale: torch.Tensor) -> torch.Tensor:
    """``exp(-J)`` for every image, class in the pseudo-mask and pair of its prototypes.

    For each image and class present in ``mask`` (``(B, h, w)``, at least two pixels), each of
    the class's prototypes gives a distribution over that class's pixels, the softmax of its
    scaled cosine similarities with the deepest features ``(B, C_s, h, w)``; ``J`` is the
    Jeffreys divergence (symmetrised KL) of two of them. Near 1 when the prototypes of a class
    pick the same pixels. Empty when there is no pair.
    """
    sims = scale * torch.einsum("bchw,kc->bkhw", F.normalize(features, dim=1),
                                F.normalize(prototypes, dim=1))
    i, j = torch.triu_indices(per_class, per_class, offset=1, device=features.device)
    terms = [features.new_zeros(0)]
    for b in range(features.shape[0]):
        for c in range(n_classes):
            pixels = mask[b] == c
            if pixels.sum() < 2 or per_class < 2:
                continue
            logp = torch.log_softmax(sims[b, c * per_class:(c + 1) * per_class][:, pixels], 1)
            p = logp.exp()
            kl_ij = (p[i] * (logp[i] - logp[j])).sum(1)
            kl_ji = (p[j] * (logp[j] - logp[i])).sum(1)
            terms.append(torch.exp(-(kl_ij + kl_ji)))
    return torch.cat(terms)


def diversity_loss(features: torch.Tensor, prototypes: torch.Tensor, mask: torch.Tensor,
                   n_classes: int, per_class: int, scale: torch.Tensor) -> torch.Tensor:
    """The mean of :func:`pair_similarities` (0 without pairs): low when the prototypes of a
    class pick different pixels."""
    terms = pair_similarities(features, prototypes, mask, n_classes, per_class, scale)
    return terms.mean() if terms.numel() else features.new_zeros(())


def region_features(features: torch.Tensor, mask: torch.Tensor, n_classes: int
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mean features ``(B, C_s, h, w)`` of each class region of ``mask`` ``(B, h, w)`` (class
    ``n_classes`` is background) and of each image's background.

    Returns
    -------
    regions : (R, C_s) tensor
        One row per (image, class) with pixels in ``mask``.
    classes, image_of : (R,) long tensors
        Their class and image.
    backgrounds : (B, C_s) tensor
        Each image's background mean; zeros where it has no background pixels.
    """
    b, channels = features.shape[:2]
    flat = features.flatten(2)  # (B, C_s, h*w)
    onehot = F.one_hot(mask.flatten(1), n_classes + 1).to(features.dtype)  # (B, h*w, C + 1)
    counts = onehot.sum(1)  # (B, C + 1)
    means = torch.einsum("bcp,bpk->bkc", flat, onehot) / counts.clamp_min(1)[..., None]
    found = counts[:, :n_classes] > 0
    image_of, classes = found.nonzero(as_tuple=True)
    return means[image_of, classes], classes, image_of, means[:, n_classes]


def alignment_loss(regions: torch.Tensor, classes: torch.Tensor, backgrounds: torch.Tensor,
                   image_of: torch.Tensor, prototypes: torch.Tensor, per_class: int,
                   temperature: float) -> torch.Tensor:
    """InfoNCE pulling each class region's feature to its class's prototypes, away from the
    other classes' prototypes and from its image's background feature.

    ``regions`` ``(R, C_s)`` (from the frozen encoder), ``classes`` ``(R,)``, ``backgrounds``
    ``(B, C_s)`` (rows of zeros where an image has no background), ``image_of`` ``(R,)`` the
    image of each region, ``prototypes`` ``(C * M, C_s)``.
    """
    if regions.shape[0] == 0:
        return prototypes.new_zeros(())
    r = F.normalize(regions, dim=1)
    logits = r @ F.normalize(prototypes, dim=1).T / temperature  # (R, C * M)
    bg = backgrounds[image_of]
    has_bg = bg.norm(dim=1) > 0
    bg_logit = (r * F.normalize(bg, dim=1)).sum(1, keepdim=True) / temperature
    bg_logit = bg_logit.masked_fill(~has_bg[:, None], float("-inf"))
    owner = torch.arange(prototypes.shape[0], device=r.device) // per_class
    positive = owner[None, :] == classes[:, None]
    all_logits = torch.cat([logits, bg_logit], dim=1)
    pos = torch.logsumexp(logits.masked_fill(~positive, float("-inf")), dim=1)
    return (torch.logsumexp(all_logits, dim=1) - pos).mean()
