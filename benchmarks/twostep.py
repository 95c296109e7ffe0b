"""Two-step segmentation (dsm, acseg) x dataset clustering (kmeans, otc, abc) on real H&E.

Run from the repository root (the data sits beside it in ../shared/data):

    .venv/bin/python benchmarks/twostep.py [--data ../shared/data/wsss4luad-val] [--k 4]
        [--backbone default] [--sizes 128,256,512,1024]
        [--tables quality,options,report,speed,eigensolver]
        [--methods dsm,acseg] [--image-method dsm] [--n-segments N|eigengap]
        [--n-eigenvectors N] [--segment-feature crop|mean] [--seeds 0,1,2] [--rows TEXT]

``quality``: each combination of ``--methods`` with its default parameters is fitted on the
images themselves (no labels) and predicts every image; the label maps are scored over the
whole data set (scope dataset) with Hungarian and majority matching, beside
kmeans-color-dataset.

``options``: the image-level settings of dsm and acseg, the reference's defaults against the
options unseg keeps, each fitted and scored end to end as in ``quality`` (k-means clustering)
over every seed of ``--seeds``; ``--rows TEXT`` runs only the rows whose name contains TEXT.

``report``: the structure of the two-step report's Tables 2-5 on this data. The images are
grouped once by ``--image-method`` and their segment features kept; each row clusters those
features with one setting (ABC architectures, ABC cluster-size bounds, k-means with L2 or
cosine with and without standardization, OTC with and without standardization, and the
options unseg keeps), over every seed of ``--seeds``: the mean mIoU and its range.

``speed``: prediction seconds per 256 x 256 image (central crops of the data set's images)
for each of ``--methods`` fitted on the data set.

``eigensolver``: the Laplacian eigensolver of one image's feature-affinity graph against the
image size.
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
from unseg.eval import evaluate
from unseg.io import read_image, read_label_map
from unseg.workflows import evaluate_folders, segment_samples


def quality(data: Path, k: int, backbone: str, names: list[str]) -> None:
    samples = discover([data])
    runs: list[tuple[str, dict]] = [("kmeans-color-dataset", {})]
    runs += [(name, {"cluster": c, "backbone": backbone})
             for name in names for c in ("kmeans", "otc", "abc")]
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


#: The rows of ``options``: (method, setting, parameters beside the method's defaults).
OPTION_ROWS: list[tuple[str, str, dict]] = [
    ("dsm", "default: 4 segments, 5 eigenvectors, crops dilated 3", {}),
    ("dsm", "20 eigenvectors", {"n_eigenvectors": 20}),
    ("dsm", "eigengap (2-4 segments)", {"n_segments": None}),
    ("dsm", "eigengap, 9 eigenvectors (2-8 segments)", {"n_segments": None,
                                                       "n_eigenvectors": 9}),
    ("dsm", "15 segments, 20 eigenvectors", {"n_segments": 15, "n_eigenvectors": 20}),
    ("dsm", "colour affinity, weight 10", {"colour": True}),
    ("dsm", "colour affinity, weight 1", {"colour": True, "colour_weight": 1.0}),
    ("dsm", "segment feature: mean of cells", {"segment_feature": "mean"}),
    ("dsm", "crops resized to 64", {"crop_size": 64}),
    ("dsm", "crops not eroded or dilated", {"crop_erode": 0, "crop_dilate": 0}),
    ("dsm", "border segment as background", {"background": True}),
    ("dsm", "eigengap 2-8 from 9 eigenvectors, mean of cells",
     {"n_segments": None, "n_eigenvectors": 9, "segment_feature": "mean"}),
    ("dsm", "8 segments, 9 eigenvectors, mean of cells",
     {"n_segments": 8, "n_eigenvectors": 9, "segment_feature": "mean"}),
    ("dsm", "15 segments, 20 eigenvectors, mean of cells",
     {"n_segments": 15, "n_eigenvectors": 20, "segment_feature": "mean"}),
    ("dsm", "colour affinity weight 1, mean of cells",
     {"colour": True, "colour_weight": 1.0, "segment_feature": "mean"}),
    ("acseg", "default: AdamW 3e-4, 400 epochs, 6 steps, 6 prototypes, 256 px", {}),
    ("acseg", "20 epochs", {"acg_epochs": 20}),
    ("acseg", "segment feature: mean of cells", {"segment_feature": "mean"}),
    ("acseg", "previous: Adam 1e-3, 20 epochs, 3 steps, 5 prototypes, mean of cells",
     {"lr": 1e-3, "weight_decay": 0.0, "acg_epochs": 20, "n_steps": 3, "n_prototypes": 5,
      "image_size": None, "segment_feature": "mean"}),
]


def options(data: Path, k: int, backbone: str, seeds: list[int], only: str | None) -> None:
    samples = discover([data])
    print(f"\n{data} ({len(samples)} images), k = {k}, backbone {backbone}, k-means "
          f"clustering, scope dataset, seeds {seeds}: mean mIoU (min-max)\n")
    print("| method | setting | mIoU hungarian | mIoU majority | segments | fit s | "
          "predict s/image |")
    print("|---|---|---|---|---|---|---|")
    for name, setting, params in OPTION_ROWS:
        if only is not None and only not in f"{name} {setting}":
            continue
        scores: dict[str, list[float]] = {"hungarian": [], "majority": []}
        segments, fit, predict = [], [], []
        for seed in seeds:
            segmenter = methods.create(name, k=k, backbone=backbone, random_state=seed,
                                       **params)
            with tempfile.TemporaryDirectory() as tmp:
                run = segment_samples(segmenter, samples, Path(tmp), overlays=False)
                for match, values in scores.items():
                    values.append(evaluate_folders(Path(tmp), data, match=match).miou)
            segments.append(segmenter.n_segments_fitted_)
            fit.append(run.fit_seconds)
            predict.append(run.predict_seconds / len(run.written))
        cells = [f"{np.mean(v):.3f} ({min(v):.3f}-{max(v):.3f})" for v in scores.values()]
        print(f"| {name} | {setting} | {cells[0]} | {cells[1]} | "
              f"{min(segments)}-{max(segments)} | {np.mean(fit):.1f} | "
              f"{np.mean(predict):.2f} |", flush=True)


def report_rows(k: int) -> list[tuple[str, str, dict]]:
    """(table, setting, parameters) of each row of the report's Tables 2-5 and our options."""
    abc = {"cluster": "abc"}
    rows = [("2: ABC architecture", name, abc | {"abc_architecture": arch})
            for name, arch in (("Attn + MLP (default)", "attn-mlp"),
                               ("2xAttn + MLP", "2attn-mlp"), ("Identical", "identity"),
                               ("MLP", "mlp"))]
    rows += [("3: ABC size bounds", f"min {low}, max {high}",
              abc | {"abc_min_size": lo, "abc_max_size": hi})
             for low, high, lo, hi in (
                 ("N/k^1.5", "none", k**-1.5, 1.0), ("N/k^2", "none", k**-2.0, 1.0),
                 ("N/k^2", "N/k^0.7", k**-2.0, k**-0.7), ("N/k^2", "N/k^0.5 (default)",
                                                           k**-2.0, k**-0.5))]
    rows += [("5: k-means", name, {"cluster": "kmeans", "metric": m, "standardize": st})
             for name, m, st in (("L2 (default)", "l2", False), ("cos", "cosine", False),
                                 ("norm/std input, L2", "l2", True),
                                 ("norm/std input, cos", "cosine", True))]
    rows += [("5: OTC", "OTC (default)", {"cluster": "otc"}),
             ("5: OTC", "OTC norm/std", {"cluster": "otc", "standardize": True}),
             ("options", "OTC k-means++, stop at 1e-6", {"cluster": "otc",
                                                          "ot_init": "k-means++",
                                                          "ot_tol": 1e-6}),
             ("options", "ABC norm/std", abc | {"standardize": True}),
             ("options", "ABC init samples", abc | {"abc_init": "samples"}),
             ("options", "ABC init normal", abc | {"abc_init": "normal"}),
             ("options", "ABC lr 1e-3", abc | {"abc_lr": 1e-3})]
    return rows


