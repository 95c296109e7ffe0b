"""Evaluate predicted label maps against ground truth over a set of images.

Pass 1 reads every image once and keeps only its confusion matrix. Matching happens once, after
pass 1. For a binary task a second pass reads the images again to compute the mask metrics of
:mod:`unseg.eval.binary` under the chosen mapping.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from unseg.errors import ParameterError, UnsegError
from unseg.eval import binary as binary_metrics
from unseg.eval.confusion import ConfusionAccumulator, valid_pixels
from unseg.eval.matching import check_match_method
from unseg.eval.matching import match as match_clusters
from unseg.eval.metrics import f1_per_class, iou_per_class, mean_iou, pixel_accuracy

SCOPES = ("dataset", "image")
"""``"dataset"``: one mapping for all images; ``"image"``: one mapping per image."""

BINARY_METRICS: dict[str, Callable[[ArrayLike, ArrayLike], float]] = {
    "dice": binary_metrics.dice,
    "hausdorff": binary_metrics.hausdorff,
    "hausdorff95": binary_metrics.hausdorff95,
    "ssim": binary_metrics.ssim,
    "ergas": binary_metrics.ergas,
    "rmse": binary_metrics.rmse,
}
"""Mask metrics reported per image for binary tasks, by name."""

_SCOPE_WORDS = {"dataset": "one mapping for all images", "image": "one mapping per image"}
_MAPPING = {"dataset": "the dataset's one mapping, so it differs from an image-scope figure",
            "image": "the image's own mapping"}


@dataclass
class EvaluationResult:
    """Scores of one evaluation; every float may be NaN where undefined.

    Attributes
    ----------
    match, scope : str
        The matching method and scope used.
    n_images : int
        Images evaluated (failures excluded).
    n_clusters : int
        ``K``, the largest predicted cluster id plus one.
    classes : list of int
        Class ids present in the ground truth.
    miou : float
        Mean over ``classes`` of the IoU pooled over all images.
    miou_image_mean : float
        Mean over images of each image's mIoU (over the classes present in that image).
    pixel_accuracy : float
        Pooled fraction of valid pixels mapped to their true class.
    per_class : dict
        Class id -> ``{"iou", "f1", "pixels"}``, pooled; for every id below ``C``.
    per_image : list of dict
        ``{"id", "miou", "pixel_accuracy"}`` per image, plus the :data:`BINARY_METRICS` for a
        binary task.
    binary : dict or None
        Mean over images of each binary metric; None unless the task is binary.
    mapping : list of int or None
        Class id of each cluster (-1 unmatched) for scope ``"dataset"``; None for ``"image"``.
    failures : list of tuple
        ``(id, message)`` for every image that could not be read or evaluated.
    class_names : dict
        Class id -> name, for the classes the dataset names (``classes.json``).
    confusion : list of list of int
        The pooled confusion matrix, ``confusion[k][c]`` pixels of cluster ``k`` in class
        ``c`` (``K`` rows, ``C`` columns).
    """

    match: str
    scope: str
    n_images: int
    n_clusters: int
    classes: list[int]
    miou: float
    miou_image_mean: float
    pixel_accuracy: float
    per_class: dict[int, dict[str, float]]
    per_image: list[dict[str, Any]]
    binary: dict[str, float] | None
    mapping: list[int] | None
    failures: list[tuple[Any, str]]
    class_names: dict[int, str] = field(default_factory=dict)
    confusion: list[list[int]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return the result as plain JSON-serialisable types; NaN becomes None."""
        return _jsonable(asdict(self))

    def to_markdown(self) -> str:
        """Return a readable markdown summary: headline, per-class table, binary table."""
        where = "pooled over the dataset"
        lines = [
            f"## Evaluation: match `{self.match}`, scope `{self.scope}` "
            f"({_SCOPE_WORDS[self.scope]})",
            "",
            f"mIoU {_fmt(self.miou)} {where}; per-image mean {_fmt(self.miou_image_mean)} "
            f"beside it (each image's mIoU over its own classes, under {_MAPPING[self.scope]}, "
            f"averaged). Pixel accuracy {_fmt(self.pixel_accuracy)} {where}. "
            f"{self.n_images} images, {self.n_clusters} clusters, "
            f"{len(self.failures)} failures.",
            "",
        ]
        if self.match == "best-iou" and self.scope == "image":
            lines += [
                "The protocol of the CIRS thesis: each image's segments matched to its classes "
                "one-to-one for the highest mIoU; its figure is the per-image mean "
                f"({_fmt(self.miou_image_mean)}).",
                "",
            ]
        if self.match == "foreground":
            lines += [
                "Ground-truth guided (the binary protocol of CUTS): the cluster most frequent "
                "under the ground-truth foreground is taken as the foreground, all others as "
                "background; these figures used the labels to pick that cluster.",
                "",
            ]
        lines += [
            "| class | IoU | F1 | pixels |",
            "|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {self.class_label(class_id)} | {_fmt(row['iou'])} | {_fmt(row['f1'])} | "
            f"{row['pixels']} |"
            for class_id, row in self.per_class.items()
        ]
        if self.binary is not None:
            lines += ["", "Binary metrics (foreground = class 1), mean over images:", ""]
            lines += ["| metric | mean |", "|---|---:|"]
            lines += [f"| {name} | {_fmt(value)} |" for name, value in self.binary.items()]
        if self.failures:
            lines += ["", "Failures:", ""]
            lines += [f"- `{image_id}`: {message}" for image_id, message in self.failures]
        return "\n".join(lines) + "\n"

    def class_label(self, class_id: int) -> str:
        """``"tumour (0)"`` for a named class, ``"0"`` otherwise."""
        name = self.class_names.get(class_id)
        return f"{name} ({class_id})" if name else str(class_id)


