"""Segmentation by factorization of backbone features: F-SEG and Deep Feature Factorization.

Both run a backbone, factorize each image's ``(h*w, C)`` feature matrix with NMF and label each
pixel by its strongest factor, after upsampling the factor memberships bilinearly to the image.
``fseg`` maps the factors to a cohort concept bank, so a label means the same concept in every
image; ``dff`` keeps per-image factors, whose ids mean nothing across images.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal

import numpy as np

from unseg.methods import register
from unseg.methods.base import BackboneFeatures, Segmenter
from unseg.methods.params import SEED, Constraint, Interval, Options, Text
from unseg.types import Image, LabelMap

if TYPE_CHECKING:
    import torch



def upsample_argmax(scores: torch.Tensor, size: tuple[int, int], chunk: int = 32
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Argmax over channels of ``scores`` (K, h, w) upsampled bilinearly to ``size``.

    Returns the label ``(H, W)`` and the margin ``(best - second) / best`` in [0, 1]. Channels
    are upsampled ``chunk`` at a time, so memory stays at ``chunk * H * W`` floats.
    """
    import torch
    import torch.nn.functional as F

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


def free_factors(x: torch.Tensor, n: int, max_iter: int, random_state: int | None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Free NMF of each item of ``x`` (B, N, C) into ``n`` factors, rows of H of unit norm.

    NMF leaves the scale of each factor free (``W H = (W s) (H / s)``); moving each row's norm
    into W makes W each factor's share of the pixel's feature vector, comparable across
    factors, so that its argmax does not favour the factors that happen to have small rows.
    """
    from unseg.factorize import nmf

    w, h = nmf(x, n, max_iter=max_iter, random_state=random_state)
    norms = h.norm(dim=2, keepdim=True)  # (B, n, 1)
    return w * norms.transpose(1, 2), h / norms.clamp_min(1e-12)


# Fixed-H NMF is cheap per iteration and W's argmax is the label: solve it tightly, so that
# near-collinear bank centres (large banks) are still told apart.
FIXED_H_TOL = 1e-7


class _FactorizationSegmenter(BackboneFeatures, Segmenter):
    """Shared plumbing: the backbone, padding to its size rule, batching by size."""

    max_iter: int

    def _factor(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-item memberships W (B, h*w, n) and the label of each factor (B, n)."""
        raise NotImplementedError

    def n_labels(self) -> int:
        """How many label ids the method gives."""
        return int(self.k)  # type: ignore[attr-defined]

    def memberships(self, images: list[Image]) -> tuple[torch.Tensor, int]:
        """Per-label memberships on the feature grid, for same-size images.

        Returns ``(B, n_labels, gh, gw)`` (the memberships of the factors given each label,
        summed) and the stride: upsampled bilinearly by ``stride`` and cropped to the image
        size they give each pixel's memberships.
        """
        import torch

        x, (gh, gw) = self._features(images)
        w, lookup = self._factor(x)
        scores = torch.zeros(w.shape[0], w.shape[1], self.n_labels(), dtype=w.dtype,
                             device=w.device)
        scores.scatter_add_(2, lookup[:, None, :].expand(-1, w.shape[1], -1), w)
        return scores.transpose(1, 2).reshape(w.shape[0], -1, gh, gw), self._backbone().stride

    def segment_batch(self, images: list[Image]) -> list[tuple[LabelMap, np.ndarray]]:
        """Labels and confidence margins for same-size images."""
        x, (gh, gw) = self._features(images)
        memberships, factor_labels = self._factor(x)
        h, w = images[0].shape[:2]
        stride = self._backbone().stride
        out = []
        for wi, lookup in zip(memberships, factor_labels, strict=True):
            grid = wi.T.reshape(-1, gh, gw)
            label, margin = upsample_argmax(grid, (gh * stride, gw * stride))
            labels = lookup[label][:h, :w].cpu().numpy().astype(np.int32)
            out.append((labels, margin[:h, :w].cpu().numpy().astype(np.float32)))
        return out

    def predict_with_confidence(self, image: Image) -> tuple[LabelMap, np.ndarray]:
        """The label map and a per-pixel confidence: ``(best - second) / best`` membership."""
        self._check_ready()
        return self.segment_batch([image])[0]

    def _predict(self, image: Image) -> LabelMap:
        return self.segment_batch([image])[0][0]

    def predict_batch(self, images: Iterable[Image]) -> list[LabelMap]:
        """Segment several images, factorizing those of one size together."""
        images = list(images)
        if not images:
            return []
        self._check_ready()
        result: list[LabelMap | None] = [None] * len(images)
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, image in enumerate(images):
            by_shape.setdefault(image.shape, []).append(i)
        for indices in by_shape.values():
            segments = self.segment_batch([images[i] for i in indices])
            for i, (labels, _) in zip(indices, segments, strict=True):
                result[i] = labels
        return result  # type: ignore[return-value]


_BACKBONE_CONSTRAINTS: dict[str, Constraint] = BackboneFeatures.constraints | {
    "max_iter": Interval(int, low=1),
    "random_state": SEED,
}


@register("fseg")
class FSegSegmenter(_FactorizationSegmenter):
    """F-SEG: NMF of backbone features mapped to a concept bank; labels consistent across images.

    Parameters
    ----------
    backbone : str
        Feature extractor (see `unseg backbones`); "default" is embedded and needs no download.
    weights : str or None
        Backbone weights: None for its pretrained weights, a local file or folder, or "random".
    layer : str or None
        Backbone layer; None for the backbone's default.
    concepts : str or None
        Concept bank: a .npz from `unseg concepts fit` or a published bank name (see `unseg
        concepts list`); None fits a bank of size k on the input images first.
    k : int
        Bank size, the number of labels.
    assign : {"fixed-h", "cosine"}
        fixed-h: NMF with H fixed to the bank centres (negative entries set to 0), label =
        argmax of W. cosine: NMF into n_concepts factors per image, each factor labelled by
        its most cosine-similar centre.
    n_concepts : int
        Factors per image for assign="cosine" (at most the number of feature cells).
    tile_size : int or None
        Tile side when fitting a bank on the inputs; None for the backbone's input size.
    max_iter : int
        NMF iteration cap.
    device : str
        Where the backbone and NMF run: "cpu", "cuda", "cuda:1", ...
    random_state : int or None
        Seed of bank fitting and of the NMF initialisation.
    """

    requires_fit = True
    test_params = {"k": 3, "tile_size": 16}
    _constraints = _BACKBONE_CONSTRAINTS | {
        "concepts": Text(allow_none=True),
        "k": Interval(int, low=1),
        "assign": Options(("fixed-h", "cosine")),
        "n_concepts": Interval(int, low=1),
        "tile_size": Interval(int, low=1, allow_none=True),
    }

    def __init__(
        self,
        *,
        backbone: str = "default",
        weights: str | None = None,
        layer: str | None = None,
        concepts: str | None = None,
        k: int = 16,
        assign: Literal["fixed-h", "cosine"] = "fixed-h",
        n_concepts: int = 8,
        tile_size: int | None = None,
        max_iter: int = 200,
        device: str = "cpu",
        random_state: int | None = 0,
    ) -> None:
        self.backbone = backbone
        self.weights = weights
        self.layer = layer
        self.concepts = concepts
        self.k = k
        self.assign = assign
        self.n_concepts = n_concepts
        self.tile_size = tile_size
        self.max_iter = max_iter
        self.device = device
        self.random_state = random_state

    def _fit(self, images: Iterable[Image]) -> None:
        from unseg.concepts import fit_bank, load_bank

        backbone = self._backbone()
        if self.concepts is None:
            bank = fit_bank(backbone, images, ks=(self.k,), tile_size=self.tile_size,
                            random_state=self.random_state)
        else:
            bank = load_bank(self.concepts)
        bank.check(backbone)
        bank.get(self.k)
        self.bank_ = bank

    def _factor(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        from unseg.factorize import nmf

        centres = torch.from_numpy(self.bank_.get(self.k)).to(x.device, x.dtype).clamp_min(0)
        batch = x.shape[0]
        if self.assign == "fixed-h":
            w, _ = nmf(x, self.k, H=centres, max_iter=self.max_iter, tol=FIXED_H_TOL)
            return w, torch.arange(self.k, device=x.device).expand(batch, -1)
        n = min(self.n_concepts, x.shape[1], x.shape[2])
        w, h = free_factors(x, n, self.max_iter, self.random_state)
        similarity = torch.nn.functional.normalize(h, dim=2) @ torch.nn.functional.normalize(
            centres, dim=1).T
        return w, similarity.argmax(dim=2)


@register("dff")
class DFFSegmenter(_FactorizationSegmenter):
    """Deep Feature Factorization: NMF of each image's backbone features (ids not shared).

    Parameters
    ----------
    backbone : str
        Feature extractor (see `unseg backbones`); "default" is embedded and needs no download.
    weights : str or None
        Backbone weights: None for its pretrained weights, a local file or folder, or "random".
    layer : str or None
        Backbone layer; None for the backbone's default.
    k : int
        Factors per image, the number of labels (at most the number of feature cells).
    max_iter : int
        NMF iteration cap.
    device : str
        Where the backbone and NMF run: "cpu", "cuda", "cuda:1", ...
    random_state : int or None
        Seed of the NMF initialisation.
    """

    _constraints = _BACKBONE_CONSTRAINTS | {"k": Interval(int, low=1)}

    def __init__(
        self,
        *,
        backbone: str = "default",
        weights: str | None = None,
        layer: str | None = None,
        k: int = 4,
        max_iter: int = 200,
        device: str = "cpu",
        random_state: int | None = 0,
    ) -> None:
        self.backbone = backbone
        self.weights = weights
        self.layer = layer
        self.k = k
        self.max_iter = max_iter
        self.device = device
        self.random_state = random_state

    def _factor(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        n = min(self.k, x.shape[1], x.shape[2])
        w, _ = free_factors(x, n, self.max_iter, self.random_state)
        return w, torch.arange(n, device=x.device).expand(x.shape[0], -1)
