"""Classical baselines on the real labelled sets: quality and cost, one table per data set.

Run from the repository root (the data sits beside it in ../shared/data):

    .venv/bin/python benchmarks/classical_baselines.py [--data-root ../shared/data] [--out DIR]

Each method runs once per data set with k set to the number of classes; its label maps are
scored with Hungarian matching (one-to-one, the headline protocol) and with majority matching
(many-to-one, fairer to over-segmenting methods such as superpixels), both over the whole data
set (scope dataset). mIoU is pooled over all pixels; s/image counts predict only.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from unseg.workflows import evaluate_folders, run_benchmark

METHODS = ["random", "kmeans-color", "kmeans-color-dataset", "watershed", "felzenszwalb", "slic"]
# data set -> (number of classes, what it is)
DATASETS = {
    "wsss4luad-val": (4, "31 H&E patches: tumour, stroma, normal, background"),
    "drive-train": (2, "20 fundus photographs: background, vessel"),
    "mni-brain-dev": (4, "2 T1 MRI slices: outside, CSF, grey matter, white matter"),
}


def fmt(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("bench-classical"))
    args = parser.parse_args()
    for name, (n_classes, what) in DATASETS.items():
        data = args.data_root / name
        if not data.is_dir():
            print(f"skipped {name}: {data} not found")
            continue
        rows = run_benchmark(data, METHODS, args.out / name, params={"k": n_classes})
        binary = n_classes == 2
        print(f"\n{name} ({what}); k = {n_classes} where a method has k\n")
        extra = " Dice (hungarian) |" if binary else ""
        print(f"| method | mIoU hungarian | mIoU majority | per-image mIoU hungarian |{extra}"
              " pixel acc. hungarian | s/image | peak MB |")
        print("|---|---|---|---|---|---|---|" + ("---|" if binary else ""))
        for row in rows:
            majority = evaluate_folders(args.out / name / "predictions" / row.method, data,
                                        match="majority")
            r = row.result
            dice = f" {fmt(r.binary['dice'])} |" if binary and r.binary else ""
            print(f"| {row.method} | {fmt(r.miou)} | {fmt(majority.miou)} | "
                  f"{fmt(r.miou_image_mean)} |{dice} {fmt(r.pixel_accuracy)} | "
                  f"{row.seconds_per_image:.3f} | {row.peak_mb:.0f} |")


if __name__ == "__main__":
    main()
