"""CUTS: training speed, diffusion condensation time and memory, quality beside the baselines.

Run from the repository root:

    .venv/bin/python benchmarks/cuts.py [--epochs 200] [--crop-size N] [--no-early-stop]
        [--data ../shared/data] [--datasets mni-brain-dev,drive-train,wsss4luad-val]
        [--baselines kmeans-color,...,dfc] [--sizes 64,128,256,512] [--dense-seconds 300]
        [--parts condense,agreement,quality] [--agreement-size 128]

Part 1 (train, always): `cuts` is fitted on each dataset (no labels) with its defaults (the
paper's public setup: whole images, batch 16, up to 200 epochs with early stopping on the
held-out 30%); seconds per epoch and per image-epoch. On 2 CPU cores whole DRIVE images take
minutes an epoch: `--crop-size 64 --epochs 50 --no-early-stop` is the quick setup (one random
64 px crop of every training image per epoch).
Part 2 (condense): a DRIVE image resized to S x S is embedded by the model fitted on DRIVE;
diffusion condensation of its S^2 pixel embeddings runs to one cluster, ours on 1,000 weighted
landmarks and the dense kernel on every pixel (as the reference implementation does), the
latter only where its matrices fit in 16 GiB, in a child process stopped after --dense-seconds.
Peak memory is the most NumPy held at once (tracemalloc), landmarks included; for the dense
kernel it is measured over one step (every step allocates the same matrices).
Part "agreement" (not run by default: the dense kernel takes minutes and about 8 GiB at 128 px):
the adjusted Rand index between the landmark and the dense condensation's partitions of one
--agreement-size image's pixels at matched levels (k = 2..8 clusters).
Part 3 (quality): each dataset's images segmented by the model fitted on them (k-means,
diffusion at the longest-lasting level, persistent structures by the paper's rule and by
unseg's mass rule), beside the classical baselines and DFC, as the paper's Table 1.
mni-brain-dev and wsss4luad-val: Hungarian mIoU, per image and over the dataset (cuts labels
are per image, so its dataset-scope figure only shows how far ids agree by chance); k = the
number of classes for the methods that take one; mni-brain-dev's CSF (the ventricles) also
under the binary protocol, as the paper scores ventricles. drive-train: the binary protocol of CUTS
(ground-truth guided: the cluster most frequent under the vessel mask is the foreground), per
image, with each method's default granularity.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

from unseg import methods
from unseg.data import discover
from unseg.eval import evaluate
from unseg.io import read_image, read_label_map
from unseg.methods.cuts import CUTSSegmenter

DATASETS = {"mni-brain-dev": 4, "drive-train": 2, "wsss4luad-val": 4}
#: Multi-class sets also scored under the binary protocol for one class: (name, mask id)
FOREGROUND = {"mni-brain-dev": ("CSF (the ventricles' class)", 1)}
BASELINES = ("kmeans-color", "kmeans-color-dataset", "felzenszwalb", "slic", "watershed", "dfc")
#: (row name, cluster, persistence rule) of the cuts rows
CLUSTERINGS = (("kmeans", "kmeans", "paper"), ("diffusion", "diffusion", "paper"),
               ("persistent", "persistent", "paper"), ("persistent mass", "persistent", "mass"))
DENSE_BYTES = 16 * 2**30  # the dense kernel holds about 4 N x N float64 matrices at once


def _load(folder: Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    samples = discover([folder])
    return ([read_image(s.image) for s in samples],
            [read_label_map(s.mask) for s in samples if s.mask is not None])


def _fit(images: list[np.ndarray], params: dict[str, Any]) -> tuple[CUTSSegmenter, float]:
    start = time.perf_counter()
    model = CUTSSegmenter(**params).fit(images)
    return model, time.perf_counter() - start


def part_train(data: Path, names: list[str], params: dict[str, Any]
               ) -> dict[str, CUTSSegmenter]:
    from unseg.train import holdout_split

    models = {}
    print(f"\nTraining cuts ({params}), CPU\n")
    print("| dataset | images | image size | s / epoch | s / image-epoch | total s |")
    print("|---|---|---|---|---|---|")
    for name in names:
        images, _ = _load(data / name)
        model, seconds = _fit(images, params)
        models[name] = model
        per_epoch = float(np.mean(model.history_["epoch_seconds"]))
        # the held-out images are not trained on: count the training images only
        n_train = len(holdout_split(len(images), model.validation_fraction, 0)[0])
        size = "x".join(str(s) for s in images[0].shape[:2])
        print(f"| {name} | {len(images)} | {size} | {per_epoch:.2f} | "
              f"{per_epoch / max(n_train, 1):.3f} | {seconds:.0f} |")
    return models


def _peak_mib(run) -> tuple[float, float]:
    """Seconds and peak MiB NumPy held while ``run()`` ran."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        run()
    finally:
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    return seconds, peak


