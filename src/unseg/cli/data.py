"""``unseg data``: write synthetic datasets with exact masks."""

from __future__ import annotations

import argparse
from pathlib import Path

EXAMPLES = """\
examples:
  unseg data synthetic --out fruit/
  unseg data synthetic --out fruit-small/ --n-train 2000 --n-val 200 --n-test 300 --seed 1
  unseg fit cirs fruit/train --out cirs.pt
  unseg segment cirs fruit/test --model cirs.pt --out labels/
  unseg evaluate --pred labels/ --gt fruit/test --scope image

Writes OUT/train, OUT/val and OUT/test, each holding img/ and mask/ (PNG, same names). The
sky-and-fruit scenes: a cloudy or banded sky occluded by lemons, apples and blueberries;
mask ids 0 sky, 1 lemon, 2 apple, 3 blueberry. The same seed gives the same files.
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
