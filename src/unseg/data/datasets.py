"""Find images (and their masks) on disk and load them.

Two folder layouts are understood:

- labelled: ``DIR/img/<id>.<ext>`` with masks ``DIR/mask/<id>.<ext>`` (any of
  :data:`~unseg.io.MASK_SUFFIXES`), matched by file stem;
- plain: a folder of images.

A labelled dataset may name its classes in ``DIR/classes.json`` (``{"0": "tumour", ...}``) or
``DIR/classes.txt`` (one name per line, line ``i`` naming class ``i``): :func:`class_names`.

The id of a sample is its image's file stem; outputs are named after it, so ids must be unique
across everything given at once.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from unseg.data.names import LabelNames, read_label_names
from unseg.errors import InputError
from unseg.io import IMAGE_SUFFIXES, MASK_SUFFIXES, atomic_write, read_image, read_label_map
from unseg.types import Image, LabelMap

#: The files that name a labelled dataset's classes, looked for in this order.
CLASS_FILES = ("classes.json", "classes.txt")


@dataclass(frozen=True)
class Sample:
    """One image and, where known, its mask.

    Attributes
    ----------
    id : str
        The image's file stem; outputs are named after it.
    image : Path
        The image file.
    mask : Path or None
        The mask file, or None when the image has none.
    """

    id: str
    image: Path
    mask: Path | None = None


def discover(
    inputs: Sequence[str | os.PathLike[str]] | str | os.PathLike[str],
    *,
    masks: str | os.PathLike[str] | None = None,
) -> list[Sample]:
    """List the samples given by image files and folders.

    Each input is an image file or a folder. A folder holding ``img/`` is a labelled dataset
    (masks from its ``mask/`` folder when there is one); any other folder is read as a folder
    of images. Folders are not searched recursively, hidden files are ignored. A broken
    symbolic link in a folder is listed like a file, so that reading it fails (as any
    unreadable file does) with a message naming the link and its target.

    Parameters
    ----------
    inputs : sequence of str or Path
        Image files and folders (a single path is accepted too).
    masks : str or Path, optional
        A folder of masks to pair with every image by stem. When given, it is used instead of
        any ``mask/`` folder of a labelled dataset.

    Returns
    -------
    list of Sample
        In input order, sorted by file name within each folder. Images without a matching mask
        have ``mask=None``; callers decide whether that is an error.

    Raises
    ------
    InputError
        If an input or the mask folder does not exist, a folder holds no images, a file has an
        unsupported suffix, two inputs give the same id, or one id has two masks.
    """
    if isinstance(inputs, str | os.PathLike):
        inputs = [inputs]
    shared_masks = _mask_index(_existing_folder(Path(masks))) if masks is not None else None
    samples: list[Sample] = []
    seen: dict[str, Path] = {}
    for item in inputs:
        images, own_masks = _images_and_masks(Path(item))
        mask_index = own_masks if shared_masks is None else shared_masks
        for image in images:
            if image.stem in seen:
                raise InputError(
                    image,
                    f"id '{image.stem}' is also given by {seen[image.stem]}",
                    fix="rename one of the two files, or run them separately "
                    "(outputs are named by id)",
                )
            seen[image.stem] = image
            samples.append(Sample(image.stem, image, mask_index.get(image.stem)))
    return samples


def load_sample(sample: Sample) -> tuple[Image, LabelMap | None]:
    """Read a sample's image and, when it has one, its mask.

    Parameters
    ----------
    sample : Sample
        As returned by :func:`discover`.

    Returns
    -------
    image : ndarray
        ``(H, W, 3)`` or ``(H, W)``, ``uint8`` or ``uint16`` (see :func:`unseg.io.read_image`).
    mask : ndarray or None
        ``(H, W)`` ``int32`` ids, or None when the sample has no mask.

    Raises
    ------
    InputError
        If either file cannot be read, or the mask's height and width differ from the image's.
    """
    image = read_image(sample.image)
    if sample.mask is None:
        return image, None
    mask = read_label_map(sample.mask)
    if mask.shape != image.shape[:2]:
        raise InputError(
            sample.mask,
            f"mask is {mask.shape[0]}x{mask.shape[1]} (HxW) but image {sample.image} is "
            f"{image.shape[0]}x{image.shape[1]}",
            fix="give each mask the height and width of its image",
        )
    return image, mask


def class_names(folder: str | os.PathLike[str]) -> LabelNames:
    """The class names of a labelled dataset, from ``classes.json`` or ``classes.txt``.

    ``folder`` is the dataset folder (holding ``img/`` and ``mask/``) or its ``mask/`` folder;
    the names file sits in the dataset folder. Classes without a name, and every class when
    there is no names file, are called ``"class <id>"``.

    Raises
    ------
    InputError
        If the names file exists but is not in the format of :mod:`unseg.data.names`.
    """
    folder = Path(folder)
    places = [folder, folder.parent] if folder.name == "mask" else [folder]
    for place in places:
        for name in CLASS_FILES:
            if (place / name).is_file():
                return read_label_names(place / name, unnamed="class")
    return LabelNames(unnamed="class")


def write_class_names(folder: str | os.PathLike[str], names: Sequence[str]) -> Path:
    """Write ``folder/classes.json`` naming class ``i`` ``names[i]``, atomically."""
    path = Path(folder) / CLASS_FILES[0]
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps({str(i): n for i, n in enumerate(names)}, indent=1) + "\n")
    return path


def slide_id(path: Path) -> str:
    """A slide's id, its outputs' name: the file name without suffixes (``a.ome.tif`` -> ``a``)."""
    name = path.name[: -len(path.suffix)] if path.suffix else path.name
    return name[:-4] if name.lower().endswith(".ome") else name


def discover_slides(inputs: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """List the slides given by slide files and folders of slides.

    A file is taken as given (a PNG, JPEG or small TIFF is read as a one-level slide); a folder
    gives its slide files (not searched recursively, hidden files ignored), and its broken
    symbolic links to slide or TIFF names, which fail when opened with a message naming the
    link and its target.

    Raises
    ------
    InputError
        If an input does not exist, has an unsupported suffix, a folder holds no slides, or two
        inputs give the same id.
    """
    from unseg.io import SLIDE_SUFFIXES, is_slide

    suffixes = tuple(sorted(set(SLIDE_SUFFIXES) | set(IMAGE_SUFFIXES)))
    slides: list[Path] = []
    seen: dict[str, Path] = {}
    for item in map(Path, inputs):
        if not item.exists():
            raise _not_found(item)
        if item.is_dir():
            # a broken link to a TIFF may have been a slide: it is kept, and fails when opened
            found = [
                p
                for p in _files(item, suffixes)
                if is_slide(p) or (_is_broken_link(p) and p.suffix.lower() in (".tif", ".tiff"))
            ]
            if not found:
                raise InputError(item, f"no slides found (looked for {', '.join(SLIDE_SUFFIXES)}"
                                 " and pyramidal TIFF)", fix="give slide files or their folder")
        elif item.suffix.lower() in suffixes:
            found = [item]
        else:
            raise InputError(item, f"unsupported file type '{item.suffix}'",
                             fix=f"give slides ending in {', '.join(suffixes)}")
        for path in found:
            key = slide_id(path)
            if key in seen:
                raise InputError(path, f"id '{key}' is also given by {seen[key]}",
                                 fix="rename one of the two files, or run them separately "
                                 "(outputs are named by id)")
            seen[key] = path
            slides.append(path)
    return slides


def _images_and_masks(path: Path) -> tuple[list[Path], dict[str, Path]]:
    """The images one input gives, and the masks found beside them (by stem)."""
    if not path.exists():
        raise _not_found(path)
    if not path.is_dir():
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            raise InputError(
                path,
                f"unsupported file type '{path.suffix}'",
                fix=f"give images ending in {', '.join(IMAGE_SUFFIXES)}",
            )
        return [path], {}
    labelled = (path / "img").is_dir()
    folder = path / "img" if labelled else path
    images = _files(folder, IMAGE_SUFFIXES)
    if not images:
        raise InputError(
            folder,
            f"no images found (looked for {', '.join(IMAGE_SUFFIXES)})",
            fix="give a folder of images, or a folder holding img/ (and mask/)",
        )
    if not (labelled and (path / "mask").is_dir()):
        return images, {}
    return images, _mask_index(path / "mask")


def _existing_folder(path: Path) -> Path:
    if not path.is_dir():
        reason = "is not a folder" if path.exists() else "mask folder not found"
        raise InputError(path, reason, fix="give the folder that holds the masks")
    return path


def _mask_index(folder: Path) -> dict[str, Path]:
    """Map each stem in ``folder`` to its mask file."""
    index: dict[str, Path] = {}
    for mask in _files(folder, MASK_SUFFIXES):
        if mask.stem in index:
            raise InputError(
                mask,
                f"id '{mask.stem}' has two masks: {index[mask.stem].name} and {mask.name}",
                fix="keep one mask per image",
            )
        index[mask.stem] = mask
    return index


def _files(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """Visible files in ``folder`` (not recursive) with one of ``suffixes``, sorted by name.

    Broken symbolic links count as files: reading one fails with a message that names the link
    and its target, so the missing file is reported as a failed input rather than skipped.
    """
    found = [
        p
        for p in folder.iterdir()
        if not p.name.startswith(".")
        and p.suffix.lower() in suffixes
        and (p.is_file() or _is_broken_link(p))
    ]
    return sorted(found, key=lambda p: p.name)


def _is_broken_link(path: Path) -> bool:
    """Whether ``path`` is a symbolic link whose target does not exist."""
    return path.is_symlink() and not path.exists()


def _not_found(path: Path) -> InputError:
    """The error for an input that does not exist, naming a broken link's target."""
    if _is_broken_link(path):
        return InputError(
            path,
            f"broken symbolic link to {os.readlink(path)}",
            fix="restore the file it points to, or remove the link",
        )
    return InputError(path, "file or folder not found")