def _dense(z: np.ndarray, limit: float) -> str:
    """The dense kernel on every pixel: peak memory from one step, time of a full run in a
    child process stopped after ``limit`` seconds."""
    from unseg.cluster.diffusion import condense
    from unseg.errors import ParameterError

    def one_step() -> None:
        try:
            condense(z, max_steps=1)
        except ParameterError:  # more than one cluster left after one step, as expected
            pass

    _, peak = _peak_mib(one_step)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "z.npy"
        np.save(path, z)
        code = ("import sys, time, numpy as np; from unseg.cluster.diffusion import condense; "
                "z = np.load(sys.argv[1]); t = time.perf_counter(); r = condense(z); "
                "print(time.perf_counter() - t, len(r.steps))")
        try:
            out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                                 text=True, timeout=limit, check=True).stdout.split()
        except subprocess.TimeoutExpired:
            return f"> {limit:.0f} | {peak:.0f} | did not finish in {limit:.0f} s"
    return f"{float(out[0]):.1f} | {peak:.0f} | {out[1]} levels"


def part_condense(data: Path, model: CUTSSegmenter, sizes: list[int], limit: float) -> None:
    from unseg.cluster.diffusion import condense, landmarks

    print("\nDiffusion condensation of one image's pixel embeddings (DRIVE, resized), to one "
          "cluster\n")
    print("| pixels | landmarks: s | peak MiB | levels | dense kernel: s | peak MiB | |")
    print("|---|---|---|---|---|---|---|")
    for size in sizes:
        z = _embedded(data, model, size)
        levels: list[int] = []

        def ours(z: np.ndarray = z, levels: list[int] = levels) -> None:
            marks = landmarks(z, 1000)
            levels.append(len(condense(marks.centres, weights=marks.weights).steps))

        seconds, peak = _peak_mib(ours)
        need = 4 * (size * size) ** 2 * 8
        if need <= DENSE_BYTES:
            dense = _dense(z, limit)
        else:
            dense = f"- | - | not run: needs about {need / 2**30:.0f} GiB"
        print(f"| {size}^2 = {size * size} | {seconds:.2f} | {peak:.0f} | {levels[0]} | "
              f"{dense} |")


def _embedded(data: Path, model: CUTSSegmenter, size: int) -> np.ndarray:
    """The unit-norm pixel embeddings ``(size^2, d)`` of the first DRIVE image resized."""
    from skimage.transform import resize

    image = read_image(sorted((data / "drive-train" / "img").glob("*.png"))[0])
    small = (resize(image, (size, size), anti_aliasing=True) * 255).astype(np.uint8)
    z = model.embed(small).reshape(size * size, -1)
    return z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)


def part_agreement(data: Path, model: CUTSSegmenter, size: int, limit: float) -> None:
    """Landmark condensation against the dense kernel on every pixel: the adjusted Rand index
    of their partitions of the pixels at matched levels (the first level with at most k
    clusters, fine to coarse, in each)."""
    from sklearn.metrics import adjusted_rand_score

    from unseg.cluster.diffusion import condense, landmarks

    z = _embedded(data, model, size)
    marks = landmarks(z, 1000)
    ours = condense(marks.centres, weights=marks.weights)
    ours_labels = ours.labels[:, marks.assignment]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "z.npy"
        np.save(path, z)
        code = ("import sys, numpy as np; from unseg.cluster.diffusion import condense; "
                "r = condense(np.load(sys.argv[1])); np.save(sys.argv[2], r.labels)")
        subprocess.run([sys.executable, "-c", code, str(path), str(Path(folder) / "d.npy")],
                       timeout=limit, check=True)
        dense_labels = np.load(Path(folder) / "d.npy")
    print(f"\nLandmark (1,000) against dense diffusion condensation of a {size} x {size} DRIVE "
          "image's embeddings: the first level with at most k clusters in each\n")
    print("| k | clusters: landmarks | clusters: dense | adjusted Rand index |")
    print("|---|---|---|---|")
    for k in range(2, 9):
        a = ours_labels[int(np.flatnonzero(ours_labels.max(1) + 1 <= k)[0])]
        b = dense_labels[int(np.flatnonzero(dense_labels.max(1) + 1 <= k)[0])]
        print(f"| {k} | {a.max() + 1} | {b.max() + 1} | {adjusted_rand_score(a, b):.3f} |",
              flush=True)


