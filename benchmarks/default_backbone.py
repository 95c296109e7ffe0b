"""The embedded default backbone against colour k-means and a random ResNet50, with F-SEG.

Run from the repository root (the data sits beside it in ../shared/data):

    .venv/bin/python benchmarks/default_backbone.py [--data ../shared/data/wsss4luad-val
        ../shared/data/mni-brain-dev] [--ks 4,8,16] [--tile-size 64] [--no-resnet]

For each data set and each k, three segmenters label every image:

* ``kmeans-color-dataset``: k colours fitted over the whole data set (the baseline);
* ``fseg`` (assign fixed-h) with the embedded ``default`` backbone: a bank of k concepts fitted
  on the images themselves (k-means of tile-averaged features, no labels), then per image NMF
  with H fixed to the bank;
* the same ``fseg`` with a randomly initialised ResNet50 (``backbone="resnet50",
  weights="random"``): what an untrained deep network's features give.

The label maps are scored over the whole data set (scope dataset) with majority matching (each
label to its most frequent class) and Hungarian matching (one label per class). Feature seconds
per image is the time of ``backbone.features`` on one image at a time (padded to the backbone's
size multiple), on this machine's CPU unless --device says otherwise. A data set whose folder
is missing is skipped with a message. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from unseg import backbones, methods
from unseg.data import discover
from unseg.io import read_image
from unseg.workflows import evaluate_folders, segment_samples

DEFAULT_DATA = [Path("../shared/data/wsss4luad-val"), Path("../shared/data/mni-brain-dev")]


def feature_seconds(name: str, weights: str | None, images: list[np.ndarray], device: str
                    ) -> float:
    """Mean seconds of ``features`` per image, one image at a time, after one warm-up call."""
    backbone = backbones.create(name, weights=weights, device=device)
    m = backbone.config.size_multiple

    def padded(im: np.ndarray) -> np.ndarray:
        h, w = im.shape[:2]
        pad = [(0, -(-h // m) * m - h), (0, -(-w // m) * m - w)] + [(0, 0)] * (im.ndim - 2)
        return np.pad(im, pad, mode="symmetric")

    batch = [padded(im) for im in images]
    backbone.features(batch[:1])
    start = time.perf_counter()
    for im in batch:
        backbone.features([im])
    return (time.perf_counter() - start) / len(batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, nargs="+", default=DEFAULT_DATA)
    parser.add_argument("--ks", default="4,8,16")
    parser.add_argument("--tile-size", type=int, default=64, help="bank tile side, px")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-resnet", action="store_true", help="skip the random ResNet50")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # random weights need no download
    ks = [int(k) for k in args.ks.split(",")]
    runs: list[tuple[str, str, dict, tuple[str, str | None] | None]] = [
        ("kmeans-color-dataset", "-", {}, None),
        ("fseg fixed-h", "default (embedded)",
         {"backbone": "default", "tile_size": args.tile_size, "device": args.device},
         ("default", None)),
    ]
    if not args.no_resnet:
        runs.append(("fseg fixed-h", "resnet50, random weights",
                     {"backbone": "resnet50", "weights": "random", "tile_size": args.tile_size,
                      "device": args.device}, ("resnet50", "random")))
    rows = []
    for data in args.data:
        if not data.is_dir():
            print(f"skipping {data}: folder not found (expected {data}/img and {data}/mask)",
                  file=sys.stderr)
            continue
        samples = discover([data])
        images = [read_image(s.image) for s in samples]
        seconds = {}
        for _, label, _, backbone in runs:
            if backbone is not None:
                seconds[label] = feature_seconds(*backbone, images, args.device)
        print(f"{data}: {len(samples)} images", file=sys.stderr)
        with tempfile.TemporaryDirectory() as tmp:
            for k in ks:
                for method, label, params, _ in runs:
                    name = "kmeans-color-dataset" if method.startswith("kmeans") else "fseg"
                    segmenter = methods.create(name, k=k, **params)
                    out = Path(tmp) / f"{name}-{label.split()[0]}-{k}"
                    segment_samples(segmenter, samples, out, overlays=False)
                    majority = evaluate_folders(out, data, match="majority")
                    hungarian = evaluate_folders(out, data, match="hungarian")
                    feat = f"{seconds[label]:.3f}" if label in seconds else "-"
                    rows.append(f"| {data.name} | {method} | {label} | {k} | {majority.miou:.3f} "
                                f"| {hungarian.miou:.3f} | {feat} |")
                    print(rows[-1], file=sys.stderr, flush=True)
    if not rows:
        sys.exit("no data set found: pass --data with folders holding img/ and mask/")
    print("\nDataset-scope mIoU (majority and Hungarian matching); feature seconds per image "
          f"on {args.device}, bank tiles {args.tile_size} px\n")
    print("| data | method | backbone | k | mIoU majority | mIoU hungarian | feature s/image |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
