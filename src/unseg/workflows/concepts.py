"""Concept banks fitted over a cohort of images, whole slides, or both."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from unseg.errors import UnsegError
from unseg.workflows.runs import Failures, progress, read_images
from unseg.workflows.slide_plan import SlideOptions, plan_slide, slide_tiles

if TYPE_CHECKING:
    from unseg.backbones import Backbone
    from unseg.concepts import ConceptBank


@dataclass
class BankRun:
    """What :func:`fit_cohort_bank` did."""

    bank: ConceptBank
    n_images: int
    n_slides: int
    failures: Failures


def fit_cohort_bank(
    backbone: Backbone,
    inputs: Sequence[Path],
    ks: Sequence[int],
    options: SlideOptions,
    out: Path,
    *,
    max_vectors: int,
    random_state: int,
) -> BankRun:
    """Fit a bank on the tiles of images and slides (files or folders of either).

    Images are cut into ``options.tile_size`` tiles; from each slide ``options.tiles_per_slide``
    tissue tiles of that size are sampled at the processing resolution. Unreadable inputs are
    recorded in the run's failures. The bank is saved to ``out``, which may not be an input.
    """
    from unseg.concepts import fit_bank
    from unseg.data import discover, discover_slides
    from unseg.io import is_slide
    from unseg.io.atomic import refuse_inputs_as_outputs
    from unseg.workflows.folders import sample_paths

    slide_inputs = [p for p in inputs
                    if is_slide(p) or (p.is_dir() and any(map(is_slide, p.iterdir())))]
    image_inputs = [p for p in inputs if p not in slide_inputs]
    images = discover(image_inputs) if image_inputs else []
    failures = Failures()
    slides = discover_slides(slide_inputs) if slide_inputs else []
    refuse_inputs_as_outputs([out], [*inputs, *sample_paths(images), *slides])
    plans = []
    for path in slides:
        try:
            plans.append(plan_slide(path, options))
        except UnsegError as error:
            failures.add(str(path), error)
    n_slide_tiles = sum(min(len(p.tiles), options.tiles_per_slide) for p in plans)
    tiles = itertools.chain(
        read_images(images, failures, "pooling tile features"),
        progress(slide_tiles(plans, options), "pooling slide tiles", total=n_slide_tiles))
    bank = fit_bank(backbone, tiles, ks, tile_size=options.tile_size, max_vectors=max_vectors,
                    random_state=random_state)
    bank.fitted_on["slides"] = len(plans)
    bank.save(out)
    return BankRun(bank, len(images), len(plans), failures)
