"""The HTML report of runs: read their outputs, evaluate folder runs that have masks (the same
evaluation as ``unseg evaluate``), and write the report (:mod:`unseg.report`)."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

from unseg.data import LabelNames
from unseg.errors import UnsegError
from unseg.workflows.runs import log


def write_report(runs: Sequence[str | os.PathLike[str]], out: Path, *, match: str = "hungarian",
                 scope: str = "dataset", names: LabelNames | None = None) -> Path:
    """Write the report of the run folders ``runs`` into ``out``; returns its ``index.html``.

    A folder run whose images all have masks in one folder is evaluated against them with
    ``match`` and ``scope`` (:func:`unseg.workflows.evaluate_folders`); benchmarks carry their
    own metrics. ``names`` (label names and colours) replace those a run recorded.

    Raises
    ------
    InputError
        If a path is not a run's output folder.
    """
    from unseg import report
    from unseg.workflows.folders import evaluate_folders

    start = time.perf_counter()
    found = report.load_runs(runs)
    for run in found:
        if names and not isinstance(run, report.BenchmarkRun):
            run.names = names
        if isinstance(run, report.FolderRun) and run.mask_folder is not None:
            try:
                result = evaluate_folders(run.folder, run.mask_folder, match=match, scope=scope)
            except UnsegError as error:  # the report still shows the images and labels
                log.warning("report: no metrics for %s: %s", run.folder, error)
                continue
            ids = {sample_id for sample_id, _, _ in run.samples}
            # masks of images this run did not segment are not its failures
            result.failures = [(i, m) for i, m in result.failures if i in ids]
            run.metrics = result.to_dict()
    index = report.write_report(found, out)
    log.info("report of %d run(s) written in %.1f s: %s", len(found),
             time.perf_counter() - start, index)
    return index
