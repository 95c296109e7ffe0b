"""Writing a labelled dataset folder of synthetic images."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from unseg.data.synthetic._common import RandomState
from unseg.data.synthetic.fruit import sky_and_fruit
from unseg.data.synthetic.tiles import blobs, he_tile, quadrants
from unseg.errors import ParameterError
from unseg.io import write_image, write_label_map

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
