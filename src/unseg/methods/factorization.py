"""Segmentation by factorization of backbone features: F-SEG and Deep Feature Factorization.

Both run a backbone, factorize each image's ``(h*w, C)`` feature matrix with NMF and label each
pixel by its strongest factor, after upsampling the factor memberships bilinearly to the image.
``fseg`` maps the factors to a cohort concept bank, so a label means the same concept in every
image; ``dff`` keeps per-image factors, whose ids mean nothing across images.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

from unseg.methods import register
from unseg.methods.base import BackboneSegmenter
from unseg.methods.files import expect_array
from unseg.methods.params import SEED, Interval, Options, Text, param
from unseg.types import Image, LabelMap

if TYPE_CHECKING:
    import torch


def free_factors(x: torch.Tensor, n: int, max_iter: int, random_state: int | None, *,
                 rescale: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Free NMF of each item of ``x`` (B, N, C) into ``n`` factors: W (B, N, n), H (B, n, C).

    With ``rescale``, the rows of H are scaled to unit norm and their norms moved into W.
    NMF leaves the scale of each factor free (``W H = (W s) (H / s)``); moving each row's norm
    into W makes W each factor's share of the pixel's feature vector, comparable across
    factors, so that its argmax does not favour the factors that happen to have small rows.
    Without it, W and H are the raw NMF result (whose scales the solver chose).

    The factorization runs in float64 and returns ``x``'s dtype: in float32 the solver's
    trajectory on many factors (20 on 68 channels) depends on the order its sums are added in,
    so the factors changed with the number of torch threads (on 31 H&E patches, 45% of the
    pixels took another factor with 1 thread than with 2); in float64 they agree (1.3x the time).
    """
    import torch

    from unseg.factorize import nmf

    w, h = nmf(x.to(torch.float64), n, max_iter=max_iter, random_state=random_state)
    w, h = w.to(x.dtype), h.to(x.dtype)
    if not rescale:
        return w, h
    norms = h.norm(dim=2, keepdim=True)  # (B, n, 1)
    return w * norms.transpose(1, 2), h / norms.clamp_min(1e-12)


