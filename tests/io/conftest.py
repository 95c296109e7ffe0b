from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def unseg_warnings() -> Iterator[list[str]]:
    """Warnings logged on the ``unseg`` logger during the test (a handler on that logger, so
    they are seen even when the command line has turned off propagation)."""
    logger = logging.getLogger("unseg")
    handler = _Collect()
    logger.addHandler(handler)
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)
