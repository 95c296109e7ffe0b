"""Evaluation: confusion accumulation, cluster-to-class matching, metrics.

A confusion matrix ``(K clusters, C classes)`` is accumulated over images (ground-truth id 255
ignored), clusters are matched to classes once, and the scores follow from the matrix and the
mapping. ``docs/metrics.md`` defines every number reported here.
"""

from __future__ import annotations

from unseg.eval.binary import dice, ergas, hausdorff, hausdorff95, rmse, ssim
from unseg.eval.confusion import ConfusionAccumulator, confusion_matrix
from unseg.eval.evaluate import BINARY_METRICS, SCOPES, EvaluationResult, evaluate
from unseg.eval.matching import MATCH_METHODS, match
from unseg.eval.metrics import (
    class_counts,
    f1_per_class,
    iou_per_class,
    mean_iou,
    pixel_accuracy,
)

__all__ = [
    "BINARY_METRICS",
    "MATCH_METHODS",
    "SCOPES",
    "ConfusionAccumulator",
    "EvaluationResult",
    "class_counts",
    "confusion_matrix",
    "dice",
    "ergas",
    "evaluate",
    "f1_per_class",
    "hausdorff",
    "hausdorff95",
    "iou_per_class",
    "match",
    "mean_iou",
    "pixel_accuracy",
    "rmse",
    "ssim",
]
