"""Writing a labelled dataset folder of synthetic images."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from unseg.data.datasets import write_class_names
from unseg.data.synthetic._common import RandomState
from unseg.data.synthetic.fruit import FRUIT_CLASSES, pasted_fruit, sky_and_fruit
from unseg.data.synthetic.tiles import blobs, he_tile, quadrants
from unseg.errors import ParameterError
from unseg.io import write_image, write_label_map

_GENERATORS = {
    "quadrants": quadrants, "blobs": blobs, "he_tile": he_tile, "sky_and_fruit": sky_and_fruit,
    "pasted_fruit": pasted_fruit,
}
#: The class names of each generator's masks, written to the dataset's ``classes.json``.
_CLASSES = {
    "quadrants": ("top-left", "top-right", "bottom-left", "bottom-right"),
    "blobs": ("background", "blob"), "he_tile": ("background", "stroma", "nuclei"),
    "sky_and_fruit": FRUIT_CLASSES, "pasted_fruit": FRUIT_CLASSES,
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
    """Write a labelled dataset: ``out_dir/img/<id>.png``, ``out_dir/mask/<id>.png`` and
    ``out_dir/classes.json`` (the class names of the masks).

    Ids are ``synthetic-00``, ``synthetic-01``, ...; each file is written atomically.

    Parameters
    ----------
    out_dir : str or Path
        Dataset folder, created if missing.
    n : int
        Number of image/mask pairs, ``>= 1``.
    kind : {"he_tile", "blobs", "quadrants", "sky_and_fruit", "pasted_fruit"}
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
    seeds: Iterable[int] = np.random.default_rng(random_state).integers(0, 2**31, size=n).tolist()
    width = max(2, len(str(n - 1)))
    if progress is not None:
        from unseg._progress import progress as report

        seeds = report(seeds, progress, total=n)
    for i, seed in enumerate(seeds):
        image, mask = _GENERATORS[kind](**options, random_state=int(seed))
        sample_id = f"synthetic-{i:0{width}d}"
        write_image(out / "img" / f"{sample_id}.png", image)
        write_label_map(out / "mask" / f"{sample_id}.png", mask)
    write_class_names(out, _CLASSES[kind])
    return out
