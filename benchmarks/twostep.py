"""Two-step segmentation (dsm, acseg) x dataset clustering (kmeans, otc, abc) on real H&E.

Run from the repository root (the data sits beside it in ../shared/data):

    .venv/bin/python benchmarks/twostep.py [--data ../shared/data/wsss4luad-val] [--k 4]
        [--backbone default] [--sizes 128,256,512,1024]

Each combination is fitted on the images themselves (no labels) and predicts every image; the
label maps are scored over the whole data set (scope dataset) with Hungarian and majority
matching, beside kmeans-color-dataset. A second table times the Laplacian eigensolver of one
image's feature-affinity graph against the image size.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from unseg import methods
from unseg.cluster.spectral import feature_affinity, laplacian_eigenvectors
from unseg.data import discover
from unseg.io import read_image
from unseg.workflows import evaluate_folders, segment_samples


def quality(data: Path, k: int, backbone: str) -> None:
    samples = discover([data])
    runs: list[tuple[str, dict]] = [("kmeans-color-dataset", {})]
    runs += [(name, {"cluster": c, "backbone": backbone})
             for name in ("dsm", "acseg") for c in ("kmeans", "otc", "abc")]
    print(f"{data} ({len(samples)} images), k = {k}, backbone {backbone}, scope dataset\n")
    print("| method | cluster | mIoU hungarian | mIoU majority | fit s | predict s/image |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, params in runs:
            segmenter = methods.create(name, k=k, **params)
            out = Path(tmp) / f"{name}-{params.get('cluster', '')}"
            run = segment_samples(segmenter, samples, out, overlays=False)
            hungarian = evaluate_folders(out, data, match="hungarian")
            majority = evaluate_folders(out, data, match="majority")
            print(f"| {name} | {params.get('cluster', '-')} | {hungarian.miou:.3f} | "
                  f"{majority.miou:.3f} | {run.fit_seconds:.1f} | "
                  f"{run.predict_seconds / len(run.written):.2f} |")


def eigensolver(data: Path, sizes: list[int], backbone: str) -> None:
    image = read_image(discover([data])[0].image)
    dsm = methods.create("dsm", backbone=backbone, max_side=max(sizes))
    print("\nEigensolver (9 smallest generalised eigenvectors of one image's feature "
          "affinity), median of 3 runs\n")
    print("| image side px | feature cells | eigensolver s |")
    print("|---|---|---|")
    for side in sizes:
        reps = int(np.ceil(side / min(image.shape[:2])))
        tiled = np.tile(image, (reps, reps) + (1,) * (image.ndim - 2))[:side, :side]
        feats, _ = dsm._features([tiled])
        affinity = feature_affinity(feats[0].numpy())
        times = []
        for _ in range(3):
            start = time.perf_counter()
            laplacian_eigenvectors(affinity, 9)
            times.append(time.perf_counter() - start)
        print(f"| {side} | {len(affinity)} | {np.median(times):.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/wsss4luad-val"))
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--backbone", default="default")
    parser.add_argument("--sizes", default="128,256,512,1024")
    args = parser.parse_args()
    quality(args.data, args.k, args.backbone)
    eigensolver(args.data, [int(s) for s in args.sizes.split(",")], args.backbone)


if __name__ == "__main__":
    main()
