"""Cohorts: many slides segmented with one model, so a label means the same on all of them."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from unseg.errors import InputError, UnsegError
from unseg.methods import Segmenter
from unseg.workflows.executors import Executor, LocalExecutor
from unseg.workflows.runs import Failures, log, progress
from unseg.workflows.slide_plan import SlideOptions, SlidePlan, plan_slide, slide_tiles
from unseg.workflows.slides import SlideResult, segment_slide


@dataclass
class CohortRun:
    """What :func:`segment_slides` did."""

    results: list[SlideResult] = field(default_factory=list)
    failures: Failures = field(default_factory=Failures)
    fit_seconds: float = 0.0
    model: Path | None = None


def fit_on_slides(segmenter: Segmenter, plans: Sequence[SlidePlan], options: SlideOptions,
                  model: Path) -> Segmenter:
    """Fit a learning method on tiles sampled from the slides and save it to ``model``.

    A model already at ``model`` (from an earlier run of the same method and parameters) is
    loaded instead, so an interrupted cohort run resumes with the same labels.
    """
    from unseg.methods import load_model, save_model

    if model.exists():
        saved = load_model(model)
        if saved.name != segmenter.name or saved.get_params() != segmenter.get_params():
            raise InputError(model, f"holds a {saved.name} model with other parameters "
                             f"({saved.get_params()})",
                             "write to another --out folder, or pass that file as --model")
        log.info("using the %s model fitted earlier: %s", saved.name, model)
        return saved
    tiles = sum(min(len(p.tiles), options.tiles_per_slide) for p in plans)
    if tiles == 0:
        raise UnsegError("no tissue tiles to fit on in any slide. Fix: check the slides, or "
                         "lower --min-tissue.")
    images = progress(slide_tiles(plans, options), f"fitting {segmenter.name}", total=tiles)
    segmenter.fit(images)
    save_model(segmenter, model)
    return segmenter


def segment_slides(
    segmenter: Segmenter,
    slides: Sequence[Path],
    out: Path,
    options: SlideOptions,
    *,
    fit: bool = True,
    executor: Executor | None = None,
) -> CohortRun:
    """Segment every slide into ``out``; a failing slide is reported and the others finish.

    Methods that learn are fitted first on ``options.tiles_per_slide`` tissue tiles of each
    slide (when ``fit``), and the fitted model is kept as ``out/<method>.model``; finished
    slides are skipped on a re-run.
    """
    from unseg.io import output_dir

    run = CohortRun()
    output_dir(out)
    plans = []
    for path in slides:
        try:
            plans.append(plan_slide(Path(path), options))
        except UnsegError as error:
            run.failures.add(str(path), error)
    if fit and segmenter.requires_fit and plans:
        start = time.perf_counter()
        run.model = out / f"{segmenter.name}.model"
        segmenter = fit_on_slides(segmenter, plans, options, run.model)
        run.fit_seconds = time.perf_counter() - start
    executor = executor or LocalExecutor()
    for plan in plans:
        try:
            run.results.append(segment_slide(segmenter, plan, out, options, executor))
        except UnsegError as error:
            run.failures.add(str(plan.path), error)
    return run
