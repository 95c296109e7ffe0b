"""Small synthetic images with known answers, for tests and for a demo without real data.

Every generator takes ``random_state`` (the same seed gives the same output) and returns
``(image, mask)``: an RGB ``uint8`` image ``(H, W, 3)`` and its ``int32`` class ids ``(H, W)``.

:func:`write_synthetic_slide` writes pyramidal whole slides of any size (generic tiled TIFF or
Aperio-like SVS) tile by tile, and :func:`synthetic_slide_truth` gives their class map at any
downsample.
"""

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

from unseg.errors import ParameterError
from unseg.io import write_image, write_label_map
from unseg.types import Image, LabelMap

RandomState: TypeAlias = int | np.random.Generator | None

_QUADRANT_COLOURS = np.array([(200, 60, 60), (60, 160, 70), (60, 90, 200), (220, 200, 80)])
_BACKGROUND_RGB = np.array([240.0, 240.0, 240.0])  # glass, no tissue
_STROMA_RGB = np.array([230.0, 150.0, 190.0])  # eosin pink
_NUCLEUS_RGB = np.array([90.0, 60.0, 150.0])  # haematoxylin purple


def quadrants(
    size: int = 64, *, noise: float = 8.0, random_state: RandomState = 0
) -> tuple[Image, LabelMap]:
    """Four flat colours, one per quadrant, with Gaussian noise.

    Parameters
    ----------
    size : int
        Height and width in pixels, ``>= 2``.
    noise : float
        Standard deviation of the noise, in grey levels.
    random_state : int, Generator or None
        Seed of the noise.

    Returns
    -------
    image : ndarray
        ``(size, size, 3)`` ``uint8``.
    mask : ndarray
        ``(size, size)`` ``int32``: 0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right.
    """
    _check_size(size, 2)
    if noise < 0:
        raise ParameterError(f"noise must be >= 0, got {noise}")
    rng = np.random.default_rng(random_state)
    half = size // 2
    mask = np.zeros((size, size), dtype=np.int32)
    mask[:half, half:] = 1
    mask[half:, :half] = 2
    mask[half:, half:] = 3
    image = _QUADRANT_COLOURS[mask] + rng.normal(0.0, noise, (size, size, 3))
    return _to_uint8(image), mask


def blobs(
    size: int = 128, *, n_blobs: int = 6, random_state: RandomState = 0
) -> tuple[Image, LabelMap]:
    """Dark round blobs, none touching, on a bright textured background.

    Parameters
    ----------
    size : int
        Height and width in pixels, ``>= 16``.
    n_blobs : int
        Number of blobs, ``>= 1``; each is one connected region of the mask.
    random_state : int, Generator or None
        Seed of the positions, sizes and texture.

    Returns
    -------
    image : ndarray
        ``(size, size, 3)`` ``uint8``.
    mask : ndarray
        ``(size, size)`` ``int32``: 0 background, 1 blob.

    Raises
    ------
    ParameterError
        If ``n_blobs`` separate blobs do not fit in the image.
    """
    _check_size(size, 16)
    if n_blobs < 1:
        raise ParameterError(f"n_blobs must be >= 1, got {n_blobs}")
    rng = np.random.default_rng(random_state)
    placed: list[tuple[float, float, float]] = []
    for _ in range(100 * n_blobs):
        radius = rng.uniform(0.06, 0.1) * size
        y, x = rng.uniform(radius + 1, size - radius - 1, size=2)
        if all(math.hypot(y - py, x - px) > radius + pr + 2 for py, px, pr in placed):
            placed.append((y, x, radius))
            if len(placed) == n_blobs:
                break
    else:
        raise ParameterError(
            f"cannot fit {n_blobs} separate blobs in a {size}x{size} image; "
            "use fewer blobs or a larger size"
        )
    yy, xx = np.ogrid[:size, :size]
    mask = np.zeros((size, size), dtype=np.int32)
    for y, x, radius in placed:
        mask[(yy - y) ** 2 + (xx - x) ** 2 <= radius**2] = 1
    texture = _smooth_noise(rng, size, sigma=size / 32)
    background = np.array([228.0, 218.0, 205.0]) + 12.0 * texture[..., None]
    blob = np.array([70.0, 55.0, 100.0]) + 6.0 * texture[..., None]
    image = np.where(mask[..., None] == 1, blob, background)
    return _to_uint8(image + rng.normal(0.0, 5.0, image.shape)), mask


