"""Folder runs: fit and segment a list of samples, fit and save a model, evaluate a folder of
label maps. One bad file never stops the others."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from unseg.data import LabelNames, Sample
from unseg.errors import InputError
from unseg.io import MASK_SUFFIXES, read_label_map
from unseg.methods import Segmenter
from unseg.workflows.runs import (
    Failures,
    LabelUsage,
    log,
    progress,
    read_images,
    run_record,
    write_record,
)

#: The record of a folder run, beside its label maps.
RUN_RECORD = "run.json"

if TYPE_CHECKING:
    from unseg.data.weak_labels import WeakLabels
    from unseg.eval import EvaluationResult


def sample_paths(samples: list[Sample]) -> list[Path]:
    """Every file a run reads: the samples' images and masks."""
    return [p for s in samples for p in (s.image, s.mask) if p is not None]


@dataclass
class SegmentRun:
    """What :func:`segment_samples` did."""

    written: list[str] = field(default_factory=list)
    failures: Failures = field(default_factory=Failures)
    fit_seconds: float = 0.0
    predict_seconds: float = 0.0
    #: What :meth:`LabelUsage.report` said of the label maps written.
    labels: dict[str, Any] = field(default_factory=dict)


def segment_samples(
    segmenter: Segmenter,
    samples: list[Sample],
    out: Path,
    *,
    fit: bool = True,
    overlays: bool = True,
    names: LabelNames | None = None,
) -> SegmentRun:
    """Fit ``segmenter`` on the samples (when it learns and ``fit``), then segment each one.

    Writes ``out/<id>.png`` label maps and, with ``overlays``, ``out/<id>_overlay.png``. A
    multigranular segmenter also writes each level, ``out/<id>_level<N>.png`` (coarse to
    fine), and ``out/<id>_levels.json``: segments per level, how long each level lasted, and
    the index of the level written as ``out/<id>.png``. ``out/run.json`` records the run: the
    method and its parameters, the images written and failed, how many of its labels the
    maps used (with a warning when a model collapsed), each sample's image and mask, and the
    label ``names`` given (their colours paint the overlays). Unreadable images are reported,
    recorded in the returned run and skipped. Label maps go to disk as they are made: memory
    does not grow with the number of images.
    """
    from unseg.io import atomic_write, output_dir, read_image, write_label_map, write_overlay
    from unseg.io.atomic import refuse_inputs_as_outputs

    refuse_inputs_as_outputs(
        [out / RUN_RECORD] + [out / f"{s.id}{suffix}" for s in samples
                              for suffix in (".png", "_overlay.png", "_levels.json")],
        sample_paths(samples))
    usage = LabelUsage()
    run = SegmentRun()
    output_dir(out)
    if fit and segmenter.requires_fit:
        start = time.perf_counter()
        segmenter.fit(read_images(samples, run.failures, f"fitting {segmenter.name}"))
        run.fit_seconds = time.perf_counter() - start
    for sample in progress(samples, f"segmenting ({segmenter.name})", total=len(samples)):
        if sample.id in run.failures:
            continue
        try:
            image = read_image(sample.image)
        except InputError as error:
            run.failures.add(sample.id, error)
            continue
        start = time.perf_counter()
        if segmenter.multigranular:
            found = segmenter.hierarchy(image)
            labels = found.levels[found.chosen]
        else:
            labels = segmenter.predict(image)
        run.predict_seconds += time.perf_counter() - start
        log.debug("%s: %.2f s", sample.id, time.perf_counter() - start)
        usage.add(labels)
        if segmenter.multigranular:
            for number, level in enumerate(found.levels):
                write_label_map(out / f"{sample.id}_level{number}.png", level)
            summary = {"segments": [int(level.max()) + 1 for level in found.levels],
                       "persistence": found.persistence, "chosen": found.chosen}
            with atomic_write(out / f"{sample.id}_levels.json") as tmp:
                tmp.write_text(json.dumps(summary, indent=1) + "\n")
        write_label_map(out / f"{sample.id}.png", labels)
        if overlays:
            colours = names.colour_table(int(labels.max()) + 1) if names else None
            write_overlay(out / f"{sample.id}_overlay.png", image, labels, colours=colours)
        run.written.append(sample.id)
    if run.written:
        run.labels = usage.report(segmenter.name, segmenter.n_labels_)
    write_record(out / RUN_RECORD, run_record(
        method=segmenter.name, params=segmenter.get_params(), images=len(samples),
        written=run.written, failed=run.failures.messages, labels=run.labels,
        seconds={"fit": run.fit_seconds, "predict": run.predict_seconds},
        samples={s.id: {"image": str(s.image.resolve()),
                        "mask": None if s.mask is None else str(s.mask.resolve())}
                 for s in samples},
        names=names.to_json() if names else {}))
    return run


