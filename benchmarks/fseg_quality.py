"""F-SEG quality on real H&E: dataset-scope mIoU against colour k-means, and the linear probe.

Run from the repository root (the data sits beside it in ../shared/data):

    .venv/bin/python benchmarks/fseg_quality.py [--data ../shared/data/wsss4luad-val]
        [--backbone default] [--ks 4,8,16] [--tile-size 64]

For each bank size k, a bank is fitted on the images themselves (no labels), every image is
segmented with `fseg` in each assignment mode (fixed-h; cosine, the paper's argmax of the raw
W; cosine-rescaled) and with `kmeans-color-dataset` (k colours), and the label maps are scored
over the whole data set (scope dataset) with majority matching (each label to its most frequent
class) and Hungarian matching. The linear probe trains on the
even-numbered images and scores the odd-numbered ones.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from unseg import methods
from unseg.data import discover
from unseg.io import read_image
from unseg.workflows import evaluate_folders, probe, segment_samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/wsss4luad-val"))
    parser.add_argument("--backbone", default="default")
    parser.add_argument("--ks", default="4,8,16")
    parser.add_argument("--tile-size", type=int, default=64)
    args = parser.parse_args()
    samples = discover([args.data])
    ks = [int(k) for k in args.ks.split(",")]
    runs = [("kmeans-color-dataset", {})]
    runs += [("fseg", {"backbone": args.backbone, "tile_size": args.tile_size, "assign": a})
             for a in ("fixed-h", "cosine", "cosine-rescaled")]
    print(f"{args.data} ({len(samples)} images), scope dataset; backbone {args.backbone}, "
          f"bank tiles {args.tile_size} px\n")
    print("| method | assign | k | mIoU majority | mIoU hungarian | per-image mIoU majority "
          "| s/image |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for k in ks:
            for name, params in runs:
                segmenter = methods.create(name, k=k, **params)
                out = Path(tmp) / f"{name}-{params.get('assign', '')}-{k}"
                start = time.perf_counter()
                run = segment_samples(segmenter, samples, out, overlays=False)
                seconds = (time.perf_counter() - start) / len(run.written)
                majority = evaluate_folders(out, args.data, match="majority")
                hungarian = evaluate_folders(out, args.data, match="hungarian")
                print(f"| {name} | {params.get('assign', '-')} | {k} | {majority.miou:.3f} | "
                      f"{hungarian.miou:.3f} | {majority.miou_image_mean:.3f} | {seconds:.3f} |")
    train, test = samples[0::2], samples[1::2]
    print(f"\nLinear probe: train on {len(train)} images, test on {len(test)} (identity "
          "matching, pooled mIoU)\n")
    print("| k | assign | concept probe mIoU (the paper's) | linear probe mIoU | association "
          "probe mIoU | associated concepts |")
    print("|---|---|---|---|---|---|")
    for k in ks:
        for assign in ("fixed-h", "cosine", "cosine-rescaled"):
            segmenter = methods.create("fseg", backbone=args.backbone, k=k, assign=assign,
                                       tile_size=args.tile_size)
            segmenter.fit(read_image(s.image) for s in train)
            result = probe(segmenter, train, test)
            n_assoc = sum(v is not None for v in result.association.values())
            print(f"| {k} | {assign} | {result.concept.miou:.3f} | {result.linear.miou:.3f} | "
                  f"{result.associated.miou:.3f} | {n_assoc} of {len(result.association)} |")


if __name__ == "__main__":
    main()