def he_tile(size: int = 256, *, random_state: RandomState = 0) -> tuple[Image, LabelMap]:
    """An H&E-looking tile: glass, pink fibrous stroma and a cluster of purple nuclei.

    The tissue covers three quarters of the tile with an irregular border. Stroma carries a
    fibre texture along a random direction; nuclei are small ellipses of varying darkness,
    crowded in a tumour-like region around the point deepest inside the tissue.

    Parameters
    ----------
    size : int
        Height and width in pixels, ``>= 32``.
    random_state : int, Generator or None
        Seed of the layout and textures.

    Returns
    -------
    image : ndarray
        ``(size, size, 3)`` ``uint8``; glass about (240, 240, 240), stroma about
        (230, 150, 190), nuclei about (90, 60, 150).
    mask : ndarray
        ``(size, size)`` ``int32``: 0 background (no tissue), 1 stroma, 2 nuclei.
    """
    from scipy import ndimage

    _check_size(size, 32)
    rng = np.random.default_rng(random_state)
    depth = _smooth_noise(rng, size, sigma=size / 8)
    tissue = depth > np.quantile(depth, 0.25)

    # The cluster sits at the tissue point farthest from both the glass and the tile's border.
    inland = ndimage.distance_transform_edt(np.pad(tissue, 1))[1:-1, 1:-1]
    centre_y, centre_x = np.unravel_index(np.argmax(inland), inland.shape)
    radius = 0.2 * size
    nuclei = np.zeros((size, size), dtype=bool)
    shade = np.zeros((size, size))
    # Nuclei are 7-12 px across whatever the tile size; they cover about 40% of the cluster.
    for _ in range(max(4, round(0.4 * radius**2 / 20))):
        distance, angle = radius * math.sqrt(rng.uniform()), rng.uniform(0, 2 * math.pi)
        window, inside = _ellipse(
            size,
            centre_y + distance * math.sin(angle),
            centre_x + distance * math.cos(angle),
            rng.uniform(4.0, 6.0),
            rng.uniform(3.5, 4.5),
            rng.uniform(0, math.pi),
        )
        nuclei[window] |= inside
        shade[window][inside] = rng.normal(0.0, 12.0)
    nuclei &= tissue
    mask = np.where(nuclei, 2, tissue.astype(np.int32)).astype(np.int32)

    fibres = ndimage.gaussian_filter(rng.standard_normal((size, size)), sigma=(1.2, 8.0))
    fibres = ndimage.rotate(fibres, rng.uniform(0, 180), reshape=False, mode="reflect")
    eosin = fibres / fibres.std() + _smooth_noise(rng, size, sigma=size / 16)
    stroma = _STROMA_RGB + eosin[..., None] * np.array([5.0, 14.0, 9.0])
    chromatin = shade + 8.0 * rng.standard_normal((size, size))
    nucleus = _NUCLEUS_RGB + chromatin[..., None]
    image = np.where(
        (mask == 2)[..., None], nucleus, np.where((mask == 1)[..., None], stroma, _BACKGROUND_RGB)
    )
    image = ndimage.gaussian_filter(image, sigma=(0.7, 0.7, 0.0))
    return _to_uint8(image + rng.normal(0.0, 4.0, image.shape)), mask


SKY, LEMON, APPLE, BLUEBERRY = 0, 1, 2, 3
FRUIT_CLASSES = ("sky", "lemon", "apple", "blueberry")


def sky_and_fruit(
    size: int = 64, *, max_objects: int = 4, random_state: RandomState = 0
) -> tuple[Image, LabelMap]:
    """A sky of high internal colour variance occluded by lemons, apples and blueberries.

    The sky is a blue gradient with white clouds or coloured horizontal bands. One to
    ``max_objects`` fruits are drawn in random order (later ones occlude earlier ones) at
    random positions (partly outside the frame too), rotations and scales: lemons are
    yellow, dimpled ellipses with a nub at each end; apples red-to-green round fruits with a
    highlight, a dent and a stem; blueberries small dark-blue berries with a pale bloom and a
    crown, often in bunches. Image and mask are drawn from the same geometry at pixel centres,
    so the mask is exact.

    Parameters
    ----------
    size : int
        Height and width in pixels, ``>= 16``.
    max_objects : int
        Most fruits (or bunches of blueberries) per image, ``>= 1``.
    random_state : int, Generator or None
        Seed of the scene.

    Returns
    -------
    image : ndarray
        ``(size, size, 3)`` ``uint8``.
    mask : ndarray
        ``(size, size)`` ``int32``: 0 sky, 1 lemon, 2 apple, 3 blueberry (``FRUIT_CLASSES``).
    """
    _check_size(size, 16)
    if not isinstance(max_objects, int) or max_objects < 1:
        raise ParameterError(f"max_objects must be an integer >= 1, got {max_objects!r}")
    rng = np.random.default_rng(random_state)
    image = _sky(rng, size)
    mask = np.zeros((size, size), np.int32)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5
    unit = size / 64  # sizes below are for a 64 px image
    for _ in range(int(rng.integers(1, max_objects + 1))):
        kind = int(rng.choice([LEMON, APPLE, BLUEBERRY]))
        cy, cx = rng.uniform(-0.05, 1.05, 2) * size
        theta = rng.uniform(0, 2 * math.pi)
        if kind == LEMON:
            inside, colour = _lemon(rng, yy - cy, xx - cx, theta, rng.uniform(8, 15) * unit)
        elif kind == APPLE:
            inside, colour = _apple(rng, yy - cy, xx - cx, theta, rng.uniform(7, 13) * unit)
        else:
            inside = np.zeros((size, size), bool)
            colour = np.zeros((size, size, 3))
            for _ in range(int(rng.integers(1, 5))):
                by, bx = cy + rng.normal(0, 5 * unit), cx + rng.normal(0, 5 * unit)
                berry, shade = _blueberry(rng, yy - by, xx - bx, rng.uniform(3, 5.5) * unit)
                colour = np.where(berry[..., None], shade, colour)
                inside |= berry
        image = np.where(inside[..., None], colour, image)
        mask[inside] = kind
    return _to_uint8(image + rng.normal(0.0, 3.0, image.shape)), mask