def cosine_labels(h: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """F-SEG's cosine assignment: the label of each factor, ``argmax_k cos(mu_k, H_m)``.

    Parameters
    ----------
    h : (B, n, C) factor features
    centres : (K, C) bank centres

    Returns
    -------
    (B, n) int64, the most cosine-similar centre of each factor
    """
    import torch.nn.functional as F

    similarity = F.normalize(h, dim=2) @ F.normalize(centres, dim=1).T  # (B, n, K)
    return similarity.argmax(dim=2)


# Fixed-H NMF is cheap per iteration and W's argmax is the label: solve it tightly, so that
# near-collinear bank centres (large banks) are still told apart.
FIXED_H_TOL = 1e-7


class FactorizationSegmenter(BackboneSegmenter):
    """Shared plumbing of F-SEG and DFF: factor memberships on the backbone's grid, labels by
    their upsampled argmax, images of one size factorized together."""

    max_iter: int = param(default=200, check=Interval(int, low=1), doc="NMF iteration cap.")

    def _n_labels(self) -> int:
        raise NotImplementedError

    def _factor(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-item memberships W (B, h*w, n) and the label of each factor (B, n)."""
        raise NotImplementedError

    def memberships(self, images: list[Image]) -> tuple[torch.Tensor, int]:
        """Per-label memberships on the feature grid, for same-size images.

        Returns ``(B, n_labels_, gh, gw)`` (the memberships of the factors given each label,
        summed) and the stride: upsampled bilinearly by ``stride`` and cropped to the image
        size they give each pixel's memberships.
        """
        import torch

        images = [self._checked(image) for image in images]
        self._check_ready()
        n_labels = self._n_labels()
        x, (gh, gw) = self._features(images)
        w, lookup = self._factor(x)
        scores = torch.zeros(w.shape[0], w.shape[1], n_labels, dtype=w.dtype, device=w.device)
        scores.scatter_add_(2, lookup[:, None, :].expand(-1, w.shape[1], -1), w)
        return scores.transpose(1, 2).reshape(w.shape[0], -1, gh, gw), self._backbone().stride

    def _segment(self, images: list[Image]) -> list[tuple[LabelMap, np.ndarray]]:
        """Labels and confidence margins for same-size images."""
        from unseg.factorize import upsample_argmax

        x, (gh, gw) = self._features(images)
        memberships, factor_labels = self._factor(x)
        h, w = images[0].shape[:2]
        stride = self._backbone().stride
        out = []
        for wi, lookup in zip(memberships, factor_labels, strict=True):
            grid = wi.T.reshape(-1, gh, gw)
            label, margin = upsample_argmax(grid, stride)
            labels = lookup[label][:h, :w].cpu().numpy().astype(np.int32)
            out.append((labels, margin[:h, :w].cpu().numpy().astype(np.float32)))
        return out

    def predict_with_confidence(self, image: Image) -> tuple[LabelMap, np.ndarray]:
        """The label map and a per-pixel confidence: ``(best - second) / best`` membership."""
        image = self._checked(image)
        self._check_ready()
        return self._segment([image])[0]

    def _predict_batch(self, images: list[Image]) -> list[LabelMap]:
        """Images of one size are factorized together (each item is its own problem)."""
        result: list[LabelMap] = [np.empty(0, np.int32)] * len(images)
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, image in enumerate(images):
            by_shape.setdefault(image.shape, []).append(i)
        for indices in by_shape.values():
            segments = self._segment([images[i] for i in indices])
            for i, (labels, _) in zip(indices, segments, strict=True):
                result[i] = labels
        return result


@register("fseg")
class FSegSegmenter(FactorizationSegmenter):
    """F-SEG: NMF of backbone features mapped to a concept bank; labels consistent across images.
    """

    requires_fit = True
    learned = ("bank_",)
    test_params = {"k": 3, "tile_size": 16}
    concepts: str | None = param(
        default=None, check=Text(allow_none=True),
        doc="Concept bank: a .npz from `unseg concepts fit` or a published bank name (see "
            "`unseg concepts list`); None fits a bank of size k on the input images first.")
    k: int = param(default=16, check=Interval(int, low=1),
                   doc="Bank size, the number of labels.")
    assign: str = param(
        default="fixed-h", check=Options(("fixed-h", "cosine", "cosine-rescaled")),
        doc="fixed-h: NMF with H fixed to the bank centres (negative entries set to 0), label = "
            "argmax of W. cosine: NMF into n_concepts factors per image, each factor labelled "
            "by its most cosine-similar centre, a pixel's factor the argmax of the raw W. "
            "cosine-rescaled: the same with H's rows scaled to unit norm and their norms moved "
            "into W before the argmax.")
    n_concepts: int = param(
        default=20, check=Interval(int, low=1),
        doc='Factors per image for the cosine assignments (at most the number of feature '
            'cells).')
    tile_size: int | None = param(
        default=None, check=Interval(int, low=1, allow_none=True),
        doc="Tile side when fitting a bank on the inputs; None for the backbone's input size.")
    random_state: int | None = param(
        default=0, check=SEED, doc="Seed of bank fitting and of the NMF initialisation.")

    def _n_labels(self) -> int:
        return self.k

    def _check_state(self) -> None:
        from unseg.concepts import ConceptBank

        if not isinstance(self.bank_, ConceptBank):
            raise ValueError(f"bank_ is a {type(self.bank_).__name__}, not a concept bank")
        for k in self.bank_.ks:
            expect_array(f"bank_ k={k}", self.bank_.get(k), "float32", (k, self.bank_.channels))
        self.bank_.get(self.k)

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

    def image_concepts(self, image: Image) -> tuple[LabelMap, np.ndarray]:
        """F-SEG's factorization of one image alone, as its cosine assignment computes it.

        Returns the factor owning each pixel, ``(H, W)`` int32 (argmax of the upsampled W), and
        the factors' features H, ``(n, C)`` float32: ``n_concepts`` factors (fewer when the image
        has fewer feature cells), H's rows at unit norm with ``assign="cosine-rescaled"``. The
        concept features the paper's linear probe classifies (its section 3.5.1).
        """
        from unseg.factorize import upsample_argmax

        image = self._checked(image)
        self._check_ready()
        x, (gh, gw) = self._features([image])
        n = min(self.n_concepts, x.shape[1], x.shape[2])
        w, h = free_factors(x, n, self.max_iter, self.random_state,
                            rescale=self.assign == "cosine-rescaled")
        stride = self._backbone().stride
        owner, _ = upsample_argmax(w[0].T.reshape(-1, gh, gw), stride)
        rows, cols = image.shape[:2]
        return (owner[:rows, :cols].cpu().numpy().astype(np.int32),
                h[0].cpu().numpy().astype(np.float32))

    def _factor(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        from unseg.factorize import nmf

        centres = torch.from_numpy(self.bank_.get(self.k)).to(x.device, x.dtype).clamp_min(0)
        batch = x.shape[0]
        if self.assign == "fixed-h":
            w, _ = nmf(x, self.k, H=centres, max_iter=self.max_iter, tol=FIXED_H_TOL)
            return w, torch.arange(self.k, device=x.device).expand(batch, -1)
        n = min(self.n_concepts, x.shape[1], x.shape[2])
        w, h = free_factors(x, n, self.max_iter, self.random_state,
                            rescale=self.assign == "cosine-rescaled")
        return w, cosine_labels(h, centres)


@register("dff")
class DFFSegmenter(FactorizationSegmenter):
    """Deep Feature Factorization of each image alone: NMF of its backbone features (ids not
    shared between images)."""

    k: int = param(
        default=4, check=Interval(int, low=1),
        doc="Factors per image, the number of labels (at most the number of feature cells).")
    random_state: int | None = param(
        default=0, check=SEED, doc="Seed of the NMF initialisation.")

    def _n_labels(self) -> int:
        return self.k

    def _factor(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        n = min(self.k, x.shape[1], x.shape[2])
        w, _ = free_factors(x, n, self.max_iter, self.random_state)
        return w, torch.arange(n, device=x.device).expand(x.shape[0], -1)