def _fmt(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.4f}"


def _jsonable(value: Any) -> Any:
    """Convert NumPy scalars, tuples and non-finite floats to JSON types, recursively."""
    if isinstance(value, dict):
        return {
            key if isinstance(key, str | int) else str(key): _jsonable(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple | np.ndarray):
        return [_jsonable(item) for item in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if value is None or isinstance(value, str):
        return value
    return str(value)


def _finite_mean(values: Iterable[float]) -> float:
    """Mean of the finite values, NaN when there is none."""
    array = np.asarray(list(values), dtype=np.float64)
    finite = array[np.isfinite(array)]
    return float(finite.mean()) if finite.size else float("nan")


def _binary_scores(
    pred: ArrayLike, gt: ArrayLike, mapping: NDArray[np.int64], ignore_index: int | None
) -> dict[str, float]:
    """Binary metrics of one image: foreground = pixels whose cluster maps to class 1."""
    pred_ids, gt_ids, valid = valid_pixels(pred, gt, ignore_index=ignore_index)
    pred_mask = np.zeros(valid.shape, dtype=bool)
    gt_mask = np.zeros(valid.shape, dtype=bool)
    pred_mask[valid] = mapping[pred_ids] == 1
    gt_mask[valid] = gt_ids == 1
    return {name: metric(pred_mask, gt_mask) for name, metric in BINARY_METRICS.items()}


def evaluate(
    ids: Iterable[Any],
    load: Callable[[Any], tuple[ArrayLike, ArrayLike]],
    *,
    match: str = "hungarian",
    scope: str = "dataset",
    ignore_index: int | None = 255,
    class_names: Mapping[int, str] | None = None,
) -> EvaluationResult:
    """Evaluate predicted cluster maps against ground-truth class maps.

    Parameters
    ----------
    ids : iterable
        Image ids, passed to ``load``.
    load : callable
        ``load(id) -> (pred, gt)``, two integer arrays of shape (H, W): predicted cluster ids
        and ground-truth class ids. It is called once per image, and a second time for a binary
        task, and must return the same arrays both times. It may raise
        :class:`~unseg.errors.InputError` (any :class:`~unseg.errors.UnsegError`): the image
        is recorded in ``failures`` and skipped.
    match : {"hungarian", "majority", "majority-normalized", "best-iou"}
        How clusters are mapped to classes (:func:`unseg.eval.match`). ``"best-iou"`` with
        ``scope="image"`` is the protocol of the CIRS thesis (its figure: ``miou_image_mean``).
    scope : {"dataset", "image"}
        ``"dataset"``: one mapping from the pooled confusion matrix, for labels consistent
        across images. ``"image"``: each image matched on its own confusion matrix.
    ignore_index : int or None
        Ground-truth id of the pixels to leave out (default 255); None leaves none out.
    class_names : mapping, optional
        Class id -> name, shown in the tables and kept in the result.

    Returns
    -------
    EvaluationResult
        Pooled per-class IoU/F1, mIoU and pixel accuracy, per-image scores and their mean, and
        for a binary task (all valid ground-truth ids in {0, 1}) the mean binary metrics.

    Raises
    ------
    ParameterError
        If ``match`` or ``scope`` is unknown.
    UnsegError
        If no image could be evaluated; the message lists the failures.
    """
    check_match_method(match)
    if scope not in SCOPES:
        raise ParameterError(
            f"scope must be one of {', '.join(SCOPES)}; received {scope!r}. "
            "Fix: use 'dataset' for labels consistent across images, 'image' otherwise."
        )
    accumulator = ConfusionAccumulator(ignore_index=ignore_index)
    done: list[Any] = []
    own_matrices: list[NDArray[np.int64]] = []
    failures: list[tuple[Any, str]] = []
    for image_id in ids:
        try:
            own_matrices.append(accumulator.update(*load(image_id)))
        except UnsegError as error:
            failures.append((image_id, str(error)))
            continue
        done.append(image_id)
    if not done:
        listed = "".join(f"\n  {image_id}: {message}" for image_id, message in failures)
        raise UnsegError(
            "nothing could be evaluated: "
            + (f"all {len(failures)} images failed:{listed}" if failures else "no image ids")
        )

    total = accumulator.matrix
    padded = accumulator.per_image
    if scope == "dataset":
        mappings = [match_clusters(total, match)] * len(done)
    else:
        mappings = [
            np.pad(
                match_clusters(own, match), (0, total.shape[0] - own.shape[0]), constant_values=-1
            )
            for own in own_matrices
        ]
    # Stacking the per-image matrices and their mappings pools the per-image counts.
    stacked, stacked_mapping = np.vstack(padded), np.concatenate(mappings)
    iou = iou_per_class(stacked, stacked_mapping)
    f1 = f1_per_class(stacked, stacked_mapping)
    pixels = total.sum(axis=0)
    per_image: list[dict[str, Any]] = [
        {
            "id": image_id,
            "miou": mean_iou(matrix, mapping),
            "pixel_accuracy": pixel_accuracy(matrix, mapping),
        }
        for image_id, matrix, mapping in zip(done, padded, mappings, strict=True)
    ]

    binary = None
    if total.shape[1] <= 2:
        for entry, mapping in zip(per_image, mappings, strict=True):
            try:
                pred, gt = load(entry["id"])
                entry.update(_binary_scores(pred, gt, mapping, ignore_index))
            except UnsegError as error:
                failures.append((entry["id"], f"second pass (binary metrics): {error}"))
        binary = {
            name: _finite_mean(entry[name] for entry in per_image if name in entry)
            for name in BINARY_METRICS
        }

    return EvaluationResult(
        match=match,
        scope=scope,
        n_images=len(done),
        n_clusters=int(total.shape[0]),
        classes=[int(c) for c in np.flatnonzero(pixels > 0)],
        miou=mean_iou(stacked, stacked_mapping),
        miou_image_mean=_finite_mean(entry["miou"] for entry in per_image),
        pixel_accuracy=pixel_accuracy(stacked, stacked_mapping),
        per_class={
            c: {"iou": float(iou[c]), "f1": float(f1[c]), "pixels": int(pixels[c])}
            for c in range(total.shape[1])
        },
        per_image=per_image,
        binary=binary,
        mapping=mappings[0].tolist() if scope == "dataset" else None,
        failures=failures,
        class_names={int(c): str(n) for c, n in (class_names or {}).items()},
        confusion=total.tolist(),
    )