def _sky(rng: np.random.Generator, size: int) -> np.ndarray:
    """A vertical blue gradient with white clouds (or, one time in three, coloured bands)."""
    t = np.linspace(0, 1, size)[:, None, None]
    top = np.array([30, 80, 190]) + rng.normal(0, 15, 3)
    bottom = np.array([150, 195, 245]) + rng.normal(0, 10, 3)
    sky = np.broadcast_to(top * (1 - t) + bottom * t, (size, size, 3)).copy()
    if rng.uniform() < 1 / 3:
        phase = rng.uniform(0, 2 * math.pi)
        bands = np.sin(np.linspace(0, rng.uniform(2, 5) * math.pi, size) + phase)
        band = np.array([250, 170, 120]) + rng.normal(0, 10, 3)  # sunset-coloured bands
        weight = np.clip(bands, 0, 1)[:, None, None] * 0.7
    else:
        cover = _smooth_noise(rng, size, sigma=size / 10)
        band = np.array([248, 248, 252])
        weight = np.clip((cover - rng.uniform(-0.3, 0.8)) * 1.5, 0, 1)[..., None]
    return sky * (1 - weight) + band * weight


def _rotated(dy: np.ndarray, dx: np.ndarray, theta: float) -> tuple[np.ndarray, np.ndarray]:
    return (dx * math.cos(theta) + dy * math.sin(theta),
            -dx * math.sin(theta) + dy * math.cos(theta))


def _lemon(rng: np.random.Generator, dy: np.ndarray, dx: np.ndarray, theta: float,
           length: float) -> tuple[np.ndarray, np.ndarray]:
    u, v = _rotated(dy, dx, theta)
    a, b = length, length * rng.uniform(0.6, 0.75)
    body = (u / a) ** 2 + (v / b) ** 2
    nubs = ((np.abs(u) - a) / (0.25 * a)) ** 2 + (v / (0.18 * b)) ** 2 <= 1
    inside = (body <= 1) | nubs
    shade = 0.7 + 0.3 * np.sqrt(np.clip(1 - body, 0, 1))
    dimples = rng.normal(0, 12, dy.shape)
    base = np.array([245, 215, 55]) + rng.normal(0, 8, 3)
    return inside, base * shade[..., None] + dimples[..., None] * np.array([1.0, 1.0, 0.3])


def _apple(rng: np.random.Generator, dy: np.ndarray, dx: np.ndarray, theta: float,
           radius: float) -> tuple[np.ndarray, np.ndarray]:
    u, v = _rotated(dy, dx, theta)  # u points to the stem
    r2 = (u**2 + (v / 1.05) ** 2) / radius**2
    dent = ((u - radius) ** 2 + v**2) / (0.3 * radius) ** 2 <= 1
    stem = (u > 0.6 * radius) & (u < 1.25 * radius) & (np.abs(v) < max(0.8, 0.08 * radius))
    inside = ((r2 <= 1) & ~dent) | stem
    red, green = np.array([200, 30, 40]), np.array([150, 190, 60])
    blush = np.clip(0.5 + 0.5 * np.tanh(u / radius * 2 + rng.normal(0, 0.7)), 0, 1)
    mix = rng.uniform(0.0, 0.6)
    base = red * (1 - mix * blush[..., None]) + green * (mix * blush[..., None])
    shade = 0.65 + 0.35 * np.sqrt(np.clip(1 - r2, 0, 1))
    spot = np.exp(-(((u + 0.4 * radius) ** 2 + (v - 0.35 * radius) ** 2) / (0.2 * radius) ** 2))
    colour = base * shade[..., None] + 90 * spot[..., None]
    colour = np.where(stem[..., None] & (r2 > 0.8)[..., None], np.array([90, 60, 30]), colour)
    return inside, colour


