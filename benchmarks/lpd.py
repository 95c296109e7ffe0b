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
100 are scored; glass detection off (not H&E).

Prints mIoU and mDice per method with per-class IoU, the prototypes' diversity (mean pairwise
exp(-Jeffreys) of each class's prototypes over its true pixels on the scored images: 1 = the
prototypes pick the same pixels) with and without the diversity term, and training seconds.
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


def _row(name: str, label: str, result: Any, seconds: float, diversity: float | None,
         names: dict[int, str]) -> str:
    ious = [v["iou"] for v in result.per_class.values() if v["pixels"] > 0]
    dices = [v["f1"] for v in result.per_class.values() if v["pixels"] > 0]
    per_class = ", ".join(f"{names.get(c, c)} {v['iou']:.2f}"
                          for c, v in result.per_class.items() if v["pixels"] > 0)
    div = "" if diversity is None else f"{diversity:.3f}"
    return (f"| {name} | {label} | {np.mean(ious):.3f} | {np.mean(dices):.3f} | {per_class} | "
            f"{div} | {seconds:.0f} |")


def run_set(title: str, train: list[Any], test: list[Any], background_id: int | None,
            weak: list[tuple[str, str, dict[str, Any]]], names: dict[int, str]) -> None:
    labels = from_masks(train, background_id=background_id)
    train_images = [load_sample(s)[0] for s in train]
    pairs = [load_sample(s) for s in test]
    images, masks = [im for im, _ in pairs], [m for _, m in pairs]
    print(f"\n{title}: {len(train)} training images (labels {', '.join(labels.classes)}; "
          f"{labels.present.sum(0).tolist()} images each), {len(test)} scored\n")
    print("| method | setting | mIoU | mDice | IoU per class | prototype similarity | "
          "fit s |")
    print("|---|---|---|---|---|---|---|")
    for name, label, params in weak:
        start = time.perf_counter()
        segmenter = methods.create(name, **params).fit(train_images, labels)
        seconds = time.perf_counter() - start
        preds = [segmenter.predict(im) for im in images]
        diversity = None
        if name == "lpd":
            values = [segmenter.prototype_similarity(im, m)  # type: ignore[attr-defined]
                      for im, m in zip(images, masks, strict=True)]
            diversity = float(np.nanmean(values))
        print(_row(name, label, _score(preds, masks, "identity"), seconds, diversity, names),
              flush=True)
    for name, params in (("fseg", {}), ("kmeans-color-dataset", {})):
        start = time.perf_counter()
        segmenter = methods.create(name, **params).fit(images)
        preds = [segmenter.predict(im) for im in images]
        seconds = time.perf_counter() - start
        print(_row(name, "no labels, fitted on the scored images, majority matching",
                   _score(preds, masks, "majority"), seconds, None, names), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/wsss4luad-val"))
    parser.add_argument("--epochs", type=int, default=200,
                        help="training epochs on wsss4luad-val's 16 images (default 200)")
    parser.add_argument("--fruit-epochs", type=int, default=30,
                        help="training epochs on the 200 sky-and-fruit scenes (default 30)")
    parser.add_argument("--sets", default="wsss,fruit", help="wsss, fruit or both")
    args = parser.parse_args()
    sets = args.sets.split(",")

    def weak(epochs: int, extra: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
        common = {"epochs": epochs} | extra
        return [
            ("lpd", "reference settings", common),
            ("lpd", "without diversity and alignment terms",
             common | {"diversity": 0.0, "alignment": 0.0}),
            ("cam", "same encoder and schedule", common),
            ("prototype-bank", "k-means, 3 per class, frozen encoder",
             dict(extra)),
        ]

    if "wsss" in sets:
        samples = discover([args.data])
        names = {0: "tumour", 1: "stroma", 2: "normal", 3: "background"}
        run_set(f"{args.data}, EfficientNet-Lite0 ImageNet, {args.epochs} epochs",
                samples[0::2], samples[1::2], None, weak(args.epochs, {}), names)
    if "fruit" in sets:
        with tempfile.TemporaryDirectory() as tmp:
            write_dataset(Path(tmp) / "train", 200, kind="sky_and_fruit", size=64,
                          random_state=0)
            write_dataset(Path(tmp) / "test", 100, kind="sky_and_fruit", size=64,
                          random_state=1)
            names = {0: "sky", 1: "lemon", 2: "apple", 3: "blueberry"}
            extra = {"glass": "none", "input_size": 128}
            run_set(f"sky-and-fruit scenes (64 px, resized to 128), {args.fruit_epochs} epochs",
                    discover([Path(tmp) / "train"]), discover([Path(tmp) / "test"]), 0,
                    weak(args.fruit_epochs, extra), names)


if __name__ == "__main__":
    main()