@dataclass
class FitRun:
    """What :func:`fit_model` did."""

    segmenter: Segmenter
    n_images: int
    failures: Failures


#: Training images segmented after fitting to see how many labels the model uses.
FIT_CHECK_IMAGES = 8


def fit_model(method: str, params: dict[str, Any], samples: list[Sample], out: Path, *,
              labels: WeakLabels | None = None) -> FitRun:
    """Fit method ``method`` on the samples and save it to ``out``.

    A weakly supervised method (``requires_labels``) is given ``labels``, which must hold a row
    for every sample; its images are read first, and the rows of those that could be read
    are passed with them.

    ``out`` is checked before fitting. A method that trains a network keeps its training state
    in ``OUT.ckpt`` (unless ``params`` name a checkpoint), resumed when it exists and removed
    once the model is saved. After fitting, up to :data:`FIT_CHECK_IMAGES` training images are
    segmented to report how many labels the model uses (a warning when it collapsed); the
    model file records it under ``fitted_on``.
    """
    from unseg import methods
    from unseg.errors import ParameterError
    from unseg.io.atomic import refuse_inputs_as_outputs, writable_file

    writable_file(out)
    refuse_inputs_as_outputs([out, Path(str(out) + ".ckpt")], sample_paths(samples))
    cls = methods.get(method)
    default_checkpoint = "checkpoint" in cls.param_names() and params.get("checkpoint") is None
    if default_checkpoint:
        params = params | {"checkpoint": str(out) + ".ckpt"}
    segmenter = methods.create(method, **params)
    if not segmenter.requires_fit:
        raise ParameterError(
            f"{segmenter.name} learns nothing from images, so there is no model to save. "
            f"Fix: run `unseg segment {segmenter.name} INPUT --out DIR` directly."
        )
    failures = Failures()
    if segmenter.requires_labels:
        if labels is None:
            raise ParameterError(
                f"{segmenter.name} learns from image-level labels. Fix: pass --labels "
                "FILE.csv, --labels names (WSSS4LUAD-style file names) or --labels masks.")
        labels.for_samples(samples)
        images = list(read_images(samples, failures, f"reading ({segmenter.name})"))
        read = [s for s in samples if s.id not in failures]
        segmenter.fit(images, labels.for_samples(read))
    elif labels is not None:
        raise ParameterError(
            f"{segmenter.name} learns without labels; --labels is for the weakly supervised "
            "methods (`unseg methods`). Fix: leave out --labels.")
    else:
        segmenter.fit(read_images(samples, failures, f"fitting {segmenter.name}"))
    usage = LabelUsage()
    check = [s for s in samples if s.id not in failures][:FIT_CHECK_IMAGES]
    for image in read_images(check, failures, "checking the labels used"):
        usage.add(segmenter.predict(image))
    n_images = len(samples) - len(failures)
    used = usage.report(segmenter.name, segmenter.n_labels_)
    methods.save_model(segmenter, out, fitted_on={"images": n_images, "labels": used})
    if default_checkpoint:
        Path(params["checkpoint"]).unlink(missing_ok=True)
    return FitRun(segmenter, n_images, failures)


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
    pred_dir: Path, gt_dir: Path, *, match: str = "hungarian", scope: str = "dataset",
    binarize: bool = False, ignore_index: int | None = 255,
) -> EvaluationResult:
    """Evaluate ``pred_dir/<name>.png`` against the mask of the same name in ``gt_dir``.

    A mask without a prediction, or a prediction whose size differs from its mask, is recorded
    as a failure (named in ``result.failures``) and the other images are still evaluated.
    The classes are named after the dataset's ``classes.json`` or ``classes.txt``
    (:func:`unseg.data.class_names`) where it has one.

    Parameters
    ----------
    binarize : bool
        Score every nonzero mask id as class 1 (foreground), 0 as class 0: instance masks (one
        id per nucleus) become foreground masks, every instance counted.
    ignore_index : int or None
        Mask id of the pixels to leave out; None counts every pixel (the right choice for
        instance masks, whose id 255 is an object). A mask holding ids above ``ignore_index``
        is a failure that says so, rather than losing the objects of that id.
    """
    from unseg.data import class_names
    from unseg.eval import evaluate

    names = class_names(gt_dir).names
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
        if ignore_index is not None and gt.max() > ignore_index:
            raise InputError(
                gts[name], f"holds ids up to {gt.max()}, above the ignore id {ignore_index}, "
                f"so {ignore_index} is an ordinary id here",
                "pass --ignore-id none (and --binarize for an instance mask)")
        if binarize:
            ignored = gt == ignore_index if ignore_index is not None else False
            gt = np.where(ignored, gt, gt != 0).astype(gt.dtype)
        return pred, gt

    return evaluate(sorted(gts), load, match=match, scope=scope, ignore_index=ignore_index,
                    class_names=names)
