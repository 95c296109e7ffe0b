"""What every run over many inputs shares: progress bars, and failures that stop nothing.

A bad input is recorded and logged as a warning on the ``unseg`` logger as it happens; the run
goes on with the other inputs. The command line prints those messages and turns the record into
its exit code.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from unseg.data import Sample
from unseg.errors import InputError
from unseg.types import Image

T = TypeVar("T")

log = logging.getLogger("unseg")


def progress(items: Iterable[T], desc: str, total: int | None = None) -> Iterator[T]:
    """A progress bar on standard error (hidden when standard error is not a terminal)."""
    from tqdm import tqdm

    yield from tqdm(items, desc=desc, total=total, unit="img", disable=None, file=sys.stderr)


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
