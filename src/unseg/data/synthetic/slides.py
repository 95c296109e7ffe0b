"""Synthetic pyramidal whole slides (generic tiled TIFF or Aperio-like SVS) and their truth."""

from __future__ import annotations

import math
import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from statistics import NormalDist
from typing import Literal, TypeAlias

import numpy as np

from unseg.data.synthetic._common import _BACKGROUND_RGB, _NUCLEUS_RGB, _STROMA_RGB
from unseg.errors import ParameterError
from unseg.types import Image, LabelMap

SlideFlavour: TypeAlias = Literal["tiff", "svs"]

_CYTOPLASM_RGB32 = np.array([190, 130, 200], dtype=np.float32)  # pale purple between nuclei
_FIBRE_RGB32 = np.array([5, 14, 9], dtype=np.float32)  # stroma colour per unit of fibre texture
_STROMA_RGB32 = _STROMA_RGB.astype(np.float32)
_NUCLEUS_RGB32 = _NUCLEUS_RGB.astype(np.float32)
_SLIDE_TISSUE_FRACTION = 0.5  # of the slide's area
_SLIDE_TUMOUR_FRACTION = 0.4  # of the tissue's area
_NUCLEUS_SPACING = 14.0  # level-0 pixels between nucleus centres (a jittered grid)
_NUCLEUS_RADIUS = 5.0  # level-0 pixels
_FIBRE_PERIOD = 24.0  # level-0 pixels
_SLIDE_NOISE = 3.0  # grey levels, per pixel and channel
# Gaussian noise drawn from random bytes: the 256 quantiles of N(0, _SLIDE_NOISE^2)
_NOISE_TABLE = np.array(
    [NormalDist(0.0, _SLIDE_NOISE).inv_cdf((i + 0.5) / 256) for i in range(256)], dtype=np.float32
)
_SLIDE_JPEG_QUALITY = 90
_SVS_THUMBNAIL_SIZE = 768  # longest side of the second page of an SVS file
_PYRAMID_TOP = 1024  # levels are halved until the longest side is at most this


