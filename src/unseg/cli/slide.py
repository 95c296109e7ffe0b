"""``unseg slide segment``: tissue maps of whole slides and cohorts, locally or on Dask."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from unseg.cli._options import add_method_options, method_params
from unseg.cli.report import add_names_option, add_report_option, read_names, report_run

if TYPE_CHECKING:
    from unseg.workflows import SlideOptions

EXAMPLES = """\
examples:
  unseg slide segment slide.svs --method fseg --k 16 --out maps/
  unseg slide segment cohort/ --method fseg --concepts bank.npz --k 32 --out maps/ --workers 2
  unseg slide segment scans/*.tif --method kmeans-color-dataset --k 6 --mpp 0.25 --out maps/
  unseg slide segment cohort/ --method fseg --out maps/ --scheduler tcp://head:8786

SLIDE is a slide file (SVS, NDPI, MRXS, tiled TIFF, ...; a PNG/JPEG is a one-level slide) or a
folder of them. Tissue is found on a thumbnail and only tissue tiles are segmented, at
--magnification (10x by default) in --tile cores with --overlap context. The same method
and model label every slide, so a label means the same concept on all of them: methods that
learn are fitted on --tiles-per-slide tissue tiles of each slide first (kept as
OUT/<method>.model) unless --model names a fitted one. Per slide, OUT gets:
  <slide>.ome.tif      label map, pyramidal OME-TIFF aligned with the slide (0 = no tissue,
                       v = label v-1)
  <slide>.geojson      one polygon feature per label in level-0 pixels, for QuPath
  <slide>_areas.csv    area of each label in um^2 and percent of tissue
  <slide>_overlay.png  thumbnail with the labels painted over it
  <slide>.json         summary, written last
A killed run continues where it stopped when run again; finished slides are skipped. A slide
that fails is reported and the others finish; the exit code is then 1.
--names names.json names and colours the labels in the OME-TIFF legend, the GeoJSON
classifications, the area table, the overlay and the report; --report also writes
OUT/report/index.html with a zoomable viewer of each slide (`unseg report --help`).
"""


def add_slide_options(parser: argparse.ArgumentParser, *, tiling: bool = True) -> None:
    """Resolution and tissue options (and, with ``tiling``, how slides are tiled)."""
    from unseg.io.geojson import SIMPLIFY

    group = parser.add_argument_group("slide options")
    group.add_argument("--magnification", type=float, default=10.0,
                       help="processing magnification, 10x = 1 um/px (default: 10)")
    group.add_argument("--target-mpp", type=float,
                       help="processing resolution in um/px (instead of --magnification)")
    group.add_argument("--mpp", type=float,
                       help="um/px of level 0, for slides whose metadata lacks it")
    if tiling:
        group.add_argument("--tile", type=int, default=256, dest="slide_tile", metavar="PX",
                           help="tile core side at the processing resolution (default: 256)")
        group.add_argument("--overlap", type=int, default=32,
                           help="context pixels read around each core (default: 32)")
        group.add_argument("--tile-batch", type=int, default=8, dest="slide_batch",
                           metavar="N", help="tiles segmented together (default: 8)")
        group.add_argument("--simplify", type=float, metavar="PX",
                           help="GeoJSON outline simplification tolerance in level-0 pixels, "
                                f"0 for exact pixel outlines (default: {SIMPLIFY} label-map "
                                "pixels)")
    group.add_argument("--min-tissue", type=float, default=0.05,
                       help="tissue fraction a tile needs to be segmented (default: 0.05)")
    group.add_argument("--tiles-per-slide", type=int, default=200,
                       help="tissue tiles sampled per slide for fitting (default: 200)")
    group.add_argument("--sample-seed", type=int, default=0,
                       help="seed of that sampling (default: 0)")


def slide_options(args: argparse.Namespace, **tiling: int) -> SlideOptions:
    """The options of :func:`add_slide_options`; ``tiling`` overrides the tiling ones."""
    from unseg.workflows import SlideOptions

    given = {"tile_size": "slide_tile", "overlap": "overlap", "batch_size": "slide_batch",
             "simplify": "simplify"}
    return SlideOptions(
        magnification=args.magnification, target_mpp=args.target_mpp, mpp=args.mpp,
        min_tissue=args.min_tissue, tiles_per_slide=args.tiles_per_slide,
        random_state=args.sample_seed,
        **{k: getattr(args, a) for k, a in given.items() if hasattr(args, a)} | tiling,
    )


def _method_in_argv(argv: list[str]) -> str | None:
    """The registered method after ``--method`` in ``slide segment`` arguments, if any."""
    from unseg import methods

    if argv[:2] != ["slide", "segment"]:
        return None
    for i, token in enumerate(argv):
        name = None
        if token == "--method" and i + 1 < len(argv):
            name = argv[i + 1]
        elif token.startswith("--method="):
            name = token.split("=", 1)[1]
        if name in methods.list():
            return name
    return None


def add_parser(subparsers: argparse._SubParsersAction, argv: list[str]) -> None:
    parser = subparsers.add_parser(
        "slide",
        help="segment whole slides and cohorts",
        description="Segment whole slides: tissue maps consistent across a cohort.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    segment = actions.add_parser(
        "segment", help="segment slides into label maps, GeoJSON, areas and overlays",
        description="Segment whole slides with any method (`unseg methods`).",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    segment.add_argument("slides", metavar="SLIDE", nargs="+", type=Path,
                         help="slide files or folders of slides")
    segment.add_argument("--method", required=True, help="a method from `unseg methods`")
    segment.add_argument("--out", required=True, type=Path, help="output folder")
    segment.add_argument("--model", type=Path, help="a fitted segmenter from `unseg fit`")
    add_names_option(segment)
    add_report_option(segment)
    where = segment.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int,
                       help="run on a new local Dask cluster of N worker processes")
    where.add_argument("--scheduler", help="run on an existing Dask cluster (tcp://host:8786)")
    add_slide_options(segment)
    name = _method_in_argv(argv)
    if name:
        from unseg import methods

        add_method_options(segment, methods.get(name))
    segment.set_defaults(run=run_segment)


def run_segment(args: argparse.Namespace) -> int:
    from unseg.cli._report import exit_code
    from unseg.data import discover_slides
    from unseg.errors import ParameterError
    from unseg.workflows import (
        DaskExecutor,
        Executor,
        LocalExecutor,
        make_segmenter,
        segment_slides,
    )

    if args.workers is not None and args.workers < 1:
        raise ParameterError(f"--workers must be at least 1, got {args.workers}")
    options = slide_options(args)
    segmenter = make_segmenter(args.method, method_params(args), args.model)
    names = read_names(args, segmenter)
    slides = discover_slides(args.slides)
    if args.workers is None and args.scheduler is None:
        executor: Executor = LocalExecutor()
    else:
        executor = DaskExecutor(workers=args.workers, scheduler=args.scheduler)
    try:
        run = segment_slides(segmenter, slides, args.out, options, fit=args.model is None,
                             executor=executor, names=names)
    finally:
        executor.close()
    done = [r for r in run.results if not r.skipped]
    skipped = [r for r in run.results if r.skipped]
    for result in done:
        print(f"{result.id}: {result.tiles} tissue tiles in {result.seconds:.1f} s"
              + (f" (resumed after {result.resumed_batches} batches)"
                 if result.resumed_batches else ""))
    if skipped:
        print(f"skipped {len(skipped)} slide(s) finished earlier: "
              + ", ".join(r.id for r in skipped))
    print(f"segmented {len(done)} of {len(slides)} slide(s) with {segmenter.name} into {args.out}")
    if args.report and run.results:
        report_run(args.out, names)
    return exit_code(run.failures)
