"""Image-level labels: which classes each image contains, for weakly supervised methods.

Three sources give the same :class:`WeakLabels`:

- a CSV file, ``name,tumour,stroma,normal`` with one row of 0/1 per image (:func:`read_csv`);
  ``name`` is the image's file name or stem; the class columns name the classes, whose label
  ids are their column order (0, 1, ...) and the background's the next id;
- WSSS4LUAD-style file names, ``...-[1, 0, 1].png`` (:func:`from_file_names`), the classes
  given in the order of the brackets (WSSS4LUAD: tumour, stroma, normal);
- pixel masks (:func:`from_masks`), for trying a weak method on a labelled set: each image's
  classes are the ids in its mask, the background's left out; the label ids are the mask's.
"""

from __future__ import annotations

import csv
import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from unseg.data.datasets import Sample, class_names
from unseg.errors import InputError, ParameterError
from unseg.io import read_label_map

#: The classes of WSSS4LUAD's file names, in their order.
WSSS4LUAD_CLASSES = ("tumour", "stroma", "normal")
_NAME_LABELS = re.compile(r"\[\s*([01](?:\s*,\s*[01])*)\s*\]\s*$")


@dataclass(frozen=True)
class WeakLabels:
    """Which classes each image contains.

    Attributes
    ----------
    classes : tuple of str
        The class names, in the order of the columns of ``present``.
    ids : tuple of int
        The label id a segmentation gives each class (for masks: the mask's ids).
    background_id : int
        The label id of pixels of no class (glass, background).
    background_name : str
    image_ids : tuple of str
        The images, by file stem, in the order of the rows of ``present``.
    present : ndarray
        ``(n_images, n_classes)`` bool.
    source : str
        Where they came from (a file, "file names", "masks"), for messages.
    """

    classes: tuple[str, ...]
    ids: tuple[int, ...]
    background_id: int
    background_name: str
    image_ids: tuple[str, ...]
    present: np.ndarray
    source: str = "the labels"

    def __post_init__(self) -> None:
        if len(self.classes) < 1 or len(self.ids) != len(self.classes):
            raise ParameterError("weak labels need at least one class and one id per class")
        if self.background_id in self.ids or len(set(self.ids)) != len(self.ids):
            raise ParameterError(
                f"class ids {list(self.ids)} and background id {self.background_id} must differ")
        if self.present.shape != (len(self.image_ids), len(self.classes)):
            raise ParameterError(
                f"present is {self.present.shape}, expected "
                f"({len(self.image_ids)}, {len(self.classes)})")

    def for_samples(self, samples: Sequence[Sample]) -> WeakLabels:
        """The rows of ``samples``, in their order.

        Raises
        ------
        InputError
            Naming the first image without labels.
        """
        row = {image_id: i for i, image_id in enumerate(self.image_ids)}
        missing = [s for s in samples if s.id not in row]
        if missing:
            raise InputError(
                missing[0].image, f"has no image-level labels in {self.source} ({len(missing)} "
                "image(s) without)", "add a row for every image, or fit on the labelled ones")
        order = [row[s.id] for s in samples]
        return dataclasses.replace(self, image_ids=tuple(s.id for s in samples),
                                   present=self.present[order])


def read_csv(path: str | Path) -> WeakLabels:
    """Labels from a CSV file: a ``name`` column, then one 0/1 column per class.

    Raises
    ------
    InputError
        For a missing file, no class columns, a value other than 0 or 1, or a name given
        twice; the message names the row.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "labels file not found",
                         "give a CSV with a header name,<class>,<class>,...")
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))
    if not rows or len(rows[0]) < 2 or rows[0][0].strip().lower() != "name":
        raise InputError(path, "the first line must be the header name,<class>,<class>,...",
                         "for example: name,tumour,stroma,normal")
    classes = tuple(c.strip() for c in rows[0][1:])
    image_ids: list[str] = []
    present = []
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(classes) + 1 or any(v.strip() not in ("0", "1") for v in row[1:]):
            raise InputError(path, f"line {number} is {','.join(row)!r}; each line needs a "
                             f"name and {len(classes)} values of 0 or 1")
        image_id = Path(row[0].strip()).stem
        if image_id in image_ids:
            raise InputError(path, f"line {number}: {image_id} is labelled twice")
        image_ids.append(image_id)
        present.append([v.strip() == "1" for v in row[1:]])
    return WeakLabels(classes, tuple(range(len(classes))), len(classes), "background",
                      tuple(image_ids), np.array(present, dtype=bool).reshape(-1, len(classes)),
                      str(path))


def from_file_names(samples: Sequence[Sample],
                    classes: Sequence[str] = WSSS4LUAD_CLASSES) -> WeakLabels:
    """Labels from file names ending in ``[1, 0, 1]``, one 0/1 per class of ``classes``.

    Raises
    ------
    InputError
        Naming a file whose name carries no labels, or a number of them other than
        ``len(classes)``.
    """
    present = []
    for sample in samples:
        found = _NAME_LABELS.search(sample.id)
        values = [] if found is None else [v.strip() == "1" for v in found.group(1).split(",")]
        if len(values) != len(classes):
            raise InputError(
                sample.image, f"its name does not end in {len(classes)} labels in brackets, "
                f"as [{', '.join('1' for _ in classes)}] for {', '.join(classes)}",
                "rename it, or give the labels in a CSV file (--labels FILE.csv)")
        present.append(values)
    return WeakLabels(tuple(classes), tuple(range(len(classes))), len(classes), "background",
                      tuple(s.id for s in samples),
                      np.array(present, dtype=bool).reshape(-1, len(classes)), "file names")


def from_masks(samples: Sequence[Sample], *, background_id: int | None = None,
               ignore_index: int = 255) -> WeakLabels:
    """Labels from the samples' masks: the ids each mask holds, the background's left out.

    The classes are every id found in the masks (``ignore_index`` excluded), named after the
    dataset's ``classes.json`` or ``classes.txt``. ``background_id`` None takes the class named
    ``background`` there.

    Raises
    ------
    InputError
        For a sample without a mask.
    ParameterError
        When ``background_id`` is None and no class is named ``background``.
    """
    unlabelled = [s for s in samples if s.mask is None]
    if unlabelled:
        raise InputError(unlabelled[0].image, "has no mask to derive image-level labels from",
                         "give a labelled folder (img/ and mask/), or a labels CSV")
    if not samples:
        raise ParameterError("no images to derive image-level labels from")
    names = class_names(Path(samples[0].mask).parent)  # type: ignore[arg-type]
    if background_id is None:
        named = [i for i, n in names.names.items() if n.strip().lower() == "background"]
        if not named:
            raise ParameterError(
                f"no class is named 'background' in the class names of {samples[0].mask}'s "
                "dataset. Fix: pass the background's mask id (--background-id N).")
        background_id = named[0]
    found = []
    for sample in samples:
        held = np.unique(read_label_map(sample.mask))  # type: ignore[arg-type]
        found.append({int(i) for i in held if i not in (ignore_index, background_id)})
    ids = tuple(sorted(set().union(*found)))
    present = np.array([[i in f for i in ids] for f in found], dtype=bool).reshape(-1, len(ids))
    return WeakLabels(tuple(names.name(i) for i in ids), ids, background_id,
                      names.names.get(background_id, "background"),
                      tuple(s.id for s in samples), present, "masks")
