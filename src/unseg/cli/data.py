"""``unseg data``: synthetic datasets with exact masks, and the one-dimensional CIRS example."""

from __future__ import annotations

import argparse
from pathlib import Path

EXAMPLES = """\
examples:
  unseg data synthetic --out fruit/ --style thesis
  unseg data synthetic --out fruit-small/ --n-train 2000 --n-val 200 --n-test 300 --seed 1
  unseg fit cirs-imbalanced fruit/train --out cirs.npz --select-by val-miou --val fruit/val
  unseg segment cirs-imbalanced fruit/test --model cirs.npz --out labels/
  unseg evaluate --pred labels/ --gt fruit/test --match best-iou --scope image

Writes OUT/train, OUT/val and OUT/test, each holding img/ and mask/ (PNG, same names); mask
ids 0 sky, 1 lemon, 2 apple, 3 blueberry. --style thesis: the data of the CIRS thesis, one
fixed lemon, apple and blueberry pasted at random positions and rotations on one fixed cloudy
sky. --style varied: one to four fruits of random kind, scale and colour on a cloudy or banded
sky drawn anew for every scene. The same seed gives the same files.
"""

#: The generator (``write_dataset`` kind) of each ``--style``.
STYLES = {"thesis": "pasted_fruit", "varied": "sky_and_fruit"}

RUNS_EXAMPLES = """\
examples:
  unseg data runs                                   # the thesis's 112200 011220 001122
  unseg data runs 110022 011220 002211 022110 220011
  unseg data runs --objects 11,22 --n 20 --length 8 --seed 3

Images are rows of integer colours, 0 the known background. The pattern-frequency procedure of
the CIRS thesis (appendix 12.1) counts every run of adjacent cells by the number of images
holding it, takes the most frequent, largest one as an object, replaces it with background and
repeats. Colour clustering (largest runs of one colour) splits 1122 into 11 and 22; the
cross-instance objective (variance of aligned cells across the images minus mean segment size)
prefers 1122 whole.
"""


def add_parser(subparsers: argparse._SubParsersAction, argv: list[str]) -> None:
    parser = subparsers.add_parser(
        "data",
        help="write synthetic datasets with exact masks",
        description="Write synthetic datasets with exact ground-truth masks.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="data_command", metavar="COMMAND", required=True)
    synthetic = sub.add_parser(
        "synthetic",
        help="sky-and-fruit scenes in train/val/test splits",
        description="Write sky-and-fruit scenes (4 classes) in train/val/test splits.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    synthetic.add_argument("--out", required=True, type=Path, help="dataset folder")
    synthetic.add_argument("--style", choices=tuple(STYLES), default="varied",
                           help="thesis: fixed sprites on one fixed sky; varied: random fruits "
                                "on random skies (default: varied)")
    synthetic.add_argument("--n-train", type=int, default=10000, help="training images")
    synthetic.add_argument("--n-val", type=int, default=1500, help="validation images")
    synthetic.add_argument("--n-test", type=int, default=1500, help="test images")
    synthetic.add_argument("--size", type=int, default=64, help="image side in pixels")
    synthetic.add_argument("--seed", type=int, default=0, help="seed of the whole dataset")
    synthetic.set_defaults(run=run)
    runs = sub.add_parser(
        "runs",
        help="the one-dimensional CIRS example: every segmentation scored by both objectives",
        description="Score every segmentation of one-dimensional instances (objects as runs "
                    "of integer colours) by colour clustering and by the cross-instance "
                    "objective.",
        epilog=RUNS_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    runs.add_argument("images", nargs="*", metavar="IMAGE",
                      help="images as strings of digits (default: the thesis's 112200 011220 "
                           "001122)")
    runs.add_argument("--objects", help="generate the images instead: comma-separated objects, "
                                        "each placed once per image (e.g. 11,22)")
    runs.add_argument("--n", type=int, default=5, help="generated images (default: 5)")
    runs.add_argument("--length", type=int, default=6,
                      help="cells per generated image (default: 6)")
    runs.add_argument("--seed", type=int, default=0, help="seed of the generated images")
    runs.set_defaults(run=run_runs)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from unseg.data.synthetic import write_dataset
    from unseg.errors import ParameterError

    splits = {"train": args.n_train, "val": args.n_val, "test": args.n_test}
    for name, n in splits.items():
        if n < 0:
            raise ParameterError(f"--n-{name} must be >= 0, got {n}.")
    if args.seed < 0:
        raise ParameterError(f"--seed must be >= 0, got {args.seed}.")
    for index, (name, n) in enumerate(splits.items()):
        if n:
            rng = np.random.default_rng([args.seed, index])
            write_dataset(args.out / name, n, kind=STYLES[args.style], size=args.size,
                          random_state=rng, progress=f"writing {name}")
            print(f"wrote {n} image(s) and mask(s) to {args.out / name}")
    return 0


def run_runs(args: argparse.Namespace) -> int:
    from unseg.data.runs import (
        THESIS_IMAGES,
        instances,
        pattern_counts,
        score,
        segment_by_colour,
        segment_by_patterns,
    )
    from unseg.errors import ParameterError

    if args.objects and args.images:
        raise ParameterError("give images or --objects, not both.")
    images = (instances(args.objects.split(","), args.n, args.length, random_state=args.seed)
              if args.objects else args.images or list(THESIS_IMAGES))
    counts = pattern_counts(images)
    print(f"{len(images)} images: {' '.join(images)}\n")
    print("Pattern counts (images holding each run of adjacent cells), by size:")
    for size in sorted({len(p) for p in counts}):
        print(f"  {size}: " + ", ".join(f"{p}:{n}" for p, n in counts.items() if len(p) == size))
    by_patterns, found = segment_by_patterns(images)
    print("\nSelected in turn (most images, then largest; replaced by background):")
    for f in found:
        print(f"  {f.pattern} (in {f.count} of {len(images)} images)")
    print("\n| segmentation | first images | cross-instance objective | aligned variance "
          "| colour objective | colour variance | mean segment size, summed |")
    print("|---|---|---|---|---|---|---|")
    for name, segmentation in (("pattern frequency (appendix 12.1)", by_patterns),
                               ("colour clustering (one colour per segment)",
                                segment_by_colour(images))):
        s = score(images, segmentation)
        shown = " ".join(segmentation.show(images, i) for i in range(min(3, len(images))))
        print(f"| {name} | {shown} | {s.cross_instance:g} | {s.aligned_variance:g} | "
              f"{s.colour:g} | {s.colour_variance:g} | {s.size:g} |")
    print("\nalpha1 = alpha2 = 1; lower objectives are better. Colour clustering admits no colour "
          "variance within a segment, so it cannot keep an object of two colours whole.")
    return 0
