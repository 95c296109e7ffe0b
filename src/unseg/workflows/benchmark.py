"""The benchmark runner: several methods on one labelled folder, one table.

Each method is fitted (if it learns) and run on every image; its label maps are written to
``out/predictions/<method>/`` and scored with the evaluation protocol. Seconds per image count
``predict`` alone; peak memory is what Python and NumPy allocated while the method ran
(``tracemalloc``), reading and writing files included.
"""

from __future__ import annotations

import csv
import io
import math
import tracemalloc
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unseg.errors import InputError, ParameterError
from unseg.eval import EvaluationResult
from unseg.io.atomic import refuse_inputs_as_outputs
from unseg.workflows.folders import evaluate_folders, sample_paths, segment_samples


@dataclass
class BenchmarkRow:
    """One method's scores and costs."""

    method: str
    params: dict[str, Any]
    result: EvaluationResult
    n_images: int
    seconds_per_image: float
    fit_seconds: float
    peak_mb: float
    #: Image id -> why it was not segmented or not scored: every image of the data counts.
    failures: dict[str, str]

    def columns(self) -> dict[str, Any]:
        cols: dict[str, Any] = {
            "method": self.method,
            "mIoU": self.result.miou,
            "mIoU per-image mean": self.result.miou_image_mean,
            "pixel accuracy": self.result.pixel_accuracy,
        }
        if self.result.binary:
            cols["Dice"] = self.result.binary["dice"]
            cols["HD95 (px)"] = self.result.binary["hausdorff95"]
        cols |= {
            "s/image": self.seconds_per_image,
            "fit s": self.fit_seconds,
            "peak MB": self.peak_mb,
            "failed": len(self.failures),
        }
        return cols


def run_benchmark(
    data: Path,
    method_names: Sequence[str],
    out: Path,
    *,
    match: str = "hungarian",
    scope: str = "dataset",
    params: dict[str, Any] | None = None,
    binarize: bool = False,
    ignore_index: int | None = 255,
) -> list[BenchmarkRow]:
    """Run each method on the labelled folder ``data`` and score it.

    ``params`` go to every method that has a parameter of that name (for example ``k``);
    ``binarize`` and ``ignore_index`` are those of :func:`evaluate_folders`. An image counts as
    failed for a method when it could not be segmented or not be scored.
    """
    from unseg import methods
    from unseg.data import discover

    samples = discover([data])
    unlabelled = [s.image for s in samples if s.mask is None]
    if unlabelled:
        raise InputError(
            unlabelled[0], f"no mask for this image ({len(unlabelled)} without masks)",
            "benchmark a folder holding img/ and mask/ with a mask for every image",
        )
    segmenters = [methods.get(name) for name in method_names]  # fail fast on unknown names
    weak = [cls.name for cls in segmenters if cls.requires_labels]
    if weak:
        raise ParameterError(
            f"{', '.join(weak)} learn(s) from image-level labels, which a benchmark of "
            "label-free methods does not give. Fix: leave it out, and fit it on other images "
            f"with `unseg fit {weak[0]} DATA --labels masks --out MODEL`, segment with --model "
            "and score with `unseg evaluate --match identity` (benchmarks/lpd.py does this).")
    refuse_inputs_as_outputs(
        [out / name for name in ("benchmark.md", "benchmark.csv", "benchmark.png", RECORD)]
        + [out / "predictions" / cls.name for cls in segmenters], sample_paths(samples))
    rows = []
    for cls in segmenters:
        kwargs = {k: v for k, v in (params or {}).items() if k in cls.param_names()}
        segmenter = methods.create(cls.name, **kwargs)
        pred_dir = out / "predictions" / cls.name
        tracemalloc.start()
        try:
            run = segment_samples(segmenter, samples, pred_dir, overlays=False)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        result = evaluate_folders(pred_dir, data, match=match, scope=scope,
                                  binarize=binarize, ignore_index=ignore_index)
        failed = dict(run.failures.messages)
        failed.update((str(image_id), message) for image_id, message in result.failures)
        n = max(len(run.written), 1)
        rows.append(
            BenchmarkRow(
                method=cls.name,
                params=segmenter.get_params(),
                result=result,
                n_images=len(run.written),
                seconds_per_image=run.predict_seconds / n,
                fit_seconds=run.fit_seconds,
                peak_mb=peak / 2**20,
                failures=failed,
            )
        )
    return rows


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.3f}"
    return str(value)


def markdown_table(rows: Sequence[BenchmarkRow]) -> str:
    """The rows as a markdown table."""
    header = list(rows[0].columns())
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(v) for v in row.columns().values()) + " |" for row in rows]
    return "\n".join(lines)


def class_table(rows: Sequence[BenchmarkRow]) -> str:
    """Each method's IoU per class (the classes of the ground truth, by name) as markdown."""
    classes = rows[0].result.classes
    header = ["method"] + [rows[0].result.class_label(c) for c in classes]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join([row.method] + [_fmt(row.result.per_class[c]["iou"])
                                                for c in classes]) + " |" for row in rows]
    return "\n".join(lines)


#: The benchmark's record: data, protocol, and each method's parameters, scores and failures.
RECORD = "benchmark.json"


def write_reports(
    rows: Sequence[BenchmarkRow], out: Path, *, data: Path, match: str, scope: str
) -> list[Path]:
    """Write ``benchmark.md``, ``benchmark.csv``, ``benchmark.png`` and ``benchmark.json`` (the
    record a report is made from: every metric of :class:`EvaluationResult`) into ``out``."""
    from unseg.io import atomic_write
    from unseg.report.plots import bar_plot
    from unseg.workflows.runs import run_record, write_record

    n_images = max(row.n_images for row in rows)
    note = (
        f"Data: {data} ({n_images} images). Clusters matched to classes by {match}, scope "
        f"{scope}. mIoU: per-class IoU pooled over all pixels of the {scope} scope, averaged over "
        "classes present in the ground truth; the per-image mean is beside it. s/image: predict "
        "only. peak MB: memory allocated by Python and NumPy while the method ran."
    )
    params = "\n".join(f"- {row.method}: {row.params}" for row in rows)
    md, csv_path, png = out / "benchmark.md", out / "benchmark.csv", out / "benchmark.png"
    with atomic_write(md) as tmp:
        tmp.write_text(f"{markdown_table(rows)}\n\n{note}\n\nIoU per class:\n\n"
                       f"{class_table(rows)}\n\nParameters:\n{params}\n")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0].columns()))
    writer.writeheader()
    writer.writerows(row.columns() for row in rows)
    with atomic_write(csv_path) as tmp:
        tmp.write_text(buffer.getvalue())
    bar_plot(
        {row.method: row.result.miou for row in rows},
        png,
        title=f"mIoU on {Path(data).name} ({match} matching, {scope} scope)",
        ylabel="mIoU",
    )
    write_record(out / RECORD, run_record(
        data=str(Path(data).resolve()), match=match, scope=scope, n_images=n_images,
        methods=[{"method": row.method, "params": row.params,
                  "columns": {k: None if isinstance(v, float) and math.isnan(v) else v
                              for k, v in row.columns().items()},
                  "result": row.result.to_dict(), "failures": row.failures} for row in rows]))
    return [md, csv_path, png, out / RECORD]
