"""``unseg segment``: label maps and colour overlays for images, folders and datasets."""

from __future__ import annotations

import argparse
from pathlib import Path

from unseg.cli._options import add_method_options, method_in_argv, method_params
from unseg.cli.report import add_names_option, add_report_option, read_names, report_run

EXAMPLES = """\
examples:
  unseg segment kmeans-color slide_tiles/ --out labels/ --k 6
  unseg segment kmeans-color-dataset ../shared/data/wsss4luad-val --out labels/ --k 4
  unseg segment kmeans-color-dataset new_tiles/ --model colours.npz --out labels/
  unseg fit cuts ../shared/data/drive-train --out cuts.npz --epochs 20
  unseg segment cuts ../shared/data/drive-train --model cuts.npz --out levels/ --cluster diffusion
  unseg segment slic --help          (the options of one method)

INPUT is an image file or a folder of images; a folder holding img/ (and mask/) uses img/.
Writes OUT/<name>.png (one class id per pixel) and OUT/<name>_overlay.png. Methods that learn
from the images are fitted on the inputs first unless --model names a file from `unseg fit`;
with --model, only the options that act at prediction time may be given (for cuts: --cluster,
--k, --level, --max-clusters, --n-landmarks, --device). Multigranular methods (cuts with
--cluster diffusion) also write every level, OUT/<name>_level<N>.png (0 = coarsest), and
OUT/<name>_levels.json (segments per level, how long each lasted, the level chosen).
A file that cannot be read is reported and skipped; the exit code is then 1.
--names names.json names and colours the labels (overlays, the run record, the report);
--report also writes OUT/report/index.html (`unseg report --help`).
"""


def add_parser(subparsers: argparse._SubParsersAction, argv: list[str]) -> None:
    parser = subparsers.add_parser(
        "segment",
        help="segment images into label maps and overlays",
        description="Segment images into label maps (index PNGs) and colour overlays.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("method", metavar="METHOD", help="a method from `unseg methods`")
    parser.add_argument("inputs", metavar="INPUT", nargs="+", type=Path, help="files or folders")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--model", type=Path, help="a fitted segmenter from `unseg fit`")
    add_names_option(parser)
    add_report_option(parser)
    name = method_in_argv("segment", argv)
    if name:
        from unseg import methods

        add_method_options(parser, methods.get(name))
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from unseg.cli._report import exit_code
    from unseg.data import discover
    from unseg.workflows import make_segmenter, segment_samples

    segmenter = make_segmenter(args.method, method_params(args), args.model)
    names = read_names(args, segmenter)
    samples = discover(args.inputs)
    run = segment_samples(segmenter, samples, args.out, fit=args.model is None, names=names)
    print(
        f"segmented {len(run.written)} of {len(samples)} image(s) with {segmenter.name} "
        f"into {args.out}"
    )
    if args.report and run.written:
        report_run(args.out, names)
    return exit_code(run.failures)
