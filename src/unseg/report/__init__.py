"""Figures and the HTML report: reads the outputs of runs (and metrics given to it), runs no
method and no evaluation.

:func:`load_runs` reads folder runs, benchmarks and slide runs from their output folders;
:func:`write_report` writes ``index.html`` and everything it shows into a folder that opens
from disk with no server and no network (:mod:`unseg.report.pages`). :func:`bar_plot` draws the
benchmark's figure.
"""

from __future__ import annotations

from unseg.report.pages import write_report
from unseg.report.plots import bar_plot
from unseg.report.runs import BenchmarkRun, FolderRun, Run, SlideRun, load_runs

__all__ = ["BenchmarkRun", "FolderRun", "Run", "SlideRun", "bar_plot", "load_runs",
           "write_report"]
