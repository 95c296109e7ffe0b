"""CIRS, CIRS with imbalanced training and AIR beside colour clustering.

Run from the repository root:

    .venv/bin/python benchmarks/cirs.py [--n-train 2000] [--n-test 300] [--epochs 10]
        [--real ../shared/data/wsss4luad-val] [--parts synthetic,real]

Part 1: sky-and-fruit scenes (64 px, 4 classes) from `unseg.data.synthetic`; each network is
trained on the training split (labels never seen, best epoch by the held-out loss) and scored on
the test split with Hungarian matching per image (scope image, K = 4), as the thesis reports,
and over the whole split (scope dataset). dfc trains on each test image alone; the colour
baselines are fitted on the test split. Seconds are fit and prediction together.
Part 2: the same methods fitted on the real H&E patches of --real (labels never seen) and
scored on them.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from unseg import methods
from unseg.data import discover
from unseg.data.synthetic import sky_and_fruit
from unseg.eval import evaluate
from unseg.io import read_image, read_label_map

NETWORKS = ("cirs", "cirs-imbalanced", "air")
PER_IMAGE = ("dfc", "kmeans-color", "kmeans-color-dataset")


def _score(preds: list[np.ndarray], masks: list[np.ndarray], scope: str) -> float:
    result = evaluate(range(len(preds)), lambda i: (preds[i], masks[i]), match="hungarian",
                      scope=scope)
    return result.miou


def _run(name: str, train: list[np.ndarray], test: list[np.ndarray], epochs: int
         ) -> tuple[list[np.ndarray], float]:
    params: dict[str, int] = {}
    if name in NETWORKS:
        params = {"k": 4, "epochs": epochs}
    elif name != "dfc":  # dfc finds its own number of labels
        params = {"k": 4}
    start = time.perf_counter()
    preds = methods.create(name, **params).fit(train).predict_batch(test)
    return preds, time.perf_counter() - start


def _table(title: str, rows: list[tuple[str, float, float, float]]) -> None:
    print(f"\n{title}\n")
    print("| method | mIoU image scope | mIoU dataset scope | fit + predict s |")
    print("|---|---|---|---|")
    for name, image, dataset, seconds in rows:
        print(f"| {name} | {image:.3f} | {dataset:.3f} | {seconds:.0f} |")


def _synthetic(names: list[str], n_train: int, n_test: int, epochs: int) -> None:
    def scene(split: int, i: int) -> tuple[np.ndarray, np.ndarray]:
        return sky_and_fruit(64, random_state=np.random.default_rng([split, i]))

    train = [scene(0, i)[0] for i in range(n_train)]
    scenes = [scene(2, i) for i in range(n_test)]
    test, masks = [s[0] for s in scenes], [s[1] for s in scenes]
    rows = []
    for name in names:
        preds, seconds = _run(name, train if name in NETWORKS else test, test, epochs)
        rows.append((name, _score(preds, masks, "image"), _score(preds, masks, "dataset"),
                     seconds))
    _table(f"Sky and fruit: {n_train} training scenes, {n_test} test scenes, at most "
           f"{epochs} epochs, Hungarian matching, K = 4", rows)


def _real(names: list[str], folder: Path, epochs: int) -> None:
    samples = discover([folder])
    images = [read_image(s.image) for s in samples]
    gts = [read_label_map(s.mask) for s in samples if s.mask is not None]
    rows = []
    for name in names:
        preds, seconds = _run(name, images, images, epochs)
        rows.append((name, _score(preds, gts, "image"), _score(preds, gts, "dataset"),
                     seconds))
    _table(f"{folder} ({len(images)} H&E patches, fitted on themselves), Hungarian "
           "matching, K = 4", rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=2000)
    parser.add_argument("--n-test", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--real", type=Path, default=Path("../shared/data/wsss4luad-val"))
    parser.add_argument("--methods", default=",".join(NETWORKS + PER_IMAGE),
                        help="comma-separated subset of the methods")
    parser.add_argument("--parts", default="synthetic,real",
                        help="synthetic (part 1), real (part 2) or both")
    args = parser.parse_args()
    names = [n for n in args.methods.split(",") if n]
    parts = args.parts.split(",")
    if "synthetic" in parts:
        _synthetic(names, args.n_train, args.n_test, args.epochs)
    if "real" in parts and args.real.is_dir():
        _real(names, args.real, args.epochs)


if __name__ == "__main__":
    main()