def _score(preds: list[np.ndarray], gts: list[np.ndarray], match: str, scope: str):
    return evaluate(range(len(preds)), lambda i: (preds[i], gts[i]), match=match, scope=scope)


def part_quality(data: Path, models: dict[str, CUTSSegmenter], baselines: list[str]) -> None:
    for name, segmenter in models.items():
        n_classes = DATASETS[name]
        images, gts = _load(data / name)
        runs: list[tuple[str, list[np.ndarray], float]] = []
        binary = n_classes == 2
        if not binary:
            segmenter.k = n_classes
        for row, cluster, rule in CLUSTERINGS:
            segmenter.cluster, segmenter.persistence = cluster, rule
            start = time.perf_counter()
            preds = [segmenter.predict(im) for im in images]
            runs.append((f"cuts {row}", preds, time.perf_counter() - start))
        for baseline in baselines:
            takes_k = "k" in methods.get(baseline).param_names()
            params = {"k": n_classes} if takes_k and not binary else {}
            other = methods.create(baseline, **params)
            start = time.perf_counter()
            preds = other.fit(images).predict_batch(images)
            runs.append((baseline, preds, time.perf_counter() - start))
        if binary:
            _binary_table(f"{name}: binary protocol of CUTS (ground-truth guided), per image, "
                          f"mean over {len(images)} images", runs, gts)
        else:
            print(f"\n{name}: Hungarian mIoU, {len(images)} images, k = {n_classes} where a "
                  "method takes one\n")
            print("| method | clusters (mean) | mIoU image scope | mIoU dataset scope | s |")
            print("|---|---|---|---|---|")
            for method, preds, seconds in runs:
                image = _score(preds, gts, "hungarian", "image").miou
                dataset = _score(preds, gts, "hungarian", "dataset").miou
                clusters = np.mean([p.max() + 1 for p in preds])
                print(f"| {method} | {clusters:.0f} | {image:.3f} | {dataset:.3f} | "
                      f"{seconds:.0f} |")
        if name in FOREGROUND:
            label, class_id = FOREGROUND[name]
            _binary_table(f"{name}: {label} under the binary protocol of CUTS (ground-truth "
                          f"guided, the same label maps), per image, mean over {len(images)} "
                          "images", runs, [(g == class_id).astype(np.uint8) for g in gts])


def _binary_table(title: str, runs: list[tuple[str, list[np.ndarray], float]],
                  gts: list[np.ndarray]) -> None:
    print(f"\n{title}\n")
    print("| method | clusters (mean) | Dice | Hausdorff | SSIM | ERGAS | RMSE | s |")
    print("|---|---|---|---|---|---|---|---|")
    for method, preds, seconds in runs:
        b = _score(preds, gts, "foreground", "image").binary or {}
        clusters = np.mean([p.max() + 1 for p in preds])
        print(f"| {method} | {clusters:.0f} | {b['dice']:.3f} | {b['hausdorff']:.1f} | "
              f"{b['ssim']:.3f} | {b['ergas']:.2f} | {b['rmse']:.3f} | {seconds:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--crop-size", type=int, default=None,
                        help="train on random crops of this size (default: whole images)")
    parser.add_argument("--no-early-stop", action="store_true",
                        help="run every epoch (for timing)")
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--datasets", default=",".join(DATASETS),
                        help="the data sets to train on and score (default: all three; "
                             "condense and agreement need drive-train)")
    parser.add_argument("--baselines", default=",".join(BASELINES),
                        help="the methods beside cuts in the quality part (default: all; dfc "
                             "trains a network per image: minutes per DRIVE image on a CPU)")
    parser.add_argument("--sizes", default="64,128,256,512")
    parser.add_argument("--dense-seconds", type=float, default=300.0)
    parser.add_argument("--parts", default="condense,quality",
                        help="what to run after training: condense, agreement, quality")
    parser.add_argument("--agreement-size", type=int, default=128,
                        help="image side of the agreement part (default 128)")
    args = parser.parse_args()
    parts = args.parts.split(",")
    params: dict[str, Any] = {"epochs": args.epochs, "crop_size": args.crop_size}
    if args.no_early_stop:
        params["patience"] = None
    models = part_train(args.data, args.datasets.split(","), params)
    if "condense" in parts:
        sizes = [int(s) for s in args.sizes.split(",")]
        part_condense(args.data, models["drive-train"], sizes, args.dense_seconds)
    if "agreement" in parts:
        part_agreement(args.data, models["drive-train"], args.agreement_size,
                       args.dense_seconds)
    if "quality" in parts:
        part_quality(args.data, models, args.baselines.split(","))


if __name__ == "__main__":
    main()
