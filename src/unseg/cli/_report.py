"""What every command prints the same way: messages of the ``unseg`` logger, failed inputs and
the exit code they give."""

from __future__ import annotations

import logging
import sys

from unseg.workflows.runs import Failures


class _Stderr(logging.Handler):
    """Writes records to the standard error of the moment (which tests may replace)."""

    def emit(self, record: logging.LogRecord) -> None:
        print(self.format(record), file=sys.stderr)


def setup_logging(level: int = logging.INFO) -> None:
    """Print the ``unseg`` logger's messages of ``level`` and above as ``unseg: message``
    (warnings as ``unseg: warning: message``)."""
    logger = logging.getLogger("unseg")
    if not any(isinstance(h, _Stderr) for h in logger.handlers):
        handler = _Stderr()
        handler.setFormatter(_Format())
        logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False


class _Format(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        kind = "" if record.levelno == logging.INFO else f"{record.levelname.lower()}: "
        return f"unseg: {kind}{record.getMessage()}"


def exit_code(failures: Failures) -> int:
    """0 when every input worked, else 1 after a summary on standard error."""
    if not failures:
        return 0
    print(f"unseg: {len(failures)} input(s) failed:", file=sys.stderr)
    for message in failures.messages.values():
        print(f"  {message}", file=sys.stderr)
    return 1
