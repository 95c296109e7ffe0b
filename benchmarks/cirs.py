"""The CIRS thesis's comparison on its kind of data: cirs, cirs-imbalanced, air and wnet beside
per-image and dataset colour k-means, under both model-selection protocols.

Run from the repository root:

    .venv/bin/python benchmarks/cirs.py --json cirs-cpu.json       # the CPU budget, 2 cores
    .venv/bin/python benchmarks/cirs.py --budget full --device cuda --workers 1 \
        --data bench-cirs-full --json cirs-full.json                # the thesis's budget, a GPU

The data is written first (or reused) as `unseg data synthetic --style thesis` writes it: fixed
fruit sprites pasted at random positions and rotations on one fixed cloudy sky, 64 px, mask ids
0 sky, 1 lemon, 2 apple, 3 blueberry. Each network (K = 4, the thesis's defaults otherwise) is
trained on the training split without labels and the kept epoch is chosen two ways:
`val-miou` (the thesis's protocol: the best mIoU on the validation split, which uses its labels)
and `loss` (label-free: the lowest loss on 10% of the training images held out). The colour
k-means are fitted on the training split too (`kmeans-color` fits nothing). Every method then
segments the test split, scored three ways: the thesis's figure (per image, the one-to-one
mapping with the highest mIoU, averaged over classes and images: `unseg evaluate --match
best-iou --scope image`), and Hungarian matching per image and over the whole split (pooled
IoU). The runs go to `--workers` processes (each with its share of the CPU threads); seconds
are training and prediction together, in a worker. `--json FILE` keeps every number and each
network's per-epoch history.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

from unseg import methods
from unseg.data import discover, load_sample
from unseg.data.synthetic import write_dataset
from unseg.eval import evaluate

NETWORKS = ("cirs-imbalanced", "air", "cirs", "wnet")
COLOUR = ("kmeans-color", "kmeans-color-dataset")
PROTOCOLS = ("val-miou", "loss")
#: Split sizes and epochs of each budget; the thesis's is "full".
BUDGETS = {
    "cpu": {"n_train": 2000, "n_val": 200, "n_test": 300, "epochs": 15},
    "full": {"n_train": 10000, "n_val": 1500, "n_test": 1500, "epochs": 170},
}
#: The thesis's figures (its Tables 1, 2, 3 and 5), on its data under its protocol.
THESIS = {"cirs": 0.4581, "cirs-imbalanced": 0.6407, "air": 0.5155, "wnet": 0.3164}


def _dataset(folder: Path, sizes: dict[str, int], seed: int) -> None:
    """Write the splits as `unseg data synthetic --style thesis --seed SEED` does, unless a
    split of that size is there already."""
    for index, name in enumerate(("train", "val", "test")):
        split = folder / name
        n = sizes[f"n_{name}"]
        if split.is_dir() and len(list((split / "img").glob("*.png"))) == n:
            continue
        write_dataset(split, n, kind="pasted_fruit", size=64,
                      random_state=np.random.default_rng([seed, index]),
                      progress=f"writing {name}")


def _read(split: Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    pairs = [load_sample(s) for s in discover([split])]
    return [im for im, _ in pairs], [m for _, m in pairs if m is not None]


def _scores(preds: list[np.ndarray], masks: list[np.ndarray]) -> dict[str, float]:
    def run(match: str, scope: str) -> Any:
        return evaluate(range(len(preds)), lambda i: (preds[i], masks[i]), match=match,
                        scope=scope)

    return {"thesis": run("best-iou", "image").miou_image_mean,
            "hungarian_image": run("hungarian", "image").miou,
            "hungarian_dataset": run("hungarian", "dataset").miou}


def _row(job: tuple[str, dict[str, Any], Path, int]) -> dict[str, Any]:
    """Fit one method on the training split and score it on the test split (in a worker)."""
    name, params, data, threads = job
    torch.set_num_threads(threads)
    train, _ = _read(data / "train")
    test, masks = _read(data / "test")
    start = time.perf_counter()
    segmenter = methods.create(name, **params).fit(train)
    preds = segmenter.predict_batch(test)
    row = {"method": name, "protocol": params.get("select_by"), "params": params,
           "seconds": time.perf_counter() - start, **_scores(preds, masks)}
    history = getattr(segmenter, "history_", None)
    if history is not None:
        row["history"] = history
        row["best_epoch"] = history["best_epoch"]
    print(json.dumps({k: v for k, v in row.items() if k != "history"}, default=str), flush=True)
    return row


def _table(rows: list[dict[str, Any]], protocol: str) -> str:
    words = {"val-miou": "best epoch by validation mIoU (the thesis's protocol; uses the "
                         "validation labels)",
             "loss": "best epoch by the label-free held-out loss (no labels)"}
    lines = [f"Selection: {words[protocol]}.", "",
             "| method | thesis's figure | mIoU best-iou, per image (thesis's protocol) | "
             "mIoU hungarian, image scope | mIoU hungarian, dataset scope | best epoch | "
             "fit + predict s |", "|---|---|---|---|---|---|---|"]
    for row in rows:
        if row.get("protocol") not in (protocol, None):
            continue
        thesis = f"{THESIS[row['method']]:.3f}" if row["method"] in THESIS else ""
        epoch = row["best_epoch"] + 1 if "best_epoch" in row else ""
        lines.append(f"| {row['method']} | {thesis} | {row['thesis']:.3f} | "
                     f"{row['hungarian_image']:.3f} | {row['hungarian_dataset']:.3f} | "
                     f"{epoch} | {row['seconds']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", choices=tuple(BUDGETS), default="cpu")
    parser.add_argument("--data", type=Path, default=Path("bench-cirs-data"),
                        help="dataset folder (written if missing)")
    parser.add_argument("--n-train", type=int, help="training images (default: the budget's)")
    parser.add_argument("--n-val", type=int, help="validation images")
    parser.add_argument("--n-test", type=int, help="test images")
    parser.add_argument("--epochs", type=int, help="epochs (default: the budget's)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--workers", type=int, default=2,
                        help="methods trained at once, each in its own process (default: 2)")
    parser.add_argument("--methods", default=",".join(NETWORKS + COLOUR),
                        help="comma-separated subset")
    parser.add_argument("--protocols", default=",".join(PROTOCOLS),
                        help="val-miou, loss or both")
    parser.add_argument("--json", type=Path, help="write every number here")
    args = parser.parse_args()
    budget = dict(BUDGETS[args.budget])
    budget.update({k: v for k in budget if (v := getattr(args, k)) is not None})
    protocols = [p for p in args.protocols.split(",") if p]
    started = time.perf_counter()
    _dataset(args.data, budget, args.seed)
    threads = max(1, (os.cpu_count() or 1) // args.workers)
    jobs = []
    for name in [n for n in args.methods.split(",") if n]:
        if name in NETWORKS:
            for protocol in protocols:
                params = {"k": 4, "epochs": budget["epochs"], "select_by": protocol,
                          "device": args.device}
                if protocol == "val-miou":
                    params["val"] = str(args.data / "val")
                jobs.append((name, params, args.data, threads))
        else:
            jobs.append((name, {"k": 4}, args.data, threads))
    with ProcessPoolExecutor(args.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        rows = list(pool.map(_row, jobs))
    total = time.perf_counter() - started
    print(f"\nThesis-style data: {budget['n_train']} training, {budget['n_val']} validation, "
          f"{budget['n_test']} test images (64 px, seed {args.seed}); at most "
          f"{budget['epochs']} epochs, batch 40, K = 4; {args.workers} workers of {threads} "
          f"torch thread(s) on {os.cpu_count()} {platform.machine()} cores, device "
          f"{args.device}; {total / 60:.0f} min in all.\n")
    for protocol in protocols:
        print(_table(rows, protocol) + "\n")
    if args.json:
        args.json.write_text(json.dumps({"budget": budget, "seed": args.seed,
                                         "device": args.device, "minutes": total / 60,
                                         "rows": rows}, indent=1, default=str))


if __name__ == "__main__":
    main()
