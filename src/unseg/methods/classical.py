"""Classical baselines: label-free segmentation without learned features.

``random`` is the lower bound every method must beat; the colour k-means methods are the simplest
consistent-label baselines; ``watershed``, ``felzenszwalb`` and ``slic`` give regions (instances
or superpixels) whose ids carry no meaning across images.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from unseg.errors import UnsegError
from unseg.io import as_float32
from unseg.methods import register
from unseg.methods.base import Segmenter
from unseg.methods.files import expect_array
from unseg.methods.params import SEED, Interval, Options, param
from unseg.types import FloatImage, Image, LabelMap


def _lab_pixels(image: Image) -> FloatImage:
    """CIE Lab colour of every pixel, (H*W, 3) float32; grayscale images have a = b = 0."""
    from skimage.color import rgb2lab

    rgb = as_float32(image)
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[..., None], 3, axis=2)
    return rgb2lab(rgb).reshape(-1, 3).astype(np.float32)


def _sample_rows(x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    return x if len(x) <= n else x[rng.choice(len(x), size=n, replace=False)]


def _fit_colour_kmeans(pixels: np.ndarray, k: int, random_state: int | None) -> np.ndarray:
    """k-means centres of Lab pixels, sorted dark to light so label 0 is the darkest colour."""
    from sklearn.cluster import KMeans

    n_clusters = min(k, len(np.unique(pixels, axis=0)))
    km = KMeans(n_clusters=n_clusters, n_init=3, random_state=random_state).fit(pixels)
    centres = km.cluster_centers_.astype(np.float32)
    return centres[np.argsort(centres[:, 0], kind="stable")]


def _nearest_centre(pixels: np.ndarray, centres: np.ndarray) -> np.ndarray:
    from unseg.cluster.kmeans import squared_distances

    return np.argmin(squared_distances(pixels, centres), axis=1)


@register("random")
class RandomSegmenter(Segmenter):
    """Uniformly random labels per pixel: the lower bound every method must beat."""

    k: int = param(default=4, check=Interval(int, low=1), doc="Number of labels.")
    random_state: int | None = param(
        default=0, check=SEED, doc="Seed; the same seed gives the same labels.")

    def _n_labels(self) -> int:
        return self.k

    def _predict(self, image: Image) -> LabelMap:
        rng = np.random.default_rng(self.random_state)
        return rng.integers(0, self.k, size=image.shape[:2], dtype=np.int32)


@register("kmeans-color")
class KMeansColourSegmenter(Segmenter):
    """k-means on CIE Lab colour, fitted per image (labels not comparable across images).

    Labels are ordered by lightness: 0 is the darkest cluster.
    """

    k: int = param(default=4, check=Interval(int, low=1), doc="Number of clusters.")
    max_samples: int = param(
        default=20000, check=Interval(int, low=1),
        doc="Pixels sampled to fit the clusters; every pixel is then assigned.")
    random_state: int | None = param(
        default=0, check=SEED, doc="Seed of the pixel sample and the k-means initialisation.")

    def _n_labels(self) -> int:
        return self.k

    def _predict(self, image: Image) -> LabelMap:
        pixels = _lab_pixels(image)
        rng = np.random.default_rng(self.random_state)
        centres = _fit_colour_kmeans(
            _sample_rows(pixels, self.max_samples, rng), self.k, self.random_state
        )
        return _nearest_centre(pixels, centres).reshape(image.shape[:2])


@register("kmeans-color-dataset")
class KMeansColourDatasetSegmenter(Segmenter):
    """k-means on CIE Lab colour fitted once over all images: labels consistent across images.

    Labels are ordered by lightness: 0 is the darkest cluster.
    """

    requires_fit = True
    learned = ("centers_",)
    k: int = param(default=4, check=Interval(int, low=1), doc="Number of clusters.")
    samples_per_image: int = param(
        default=5000, check=Interval(int, low=1),
        doc="Pixels sampled from each image to fit the clusters.")
    random_state: int | None = param(
        default=0, check=SEED, doc="Seed of the pixel samples and the k-means initialisation.")

    def _n_labels(self) -> int:
        return len(self.centers_)

    def _check_state(self) -> None:
        expect_array("centers_", self.centers_, "float32", (None, 3))
        if not 1 <= len(self.centers_) <= self.k:
            raise ValueError(f"centers_ has {len(self.centers_)} rows, k is {self.k}")

    def _fit(self, images: Iterable[Image]) -> None:
        rng = np.random.default_rng(self.random_state)
        samples = [_sample_rows(_lab_pixels(im), self.samples_per_image, rng) for im in images]
        if not samples:
            raise UnsegError(f"{self.name}: fit needs at least one readable image")
        self.centers_ = _fit_colour_kmeans(np.concatenate(samples), self.k, self.random_state)

    def _predict(self, image: Image) -> LabelMap:
        return _nearest_centre(_lab_pixels(image), self.centers_).reshape(image.shape[:2])


@register("watershed")
class WatershedSegmenter(Segmenter):
    """Otsu foreground, distance-transform peaks as markers, watershed: objects such as nuclei.

    Label 0 is the background; 1..N are the separated foreground objects.
    """

    foreground: str = param(
        default="dark", check=Options(("dark", "bright")),
        doc='Which side of the Otsu threshold is foreground ("dark" for nuclei in H&E).')
    min_distance: int = param(
        default=5, check=Interval(int, low=1),
        doc="Minimum distance in pixels between two object centres (markers).")

    def _n_labels(self) -> None:
        return None

    def _predict(self, image: Image) -> LabelMap:
        from scipy import ndimage as ndi
        from skimage.color import rgb2gray
        from skimage.feature import peak_local_max
        from skimage.filters import threshold_otsu
        from skimage.segmentation import watershed

        gray = as_float32(image)
        gray = rgb2gray(gray) if gray.ndim == 3 else gray
        if gray.min() == gray.max():
            return np.zeros(gray.shape, dtype=np.int32)
        threshold = threshold_otsu(gray)
        mask = gray <= threshold if self.foreground == "dark" else gray > threshold
        distance = ndi.distance_transform_edt(mask)
        peaks = peak_local_max(
            distance, min_distance=self.min_distance, labels=ndi.label(mask)[0],
            exclude_border=False,
        )
        markers = np.zeros(gray.shape, dtype=np.int32)
        markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
        return watershed(-distance, markers, mask=mask).astype(np.int32)


@register("felzenszwalb")
class FelzenszwalbSegmenter(Segmenter):
    """Felzenszwalb-Huttenlocher graph-based regions (ids carry no meaning across images)."""

    scale: float = param(default=100.0, check=Interval(float, low=0, low_open=True),
                         doc="Higher means larger regions.")
    sigma: float = param(default=0.8, check=Interval(float, low=0),
                         doc="Gaussian smoothing before segmenting.")
    min_size: int = param(default=50, check=Interval(int, low=1),
                          doc="Minimum region size in pixels.")

    def _n_labels(self) -> None:
        return None

    def _predict(self, image: Image) -> LabelMap:
        from skimage.segmentation import felzenszwalb

        x = as_float32(image)
        return felzenszwalb(
            x, scale=self.scale, sigma=self.sigma, min_size=self.min_size,
            channel_axis=-1 if x.ndim == 3 else None,
        )


@register("slic")
class SlicSegmenter(Segmenter):
    """SLIC superpixels: k-means in colour + position space (ids carry no meaning across images)."""

    n_segments: int = param(default=100, check=Interval(int, low=1),
                            doc="Approximate number of superpixels.")
    compactness: float = param(
        default=10.0, check=Interval(float, low=0, low_open=True),
        doc="Colour versus space balance; higher gives squarer superpixels.")
    sigma: float = param(default=1.0, check=Interval(float, low=0),
                         doc="Gaussian smoothing before segmenting.")

    def _n_labels(self) -> None:
        return None

    def _predict(self, image: Image) -> LabelMap:
        from skimage.segmentation import slic

        x = as_float32(image)
        return slic(
            x, n_segments=self.n_segments, compactness=self.compactness, sigma=self.sigma,
            start_label=0, channel_axis=-1 if x.ndim == 3 else None,
        )
