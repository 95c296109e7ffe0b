"""``unseg fit``: learn a segmenter from unlabelled images and save it."""

from __future__ import annotations

import argparse
from pathlib import Path

from unseg.cli._options import add_method_options, method_in_argv, method_params

EXAMPLES = """\
examples:
  unseg fit kmeans-color-dataset cohort_tiles/ --out colours.pkl --k 6
  unseg segment kmeans-color-dataset new_tiles/ --model colours.pkl --out labels/

Fitting once and segmenting new images with the saved model keeps label ids consistent across
runs. Methods that train networks save their state to OUT.ckpt after every epoch (unless
--checkpoint names another file): run the same command again after an interruption and training
resumes where it stopped. The checkpoint is removed once the model is saved. Model files are
Python pickles: load only models you trust.
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
    from unseg import methods
    from unseg.data import discover
    from unseg.errors import ParameterError
    from unseg.scale import Failures, read_images

    params = method_params(args)
    cls = methods.get(args.method)
    default_checkpoint = "checkpoint" in cls.param_names() and params.get("checkpoint") is None
    if default_checkpoint:
        params["checkpoint"] = str(args.out) + ".ckpt"
    segmenter = methods.create(args.method, **params)
    if not segmenter.requires_fit:
        raise ParameterError(
            f"{segmenter.name} learns nothing from images, so there is no model to save. "
            f"Fix: run `unseg segment {segmenter.name} INPUT --out DIR` directly."
        )
    samples = discover(args.inputs)
    failures = Failures()
    segmenter.fit(read_images(samples, failures, f"fitting {segmenter.name}"))
    methods.save_model(segmenter, args.out)
    if default_checkpoint:
        Path(params["checkpoint"]).unlink(missing_ok=True)
    print(f"fitted {segmenter!r} on {len(samples) - len(failures)} image(s); saved {args.out}")
    return failures.exit_code()
