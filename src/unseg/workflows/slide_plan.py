"""Planning a slide: its tissue, and the grid of tiles segmented at the processing resolution.

A slide is planned at the processing resolution (``--magnification`` or ``--target-mpp``): a
grid of square tile cores, of which only those on tissue are segmented.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from unseg.errors import ParameterError

if TYPE_CHECKING:
    from unseg.io import Slide
    from unseg.types import Image


@dataclass(frozen=True)
class SlideOptions:
    """How slides are tiled.

    Attributes
    ----------
    magnification : float
        Processing magnification; 10x = 1.0 um/px (40x = 0.25 um/px). Ignored when
        ``target_mpp`` is given.
    target_mpp : float or None
        Processing resolution in microns per pixel.
    mpp : float or None
        Microns per pixel of level 0, for slides whose metadata lacks it.
    tile_size : int
        Side of a tile core at the processing resolution.
    overlap : int
        Context read around each core on every side and cropped off after segmentation.
    batch_size : int
        Tiles segmented together: the unit of resuming.
    min_tissue : float
        Fraction of a core that must be tissue for the tile to be segmented.
    tiles_per_slide : int
        Tissue tiles sampled per slide when a method is fitted on the slides.
    random_state : int
        Seed of that sampling.
    simplify : float or None
        Tolerance in level-0 pixels of the GeoJSON polygons' topology-preserving
        simplification; 0 keeps the exact pixel outlines, None the exporter's default
        (:data:`unseg.io.geojson.SIMPLIFY` label-map pixels).
    """

    magnification: float = 10.0
    target_mpp: float | None = None
    mpp: float | None = None
    tile_size: int = 256
    overlap: int = 32
    batch_size: int = 8
    min_tissue: float = 0.05
    tiles_per_slide: int = 200
    random_state: int = 0
    simplify: float | None = None

    def __post_init__(self) -> None:
        positive = {"magnification": self.magnification, "tile_size": self.tile_size,
                    "batch_size": self.batch_size, "tiles_per_slide": self.tiles_per_slide}
        for name, value in positive.items():
            if not value > 0:
                raise ParameterError(f"{name} must be positive, got {value}")
        for name, maybe in {"target_mpp": self.target_mpp, "mpp": self.mpp}.items():
            if maybe is not None and not maybe > 0:
                raise ParameterError(f"{name} must be a positive number of microns, got {maybe}")
        if self.simplify is not None and not self.simplify >= 0:
            raise ParameterError(f"simplify must be >= 0 level-0 pixels, got {self.simplify}")
        if self.overlap < 0:
            raise ParameterError(f"overlap must be >= 0 pixels, got {self.overlap}")
        if not 0.0 <= self.min_tissue <= 1.0:
            raise ParameterError(f"min_tissue must be between 0 and 1, got {self.min_tissue}")

    @property
    def processing_mpp(self) -> float:
        """Microns per pixel at which slides are segmented."""
        return self.target_mpp if self.target_mpp is not None else 10.0 / self.magnification


@dataclass(frozen=True)
class Tile:
    """A tile core at the processing resolution: origin ``(x, y)`` and size, clipped."""

    x: int
    y: int
    width: int
    height: int


@dataclass
class SlidePlan:
    """The tissue tiles of one slide at the processing resolution."""

    path: Path
    id: str
    mpp: float  # level 0
    #: Where ``mpp`` came from: "given" (--mpp), "metadata", "objective-power" (a guess).
    mpp_source: str | None
    dimensions: tuple[int, int]  # level 0 (width, height)
    #: Content fingerprint of the slide file (:func:`unseg.io.fingerprint.file_fingerprint`).
    fingerprint: str
    downsample: float  # level-0 pixels per processing pixel
    shape: tuple[int, int]  # canvas (height, width)
    tiles: list[Tile]
    tissue: np.ndarray = field(repr=False)  # bool mask of the thumbnail
    tissue_scale: tuple[float, float] = (1.0, 1.0)  # level-0 pixels per mask pixel (x, y)

    def batches(self, size: int) -> list[list[Tile]]:
        return [self.tiles[i : i + size] for i in range(0, len(self.tiles), size)]

    def tissue_at(self, tile: Tile) -> np.ndarray:
        """The tissue mask sampled at the processing pixel centres of a core."""
        sx, sy = self.tissue_scale
        ys = ((np.arange(tile.y, tile.y + tile.height) + 0.5) * self.downsample / sy).astype(int)
        xs = ((np.arange(tile.x, tile.x + tile.width) + 0.5) * self.downsample / sx).astype(int)
        ys = ys.clip(0, self.tissue.shape[0] - 1)
        xs = xs.clip(0, self.tissue.shape[1] - 1)
        return self.tissue[np.ix_(ys, xs)]


def plan_slide(path: Path, options: SlideOptions) -> SlidePlan:
    """Open a slide, find its tissue and list the tissue tiles (row-major)."""
    from unseg.data import slide_id
    from unseg.io import detect_tissue, open_slide
    from unseg.io.fingerprint import file_fingerprint

    with open_slide(path, mpp=options.mpp) as slide:
        mpp, mpp_source = slide.mpp, slide.mpp_source
        tissue, scale = detect_tissue(slide)
        width0, height0 = slide.dimensions
    downsample = options.processing_mpp / mpp
    shape = (math.ceil(height0 / downsample), math.ceil(width0 / downsample))
    plan = SlidePlan(path, slide_id(Path(path)), mpp, mpp_source, (width0, height0),
                     file_fingerprint(path), downsample, shape, [], tissue, scale)
    size = options.tile_size
    for y in range(0, shape[0], size):
        for x in range(0, shape[1], size):
            tile = Tile(x, y, min(size, shape[1] - x), min(size, shape[0] - y))
            if plan.tissue_at(tile).mean() >= max(options.min_tissue, 1e-9):
                plan.tiles.append(tile)
    return plan


@functools.lru_cache(maxsize=8)
def open_cached(path: Path, mpp: float | None) -> Slide:
    """An open slide, kept open for the batches that follow (one cache per process)."""
    from unseg.io import open_slide

    return open_slide(path, mpp=mpp)


def sample_tiles(plan: SlidePlan, n: int, random_state: int) -> list[Tile]:
    """Up to ``n`` tissue tiles of a slide, drawn without replacement, in a seeded order."""
    if len(plan.tiles) <= n:
        return list(plan.tiles)
    rng = np.random.default_rng(random_state)
    chosen = np.sort(rng.choice(len(plan.tiles), size=n, replace=False))
    return [plan.tiles[i] for i in chosen]


def slide_tiles(plans: Sequence[SlidePlan], options: SlideOptions) -> Iterator[Image]:
    """Sampled tissue tiles of every slide (``tiles_per_slide`` each), e.g. to fit a method."""
    from unseg.io.tiles import read_tile

    for plan in plans:
        slide = open_cached(plan.path, options.mpp)
        for tile in sample_tiles(plan, options.tiles_per_slide, options.random_state):
            yield read_tile(slide, (tile.x, tile.y), plan.downsample, options.tile_size)


