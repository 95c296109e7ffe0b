"""``unseg report``: an HTML report of runs that opens from disk in any browser."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from unseg.data import LabelNames
    from unseg.methods import Segmenter

EXAMPLES = """\
examples:
  unseg report labels/ --out report/
  unseg report bench/ --out bench-report/
  unseg report maps/ --out slides-report/ --names names.json
  unseg segment fseg tiles/ --out labels/ --k 8 --report       (writes labels/report/)

RUN is the output folder of `unseg segment`, `unseg benchmark` or `unseg slide segment` (or a
slide's summary OUT/<slide>.json); several give one report with a page each. OUT/index.html
opens offline from disk: no server, no network (its scripts are in OUT/assets/, its pictures
are files beside it). It shows the run (method, parameters, backbone, bank, version, date,
command line), each label's colour, name and pixel share, the images with their labels and
ground truth (thumbnails, sortable, paged), the image tiles each label covers most, metrics
with class names (table, IoU and Dice bars, confusion heatmap; for a benchmark the comparison
plot), and for a slide a zoomable viewer with the label overlay, its opacity, and the area of
each label. A folder run whose images have masks is evaluated as `unseg evaluate` does, with
--match and --scope; class names come from the dataset's classes.json or classes.txt.
--names names.json names and colours the labels: {"3": "tumour", "5": {"name": "stroma",
"colour": "#e6a0c0"}}.
"""


def add_report_option(parser: argparse.ArgumentParser) -> None:
    """``--report``: write OUT/report/ when the run ends (segment, slide segment, benchmark)."""
    parser.add_argument("--report", action="store_true",
                        help="also write an HTML report of the run to OUT/report/index.html "
                             "(`unseg report --help`)")


def add_names_option(parser: argparse.ArgumentParser) -> None:
    """``--names``: names and colours of the labels, in every output a person reads."""
    parser.add_argument("--names", type=Path, metavar="NAMES.json",
                        help='label names and colours: {"3": "tumour", "5": {"name": "stroma", '
                             '"colour": "#e6a0c0"}}; labels left out stay "concept N" in their '
                             "usual colour")


def read_names(args: argparse.Namespace, segmenter: Segmenter | None = None
               ) -> LabelNames | None:
    """The names file of ``--names``, read; without it, the names a fitted ``segmenter``
    knows (the classes of a weakly supervised model), else None."""
    from unseg.data import read_label_names

    if args.names is not None:
        return read_label_names(args.names)
    if segmenter is not None and segmenter.is_fitted():
        return segmenter.label_names()
    return None


def report_run(out: Path, names: LabelNames | None) -> None:
    """Write OUT/report/ for ``--report`` and say where it is."""
    from unseg.workflows.report import write_report

    index = write_report([out], out / "report", names=names)
    print(f"wrote the report {index}")


def add_parser(subparsers: argparse._SubParsersAction, argv: list[str]) -> None:
    from unseg.eval import MATCH_METHODS, SCOPES

    parser = subparsers.add_parser(
        "report",
        help="write an HTML report of runs (opens from disk, no network)",
        description="Write an HTML report of segment, benchmark and slide runs.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("runs", metavar="RUN", nargs="+", type=Path,
                        help="output folders of segment, benchmark or slide segment")
    parser.add_argument("--out", required=True, type=Path, help="report folder")
    parser.add_argument("--match", choices=MATCH_METHODS, default="hungarian",
                        help="how labels are matched to mask classes (default: hungarian)")
    parser.add_argument("--scope", choices=SCOPES, default="dataset",
                        help="one matching for the dataset or one per image (default: dataset)")
    add_names_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from unseg.workflows.report import write_report

    index = write_report(args.runs, args.out, match=args.match, scope=args.scope,
                         names=read_names(args))
    print(f"wrote {index}: open it in a browser")
    return 0
