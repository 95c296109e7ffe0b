"""What every run over many inputs shares: failures that stop nothing, reading images, the
labels a run used, and the record of a run.

A bad input is recorded and logged as a warning on the ``unseg`` logger as it happens; the run
goes on with the other inputs. The command line prints those messages and turns the record into
its exit code.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from unseg._progress import progress
from unseg.data import Sample
from unseg.errors import InputError
from unseg.types import Image

log = logging.getLogger("unseg")


class Failures:
    """Bad inputs by id, each logged on the ``unseg`` logger as it happens."""

    def __init__(self) -> None:
        self.messages: dict[str, str] = {}

    def add(self, key: str, error: Exception | str) -> None:
        self.messages[key] = str(error)
        log.warning("skipped: %s", error)

    def __contains__(self, key: object) -> bool:
        return key in self.messages

    def __len__(self) -> int:
        return len(self.messages)


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


#: A label "is used" when it holds at least this share of the pixels.
USED_SHARE = 0.01
#: One label holding this share of the pixels or more means the model has collapsed.
COLLAPSED_SHARE = 0.95


@dataclass
class LabelUsage:
    """How many pixels each label took, over the label maps of a run."""

    counts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def add(self, labels: np.ndarray) -> None:
        """Count one label map (ids >= 0)."""
        found = np.bincount(np.asarray(labels).ravel())
        size = max(len(found), len(self.counts))
        self.counts = (np.pad(self.counts, (0, size - len(self.counts)))
                       + np.pad(found, (0, size - len(found))))

    def summary(self, method: str, n_labels: int | None) -> dict[str, Any]:
        """What the run used, and a warning when a model with ``n_labels`` labels collapsed:
        fewer than half of them hold 1% of the pixels, or one holds 95% or more."""
        total = int(self.counts.sum())
        shares = self.counts / max(total, 1)
        used = int((shares >= USED_SHARE).sum())
        largest = float(shares.max()) if total else 0.0
        result: dict[str, Any] = {
            "n_labels": n_labels, "pixels": total, "ids_present": int((self.counts > 0).sum()),
            "labels_used": used, "largest_share": round(largest, 6),
            "share": {str(i): round(float(v), 6) for i, v in enumerate(shares) if v > 0},
            "warning": None,
        }
        if n_labels is not None and n_labels >= 2 and total and (
                used < n_labels / 2 or largest >= COLLAPSED_SHARE):
            result["warning"] = (
                f"{method} used {used} of its {n_labels} labels (labels holding at least "
                f"{USED_SHARE:.0%} of the pixels; the largest holds {largest:.2%}): the model "
                "may have collapsed. Fix: try another --random-state, more training, or a "
                "smaller --k")
        return result

    def report(self, method: str, n_labels: int | None) -> dict[str, Any]:
        """:meth:`summary`, also logged: one info line, and the warning if any."""
        result = self.summary(method, n_labels)
        of = f" of {n_labels}" if n_labels is not None else ""
        log.info("%s: %d%s labels used (at least %s of the pixels each); the largest holds "
                 "%.1f%%", method, result["labels_used"], of, f"{USED_SHARE:.0%}",
                 100 * result["largest_share"])
        if result["warning"]:
            log.warning("%s", result["warning"])
        return result


def run_record(**fields: Any) -> dict[str, Any]:
    """The record of a run written beside its outputs (``run.json``): the package version,
    the time, the command line and torch's thread count, then ``fields``."""
    from unseg import __version__

    torch, given = sys.modules.get("torch"), os.environ.get("OMP_NUM_THREADS", "")
    threads = (torch.get_num_threads() if torch is not None
               else int(given) if given.isdigit() else None)
    return {"unseg_version": __version__, "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "command": " ".join(sys.argv), "threads": threads} | fields


def write_record(path: Path, record: dict[str, Any]) -> None:
    """Write a run record as JSON, atomically."""
    import json

    from unseg.io import atomic_write

    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(record, indent=1, default=str) + "\n")
