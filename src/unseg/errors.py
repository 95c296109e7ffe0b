"""The exception tree.

Every error a user can cause derives from :class:`UnsegError`; the command line prints its message
(no traceback) and exits non-zero. Messages say what was expected, what was received and how to
fix it; errors about files start with the file's path.
"""

from __future__ import annotations

from pathlib import Path


class UnsegError(Exception):
    """Base class of the errors a user can cause and fix."""


class InputError(UnsegError):
    """A file given by the user cannot be used: missing, unreadable, corrupt or inconsistent."""

    def __init__(self, path: str | Path, reason: str, fix: str | None = None) -> None:
        self.path = Path(path)
        self.reason = reason
        self.fix = fix
        message = f"{self.path}: {reason}"
        if fix:
            message += f". Fix: {fix}"
        super().__init__(message)


class ParameterError(UnsegError, ValueError):
    """A parameter has a value outside what the method accepts."""


class NotFittedError(UnsegError, RuntimeError):
    """``predict`` was called on a segmenter that needs ``fit`` first."""


class MissingDependencyError(UnsegError, ImportError):
    """An optional dependency is not installed; the message names the extra that provides it."""


class MissingWeightsError(UnsegError):
    """A backbone's weights are neither cached nor downloadable (for example offline).

    The message names the model, the cache path that was looked in and the offline alternatives.
    """