def _blueberry(rng: np.random.Generator, dy: np.ndarray, dx: np.ndarray, radius: float
               ) -> tuple[np.ndarray, np.ndarray]:
    r2 = (dy**2 + dx**2) / radius**2
    inside = r2 <= 1
    bloom = 0.25 * np.clip(1 - np.abs(r2 - 0.5) * 2, 0, 1)
    base = np.array([45, 55, 115]) + rng.normal(0, 6, 3)
    colour = base * (1 - bloom[..., None]) + np.array([150, 160, 200]) * bloom[..., None]
    crown = r2 <= 0.06
    return inside, np.where(crown[..., None], np.array([25, 25, 50]), colour)

_GENERATORS = {
    "quadrants": quadrants, "blobs": blobs, "he_tile": he_tile, "sky_and_fruit": sky_and_fruit,
}


def write_dataset(
    out_dir: str | os.PathLike[str],
    n: int = 4,
    *,
    kind: str = "he_tile",
    size: int | None = None,
    random_state: RandomState = 0,
    progress: str | None = None,
) -> Path:
    """Write a labelled dataset: ``out_dir/img/<id>.png`` and ``out_dir/mask/<id>.png``.

    Ids are ``synthetic-00``, ``synthetic-01``, ...; each file is written atomically.

    Parameters
    ----------
    out_dir : str or Path
        Dataset folder, created if missing.
    n : int
        Number of image/mask pairs, ``>= 1``.
    kind : {"he_tile", "blobs", "quadrants", "sky_and_fruit"}
        Generator to use.
    size : int, optional
        Image size passed to the generator; its default when None.
    random_state : int, Generator or None
        Seed of the whole dataset; each image gets its own seed drawn from it.
    progress : str, optional
        Show a progress bar on standard error with this label.

    Returns
    -------
    Path
        ``out_dir``.
    """
    if kind not in _GENERATORS:
        raise ParameterError(f"unknown kind {kind!r}; choose one of {', '.join(_GENERATORS)}")
    if n < 1:
        raise ParameterError(f"n must be >= 1, got {n}")
    out = Path(out_dir)
    options = {} if size is None else {"size": size}
    seeds = np.random.default_rng(random_state).integers(0, 2**31, size=n)
    width = max(2, len(str(n - 1)))
    if progress is not None:
        import sys

        from tqdm import tqdm

        seeds = tqdm(seeds, desc=progress, unit="img", disable=None, file=sys.stderr)
    for i, seed in enumerate(seeds):
        image, mask = _GENERATORS[kind](**options, random_state=int(seed))
        sample_id = f"synthetic-{i:0{width}d}"
        write_image(out / "img" / f"{sample_id}.png", image)
        write_label_map(out / "mask" / f"{sample_id}.png", mask)
    return out


def _check_size(size: int, minimum: int) -> None:
    if not isinstance(size, int | np.integer) or size < minimum:
        raise ParameterError(f"size must be an integer >= {minimum}, got {size!r}")


def _smooth_noise(rng: np.random.Generator, size: int, sigma: float) -> np.ndarray:
    """``(size, size)`` Gaussian-smoothed white noise scaled to unit standard deviation."""
    from scipy import ndimage

    field = ndimage.gaussian_filter(rng.standard_normal((size, size)), sigma=sigma)
    return field / field.std()


def _ellipse(
    size: int, y: float, x: float, a: float, b: float, theta: float
) -> tuple[tuple[slice, slice], np.ndarray]:
    """Pixels of an ellipse (semi-axes ``a``, ``b``, rotated by ``theta``) in a square image.

    Returns the window around the ellipse, clipped to the image, and the boolean ellipse inside
    that window.
    """
    top, bottom = np.clip([math.floor(y - a), math.ceil(y + a) + 1], 0, size)
    left, right = np.clip([math.floor(x - a), math.ceil(x + a) + 1], 0, size)
    rows, cols = slice(top, bottom), slice(left, right)
    dy, dx = np.ogrid[rows, cols]
    dy, dx = dy - y, dx - x
    along = dx * math.cos(theta) + dy * math.sin(theta)
    across = -dx * math.sin(theta) + dy * math.cos(theta)
    return (rows, cols), (along / a) ** 2 + (across / b) ** 2 <= 1.0


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------------
# Synthetic whole slides
# --------------------------------------------------------------------------------------------

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