def report_tables(data: Path, k: int, backbone: str, image_method: str,
                  seeds: list[int], n_segments: str | None, n_eigenvectors: int | None,
                  segment_feature: str | None) -> None:
    samples = discover([data])
    extra: dict = {} if segment_feature is None else {"segment_feature": segment_feature}
    if image_method == "dsm" and n_segments is not None:
        extra["n_segments"] = None if n_segments == "eigengap" else int(n_segments)
    if image_method == "dsm" and n_eigenvectors is not None:
        extra["n_eigenvectors"] = n_eigenvectors
    segmenter = methods.create(image_method, k=k, backbone=backbone, random_state=0, **extra)
    base = segmenter.get_params()
    start = time.perf_counter()
    grids = [segmenter._grid(read_image(s.image)) for s in samples]
    if segmenter.trains_grouping:
        segmenter._prepare(grids)
    parts = [segmenter._segments(g) for g in grids]
    x = np.concatenate([f[~bg] for _, f, bg in parts])
    masks = [read_label_map(s.mask) for s in samples]
    print(f"\n{data} ({len(samples)} images), {image_method} {extra}: {len(x)} segments of "
          f"{x.shape[1]} features ({time.perf_counter() - start:.0f} s), k = {k}, backbone "
          f"{backbone}, scope dataset, seeds {seeds}: mean mIoU (min-max)\n")
    print("| table | setting | mIoU hungarian | mIoU majority | clusters used | fit s |")
    print("|---|---|---|---|---|---|")
    for table, name, params in report_rows(k):
        scores: dict[str, list[float]] = {"hungarian": [], "majority": []}
        used, seconds = [], []
        for seed in seeds:
            segmenter.set_params(**(base | params | {"random_state": seed}))
            start = time.perf_counter()
            clusters = segmenter._cluster(x)
            seconds.append(time.perf_counter() - start)
            labels = [np.where(bg, k, clusters.assign(f)) for _, f, bg in parts]
            used.append(len(np.unique(np.concatenate(labels))))
            preds = [segmenter._label_map(g, segs, lab)
                     for g, (segs, _, _), lab in zip(grids, parts, labels, strict=True)]
            pairs = list(zip(preds, masks, strict=True))
            for match, values in scores.items():
                values.append(evaluate(range(len(pairs)), pairs.__getitem__, match=match,
                                       scope="dataset").miou)
        cells = [f"{np.mean(v):.3f} ({min(v):.3f}-{max(v):.3f})" for v in scores.values()]
        print(f"| {table} | {name} | {cells[0]} | {cells[1]} | {min(used)}-{max(used)} | "
              f"{np.mean(seconds):.1f} |", flush=True)


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


