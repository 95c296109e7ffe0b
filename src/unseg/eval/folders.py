"""Evaluation of a folder of predicted label maps against a folder of masks."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from unseg.errors import InputError
from unseg.io import MASK_SUFFIXES, read_label_map

if TYPE_CHECKING:
    from unseg.eval.evaluate import EvaluationResult


def label_files(folder: Path) -> dict[str, Path]:
    """Label maps in ``folder`` (or its ``mask/``) by stem; no overlays or hidden files."""
    folder = Path(folder)
    if (folder / "mask").is_dir():
        folder = folder / "mask"
    if not folder.is_dir():
        raise InputError(folder, "folder not found", "pass a folder of label maps or masks")
    files = {
        p.stem: p
        for p in sorted(folder.iterdir())
        if p.suffix.lower() in MASK_SUFFIXES
        and not p.name.startswith(".")
        and not p.stem.endswith("_overlay")
    }
    if not files:
        raise InputError(folder, f"no label maps ({' '.join(MASK_SUFFIXES)}) found")
    return files


def evaluate_folders(
    pred_dir: Path, gt_dir: Path, *, match: str = "hungarian", scope: str = "dataset"
) -> EvaluationResult:
    """Evaluate ``pred_dir/<name>.png`` against the mask of the same name in ``gt_dir``.

    A mask without a prediction, or a prediction whose size differs from its mask, is recorded
    as a failure (named in ``result.failures``) and the other images are still evaluated.
    """
    from unseg.eval import evaluate

    preds, gts = label_files(pred_dir), label_files(gt_dir)

    def load(name: str) -> tuple[np.ndarray, np.ndarray]:
        if name not in preds:
            raise InputError(gts[name], f"no prediction named {name} in {pred_dir}")
        pred, gt = read_label_map(preds[name]), read_label_map(gts[name])
        if pred.shape != gt.shape:
            raise InputError(
                preds[name],
                f"label map is {pred.shape[0]}x{pred.shape[1]} (HxW) but mask {gts[name]} is "
                f"{gt.shape[0]}x{gt.shape[1]}",
                "segment the image the mask belongs to, at its full size",
            )
        return pred, gt

    return evaluate(sorted(gts), load, match=match, scope=scope)
