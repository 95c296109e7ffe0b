"""Read and write images: RGB ``(H, W, 3)`` or grayscale ``(H, W)``, ``uint8`` or ``uint16``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from unseg.errors import InputError, ParameterError
from unseg.io._files import TIFF_SUFFIXES, decode_pillow, decode_tiff, existing_file, size_text
from unseg.io.atomic import atomic_write
from unseg.types import FloatImage, Image

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")

_BIT_DEPTH_FIX = "save it as an 8- or 16-bit image (unsigned integers)"


def read_image(path: str | Path) -> Image:
    """Read a PNG, JPEG or TIFF image.

    TIFF files are read with tifffile (first series; channel-first ``(3, H, W)`` and
    ``(4, H, W)`` arrays are transposed; a fourth channel is taken as alpha), everything else
    with Pillow. Alpha channels are dropped, palette, CMYK and YCbCr images become RGB and
    bilevel (boolean) images become ``uint8`` 0/255. 16-bit images keep their 16 bits.

    A TIFF whose first series is a stack of pages is read as its first page, with a warning on
    the ``unseg`` logger that names the file and the page count; pages are never taken for
    colour channels. A TIFF whose BitsPerSample is below its pixel type's width (12-bit
    samples, which arrive as ``uint16``; 4-bit ones, as ``uint8``) is rescaled to the type's
    full range (``v * 65535 / 4095`` for 12 bits, rounded), so the returned image always uses
    the whole range of its dtype and :func:`as_float32` maps the file's maximum to 1. PNG needs
    no such step: its sBIT chunk only records the original depth of samples that the PNG
    specification requires to be stored already scaled to the full depth.

    Images larger than :func:`~unseg.io.max_pixels` (178,956,970 pixels by default; the
    environment variable ``UNSEG_MAX_PIXELS`` sets it) are refused from their header, before
    decoding.

    Parameters
    ----------
    path : str or Path
        The image file.

    Returns
    -------
    ndarray
        ``(H, W, 3)`` RGB or ``(H, W)`` grayscale, ``uint8`` or ``uint16``.

    Raises
    ------
    InputError
        If the file is missing (or a broken symbolic link), a folder, not an image, truncated
        or corrupt, has zero size, has more pixels than :func:`~unseg.io.max_pixels`, holds
        more than 16 bits or floating-point pixels, or has an unsupported channel count.
    ParameterError
        If the environment variable ``UNSEG_MAX_PIXELS`` is not a positive whole number.
    """
    path = existing_file(path)
    if path.suffix.lower() in TIFF_SUFFIXES:
        array, bits = decode_tiff(path)
        array = _full_range(array, bits, path)
        if array.ndim == 3 and array.shape[0] in (3, 4) and array.shape[-1] > 4:
            array = np.moveaxis(array, 0, -1)
    else:
        array = decode_pillow(path, _pillow_to_rgb_or_gray)
    return _image_from_array(array, path)


def _full_range(array: np.ndarray, bits: int, path: Path) -> np.ndarray:
    """Scale unsigned ``bits``-bit samples held in a wider pixel type to that type's range."""
    if array.dtype.kind != "u" or not 1 < bits < 8 * array.dtype.itemsize:
        return array
    top = (1 << bits) - 1
    high = int(array.max())
    if high > top:
        raise InputError(
            path,
            f"pixel values go up to {high}, but the file records {bits} bits per sample "
            f"(at most {top})",
            fix="correct its BitsPerSample tag, or " + _BIT_DEPTH_FIX,
        )
    full = np.iinfo(array.dtype).max
    return ((array.astype(np.uint64) * full + top // 2) // top).astype(array.dtype)


def _pillow_to_rgb_or_gray(img: PILImage) -> PILImage:
    """Convert the Pillow modes that do not map to gray/RGB arrays directly."""
    if img.mode == "LA":
        return img.convert("L")
    if img.mode in ("P", "PA"):
        return img.convert("RGBA")  # palette colours; any transparency becomes alpha, dropped later
    if img.mode in ("CMYK", "YCbCr"):
        return img.convert("RGB")
    return img


def _image_from_array(array: np.ndarray, path: Path) -> Image:
    """Drop alpha, then check the shape, size and pixel type of a decoded image."""
    if array.ndim == 3 and array.shape[-1] == 4:  # RGB + alpha
        array = array[..., :3]
    if array.ndim == 3 and array.shape[-1] != 3:
        raise InputError(
            path,
            f"unsupported channel count {array.shape[-1]} (array shape {array.shape})",
            fix="save it as a grayscale or RGB image",
        )
    if array.ndim not in (2, 3):
        raise InputError(
            path,
            f"unsupported image shape {array.shape}; expected (H, W) or (H, W, 3)",
            fix="save it as a single grayscale or RGB image",
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise InputError(path, f"image has zero size ({size_text(array.shape)})")
    kind = array.dtype.kind
    if kind == "b":
        return array.astype(np.uint8) * np.uint8(255)
    if kind == "u" and array.dtype.itemsize == 1:
        return np.ascontiguousarray(array)
    if kind in "ui":
        low, high = int(array.min()), int(array.max())
        if low >= 0 and high <= 65535:
            return array.astype(np.uint16)
        raise InputError(
            path,
            f"unsupported pixel type {array.dtype} with values {low}..{high} (more than 16 bits)",
            fix=_BIT_DEPTH_FIX,
        )
    raise InputError(path, f"unsupported pixel type {array.dtype}", fix=_BIT_DEPTH_FIX)


def as_float32(image: np.ndarray) -> FloatImage:
    """Convert an image to ``float32`` in ``[0, 1]``: the one conversion methods use.

    Parameters
    ----------
    image : ndarray
        ``(H, W)`` or ``(H, W, 3)``. ``uint8`` is divided by 255 and ``uint16`` by 65535
        (:func:`read_image` gives images of fewer bits, such as 12-bit TIFFs, the full range of
        their dtype first); a floating-point image is taken to be in ``[0, 1]`` already and
        only cast.

    Returns
    -------
    ndarray
        ``float32``, same shape as ``image``.

    Raises
    ------
    ParameterError
        For any other dtype.
    """
    image = np.asarray(image)
    if image.dtype == np.uint8:
        return image.astype(np.float32) / np.float32(255)
    if image.dtype == np.uint16:
        return image.astype(np.float32) / np.float32(65535)
    if image.dtype.kind == "f":
        return image.astype(np.float32)
    raise ParameterError(
        f"expected a uint8, uint16 or floating-point image, got {image.dtype}; "
        "read images with unseg.io.read_image"
    )


def checked_image(image: np.ndarray) -> Image:
    """Return ``image`` as an array after checking it is a gray/RGB ``uint8``/``uint16`` image.

    Raises
    ------
    ParameterError
        For another dtype or shape, or zero height or width.
    """
    image = np.asarray(image)
    if image.dtype not in (np.uint8, np.uint16):
        raise ParameterError(f"expected a uint8 or uint16 image, got {image.dtype}")
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[-1] == 3)):
        raise ParameterError(f"expected an (H, W) or (H, W, 3) image, got shape {image.shape}")
    if image.size == 0:
        raise ParameterError(f"image has zero size (shape {image.shape})")
    return image


def write_image(path: str | Path, image: np.ndarray) -> Path:
    """Write an image atomically; the format follows the suffix.

    Parameters
    ----------
    path : str or Path
        Output file ending in one of :data:`IMAGE_SUFFIXES`. Missing folders are created.
    image : ndarray
        ``(H, W)`` grayscale or ``(H, W, 3)`` RGB, ``uint8`` or ``uint16``. PNG holds 16-bit
        grayscale but not 16-bit RGB, JPEG holds 8 bits only; TIFF holds all of them.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ParameterError
        For an unsupported suffix, or an image the format cannot hold.
    """
    path = Path(path)
    image = checked_image(image)
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise ParameterError(
            f"cannot write {path}: the name must end in one of {', '.join(IMAGE_SUFFIXES)}"
        )
    if suffix in TIFF_SUFFIXES:
        import tifffile

        photometric = "rgb" if image.ndim == 3 else "minisblack"
        with atomic_write(path) as tmp:
            tifffile.imwrite(tmp, image, photometric=photometric)
        return path
    if image.dtype == np.uint16 and (image.ndim == 3 or suffix != ".png"):
        colour = "RGB" if image.ndim == 3 else "grayscale"
        raise ParameterError(
            f"cannot write {path}: {suffix} cannot hold a 16-bit {colour} image; "
            "write a .tif file or convert the image to uint8"
        )
    import PIL.Image

    with atomic_write(path) as tmp:
        PIL.Image.fromarray(image).save(tmp)
    return path
