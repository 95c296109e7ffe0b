"""Fit concept banks: k-means on global-average-pooled backbone features of image tiles.

Tiles are streamed: each batch of tiles goes through the backbone, is pooled to one vector per
tile, and joins a uniform reservoir sample of at most ``max_vectors`` vectors, so memory stays
bounded however many tiles there are. k-means runs once per k on that sample.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

from unseg.concepts.bank import ConceptBank
from unseg.errors import ParameterError, UnsegError
from unseg.types import Image

if TYPE_CHECKING:
    from unseg.backbones.base import Backbone

DEFAULT_KS = (16, 32, 64, 128, 256)


def tile_starts(length: int, size: int) -> list[int]:
    """Start offsets of the fewest ``size`` windows covering ``length`` (the last may overlap)."""
    if length <= size:
        return [0]
    n = -(-length // size)
    return [round(i * (length - size) / (n - 1)) for i in range(n)]


def tiles(image: Image, size: int) -> Iterator[Image]:
    """Square tiles of ``size`` covering the image; smaller images are padded by mirroring."""
    h, w = image.shape[:2]
    if h < size or w < size:
        pad = [(0, max(0, size - h)), (0, max(0, size - w))] + [(0, 0)] * (image.ndim - 2)
        image = np.pad(image, pad, mode="symmetric")  # type: ignore[assignment]
    for y in tile_starts(image.shape[0], size):
        for x in tile_starts(image.shape[1], size):
            yield image[y : y + size, x : x + size]


class Reservoir:
    """A uniform random sample of at most ``capacity`` rows from a stream (algorithm R)."""

    def __init__(self, capacity: int, rng: np.random.Generator) -> None:
        self.capacity, self.rng, self.seen = capacity, rng, 0
        self.rows: np.ndarray | None = None

    def add(self, batch: np.ndarray) -> None:
        if self.rows is None:
            self.rows = np.empty((self.capacity, batch.shape[1]), dtype=np.float32)
        for row in batch:
            if self.seen < self.capacity:
                self.rows[self.seen] = row
            else:
                j = self.rng.integers(0, self.seen + 1)
                if j < self.capacity:
                    self.rows[j] = row
            self.seen += 1

    def sample(self) -> np.ndarray:
        assert self.rows is not None  # only called after add
        return self.rows[: min(self.seen, self.capacity)]


def fit_bank(
    backbone: Backbone,
    images: Iterable[Image],
    ks: Sequence[int] = DEFAULT_KS,
    *,
    tile_size: int | None = None,
    batch_size: int = 16,
    max_vectors: int = 50_000,
    random_state: int | None = 0,
) -> ConceptBank:
    """k-means centres of pooled tile features, for every k in ``ks``.

    Parameters
    ----------
    backbone : Backbone
        Gives the ``(B, C, h, w)`` features that are pooled to one ``C`` vector per tile.
    images : iterable of (H, W, 3) or (H, W) arrays
        Read once, lazily.
    ks : sequence of int
        Bank sizes to fit.
    tile_size : int, optional
        Side of the square tiles; the backbone's ``input_size`` by default. A multiple of
        the backbone's ``size_multiple``.
    batch_size : int
        Tiles per forward pass.
    max_vectors : int
        Size of the reservoir sample k-means runs on: the memory bound.
    random_state : int or None
        Seed of the reservoir and of k-means.

    Returns
    -------
    ConceptBank
        Centres ``(k, C)`` for each k, with provenance.
    """
    from sklearn.cluster import MiniBatchKMeans

    size = tile_size or backbone.config.input_size
    if size % backbone.config.size_multiple:
        raise ParameterError(
            f"tile_size must be a multiple of {backbone.config.size_multiple} for {backbone.name}, "
            f"got {size}. Fix: pass --tile-size {backbone.valid_size(size, size)[0]}."
        )
    if not ks or min(ks) < 1:
        raise ParameterError(f"ks must be positive bank sizes, got {list(ks)}")
    rng = np.random.default_rng(random_state)
    reservoir = Reservoir(max_vectors, rng)
    n_images, batch = 0, list[Image]()

    def flush() -> None:
        if batch:
            reservoir.add(backbone.features(batch).mean(dim=(2, 3)).cpu().numpy())
            batch.clear()

    for image in images:
        n_images += 1
        for tile in tiles(image, size):
            batch.append(tile)
            if len(batch) == batch_size:
                flush()
    flush()
    if reservoir.seen < max(ks):
        raise UnsegError(
            f"k-means with k={max(ks)} needs at least {max(ks)} tiles, got {reservoir.seen} from "
            f"{n_images} image(s) at tile size {size}. Fix: give more images, smaller tiles "
            "(--tile-size) or a smaller k."
        )
    vectors = reservoir.sample()
    centres = {}
    for k in sorted(set(ks)):
        km = MiniBatchKMeans(n_clusters=k, batch_size=4096, n_init=3, max_iter=200,
                             random_state=random_state).fit(vectors)
        centres[k] = km.cluster_centers_.astype(np.float32)
    return ConceptBank(
        centres=centres,
        backbone=backbone.name,
        layer=backbone.config.layer,
        source="fitted",
        fitted_on={"weights": backbone.config.weights, "images": n_images,
                   "tiles": reservoir.seen, "tile_size": size,
                   "vectors_clustered": len(vectors), "random_state": random_state},
        created=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    )
