from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

SHARED_DATA = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real images and masks beside the checkout; tests that need them skip without them."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (it sits beside the checkout)")
    return SHARED_DATA


SLIDE_SIZE = (1500, 1100)  # level-0 width, height of the generated test slides


@pytest.fixture(scope="session")
def synthetic_slide(tmp_path_factory: pytest.TempPathFactory):
    """Factory of generated whole slides, ``(flavour="tiff", mpp=0.25) -> Path``, each written
    once per session (:data:`SLIDE_SIZE`, 256 px tiles, seed 0)."""
    from unseg.data.synthetic import write_synthetic_slide

    folder = tmp_path_factory.mktemp("slides")
    cache: dict[tuple[str, float | None], Path] = {}

    def make(flavour: str = "tiff", mpp: float | None = 0.25) -> Path:
        key = (flavour, mpp)
        if key not in cache:
            suffix = ".svs" if flavour == "svs" else ".tif"
            path = folder / f"synthetic-{flavour}-{mpp}{suffix}"
            width, height = SLIDE_SIZE
            cache[key] = write_synthetic_slide(path, width, height, flavour=flavour, mpp=mpp)
        return cache[key]

    return make


@pytest.fixture
def killed_after(monkeypatch: pytest.MonkeyPatch
                 ) -> Callable[[int], AbstractContextManager[None]]:
    """``with killed_after(n): fit(...)``: training stops as if killed right after writing its
    n-th checkpoint (the block must be stopped so)."""
    import unseg.train.loop as loop

    save = loop._save_checkpoint

    @contextmanager
    def kill(n_saves: int) -> Iterator[None]:
        calls = []

        def save_then_die(path: Path, payload: dict) -> None:
            save(path, payload)
            calls.append(path)
            if len(calls) == n_saves:
                raise KeyboardInterrupt

        monkeypatch.setattr(loop, "_save_checkpoint", save_then_die)
        try:
            with pytest.raises(KeyboardInterrupt):
                yield
        finally:
            monkeypatch.setattr(loop, "_save_checkpoint", save)

    return kill


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
