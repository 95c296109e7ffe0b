"""Cohorts: many slides segmented with one model, so a label means the same on all of them."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from unseg.data import LabelNames
from unseg.errors import InputError, UnsegError
from unseg.methods import Segmenter
from unseg.workflows.executors import Executor, LocalExecutor
from unseg.workflows.runs import Failures, log, progress
from unseg.workflows.slide_plan import SlideOptions, SlidePlan, plan_slide, slide_tiles
from unseg.workflows.slides import SlideResult, output_paths, segment_slide


@dataclass
class CohortRun:
    """What :func:`segment_slides` did."""

    results: list[SlideResult] = field(default_factory=list)
    failures: Failures = field(default_factory=Failures)
    fit_seconds: float = 0.0
    model: Path | None = None


def sampling(plans: Sequence[SlidePlan], options: SlideOptions) -> dict[str, Any]:
    """What a model fitted on slide tiles was fitted on: the slides (by content) and every
    option that chooses the tiles."""
    return {
        "slides": [{"path": str(p.path.resolve()), "fingerprint": p.fingerprint} for p in plans],
        "options": asdict(options),
    }


def fit_on_slides(segmenter: Segmenter, plans: Sequence[SlidePlan], options: SlideOptions,
                  model: Path) -> Segmenter:
    """Fit a learning method on tiles sampled from the slides and save it to ``model``.

    A model already at ``model`` from an earlier run of the same method, parameters, slides and
    sampling is loaded instead, so an interrupted cohort run resumes with the same labels; one
    fitted otherwise is refused, never replaced. Fitting holds ``model``'s lock.
    """
    from unseg.io.lock import output_lock
    from unseg.methods import load_model, model_info, save_model

    fitted_on = sampling(plans, options)
    with output_lock(model.with_name(f".{model.name}.lock"), f"the model {model}"):
        if model.exists():
            info = model_info(model)
            if (info["method"], info["params"], info["fitted_on"]) != (
                    segmenter.name, segmenter.get_params(), fitted_on):
                raise InputError(
                    model, f"holds a {info['method']} model fitted with other parameters, "
                    "slides or sampling options",
                    "write to another --out folder, or pass that file as --model")
            log.info("using the %s model fitted earlier: %s", info["method"], model)
            return load_model(model)
        tiles = sum(min(len(p.tiles), options.tiles_per_slide) for p in plans)
        if tiles == 0:
            raise UnsegError("no tissue tiles to fit on in any slide. Fix: check the slides, "
                             "or lower --min-tissue.")
        images = progress(slide_tiles(plans, options), f"fitting {segmenter.name}",
                          total=tiles)
        segmenter.fit(images)
        save_model(segmenter, model, fitted_on=fitted_on)
    return segmenter


def segment_slides(
    segmenter: Segmenter,
    slides: Sequence[Path],
    out: Path,
    options: SlideOptions,
    *,
    fit: bool = True,
    executor: Executor | None = None,
    names: LabelNames | None = None,
) -> CohortRun:
    """Segment every slide into ``out``; a failing slide is reported and the others finish.

    Methods that learn are fitted first on ``options.tiles_per_slide`` tissue tiles of each
    slide (when ``fit``), and the fitted model is kept as ``out/<method>.model``; finished
    slides are skipped on a re-run. An output path that is one of the slides is refused before
    any work; a slide that fails, for any reason including a full disk, is reported and the
    others still run. ``names`` name and colour the labels in every slide's outputs.
    """
    from unseg.data import slide_id
    from unseg.io import output_dir
    from unseg.io.atomic import refuse_inputs_as_outputs

    model = out / f"{segmenter.name}.model"
    planned = [model] + [path for s in slides
                         for path in (*output_paths(out, slide_id(Path(s))).values(),
                                      out / f"{slide_id(Path(s))}.partial")]
    refuse_inputs_as_outputs(planned, slides)
    run = CohortRun()
    output_dir(out)
    plans = []
    for path in slides:
        try:
            plans.append(plan_slide(Path(path), options))
        except (UnsegError, OSError) as error:
            run.failures.add(str(path), error)
    if fit and segmenter.requires_fit and plans:
        start = time.perf_counter()
        run.model = model
        segmenter = fit_on_slides(segmenter, plans, options, model)
        run.fit_seconds = time.perf_counter() - start
    executor = executor or LocalExecutor()
    for plan in plans:
        try:
            run.results.append(segment_slide(segmenter, plan, out, options, executor, names))
        except UnsegError as error:
            run.failures.add(str(plan.path), error)
        except OSError as error:  # a full disk, a lost network share: this slide only
            run.failures.add(str(plan.path), f"{plan.path}: {error.strerror or error} "
                             f"({error.filename or out}). Fix: free disk space or check the "
                             "folder, then run again to finish")
    return run
