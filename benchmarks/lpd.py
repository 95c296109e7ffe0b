"""Weakly supervised segmentation from image-level labels: LPD beside CAM, a k-means prototype
bank and the best unsupervised method, on held-out images.

Run from the repository root (the data sits beside it in ../shared/data):

    .venv/bin/python benchmarks/lpd.py [--epochs 200] [--fruit-epochs 30] [--sets wsss,fruit]

wsss4luad-val: image-level labels derived from its masks (the classes each mask holds,
background left out); the even-numbered images train (by file: 00, 02, ...), the odd-numbered
ones are scored. The weak methods' label ids are the classes, scored with identity matching;
fseg and kmeans-color-dataset (no labels) are fitted on the scored images themselves and scored
with majority matching, both over the whole set (scope dataset). Sky-and-fruit (written here:
`unseg data synthetic --kind sky_and_fruit`, one to four fruits per scene, so the labels
differ from image to image): labels from the masks with sky as background, 200 scenes train,
100 are scored; glass detection off (not H&E), background (sky) where the best class map is
below 0.2, the reference's threshold.

Prints, as the mean (standard deviation) over --seeds, mIoU and mDice (over the classes in the
scored masks), the mean IoU of each class, the prototypes' similarity (mean pairwise
exp(-Jeffreys) of each class's prototypes over its true pixels on the scored images, at the
deepest scale: 1 = the prototypes pick the same pixels) with and without the diversity term, and
training seconds on the machine it runs on.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from unseg import methods
from unseg.data import discover, load_sample
from unseg.data.synthetic import write_dataset
from unseg.data.weak_labels import from_masks
from unseg.eval import evaluate


def _score(preds: list[np.ndarray], masks: list[np.ndarray], match: str) -> Any:
    return evaluate(range(len(preds)), lambda i: (preds[i], masks[i]), match=match,
                    scope="dataset")


def _row(name: str, label: str, runs: list[dict[str, Any]], names: dict[int, str]) -> str:
    """One table row: mean (standard deviation) over the seeds' runs."""
    def stat(key: str) -> str:
        values = np.array([r[key] for r in runs], dtype=float)
        if np.isnan(values).all():
            return ""
        return (f"{np.nanmean(values):.3f}" if len(values) == 1
                else f"{np.nanmean(values):.3f} ({np.nanstd(values):.3f})")

    classes = sorted(runs[0]["per_class"])
    per_class = ", ".join(f"{names.get(c, c)} {np.mean([r['per_class'][c] for r in runs]):.2f}"
                          for c in classes)
    return (f"| {name} | {label} | {stat('miou')} | {stat('mdice')} | {per_class} | "
            f"{stat('similarity')} | {np.mean([r['seconds'] for r in runs]):.0f} |")


def _run(segmenter: Any, fit: Any, images: list[np.ndarray], masks: list[np.ndarray],
         match: str) -> dict[str, Any]:
    start = time.perf_counter()
    fit()
    seconds = time.perf_counter() - start
    result = _score([segmenter.predict(im) for im in images], masks, match)
    scored = {c: v for c, v in result.per_class.items() if v["pixels"] > 0}
    similarity = float("nan")
    if segmenter.name == "lpd":
        similarity = float(np.nanmean([segmenter.prototype_similarity(im, m)
                                       for im, m in zip(images, masks, strict=True)]))
    return {"miou": np.mean([v["iou"] for v in scored.values()]),
            "mdice": np.mean([v["f1"] for v in scored.values()]),
            "per_class": {c: v["iou"] for c, v in scored.items()},
            "similarity": similarity, "seconds": seconds}


def run_set(title: str, train: list[Any], test: list[Any], background_id: int | None,
            weak: list[tuple[str, str, dict[str, Any]]], names: dict[int, str],
            seeds: list[int]) -> None:
    labels = from_masks(train, background_id=background_id)
    train_images = [load_sample(s)[0] for s in train]
    pairs = [load_sample(s) for s in test]
    images, masks = [im for im, _ in pairs], [m for _, m in pairs]
    print(f"\n{title}: {len(train)} training images (labels {', '.join(labels.classes)}; "
          f"{labels.present.sum(0).tolist()} images each), {len(test)} scored; mean (standard "
          f"deviation) over seeds {','.join(map(str, seeds))}\n")
    print("| method | setting | mIoU | mDice | IoU per class | prototype similarity | "
          "fit s |")
    print("|---|---|---|---|---|---|---|")
    for name, label, params in weak:
        runs = []
        for seed in seeds:
            segmenter = methods.create(name, random_state=seed, **params)
            runs.append(_run(segmenter, lambda s=segmenter: s.fit(train_images, labels),
                             images, masks, "identity"))
        print(_row(name, label, runs, names), flush=True)
    for name in ("fseg", "kmeans-color-dataset"):
        runs = []
        for seed in seeds:
            segmenter = methods.create(name, random_state=seed)
            runs.append(_run(segmenter, lambda s=segmenter: s.fit(images), images, masks,
                             "majority"))
        print(_row(name, "no labels, fitted on the scored images, majority matching", runs,
                   names), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/wsss4luad-val"))
    parser.add_argument("--epochs", type=int, default=200,
                        help="training epochs on wsss4luad-val's 16 images (default 200)")
    parser.add_argument("--fruit-epochs", type=int, default=30,
                        help="training epochs on the 200 sky-and-fruit scenes (default 30)")
    parser.add_argument("--sets", default="wsss,fruit", help="wsss, fruit or both")
    parser.add_argument("--seeds", default="0,1,2", help="seeds of every method's runs")
    args = parser.parse_args()
    sets = args.sets.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]

    def weak(epochs: int, extra: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
        common = {"epochs": epochs} | extra
        return [
            ("lpd", "reference settings", common),
            ("lpd", "without diversity and alignment terms",
             common | {"diversity": 0.0, "alignment": 0.0}),
            ("cam", "same encoder and schedule", common),
            ("prototype-bank", "cosine k-means, 3 per class, frozen encoder",
             dict(extra)),
        ]

    if "wsss" in sets:
        samples = discover([args.data])
        names = {0: "tumour", 1: "stroma", 2: "normal", 3: "background"}
        run_set(f"{args.data}, EfficientNet-Lite0 ImageNet, {args.epochs} epochs",
                samples[0::2], samples[1::2], None, weak(args.epochs, {}), names, seeds)
    if "fruit" in sets:
        with tempfile.TemporaryDirectory() as tmp:
            write_dataset(Path(tmp) / "train", 200, kind="sky_and_fruit", size=64,
                          random_state=0)
            write_dataset(Path(tmp) / "test", 100, kind="sky_and_fruit", size=64,
                          random_state=1)
            names = {0: "sky", 1: "lemon", 2: "apple", 3: "blueberry"}
            extra = {"glass": "none", "input_size": 128, "background": 0.2}
            run_set(f"sky-and-fruit scenes (64 px, resized to 128), {args.fruit_epochs} epochs",
                    discover([Path(tmp) / "train"]), discover([Path(tmp) / "test"]), 0,
                    weak(args.fruit_epochs, extra), names, seeds)


if __name__ == "__main__":
    main()
