"""Two-step unsupervised semantic segmentation: group each image, then label the groups.

Step 1 splits each image into segments from backbone features (for a ViT backbone the last
attention block's keys, signs kept): ``dsm`` by the eigenvectors of a feature-affinity
Laplacian (Deep Spectral Methods), ``acseg`` by the concepts an Adaptive Concept Generator makes
for the image (ACSeg). Step 2 describes each segment by the backbone's encoding of a crop around
it (or the mean feature of its cells) and clusters the segments of all images once, by k-means,
k-means with Sinkhorn optimal transport (``otc``) or attention-based clustering (``abc``).
Prediction assigns a new image's segments to those clusters, so a label means the same thing in
every image; adjacent segments given the same label form one region of the map.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from unseg.errors import ParameterError
from unseg.methods import register
from unseg.methods.base import BackboneSegmenter, as_cells, pad_to_multiple
from unseg.methods.files import expect_array, expect_module_state
from unseg.methods.params import SEED, Flag, Interval, Options, param
from unseg.types import Image, LabelMap

if TYPE_CHECKING:
    from unseg.cluster.attention import FittedABC
    from unseg.cluster.kmeans import Centres


class _Grid:
    """One image on its backbone grid: cell features (N, C), the grid shape, the working
    image (downscaled to ``max_side``) and the original size."""

    def __init__(self, feats: np.ndarray, shape: tuple[int, int], image: Image,
                 size: tuple[int, int], stride: int) -> None:
        self.feats, self.shape, self.image, self.size, self.stride = (
            feats, shape, image, size, stride)


class TwoStepSegmenter(BackboneSegmenter):
    """Shared steps: features, segment features, dataset clustering, prediction."""

    requires_fit = True
    learned: ClassVar[tuple[str, ...]] = ("clusters_", "n_segments_fitted_")
    #: Whether the border segment is set apart (a parameter of dsm only).
    background = False

    k: int = param(default=8, check=Interval(int, low=1),
                   doc="Number of dataset-level clusters: the labels.")
    cluster: str = param(
        default="kmeans", check=Options(("kmeans", "otc", "abc")),
        doc="Dataset-level clustering of the segment features: k-means, k-means with Sinkhorn "
            "optimal-transport assignments, or attention-based clustering.")
    metric: str = param(default="l2", check=Options(("l2", "cosine")),
                        doc="Distance of k-means: Euclidean, or cosine (spherical).")
    standardize: bool = param(
        default=False, check=Flag(),
        doc="Standardize each feature (zero mean, unit variance over the fitted segments) "
            "before clustering (k-means, OTC and ABC).")
    vit_features: str = param(
        default="keys", check=Options(("keys", "tokens")),
        doc="Cell features of a ViT backbone: the attention keys of its block (the last unless "
            "layer names another), signs kept, or the block's output tokens after ReLU (the "
            "backbone's feature map). Other backbones give their feature map either way.")
    segment_feature: str = param(
        default="crop", check=Options(("crop", "mean")),
        doc="A segment's feature: the backbone's encoding of the bounding box of the segment "
            "(eroded crop_erode times, then dilated crop_dilate times), the mean of the crop's "
            "feature map; or the mean feature of the segment's cells.")
    crop_size: int | None = param(
        default=None, check=Interval(int, low=8, allow_none=True),
        doc='Side the crops are resized to for segment_feature="crop"; None encodes them at '
            "the image's resolution.")
    crop_erode: int = param(default=2, check=Interval(int, low=0),
                            doc="Erosions of a segment's mask (in cells) before its box is "
                                "taken; an erosion that would empty it is skipped.")
    crop_dilate: int = param(default=3, check=Interval(int, low=0),
                             doc="Dilations of a segment's mask (in cells) after the erosions.")
    max_side: int = param(
        default=512, check=Interval(int, low=16),
        doc="Images with a longer side are downscaled to it before grouping (labels are "
            "resized back to the input).")
    ot_metric: str = param(default="cosine", check=Options(("cosine", "l2")),
                           doc="Similarity of OTC's transport plans: cosine, or negative "
                               "squared distance.")
    ot_temperature: float = param(default=0.02, check=Interval(float, low=0, low_open=True),
                                  doc="Sinkhorn temperature of OTC.")
    sinkhorn_iterations: int = param(default=10, check=Interval(int, low=1),
                                     doc="Sinkhorn iterations per OTC update.")
    ot_updates: int = param(default=200, check=Interval(int, low=1),
                            doc="OTC centre updates.")
    ot_init: str = param(default="random", check=Options(("random", "k-means++")),
                         doc="OTC's first centres: k random segments, or k-means++ seeding.")
    ot_tol: float = param(default=0.0, check=Interval(float, low=0),
                          doc="Stop OTC once no centre moves more than this in an update "
                              "(0: run all ot_updates).")
    abc_architecture: str = param(
        default="attn-mlp", check=Options(("attn-mlp", "2attn-mlp", "mlp", "identity")),
        doc="Network of attention-based clustering: one cross-attention step (segments "
            "attend to the centres) then an MLP step, two attention steps then the MLP, the "
            "MLP step only, or none (only the centres are learned).")
    abc_heads: int = param(default=1, check=Interval(int, low=1),
                           doc="Attention heads of attention-based clustering (must divide "
                               "the feature channels).")
    abc_epochs: int = param(default=500, check=Interval(int, low=1),
                            doc="Training epochs of attention-based clustering.")
    abc_batch_size: int = param(default=4096, check=Interval(int, low=1),
                                doc="Segments per training step of attention-based clustering.")
    abc_lr: float = param(default=3e-5, check=Interval(float, low=0, low_open=True),
                          doc="AdamW learning rate of attention-based clustering.")
    abc_init: str = param(default="samples", check=Options(("samples", "normal")),
                          doc="First centres of attention-based clustering: k random "
                              "segments, or a standard normal draw.")
    abc_min_size: float | None = param(
        default=None, check=Interval(float, low=0, high=1, allow_none=True),
        doc="Smallest cluster mass as a fraction of a batch's segments; None for 1 / k^2.")
    abc_max_size: float | None = param(
        default=None, check=Interval(float, low=0, high=1, low_open=True, allow_none=True),
        doc="Largest cluster mass as a fraction of a batch's segments; None for 1 / sqrt(k), "
            "1 for no upper bound.")
    random_state: int | None = param(default=0, check=SEED,
                                     doc="Seed of every random choice.")

    def _n_labels(self) -> int:
        return self.k + 1 if self.background else self.k

    def _check_state(self) -> None:
        from unseg.cluster.attention import AttentionClustering, FittedABC
        from unseg.cluster.kmeans import Centres

        kind = FittedABC if self.cluster == "abc" else Centres
        clusters = self.clusters_
        if not isinstance(clusters, kind):
            raise ValueError(f"clusters_ is a {type(clusters).__name__}, cluster={self.cluster!r} "
                             f"makes a {kind.__name__}")
        expect_array("clusters_.centres", clusters.centres, "float32", (self.k, None))
        dim = clusters.centres.shape[1]
        for name in ("mean", "scale"):
            if getattr(clusters, name) is not None:
                expect_array(f"clusters_.{name}", getattr(clusters, name), "float32", (dim,))
        metric = self.metric if self.cluster == "kmeans" else self.ot_metric
        if isinstance(clusters, Centres) and clusters.metric != metric:
            raise ValueError(f"clusters_ use the {clusters.metric} metric, the {self.cluster} "
                             f"metric is {metric!r}")
        if isinstance(clusters, FittedABC):
            if (clusters.architecture, clusters.heads) != (self.abc_architecture,
                                                           self.abc_heads):
                raise ValueError(
                    f"clusters_ hold a {clusters.architecture!r} network with "
                    f"{clusters.heads} heads, the parameters say {self.abc_architecture!r} "
                    f"with {self.abc_heads}")
            if clusters.state is None:
                raise ValueError("clusters_ hold no network state")
            expect_module_state("clusters_.state", AttentionClustering(
                self.k, dim, architecture=self.abc_architecture, heads=self.abc_heads),
                clusters.state)
        if not isinstance(self.n_segments_fitted_, int) or self.n_segments_fitted_ < self.k:
            raise ValueError(f"n_segments_fitted_ is {self.n_segments_fitted_!r}")

    # -- step 1: per image -------------------------------------------------------------
    def _grid(self, image: Image) -> _Grid:
        from skimage.transform import resize

        h, w = image.shape[:2]
        size = self._working_size(h, w)
        work = image
        if size != (h, w):
            work = (resize(image, size, order=1, preserve_range=True,
                           anti_aliasing=size[0] < h or size[1] < w)
                    .round().astype(image.dtype))
        feats, shape = self._cell_features([work])
        return _Grid(feats[0].cpu().numpy().astype(np.float32), shape, work, (h, w),
                     self._backbone().stride)

    def _working_size(self, h: int, w: int) -> tuple[int, int]:
        """The size an ``h`` x ``w`` image is grouped at: downscaled to ``max_side``."""
        scale = min(1.0, self.max_side / max(h, w))
        return (max(1, round(h * scale)), max(1, round(w * scale))) if scale < 1 else (h, w)

    def _cell_features(self, images: list[Image]) -> tuple[Any, tuple[int, int]]:
        """(B, h*w, C) cell features of same-size images, keys of a ViT's attention by
        ``vit_features``, and the grid (h, w)."""
        from unseg.backbones.timm_backbones import ViTBackbone

        backbone = self._backbone()
        if self.vit_features != "keys" or not isinstance(backbone, ViTBackbone):
            return self._features(images)
        padded = pad_to_multiple(images, backbone.config.size_multiple)
        return as_cells(backbone.key_features(padded))

    def _group(self, grid: _Grid) -> np.ndarray:
        """Segment ids (gh, gw) of one image's cells."""
        raise NotImplementedError

    #: Whether grouping is learned from all images' features first (held in memory).
    trains_grouping = False

    def _prepare(self, grids: list[_Grid]) -> None:
        """Learn the grouping from all images' features (when ``trains_grouping``)."""
        raise NotImplementedError

    # -- step 2: segment features ------------------------------------------------------
    def _segment_features(self, grid: _Grid, segments: np.ndarray) -> np.ndarray:
        ids = np.unique(segments)
        if self.segment_feature == "mean":
            flat = segments.ravel()
            return np.stack([grid.feats[flat == i].mean(0) for i in ids])
        from skimage.transform import resize

        out = []
        height, width = grid.image.shape[:2]
        for i in ids:
            y0, y1, x0, x1 = (v * grid.stride for v in segment_box(
                segments == i, self.crop_erode, self.crop_dilate))
            y0, x0 = min(y0, height - 1), min(x0, width - 1)  # cells of the padding
            crop = grid.image[y0:max(min(y1, height), y0 + 1), x0:max(min(x1, width), x0 + 1)]
            if self.crop_size is not None:
                crop = (resize(crop, (self.crop_size, self.crop_size), order=1,
                               preserve_range=True, anti_aliasing=True)
                        .round().astype(grid.image.dtype))
            feats, _ = self._features([crop])
            out.append(feats[0].cpu().numpy().mean(0))
        return np.stack(out).astype(np.float32)

    def _segments(self, grid: _Grid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Segment ids (gh, gw), their features (S, C), and which ids are background (S,)."""
        segments = self._group(grid)
        _, segments = np.unique(segments, return_inverse=True)
        segments = segments.reshape(grid.shape)
        background = np.zeros(segments.max() + 1, bool)
        if self.background and segments.max() > 0:
            from unseg.cluster.spectral import border_segment

            background[border_segment(segments)] = True
        return segments, self._segment_features(grid, segments), background

    # -- fit and predict ---------------------------------------------------------------
    def _fit(self, images: Iterable[Image]) -> None:
        grids: Iterable[_Grid] = (self._grid(im) for im in images)
        if self.trains_grouping:  # the generator learns from every image's features first
            grids = list(grids)
            if grids:
                self._prepare(grids)
        feats = []
        for grid in grids:
            _, f, background = self._segments(grid)
            feats.append(f[~background])
        if not feats:
            raise ParameterError(f"{self.name}: fit needs at least one image, got none.")
        x = np.concatenate(feats)
        if len(x) < self.k:
            raise ParameterError(
                f"{self.name}: the images gave {len(x)} segments, fewer than k={self.k} "
                "clusters. Fix: fit on more images, ask for more segments per image, or lower k."
            )
        self.clusters_: Centres | FittedABC = self._cluster(x)
        self.n_segments_fitted_ = len(x)

    def _cluster(self, x: np.ndarray) -> Centres | FittedABC:
        from unseg.cluster.attention import fit_abc
        from unseg.cluster.kmeans import fit_kmeans, fit_otc

        if self.cluster == "kmeans":
            return fit_kmeans(x, self.k, metric=self.metric, standardize=self.standardize,
                              random_state=self.random_state)
        if self.cluster == "otc":
            return fit_otc(x, self.k, metric=self.ot_metric, standardize=self.standardize,
                           temperature=self.ot_temperature,
                           sinkhorn_iterations=self.sinkhorn_iterations,
                           updates=self.ot_updates, init=self.ot_init, tol=self.ot_tol,
                           random_state=self.random_state)
        low = self.abc_min_size if self.abc_min_size is not None else 1 / self.k**2
        high = self.abc_max_size if self.abc_max_size is not None else 1 / math.sqrt(self.k)
        return fit_abc(x, self.k, architecture=self.abc_architecture, heads=self.abc_heads,
                       epochs=self.abc_epochs, batch_size=self.abc_batch_size, lr=self.abc_lr,
                       size_bounds=(low, None if high >= 1 else high),
                       standardize=self.standardize, init=self.abc_init,
                       random_state=self.random_state)

    def _predict(self, image: Image) -> LabelMap:
        grid = self._grid(image)
        segments, feats, background = self._segments(grid)
        labels = np.where(background, self.k, self.clusters_.assign(feats))
        return self._label_map(grid, segments, labels)

    def _label_map(self, grid: _Grid, segments: np.ndarray, labels: np.ndarray) -> LabelMap:
        """The label map (H, W) of one image whose segments (gh, gw) take ``labels`` (S,)."""
        import torch

        from unseg.factorize import upsample_argmax

        cells = labels[segments]
        n_labels = self._n_labels()
        onehot = torch.from_numpy(np.eye(n_labels, dtype=np.float32)[cells]).permute(2, 0, 1)
        up, _ = upsample_argmax(onehot, grid.stride)
        work = up.numpy()[: grid.image.shape[0], : grid.image.shape[1]].astype(np.int32)
        if work.shape != grid.size:
            rows = (np.arange(grid.size[0]) * work.shape[0] // grid.size[0])
            cols = (np.arange(grid.size[1]) * work.shape[1] // grid.size[1])
            work = work[rows[:, None], cols[None, :]]
        return work


def segment_box(mask: np.ndarray, erode: int, dilate: int) -> tuple[int, int, int, int]:
    """The bounding box ``(y0, y1, x0, x1)`` (ends excluded) of a segment's mask (h, w) after
    ``erode`` erosions, each skipped if it would empty the mask, then ``dilate`` dilations."""
    from scipy.ndimage import binary_dilation, binary_erosion

    for _ in range(erode):
        eroded = binary_erosion(mask)
        if eroded.any():
            mask = eroded
    if dilate:
        mask = binary_dilation(mask, iterations=dilate)
    ys, xs = np.nonzero(mask)
    return int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1


@register("dsm")
class DSMSegmenter(TwoStepSegmenter):
    """Deep spectral segments (Laplacian eigenvectors of feature affinity), clustered over the
    dataset: labels consistent across images."""

    test_params = {"k": 2, "n_segments": 2, "max_side": 48}
    n_segments: int | None = param(
        default=4, check=Interval(int, low=2, allow_none=True),
        doc="Segments per image (k-means on the eigenvectors); None picks the count at the "
            "largest eigengap (2..max_segments).")
    n_eigenvectors: int = param(
        default=5, check=Interval(int, low=2),
        doc="Smallest Laplacian eigenvectors computed; all but the first (constant) one are "
            "clustered into segments, and the eigengap is sought among them.")
    max_segments: int = param(default=8, check=Interval(int, low=2),
                              doc="Most segments per image when n_segments is None.")
    colour: bool = param(
        default=False, check=Flag(),
        doc="Add colour_weight times a kNN affinity on each cell's mean RGB and position to "
            "the feature affinity.")
    colour_weight: float = param(
        default=10.0, check=Interval(float, low=0, low_open=True),
        doc="Weight of the colour-and-position affinity when colour is on.")
    background: bool = param(  # type: ignore[assignment]
        default=False, check=Flag(),
        doc="Give the segment holding most of the image border its own label k (background) "
            "and leave it out of the dataset clustering.")

    def _group(self, grid: _Grid) -> np.ndarray:
        from unseg.cluster.spectral import (
            eigengap,
            feature_affinity,
            laplacian_eigenvectors,
        )

        affinity: np.ndarray = feature_affinity(grid.feats)
        n_cells = len(affinity)
        top = float(affinity.max())
        if top > 0:  # 1 unless every feature is zero
            affinity /= top
        if self.colour:
            affinity = affinity + self.colour_weight * colour_affinity(grid)
        n_vectors = min(self.n_eigenvectors, n_cells - 1)
        if n_vectors < 2:
            return np.zeros(grid.shape, np.int64)
        values, vectors = laplacian_eigenvectors(affinity, n_vectors)
        count = self.n_segments if self.n_segments is not None else eigengap(
            values, min(self.max_segments, n_vectors - 1))
        return eigen_segments(vectors[:, 1:], count, self.random_state).reshape(grid.shape)


def eigen_segments(vectors: np.ndarray, count: int, random_state: int | None) -> np.ndarray:
    """k-means of the rows of the non-constant eigenvectors ``vectors`` (N, m) into ``count``
    segments (fewer where fewer rows differ): a segment id per cell (N,)."""
    from sklearn.cluster import KMeans

    count = min(count, len(np.unique(vectors.round(8), axis=0)))
    if count < 2:
        return np.zeros(len(vectors), np.int64)
    km = KMeans(n_clusters=count, n_init=4, random_state=random_state)
    return km.fit_predict(vectors).astype(np.int64)


#: kNN sets of the colour affinity: (neighbours, weight of the position beside RGB in [0, 1]),
#: those of the Deep Spectral Methods reference: 20 close in colour and place, 10 in colour.
COLOUR_NEIGHBOURS = ((20, 2.0), (10, 0.1))


def colour_affinity(grid: _Grid) -> np.ndarray:
    """Colour-and-position kNN affinity of one image's cells: dense (N, N).

    Each cell is a point ``(r, g, b, a x, a y)``: its mean RGB in [0, 1] and its position in
    [0, 1] along each axis, scaled by ``a``. For each ``(n, a)`` of :data:`COLOUR_NEIGHBOURS`
    every cell is linked to its ``n`` nearest points (itself included) and they to it; an entry
    counts the links between two cells.
    """
    from sklearn.neighbors import NearestNeighbors

    from unseg.io.images import as_float32

    gh, gw = grid.shape
    rgb = as_float32(grid.image)
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[..., None], 3, 2)
    s = grid.stride
    h, w = gh * s, gw * s
    padded = np.pad(rgb[:h, :w], [(0, max(0, h - rgb.shape[0])), (0, max(0, w - rgb.shape[1])),
                                  (0, 0)], mode="symmetric")
    cells = padded.reshape(gh, s, gw, s, 3).mean((1, 3)).reshape(-1, 3)
    n = len(cells)
    xs = np.tile(np.linspace(0, 1, gw), gh)
    ys = np.repeat(np.linspace(0, 1, gh), gw)
    affinity = np.zeros((n, n), np.float32)
    for neighbours, weight in COLOUR_NEIGHBOURS:
        points = np.column_stack([cells, weight * xs, weight * ys])
        k = min(neighbours, n)
        _, idx = NearestNeighbors(n_neighbors=k).fit(points).kneighbors(points)
        rows = np.repeat(np.arange(n), k)
        np.add.at(affinity, (rows, idx.ravel()), 1.0)
        np.add.at(affinity, (idx.ravel(), rows), 1.0)
    return affinity


@register("acseg")
class ACSegSegmenter(TwoStepSegmenter):
    """ACSeg: an Adaptive Concept Generator groups each image's cells (trained by modularity),
    the groups clustered over the dataset: labels consistent across images."""

    trains_grouping = True
    learned = (*TwoStepSegmenter.learned, "generator_dim_", "generator_")
    test_params = {"k": 2, "n_prototypes": 3, "n_steps": 2, "acg_epochs": 2,
                   "image_size": 48}
    n_prototypes: int = param(default=6, check=Interval(int, low=2),
                              doc="Learnable prototypes (the most segments per image).")
    n_steps: int = param(
        default=6, check=Interval(int, low=1),
        doc="Cross-attention, self-attention and feed-forward update steps of the prototypes.")
    acg_epochs: int = param(default=400, check=Interval(int, low=1),
                            doc="Training epochs of the concept generator over the images.")
    lr: float = param(default=3e-4, check=Interval(float, low=0, low_open=True),
                      doc="AdamW learning rate of the concept generator.")
    weight_decay: float = param(default=0.01, check=Interval(float, low=0),
                                doc="AdamW weight decay of the concept generator.")
    image_size: int | None = param(
        default=256, check=Interval(int, low=16, allow_none=True),
        doc="Images are resized to image_size x image_size for training and grouping (labels "
            "are resized back to the input); None keeps them, downscaled to max_side.")

    def _working_size(self, h: int, w: int) -> tuple[int, int]:
        if self.image_size is None:
            return super()._working_size(h, w)
        return self.image_size, self.image_size

    def _check_state(self) -> None:
        from unseg.models.acseg import ConceptGenerator

        super()._check_state()
        if self.generator_dim_ != self.clusters_.centres.shape[1]:
            raise ValueError(f"generator_dim_ is {self.generator_dim_!r}, the clusters have "
                             f"{self.clusters_.centres.shape[1]} dimensions")
        expect_module_state("generator_", ConceptGenerator(
            self.generator_dim_, n_prototypes=self.n_prototypes, n_steps=self.n_steps),
            self.generator_)

    def _generator(self) -> Any:
        from unseg.models.acseg import ConceptGenerator

        cache = getattr(self, "_generator_cache", None)
        if cache is None:
            cache = ConceptGenerator(self.generator_dim_, n_prototypes=self.n_prototypes,
                                     n_steps=self.n_steps)
            cache.load_state_dict(self.generator_)
            cache.eval()
            self._generator_cache = cache
        return cache

    def _prepare(self, grids: list[_Grid]) -> None:
        import torch

        from unseg.cluster.spectral import feature_affinity
        from unseg.models.acseg import ConceptGenerator, modularity_loss
        from unseg.train import seeded, train

        feats = [torch.from_numpy(g.feats) for g in grids]
        graphs = [torch.from_numpy(feature_affinity(g.feats)) for g in grids]
        dim = feats[0].shape[1]
        with seeded(self.random_state):
            model = ConceptGenerator(dim, n_prototypes=self.n_prototypes, n_steps=self.n_steps)
            optimizer = torch.optim.AdamW(model.parameters(), lr=self.lr,
                                          weight_decay=self.weight_decay)

            def step(i: int, _: int) -> float:
                loss = modularity_loss(model(feats[i]), graphs[i])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                return loss.item()

            train({"generator": model}, {"adamw": optimizer}, step,
                  lambda rng: rng.permutation(len(feats)).tolist(), epochs=self.acg_epochs,
                  random_state=self.random_state, desc="concept generator")
        self.generator_dim_ = dim
        self.generator_ = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self._generator_cache = model

    def _group(self, grid: _Grid) -> np.ndarray:
        import torch

        with torch.no_grad():
            assign = self._generator()(torch.from_numpy(grid.feats))
        return assign.argmax(1).numpy().reshape(grid.shape)

