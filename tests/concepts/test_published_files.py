"""Published banks: pinned downloads and joblib files read without running code."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pickle
import re
from pathlib import Path

import joblib
import numpy as np
import pytest

from unseg.concepts import PUBLISHED, load_bank, published
from unseg.concepts.joblib_arrays import load_arrays
from unseg.concepts.published import convert_joblib
from unseg.errors import InputError, UnsegError

UNI = PUBLISHED["tcga-uni"]


def centres(*ks: int, channels: int = 1024) -> dict[int, np.ndarray]:
    return {k: np.random.default_rng(k).random((k, channels)).astype(np.float32) for k in ks}


@pytest.fixture
def no_joblib_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """``joblib.load`` unpickles anything, so the conversion must not call it."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("joblib.load unpickles arbitrary objects")

    monkeypatch.setattr(joblib, "load", refuse)


@pytest.mark.parametrize("writer", ["joblib", "pickle"])
def test_a_file_of_arrays_converts_to_the_bank(tmp_path: Path, no_joblib_load, writer: str
                                               ) -> None:
    arrays = centres(8, 16)
    arrays[8] = np.asfortranarray(arrays[8].astype(np.float64))  # converted to float32
    source = tmp_path / "uni.joblib"
    if writer == "joblib":
        joblib.dump({**arrays, 4: np.ones(1024)}, source)  # 1-D: not a bank, skipped
    else:
        source.write_bytes(pickle.dumps(list(arrays.values())))  # arrays by numpy's _reconstruct
    bank = load_bank(convert_joblib(source, tmp_path / "uni.npz", UNI))
    assert bank.ks == [8, 16] and bank.backbone == "uni" and bank.source == "published:tcga-uni"
    assert all(np.array_equal(bank.get(k), arrays[k].astype(np.float32)) for k in (8, 16))


def test_arrays_in_builtin_containers_are_read_back(tmp_path: Path, no_joblib_load) -> None:
    content = {"k": centres(8), "names": ["a", "b"], "ks": (8, 16), "sets": [{1}, frozenset({2})]}
    joblib.dump(content, tmp_path / "any.joblib", protocol=3)  # names builtins.set, frozenset
    loaded = load_arrays(tmp_path / "any.joblib")
    assert np.array_equal(loaded.pop("k")[8], content.pop("k")[8]) and loaded == content


class Payload:
    """An object whose unpickling calls ``action(*args)``."""

    def __init__(self, action: object, *args: object) -> None:
        self.action, self.args = action, args

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return self.action, self.args


@pytest.mark.parametrize("action", [open, os.system])
def test_a_crafted_file_is_refused_without_running_it(tmp_path: Path, action) -> None:
    marker = tmp_path / "marker"
    args = (str(marker), "w") if action is open else (f"touch {marker}",)
    source = tmp_path / "uni.joblib"
    joblib.dump({**centres(8), 16: Payload(action, *args)}, source)
    refused = f"{action.__module__}.{action.__qualname__}"  # builtins.open, posix.system
    with pytest.raises(InputError, match=rf"uni\.joblib: refused to load the global {refused}"):
        convert_joblib(source, tmp_path / "uni.npz", UNI)
    assert not marker.exists()
    assert not (tmp_path / "uni.npz").exists()


def test_a_file_that_is_not_an_uncompressed_joblib_file_is_an_input_error(tmp_path: Path
                                                                           ) -> None:
    (tmp_path / "junk.joblib").write_bytes(b"junk")
    joblib.dump(centres(8), tmp_path / "zipped.joblib", compress=3)
    for name in ("junk.joblib", "zipped.joblib"):
        with pytest.raises(InputError, match=rf"{name}: not an uncompressed joblib file"):
            convert_joblib(tmp_path / name, tmp_path / "uni.npz", UNI)


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], Path]:
    """Downloads answered with a joblib file of uni-shaped centres; the URLs asked for."""
    monkeypatch.delenv("UNSEG_CONCEPTS_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    urls: list[str] = []

    def urlretrieve(url: str, filename: Path) -> None:
        urls.append(url)
        joblib.dump(centres(8, 16), filename)

    monkeypatch.setattr("urllib.request.urlretrieve", urlretrieve)
    return urls, tmp_path / "cache" / "unseg" / "concepts"


def test_the_download_is_pinned_to_a_commit_and_its_hash(served, monkeypatch, tmp_path) -> None:
    urls, cache = served
    joblib.dump(centres(8, 16), tmp_path / "served.joblib")
    digest = hashlib.sha256((tmp_path / "served.joblib").read_bytes()).hexdigest()
    monkeypatch.setitem(PUBLISHED, "tcga-uni", dataclasses.replace(UNI, sha256=digest))
    bank = load_bank("tcga-uni")
    assert bank.path == cache / "uni.npz" and bank.ks == [8, 16]
    assert urls == [f"https://github.com/deepathology/fseg/raw/{published.COMMIT}/"
                    "model_embeddings/uni.joblib"]
    assert re.fullmatch("[0-9a-f]{40}", published.COMMIT)
    assert all(re.fullmatch("[0-9a-f]{64}", entry.sha256) for entry in PUBLISHED.values())


def test_a_download_with_another_hash_is_an_error_and_caches_nothing(served) -> None:
    urls, cache = served
    with pytest.raises(UnsegError) as error:
        load_bank("tcga-uni")
    message = str(error.value)
    assert "uni.joblib" in message and UNI.sha256 in message and "Fix:" in message
    assert re.search(r"has sha256 [0-9a-f]{64}, not the pinned", message)
    assert len(urls) == 1
    assert not cache.exists() or not any(cache.iterdir())
