"""One run at a time per output: an exclusive lock, and who holds it when it is taken."""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from unseg.errors import UnsegError


class OutputLocked(UnsegError):
    """Another run holds the lock of an output."""


@contextmanager
def output_lock(path: str | Path, what: str) -> Iterator[None]:
    """Hold the exclusive lock file ``path`` while the block writes ``what``.

    The lock is the operating system's (``filelock``), so it ends with the process that holds
    it, however that process ends. Beside it, ``<name>.lock.owner`` says who holds it (process,
    host, start time, command line) while it is held.

    Raises
    ------
    OutputLocked
        At once, if another process holds the lock; the message names that process.
    """
    from filelock import FileLock, Timeout

    path = Path(path)
    owner = path.with_name(path.name + ".owner")
    lock = FileLock(path, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise OutputLocked(
            f"{what} is being written by another unseg run ({_holder(owner)}). Fix: wait for "
            "it to finish, or write to another --out folder."
        ) from None
    try:
        owner.write_text(json.dumps({
            "pid": os.getpid(), "host": socket.gethostname(),
            "since": time.strftime("%Y-%m-%d %H:%M:%S"), "command": " ".join(sys.argv),
        }))
        yield
    finally:
        owner.unlink(missing_ok=True)
        lock.release()  # the file stays: removing it could let two runs lock two files


def _holder(owner: Path) -> str:
    try:
        info = json.loads(owner.read_text())
        return (f"process {info['pid']} on {info['host']} since {info['since']}: "
                f"{info['command']}")
    except (OSError, ValueError, KeyError):
        return "its details are not readable"
