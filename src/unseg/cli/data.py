"""``unseg data``: synthetic datasets with exact masks, and the one-dimensional CIRS example."""

from __future__ import annotations

import argparse
from pathlib import Path

EXAMPLES = """\
examples:
  unseg data synthetic --out fruit/
  unseg data synthetic --out fruit-small/ --n-train 2000 --n-val 200 --n-test 300 --seed 1
  unseg fit cirs fruit/train --out cirs.npz
  unseg segment cirs fruit/test --model cirs.npz --out labels/
  unseg evaluate --pred labels/ --gt fruit/test --scope image

Writes OUT/train, OUT/val and OUT/test, each holding img/ and mask/ (PNG, same names). The
sky-and-fruit scenes: a cloudy or banded sky occluded by lemons, apples and blueberries;
mask ids 0 sky, 1 lemon, 2 apple, 3 blueberry. The same seed gives the same files.
"""

RUNS_EXAMPLES = """\
examples:
  unseg data runs
  unseg data runs --n 5000 --length 24 --seed 3

Instances are rows of integer colours: background 0 holding 1 to 3 copies of the object 1122
(intensities 0 -> 0.5, 1 -> 0.0, 2 -> 1.0). Every assignment of the 3 colours to 2 segments is
scored by colour clustering (the k-means objective on intensity) and by the cross-instance
objective of CIRS (within-segment variance of each segment's colour composition across the
instances, minus the variance between segments). Colour clustering splits 1122 into 11 and 22;
the cross-instance objective keeps it whole.
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
    runs.add_argument("--n", type=int, default=1000, help="instances (default: 1000)")
    runs.add_argument("--length", type=int, default=16, help="pixels per instance (default: 16)")
    runs.add_argument("--seed", type=int, default=0, help="seed of the instances")
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
            write_dataset(args.out / name, n, kind="sky_and_fruit", size=args.size,
                          random_state=rng, progress=f"writing {name}")
            print(f"wrote {n} image(s) and mask(s) to {args.out / name}")
    return 0


def run_runs(args: argparse.Namespace) -> int:
    from unseg.data.runs import exhaustive, runs_1d

    instances, _ = runs_1d(args.n, args.length, random_state=args.seed)
    rows = exhaustive(instances, 2)
    by_colour = min(rows, key=lambda r: (r.colour_sse, r.assignment))
    example = instances[0]
    print(f"{args.n} instances of {args.length} pixels; example: "
          + "".join(str(c) for c in example))
    print("\n| segment of colours 0, 1, 2 | cross-instance objective | within | between "
          "| colour clustering SSE | example segmented |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row.assignment} | {row.cross_instance:.4f} | {row.within:.4f} | "
              f"{row.between:.4f} | {row.colour_sse:.1f} | {row.show(example)} |")
    print(f"\ncross-instance objective chooses {rows[0].assignment}: {rows[0].show(example)}")
    print(f"colour clustering chooses {by_colour.assignment}: {by_colour.show(example)}")
    return 0