def write_synthetic_slide(
    path: str | os.PathLike[str],
    width: int,
    height: int,
    *,
    flavour: SlideFlavour = "tiff",
    mpp: float | None = 0.25,
    tile: int = 256,
    random_state: int = 0,
) -> Path:
    """Write a pyramidal whole-slide image of H&E-like tissue on glass, with a known answer.

    The tissue (about half of the slide, never touching its border) holds two classes: pink
    fibrous stroma and purple tumour crowded with nuclei. The layout is an analytic function
    of level-0 coordinates (see :func:`synthetic_slide_truth`), so every pyramid level is
    rendered tile by tile at its own resolution and memory stays bounded whatever the slide's
    size (a 40,000 x 40,000 slide needs a few hundred MB). Each tile adds its own seeded noise.
    Tiles are JPEG-compressed (quality 90); the file is BigTIFF when it may exceed 4 GB.

    Parameters
    ----------
    path : str or Path
        Output file (``.tif``/``.tiff`` for ``"tiff"``, ``.svs`` for ``"svs"`` by convention;
        the suffix is not checked). Written atomically; missing folders are created.
    width, height : int
        Level-0 size in pixels, ``>= 16``.
    flavour : {"tiff", "svs"}
        ``"tiff"``: a generic pyramidal tiled TIFF (OpenSlide vendor ``generic-tiff``): level 0
        then each reduced level as the next page of the main chain (NewSubfileType 1), with
        resolution tags in pixels per centimetre when ``mpp`` is given (none otherwise).
        ``"svs"``: laid out like an Aperio SVS file (vendor ``aperio``): level 0 tiled with an
        ImageDescription ``"Aperio Image Library ...|AppMag = 40|MPP = 0.25"``, the second page
        a small stripped thumbnail, then the reduced tiled levels. ``AppMag`` is ``10 / mpp``
        rounded (40 when ``mpp`` is None, whose ``MPP`` field is then left out).
    mpp : float or None
        Microns per level-0 pixel, ``> 0``; None writes no physical resolution.
    tile : int
        Tile width and height in pixels, a positive multiple of 16.
    random_state : int
        Seed of the layout and the textures.

    Returns
    -------
    Path
        ``path``.

    Notes
    -----
    Level ``k`` has downsample ``2**k`` and size ``ceil(width / 2**k) x ceil(height / 2**k)``;
    levels are added until the longest side is at most 1024 pixels. Pixel ``(i, j)`` of level
    ``k`` shows the class of the level-0 point ``((j + 0.5) * 2**k, (i + 0.5) * 2**k)``.
    """
    import tifffile

    from unseg.io import atomic_write

    _check_slide_size(width, height)
    if flavour not in ("tiff", "svs"):
        raise ParameterError(f"flavour must be 'tiff' or 'svs', got {flavour!r}")
    if mpp is not None and not (isinstance(mpp, int | float) and math.isfinite(mpp) and mpp > 0):
        raise ParameterError(f"mpp must be a positive number or None, got {mpp!r}")
    if not isinstance(tile, int | np.integer) or tile < 16 or tile % 16:
        raise ParameterError(f"tile must be a positive multiple of 16, got {tile!r}")
    tile = int(tile)
    _check_seed(random_state)
    layout = _SlideLayout(width, height, random_state)
    levels = _pyramid_levels(width, height)
    # Each reduced level adds at most a third; JPEG rarely compresses less than 2:1, but keep a
    # margin: classic TIFF offsets stop at 4 GB.
    bigtiff = width * height * 3 * 4 // 3 > 2**31
    options: dict[str, object] = {
        "photometric": "rgb",
        "compression": "jpeg",
        "compressionargs": {"level": _SLIDE_JPEG_QUALITY},
        "metadata": None,
        "maxworkers": 2,
        "buffersize": 2**24,  # keep at most ~16 MB of raw tiles waiting for compression
    }
    with (
        _one_blas_thread(),
        atomic_write(Path(path)) as tmp,
        tifffile.TiffWriter(tmp, bigtiff=bigtiff) as tif,
    ):
        for index, (downsample, level_width, level_height) in enumerate(levels):
            page: dict[str, object] = dict(options)
            if flavour == "tiff":
                page["subfiletype"] = 0 if index == 0 else 1
                if mpp is not None:
                    per_cm = 1e4 / (mpp * downsample)
                    page["resolution"] = (per_cm, per_cm)
                    page["resolutionunit"] = "CENTIMETER"
            else:
                page["description"] = _svs_description(
                    width, height, level_width, level_height, tile, mpp
                )
            tif.write(
                _slide_tiles(layout, downsample, level_width, level_height, tile, random_state),
                shape=(level_height, level_width, 3),
                dtype=np.uint8,
                tile=(tile, tile),
                **page,  # type: ignore[arg-type]
            )
            if flavour == "svs" and index == 0:
                thumbnail = _svs_thumbnail(layout, width, height, random_state)
                description = _svs_description(
                    width, height, thumbnail.shape[1], thumbnail.shape[0], tile, mpp, thumbnail=True
                )
                tif.write(thumbnail, description=description, **options)  # type: ignore[arg-type]
    return Path(path)


def synthetic_slide_truth(
    width: int, height: int, downsample: float, *, random_state: int = 0
) -> LabelMap:
    """Class map of :func:`write_synthetic_slide`'s slide at a given downsample.

    Parameters
    ----------
    width, height : int
        Level-0 size of the slide, as given to :func:`write_synthetic_slide`.
    downsample : float
        Level-0 pixels per map pixel, ``> 0`` (``2**k`` for pyramid level ``k``).
    random_state : int
        Seed given to :func:`write_synthetic_slide`.

    Returns
    -------
    ndarray
        ``(ceil(height / downsample), ceil(width / downsample))`` ``int32``: 0 glass,
        1 stroma, 2 tumour; pixel ``(i, j)`` is the class at the level-0 point
        ``((j + 0.5) * downsample, (i + 0.5) * downsample)``.
    """
    _check_slide_size(width, height)
    _check_seed(random_state)
    if not (math.isfinite(downsample) and downsample > 0):
        raise ParameterError(f"downsample must be a positive number, got {downsample!r}")
    layout = _SlideLayout(width, height, random_state)
    x = (np.arange(math.ceil(width / downsample)) + 0.5) * downsample
    y = (np.arange(math.ceil(height / downsample)) + 0.5) * downsample
    return layout.classes(x, y)