def speed(data: Path, k: int, backbone: str, names: list[str], size: int = 256) -> None:
    """Prediction seconds per ``size`` x ``size`` image: each method (k-means clustering)
    fitted on the data set, then predicting the central crop of every image (images smaller
    than ``size`` are left out). acseg is fitted for 1 epoch: prediction does not depend on
    how long its concept generator trained."""
    images = [read_image(s.image) for s in discover([data])]
    crops = []
    for image in images:
        h, w = image.shape[:2]
        if min(h, w) >= size:
            top, left = (h - size) // 2, (w - size) // 2
            crops.append(image[top:top + size, left:left + size])
    print(f"\nPrediction per {size} x {size} image ({len(crops)} central crops of {data}), "
          f"fitted on the {len(images)} images, k-means clustering, backbone {backbone}\n")
    print("| method | median s/image | max s/image |")
    print("|---|---|---|")
    for name in names:
        extra = {"acg_epochs": 1} if name == "acseg" else {}
        segmenter = methods.create(name, k=k, backbone=backbone, **extra).fit(images)
        segmenter.predict(crops[0])  # warm-up: first calls build the backbone's kernels
        seconds = []
        for crop in crops:
            start = time.perf_counter()
            segmenter.predict(crop)
            seconds.append(time.perf_counter() - start)
        print(f"| {name} | {np.median(seconds):.3f} | {max(seconds):.3f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/wsss4luad-val"))
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--backbone", default="default")
    parser.add_argument("--sizes", default="128,256,512,1024")
    parser.add_argument("--tables", default="quality,report,eigensolver")
    parser.add_argument("--image-method", default="dsm", choices=("dsm", "acseg"))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--n-segments", default=None,
                        help="dsm's segments per image in the report tables, a number or "
                             "'eigengap' (default: dsm's default, 4)")
    parser.add_argument("--n-eigenvectors", type=int, default=None,
                        help="dsm's eigenvectors in the report tables (default: dsm's, 5)")
    parser.add_argument("--segment-feature", default=None, choices=("crop", "mean"),
                        help="segment features of the report tables (default: crop)")
    parser.add_argument("--methods", default="dsm,acseg",
                        help="two-step methods of the quality table")
    parser.add_argument("--rows", default=None,
                        help="options table: only the rows whose name contains this")
    args = parser.parse_args()
    tables = args.tables.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    if "quality" in tables:
        quality(args.data, args.k, args.backbone, args.methods.split(","))
    if "options" in tables:
        options(args.data, args.k, args.backbone, seeds, args.rows)
    if "report" in tables:
        report_tables(args.data, args.k, args.backbone, args.image_method, seeds,
                      args.n_segments, args.n_eigenvectors, args.segment_feature)
    if "speed" in tables:
        speed(args.data, args.k, args.backbone, args.methods.split(","))
    if "eigensolver" in tables:
        eigensolver(args.data, [int(s) for s in args.sizes.split(",")], args.backbone)


if __name__ == "__main__":
    main()
