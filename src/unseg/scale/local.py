"""The local runner: fit and segment a list of samples, one bad file never stopping the others."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from unseg.data import Sample
from unseg.errors import InputError
from unseg.methods.base import Segmenter
from unseg.types import Image

T = TypeVar("T")


def progress(items: Iterable[T], desc: str, total: int | None = None) -> Iterator[T]:
    """A progress bar on standard error (hidden when standard error is not a terminal)."""
    from tqdm import tqdm

    yield from tqdm(items, desc=desc, total=total, unit="img", disable=None, file=sys.stderr)


class Failures:
    """Bad inputs by sample id, each reported on standard error as it happens."""

    def __init__(self) -> None:
        self.messages: dict[str, str] = {}

    def add(self, key: str, error: Exception | str) -> None:
        self.messages[key] = str(error)
        print(f"unseg: skipped: {error}", file=sys.stderr)

    def __contains__(self, key: object) -> bool:
        return key in self.messages

    def __len__(self) -> int:
        return len(self.messages)

    def exit_code(self) -> int:
        """0 when every input worked, else 1 after a summary on standard error."""
        if not self.messages:
            return 0
        print(f"unseg: {len(self.messages)} input(s) failed:", file=sys.stderr)
        for message in self.messages.values():
            print(f"  {message}", file=sys.stderr)
        return 1


def read_images(samples: list[Sample], failures: Failures, desc: str) -> Iterator[Image]:
    """Read the samples' images lazily with a progress bar; bad files go to ``failures``."""
    from unseg.io import read_image

    for sample in progress(samples, desc, total=len(samples)):
        if sample.id in failures:
            continue
        try:
            yield read_image(sample.image)
        except InputError as error:
            failures.add(sample.id, error)


@dataclass
class SegmentRun:
    """What :func:`segment_samples` did."""

    written: list[str] = field(default_factory=list)
    failures: Failures = field(default_factory=Failures)
    fit_seconds: float = 0.0
    predict_seconds: float = 0.0


def segment_samples(
    segmenter: Segmenter,
    samples: list[Sample],
    out: Path,
    *,
    fit: bool = True,
    overlays: bool = True,
) -> SegmentRun:
    """Fit ``segmenter`` on the samples (when it learns and ``fit``), then segment each one.

    Writes ``out/<id>.png`` label maps and, with ``overlays``, ``out/<id>_overlay.png``. A
    multigranular segmenter also writes each level, ``out/<id>_level<N>.png`` (coarse to
    fine), and ``out/<id>_levels.json``: segments per level, how long each level lasted, and
    the index of the level written as ``out/<id>.png``.
    Unreadable images are reported, recorded in the returned run and skipped.
    """
    from unseg.io import atomic_write, output_dir, read_image, write_label_map, write_overlay

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
        if segmenter.multigranular:
            for number, level in enumerate(found.levels):
                write_label_map(out / f"{sample.id}_level{number}.png", level)
            summary = {"segments": [int(level.max()) + 1 for level in found.levels],
                       "persistence": found.persistence, "chosen": found.chosen}
            with atomic_write(out / f"{sample.id}_levels.json") as tmp:
                tmp.write_text(json.dumps(summary, indent=1) + "\n")
        write_label_map(out / f"{sample.id}.png", labels)
        if overlays:
            write_overlay(out / f"{sample.id}_overlay.png", image, labels)
        run.written.append(sample.id)
    return run