class _SlideLayout:
    """The analytic tissue layout and textures of a synthetic slide.

    Coordinates are level-0 pixels. The tissue and tumour shapes are thresholded sums of
    separable terms (axis-aligned Gaussian blobs, plane waves, a border window), so a field on a
    grid of points ``x`` by ``y`` is one small matrix product of per-axis factors. The
    thresholds are quantiles of the fields on a coarse grid, which fixes the tissue and tumour
    fractions whatever the seed.
    """

    def __init__(self, width: int, height: int, random_state: int) -> None:
        rng = np.random.default_rng(random_state)
        self.scale = float(max(width, height))  # u = x / scale, v = y / scale
        self.extent = (width / self.scale, height / self.scale)
        extent_u, extent_v = self.extent
        self.tissue_blobs = [
            (
                rng.uniform(0.3, 0.7) * extent_u,
                rng.uniform(0.3, 0.7) * extent_v,
                rng.uniform(0.12, 0.2) * extent_u,
                rng.uniform(0.12, 0.2) * extent_v,
            )
            for _ in range(3)
        ]
        self.tissue_waves = _random_waves(rng, 4, (3.0, 8.0), 0.12)
        grid_u = (np.arange(128) + 0.5) / 128 * extent_u
        grid_v = (np.arange(128) + 0.5) / 128 * extent_v
        field = self._tissue_field(grid_u, grid_v)
        # positive, so the border (where the window is 0) is always glass
        self.tissue_threshold = max(float(np.quantile(field, 1 - _SLIDE_TISSUE_FRACTION)), 1e-3)
        inside = np.argwhere(field > self.tissue_threshold)
        centres = inside[rng.choice(len(inside), size=2, replace=False)]
        self.tumour_blobs = [
            (grid_u[col], grid_v[row], *rng.uniform(0.05, 0.09, size=2)) for row, col in centres
        ]
        self.tumour_waves = _random_waves(rng, 3, (6.0, 14.0), 0.1)
        tumour = self._tumour_field(grid_u, grid_v)[field > self.tissue_threshold]
        self.tumour_threshold = float(np.quantile(tumour, 1.0 - _SLIDE_TUMOUR_FRACTION))
        self.fibre_angle = rng.uniform(0, math.pi)
        self.fibre_bend = rng.uniform(1.0, 2.5)
        self.stain_waves = _random_waves(rng, 2, (2.0, 5.0), 1.0)
        self.nucleus_seed = int(rng.integers(2**31))

    def _tissue_field(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        rows, cols = _factors(self.tissue_blobs, self.tissue_waves, u, v)
        # a window that is 0 on the slide's border keeps a glass margin all around
        extent_u, extent_v = self.extent
        rows *= np.sqrt(np.clip(4 * v * (extent_v - v) / extent_v**2, 0, 1))[:, None]
        cols *= np.sqrt(np.clip(4 * u * (extent_u - u) / extent_u**2, 0, 1))[:, None]
        return rows @ cols.T

    def _tumour_field(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        rows, cols = _factors(self.tumour_blobs, self.tumour_waves, u, v)
        return rows @ cols.T

    def classes(self, x: np.ndarray, y: np.ndarray) -> LabelMap:
        """``(len(y), len(x))`` int32 classes at the level-0 points ``(x[j], y[i])``."""
        u = np.asarray(x, dtype=np.float64) / self.scale
        v = np.asarray(y, dtype=np.float64) / self.scale
        tissue = self._tissue_field(u, v) > self.tissue_threshold
        labels = tissue.astype(np.int32)
        if tissue.any():
            labels[tissue & (self._tumour_field(u, v) > self.tumour_threshold)] = 2
        return labels

    def render(
        self, x: np.ndarray, y: np.ndarray, downsample: float, rng: np.random.Generator
    ) -> Image:
        """``(len(y), len(x), 3)`` uint8 RGB at the level-0 points ``(x[j], y[i])``.

        Textures finer than ``downsample`` fade to their mean colour, as they would in an
        averaged (downsampled) scan; ``rng`` draws the per-pixel noise.
        """
        labels = self.classes(x, y)
        # channel-first while painting: per-channel constants broadcast along rows
        image = np.empty((3, len(y), len(x)), dtype=np.float32)
        for channel, value in enumerate(_BACKGROUND_RGB):
            image[channel].fill(value)
        for label, paint in ((1, self._stroma), (2, self._tumour)):
            where = labels == label
            if where.any():
                np.copyto(image, paint(x, y, downsample), where=where[None])
        noise = np.frombuffer(rng.bytes(image.size), np.uint8).reshape(image.shape)
        image += np.take(_NOISE_TABLE, noise)
        image += np.float32(0.5)  # round half up by truncation below
        np.clip(image, 0, 255, out=image)
        return np.ascontiguousarray(image.astype(np.uint8).transpose(1, 2, 0))

    def _stroma(self, x: np.ndarray, y: np.ndarray, downsample: float) -> np.ndarray:
        """Pink stroma with wavy fibres along ``fibre_angle`` and a slow stain variation."""
        cos, sin = math.cos(self.fibre_angle), math.sin(self.fibre_angle)
        k = 2 * math.pi / _FIBRE_PERIOD
        # phases reduced modulo 2 pi in float64 before the float32 sum and sine
        along = np.add.outer(
            np.mod(y * (k * sin), 2 * math.pi).astype(np.float32),
            np.mod(x * (k * cos), 2 * math.pi).astype(np.float32),
        )
        bend_wave = (k / 8 * -cos, k / 8 * sin, 0.0, 1.0)  # across the fibres, 8 periods long
        along += np.float32(self.fibre_bend) * _wave_field([bend_wave], x, y)
        fibres = np.sin(along, out=along)
        # a sinusoid of period P averaged over pixels of width d keeps exp(-2 (pi d / 2P)^2)
        fade = 1.5 * math.exp(-2 * (math.pi * downsample / (2 * _FIBRE_PERIOD)) ** 2)
        fibres *= np.float32(fade)
        fibres += 0.5 * _wave_field(self.stain_waves, x / self.scale, y / self.scale)
        return _STROMA_RGB32[:, None, None] + fibres[None] * _FIBRE_RGB32[:, None, None]

    def _tumour(self, x: np.ndarray, y: np.ndarray, downsample: float) -> np.ndarray:
        """Purple tumour: a jittered grid of round dark nuclei in pale purple cytoplasm."""
        spacing, radius = _NUCLEUS_SPACING, _NUCLEUS_RADIUS
        cells_x, index_x = np.unique(np.floor(x / spacing).astype(np.int64), return_inverse=True)
        cells_y, index_y = np.unique(np.floor(y / spacing).astype(np.int64), return_inverse=True)
        grid_x, grid_y = np.meshgrid(cells_x, cells_y)
        jitter = spacing / 2 - radius - 0.5  # nuclei stay inside their cell
        seed = self.nucleus_seed
        centre_x = (grid_x + 0.5) * spacing + jitter * _hash_uniform(grid_x, grid_y, seed)
        centre_y = (grid_y + 0.5) * spacing + jitter * _hash_uniform(grid_x, grid_y, seed + 1)
        shade = 15.0 * _hash_uniform(grid_x, grid_y, seed + 2)
        # per-pixel values of the cell it falls in: runs of equal cell indices, repeated
        counts_x, counts_y = np.bincount(index_x), np.bincount(index_y)

        def spread(per_cell: np.ndarray) -> np.ndarray:
            per_cell = per_cell.astype(np.float32)
            return np.repeat(np.repeat(per_cell, counts_y, axis=0), counts_x, axis=1)

        dx = x.astype(np.float32)[None, :] - spread(centre_x)
        dy = y.astype(np.float32)[:, None] - spread(centre_y)
        # fraction of a pixel of width `downsample` covered by the disk (linearised at the
        # rim: r - d ~ (r^2 - d^2) / 2r), then faded to the mean once nuclei shrink to pixels
        dx *= dx
        dy *= dy
        cover = np.float32(radius**2) - dx - dy
        cover *= np.float32(1 / (2 * radius * downsample))
        cover += np.float32(0.5)
        np.clip(cover, 0.0, 1.0, out=cover)
        mean_cover = math.pi * radius**2 / spacing**2
        fade = math.exp(-((downsample / radius) ** 2))
        cover *= np.float32(fade)
        cover += np.float32((1 - fade) * mean_cover)
        darkness = spread(fade * shade)
        darkness *= cover
        # cytoplasm + cover * (nucleus + darkness - cytoplasm), channel-first
        contrast = (_NUCLEUS_RGB32 - _CYTOPLASM_RGB32)[:, None, None]
        return _CYTOPLASM_RGB32[:, None, None] + cover[None] * contrast + darkness[None]


def _random_waves(
    rng: np.random.Generator, n: int, cycles: tuple[float, float], amplitude: float
) -> list[tuple[float, float, float, float]]:
    """``n`` plane waves ``(k_u, k_v, phase, amplitude / n)`` of ``cycles`` per unit length."""
    waves = []
    for _ in range(n):
        frequency, angle = 2 * math.pi * rng.uniform(*cycles), rng.uniform(0, 2 * math.pi)
        phase = rng.uniform(0, 2 * math.pi)
        waves.append(
            (frequency * math.cos(angle), frequency * math.sin(angle), phase, amplitude / n)
        )
    return waves


def _factors(
    blobs: list[tuple[float, float, float, float]],
    waves: list[tuple[float, float, float, float]],
    u: np.ndarray,
    v: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-axis factors ``rows (len(v), K)``, ``cols (len(u), K)`` of a separable field.

    The field ``rows @ cols.T`` is the sum of the axis-aligned unit Gaussians
    ``(centre_u, centre_v, sigma_u, sigma_v)`` and of the plane waves
    ``amplitude * sin(k_u u + k_v v + phase)``, each wave split as
    ``sin(a + b) = sin a cos b + cos a sin b``.
    """
    rows, cols = [], []
    for centre_u, centre_v, sigma_u, sigma_v in blobs:
        rows.append(np.exp(-0.5 * ((v - centre_v) / sigma_v) ** 2))
        cols.append(np.exp(-0.5 * ((u - centre_u) / sigma_u) ** 2))
    for k_u, k_v, phase, amplitude in waves:
        a, b = k_v * v + phase, k_u * u
        rows += [amplitude * np.sin(a), amplitude * np.cos(a)]
        cols += [np.cos(b), np.sin(b)]
    return np.stack(rows, axis=1), np.stack(cols, axis=1)


def _wave_field(
    waves: list[tuple[float, float, float, float]], u: np.ndarray, v: np.ndarray
) -> np.ndarray:
    """``(len(v), len(u))`` float32 sum of plane waves (see :func:`_factors`)."""
    rows, cols = _factors([], waves, np.asarray(u, np.float64), np.asarray(v, np.float64))
    return (rows @ cols.T).astype(np.float32)


def _hash_uniform(ix: np.ndarray, iy: np.ndarray, seed: int) -> np.ndarray:
    """A deterministic value in ``[-1, 1)`` per integer pair (a SplitMix64-style mix)."""
    with np.errstate(over="ignore"):
        h = ix.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        h ^= iy.astype(np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F) + np.uint64(seed)
        h ^= h >> np.uint64(30)
        h *= np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(27)
        h *= np.uint64(0x94D049BB133111EB)
        h ^= h >> np.uint64(31)
    return (h >> np.uint64(11)).astype(np.float64) / 2.0**52 - 1.0


def _pyramid_levels(width: int, height: int) -> list[tuple[int, int, int]]:
    """``(downsample, width, height)`` of each level: halved until the longest side <= 1024."""
    levels = [(1, width, height)]
    while max(levels[-1][1:]) > _PYRAMID_TOP:
        downsample = 2 * levels[-1][0]
        levels.append((downsample, math.ceil(width / downsample), math.ceil(height / downsample)))
    return levels


def _slide_tiles(
    layout: _SlideLayout,
    downsample: float,
    level_width: int,
    level_height: int,
    tile: int,
    random_state: int,
) -> Iterator[Image]:
    """Tiles of one level in row-major order (edge tiles cut to the level's size).

    Tiles are rendered by a small thread pool (NumPy releases the GIL) a few tiles ahead of
    the consumer, so memory holds only those few.
    """

    def render(top: int, left: int) -> Image:
        x = (np.arange(left, min(left + tile, level_width)) + 0.5) * downsample
        y = (np.arange(top, min(top + tile, level_height)) + 0.5) * downsample
        rng = np.random.default_rng((random_state, int(downsample), top, left))
        return layout.render(x, y, downsample, rng)

    workers = min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(workers) as pool:
        pending: deque[Future[Image]] = deque()
        for top in range(0, level_height, tile):
            for left in range(0, level_width, tile):
                pending.append(pool.submit(render, top, left))
                if len(pending) > 2 * workers:
                    yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _svs_thumbnail(layout: _SlideLayout, width: int, height: int, random_state: int) -> Image:
    """The small stripped image an SVS file keeps as its second page."""
    downsample = max(width, height) / min(_SVS_THUMBNAIL_SIZE, max(width, height))
    x = (np.arange(max(1, round(width / downsample))) + 0.5) * downsample
    y = (np.arange(max(1, round(height / downsample))) + 0.5) * downsample
    return layout.render(x, y, downsample, np.random.default_rng((random_state, 1)))


def _svs_description(
    width: int,
    height: int,
    level_width: int,
    level_height: int,
    tile: int,
    mpp: float | None,
    *,
    thumbnail: bool = False,
) -> str:
    """An Aperio ImageDescription: header line, then ``|key = value`` fields."""
    library = "Aperio Image Library v12.0.0 \r\n"
    level = f"{level_width}x{level_height}"
    jpeg = f"JPEG/RGB Q={_SLIDE_JPEG_QUALITY}"
    if thumbnail:
        header = f"{library}{width}x{height} -> {level} - "
    elif (level_width, level_height) != (width, height):
        header = (
            f"{library}{width}x{height} [0,0 {width}x{height}] ({tile}x{tile}) -> {level} {jpeg}"
        )
    else:
        header = f"{library}{width}x{height} [0,0 {width}x{height}] ({tile}x{tile}) {jpeg}"
    power = 40 if mpp is None else max(1, round(10 / mpp))
    fields = [f"AppMag = {power}", "Filename = synthetic"]
    if mpp is not None:
        fields.append(f"MPP = {mpp:.4f}")
    return "|".join([header, *fields])


def _check_slide_size(width: int, height: int) -> None:
    for name, value in (("width", width), ("height", height)):
        if not isinstance(value, int | np.integer) or value < 16:
            raise ParameterError(f"{name} must be an integer >= 16, got {value!r}")


def _one_blas_thread() -> AbstractContextManager[object]:
    """Limit BLAS to one thread: the tile renderers' small matrix products run in parallel
    already, and idle OpenBLAS threads spinning for work would steal their cores."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # comes with scikit-learn; without it, only slower
        return nullcontext()
    return threadpool_limits(1, user_api="blas")


def _check_seed(random_state: int) -> None:
    if not isinstance(random_state, int | np.integer) or random_state < 0:
        raise ParameterError(f"random_state must be an integer >= 0, got {random_state!r}")
