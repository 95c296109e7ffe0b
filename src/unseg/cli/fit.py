"""``unseg fit``: learn a segmenter from images (and, for weak methods, image-level labels)
and save it."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from unseg.cli._options import add_method_options, method_in_argv, method_params
from unseg.data.weak_labels import WSSS4LUAD_CLASSES

if TYPE_CHECKING:
    from unseg.data import Sample
    from unseg.data.weak_labels import WeakLabels

EXAMPLES = """\
examples:
  unseg fit kmeans-color-dataset cohort_tiles/ --out colours.npz --k 6
  unseg segment kmeans-color-dataset new_tiles/ --model colours.npz --out labels/
  unseg fit lpd ../shared/data/wsss4luad-train-examples --labels names --out lpd.npz
  unseg fit lpd tiles/ --labels labels.csv --out lpd.npz --epochs 50
  unseg segment lpd new_tiles/ --model lpd.npz --out labels/

Fitting once and segmenting new images with the saved model keeps label ids consistent across
runs. Methods that train networks save their state to OUT.ckpt after every epoch (unless
--checkpoint names another file): run the same command again after an interruption and training
resumes where it stopped. The checkpoint is removed once the model is saved. A model file holds
arrays and JSON only (never code: docs/security.md), so it can be shared; --out may not be an
input.

Weakly supervised methods (lpd, cam, prototype-bank) learn from image-level labels, which
classes each image contains, given by --labels: a CSV file (header name,<class>,<class>,...,
then one row of 0/1 per image, name = file name or stem; class ids are the column order and
background the next id), "names" (file names ending in [1, 0, 1], classes in the order of
--label-classes, by default WSSS4LUAD's tumour,stroma,normal), or "masks" (each mask's ids,
for trying them on a labelled set; ids and names are the dataset's, the background is the class
named background in classes.json or --background-id). Their label maps hold class ids.
"""


def add_parser(subparsers: argparse._SubParsersAction, argv: list[str]) -> None:
    parser = subparsers.add_parser(
        "fit",
        help="fit a segmenter on images and save it",
        description="Fit a segmenter on images (unlabelled, or with image-level labels for the "
                    "weakly supervised methods) and save it for `unseg segment`.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("method", metavar="METHOD", help="a method from `unseg methods`")
    parser.add_argument("inputs", metavar="DATA", nargs="+", type=Path, help="files or folders")
    parser.add_argument("--out", required=True, type=Path, help="model file to write")
    parser.add_argument(
        "--labels", metavar="CSV|names|masks",
        help="image-level labels, for weakly supervised methods (see below)")
    parser.add_argument(
        "--label-classes", metavar="A,B,...", default=",".join(WSSS4LUAD_CLASSES),
        help="with --labels names: the classes of the bracketed values, in order "
             "(default: %(default)s)")
    parser.add_argument(
        "--background-id", type=int, metavar="ID",
        help="with --labels masks: the mask id of background (default: the class named "
             "background in classes.json)")
    name = method_in_argv("fit", argv)
    if name:
        from unseg import methods

        add_method_options(parser, methods.get(name))
    parser.set_defaults(run=run)


def read_labels(args: argparse.Namespace, samples: list[Sample]) -> WeakLabels | None:
    """The image-level labels ``--labels`` gives, or None."""
    from unseg.data import weak_labels

    if args.labels is None:
        return None
    if args.labels == "names":
        classes = [c.strip() for c in args.label_classes.split(",") if c.strip()]
        return weak_labels.from_file_names(samples, classes)
    if args.labels == "masks":
        return weak_labels.from_masks(samples, background_id=args.background_id)
    return weak_labels.read_csv(args.labels)


def run(args: argparse.Namespace) -> int:
    from unseg.cli._report import exit_code
    from unseg.data import discover
    from unseg.workflows import fit_model

    samples = discover(args.inputs)
    fitted = fit_model(args.method, method_params(args), samples, args.out,
                       labels=read_labels(args, samples))
    print(f"fitted {fitted.segmenter!r} on {fitted.n_images} image(s); saved {args.out}")
    return exit_code(fitted.failures)
