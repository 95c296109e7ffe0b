"""Read and write label maps: ``(H, W)`` ``int32`` arrays holding one class id per pixel."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from unseg.errors import InputError, ParameterError
from unseg.io._files import (
    TIFF_SUFFIXES,
    check_pixels,
    decode_pillow,
    decode_tiff,
    existing_file,
    max_pixels,
    size_text,
)
from unseg.io.atomic import atomic_write
from unseg.io.images import IMAGE_SUFFIXES
from unseg.types import LabelMap

MASK_SUFFIXES = (*IMAGE_SUFFIXES, ".npy")

_SINGLE_CHANNEL_FIX = "save the mask as a grayscale or palette PNG holding one class id per pixel"


def read_label_map(path: str | Path) -> LabelMap:
    """Read a mask of class (or instance) ids.

    Index PNGs give their stored values: a palette ("P") image its palette indices, "L",
    "I;16" and "I" images their gray values. TIFF files are read with tifffile (a stack of
    pages as its first page, with a warning on the ``unseg`` logger, as by
    :func:`~unseg.io.read_image`; ids are never rescaled) and ``.npy`` files with NumPy. A
    3-channel mask whose channels are all equal is read as grayscale. Masks larger than
    :func:`~unseg.io.max_pixels` (for ``.npy`` files: with more elements) are refused from
    their header, before decoding.

    Parameters
    ----------
    path : str or Path
        PNG, JPEG, TIFF or ``.npy`` file.

    Returns
    -------
    ndarray
        ``(H, W)`` ``int32`` ids, all ``>= 0``.

    Raises
    ------
    InputError
        If the file is missing (or a broken symbolic link), a folder, unreadable, corrupt, of
        zero size or larger than :func:`~unseg.io.max_pixels`, or holds colour channels,
        non-integer values, negative ids or an array that is not 2-D.
    ParameterError
        If the environment variable ``UNSEG_MAX_PIXELS`` is not a positive whole number.
    """
    path = existing_file(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        array = _load_npy(path)
    elif suffix in TIFF_SUFFIXES:
        array, _ = decode_tiff(path)  # class ids keep their values whatever the bit depth
    else:
        array = decode_pillow(path, lambda img: img)
    return _labels_from_array(array, path)


def _load_npy(path: Path) -> np.ndarray:
    shape = _npy_shape(path)
    if shape is not None:
        check_pixels(path, shape, max_pixels())  # every element counts, before any allocation
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise InputError(
            path, f"cannot read the array ({exc})", fix="save the mask with np.save"
        ) from exc
    if not isinstance(array, np.ndarray):  # an .npz archive behind an .npy name
        raise InputError(
            path, "holds an archive of arrays, not one array", fix="save the mask with np.save"
        )
    return array


def _npy_shape(path: Path) -> tuple[int, ...] | None:
    """The array shape an ``.npy`` header declares, or None when it is not a readable header
    (``np.load`` then says what is wrong)."""
    try:
        with path.open("rb") as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, _, _ = np.lib.format.read_array_header_1_0(fh)
            else:
                shape, _, _ = np.lib.format.read_array_header_2_0(fh)
    except (OSError, ValueError):
        return None
    return tuple(int(n) for n in shape)


def _labels_from_array(array: np.ndarray, path: Path) -> LabelMap:
    """Check a decoded mask and return it as ``int32``."""
    if array.ndim == 3 and array.shape[-1] == 3:
        first = array[..., 0]
        if not (np.array_equal(first, array[..., 1]) and np.array_equal(first, array[..., 2])):
            raise InputError(
                path,
                "mask has 3 colour channels; expected a single-channel image of class ids",
                fix=_SINGLE_CHANNEL_FIX,
            )
        array = first
    if array.ndim != 2:
        reason = f"mask has shape {array.shape}; expected (H, W) class ids"
        raise InputError(path, reason, fix=_SINGLE_CHANNEL_FIX)
    if array.size == 0:
        raise InputError(path, f"mask has zero size ({size_text(array.shape)})")
    if array.dtype.kind not in "biu":
        raise InputError(
            path,
            f"mask has non-integer pixel type {array.dtype}",
            fix="save integer class ids, e.g. np.save(path, mask.astype(np.int32))",
        )
    low, high = int(array.min()), int(array.max())
    if low < 0:
        raise InputError(
            path,
            f"mask has negative ids (smallest {low})",
            fix="store class ids as integers >= 0 (255 marks ignored pixels)",
        )
    if high > np.iinfo(np.int32).max:
        raise InputError(
            path, f"mask ids go up to {high}, beyond int32", fix="number the ids from 0"
        )
    return array.astype(np.int32)


def checked_labels(labels: np.ndarray) -> LabelMap:
    """Return ``labels`` as an integer array after checking it is a valid label map.

    Raises
    ------
    ParameterError
        If ``labels`` is not 2-D, is empty, is not integer or holds negative ids.
    """
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.size == 0:
        raise ParameterError(f"expected a non-empty (H, W) label map, got shape {labels.shape}")
    if labels.dtype.kind not in "biu":
        raise ParameterError(f"expected integer label ids, got {labels.dtype}")
    low = int(labels.min())
    if low < 0:
        raise ParameterError(f"label ids must be >= 0, got {low}")
    return labels


def write_label_map(path: str | Path, labels: np.ndarray) -> Path:
    """Write a label map atomically as a single-channel index PNG.

    The PNG is 8-bit when every id is below 256 and 16-bit otherwise.

    Parameters
    ----------
    path : str or Path
        Output file ending in ``.png``. Missing folders are created.
    labels : ndarray
        ``(H, W)`` integer ids in ``0..65535``.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ParameterError
        If ``path`` does not end in ``.png``, or ``labels`` is not a 2-D integer array with ids
        in ``0..65535``.
    """
    import PIL.Image

    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ParameterError(f"cannot write {path}: label maps are written as .png files")
    labels = checked_labels(labels)
    high = int(labels.max())
    if high > 65535:
        raise ParameterError(f"label ids go up to {high}; a PNG label map holds ids up to 65535")
    dtype = np.uint8 if high < 256 else np.uint16
    with atomic_write(path) as tmp:
        PIL.Image.fromarray(labels.astype(dtype)).save(tmp)
    return path
