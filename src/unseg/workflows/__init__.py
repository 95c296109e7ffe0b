"""What composes methods with data: folder runs, slide and cohort runs (local or Dask),
concept banks over a cohort, benchmarks and the linear probe.

Everything here is a function a script can call; the command line (:mod:`unseg.cli`) parses
arguments, calls one of these and prints what it returns.
"""

from unseg.workflows.benchmark import BenchmarkRow, run_benchmark
from unseg.workflows.cohorts import CohortRun, segment_slides
from unseg.workflows.executors import DaskExecutor, Executor, LocalExecutor
from unseg.workflows.folders import (
    FitRun,
    SegmentRun,
    evaluate_folders,
    fit_model,
    segment_samples,
)
from unseg.workflows.probe import ProbeResult, probe
from unseg.workflows.runs import Failures, progress, read_images
from unseg.workflows.segmenters import make_segmenter
from unseg.workflows.slide_plan import SlideOptions, plan_slide

__all__ = [
    "BenchmarkRow",
    "CohortRun",
    "DaskExecutor",
    "Executor",
    "Failures",
    "FitRun",
    "LocalExecutor",
    "ProbeResult",
    "SegmentRun",
    "SlideOptions",
    "evaluate_folders",
    "fit_model",
    "make_segmenter",
    "plan_slide",
    "probe",
    "progress",
    "read_images",
    "run_benchmark",
    "segment_samples",
    "segment_slides",
]
