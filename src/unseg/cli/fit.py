"""``unseg fit``: learn a segmenter from unlabelled images and save it."""

from __future__ import annotations

import argparse
from pathlib import Path

from unseg.cli._options import add_method_options, method_in_argv, method_params

EXAMPLES = """\
examples:
  unseg fit kmeans-color-dataset cohort_tiles/ --out colours.npz --k 6
  unseg segment kmeans-color-dataset new_tiles/ --model colours.npz --out labels/

Fitting once and segmenting new images with the saved model keeps label ids consistent across
runs. Methods that train networks save their state to OUT.ckpt after every epoch (unless
--checkpoint names another file): run the same command again after an interruption and training
resumes where it stopped. The checkpoint is removed once the model is saved. A model file holds
arrays and JSON only (never code: docs/security.md), so it can be shared; --out may not be an
input.
"""


def add_parser(subparsers: argparse._SubParsersAction, argv: list[str]) -> None:
    parser = subparsers.add_parser(
        "fit",
        help="fit a segmenter on unlabelled images and save it",
        description="Fit a segmenter on unlabelled images and save it for `unseg segment`.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("method", metavar="METHOD", help="a method from `unseg methods`")
    parser.add_argument("inputs", metavar="DATA", nargs="+", type=Path, help="files or folders")
    parser.add_argument("--out", required=True, type=Path, help="model file to write")
    name = method_in_argv("fit", argv)
    if name:
        from unseg import methods

        add_method_options(parser, methods.get(name))
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from unseg.cli._report import exit_code
    from unseg.data import discover
    from unseg.workflows import fit_model

    fitted = fit_model(args.method, method_params(args), discover(args.inputs), args.out)
    print(f"fitted {fitted.segmenter!r} on {fitted.n_images} image(s); saved {args.out}")
    return exit_code(fitted.failures)
