"""Progress of long steps: a bar on a terminal, plain log lines everywhere else.

On a terminal a step shows a tqdm bar on standard error. When standard error is not a terminal
(a batch job, a pipe, a log file) the step writes a line on the ``unseg`` logger (level INFO)
at most every ``UNSEG_PROGRESS_SECONDS`` seconds (30 by default) and one when it ends: items
done, rate, elapsed time, ETA, and the step's own figures (an epoch's loss). The command line
prints INFO lines unless ``--quiet``; a program routes them with :mod:`logging`.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Any, Self, TypeVar

T = TypeVar("T")

log = logging.getLogger("unseg")

#: Environment variable: seconds between two progress lines when not on a terminal.
INTERVAL_VARIABLE = "UNSEG_PROGRESS_SECONDS"


def _interval() -> float:
    try:
        return max(0.0, float(os.environ.get(INTERVAL_VARIABLE, "30")))
    except ValueError:
        return 30.0


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else (
        f"{secs}s")


class Progress:
    """Progress of one step of ``total`` items (``None``: unknown).

    Use as a context manager; call :meth:`update` as items finish, with the step's figures
    as keywords (``update(1, loss="0.12")``).
    """

    def __init__(self, desc: str, total: int | None = None, *, unit: str = "img",
                 initial: int = 0) -> None:
        self.desc, self.total, self.unit = desc, total, unit
        self.done = self.start_count = initial
        self.status: dict[str, Any] = {}
        self.start = self.last = time.monotonic()
        self.bar = None
        if sys.stderr.isatty() and log.isEnabledFor(logging.INFO):
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, desc=desc, unit=unit, file=sys.stderr)

    def update(self, n: int = 1, **status: Any) -> None:
        """``n`` more items are done; ``status`` replaces the figures shown beside them."""
        self.done += n
        self.status = status or self.status
        if self.bar is not None:
            if status:
                self.bar.set_postfix(status)
            self.bar.update(n)
            return
        now = time.monotonic()
        if now - self.last >= _interval() and log.isEnabledFor(logging.INFO):
            self.last = now
            log.info("%s", self.line(now))

    def line(self, now: float | None = None) -> str:
        """The plain progress line: counts, rate, elapsed, ETA and the status figures."""
        now = time.monotonic() if now is None else now
        elapsed = now - self.start
        count = f"{self.done}/{self.total}" if self.total is not None else f"{self.done}"
        parts = [f"{self.desc}: {count} {self.unit}"]
        rate = (self.done - self.start_count) / elapsed if elapsed > 0 else 0.0
        if rate > 0:
            parts.append(f"{rate:.3g} {self.unit}/s" if rate >= 1 else
                         f"{1 / rate:.3g} s/{self.unit}")
        parts.append(f"{_duration(elapsed)} elapsed")
        if self.total is not None and rate > 0 and self.done < self.total:
            parts.append(f"ETA {_duration((self.total - self.done) / rate)}")
        parts += [f"{key} {value}" for key, value in self.status.items()]
        return ", ".join(parts)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif log.isEnabledFor(logging.INFO):
            log.info("%s", self.line())

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self.bar is not None or exc_type is None:
            self.close()


def progress(items: Iterable[T], desc: str, total: int | None = None, unit: str = "img"
             ) -> Iterator[T]:
    """Iterate over ``items`` reporting progress (:class:`Progress`)."""
    with Progress(desc, total, unit=unit) as report:
        for item in items:
            yield item
            report.update()
