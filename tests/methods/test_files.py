"""Model files: arrays and JSON only, every part checked on loading, nothing ever unpickled."""

from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from unseg import methods
from unseg.data.synthetic import quadrants
from unseg.errors import InputError

IMAGES = [quadrants(size=32, random_state=s)[0] for s in range(3)]


@pytest.fixture()
def saved(tmp_path: Path) -> Path:
    model = methods.create("kmeans-color-dataset", k=3).fit(IMAGES)
    return methods.save_model(model, tmp_path / "colours.npz", fitted_on={"images": 3})


def _rewrite(path: Path, change) -> None:  # type: ignore[no-untyped-def]
    """Rewrite a model file with ``change(header, arrays)`` applied."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    header = json.loads(arrays.pop("header.json").tobytes())
    change(header, arrays)
    text = np.frombuffer(json.dumps(header).encode(), np.uint8)
    with open(path, "wb") as f:
        np.savez(f, **{"header.json": text}, **arrays)


def test_a_model_file_is_arrays_and_json(saved: Path) -> None:
    with zipfile.ZipFile(saved) as zf:
        assert all(name.endswith(".npy") for name in zf.namelist())
    info = methods.model_info(saved)
    assert info["method"] == "kmeans-color-dataset" and info["params"]["k"] == 3
    assert info["fitted_on"] == {"images": 3} and info["format_version"] == 2
    loaded = methods.load_model(saved)
    assert np.array_equal(loaded.centers_, methods.create("kmeans-color-dataset", k=3)
                          .fit(IMAGES).centers_)


def test_a_pickle_is_refused_without_being_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "marker"

    class Payload:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (Path.touch, (marker,))

    crafted = tmp_path / "model.pkl"
    crafted.write_bytes(pickle.dumps({"format": "unseg-model", "state": Payload()}))
    with pytest.raises(InputError, match="is a Python pickle .* never read. Fix: fit the model"):
        methods.load_model(crafted)
    assert not marker.exists()


@pytest.mark.parametrize(("change", "message"), [
    (lambda h, a: a.update(a0=a["a0"][:, :2]), r"centers_ is float32 \(3, 2\), expected "
                                               r"float32 \(\*, 3\)"),
    (lambda h, a: a.update(a0=a["a0"].astype(np.float64)), "centers_ is float64"),
    (lambda h, a: a.update(a0=np.zeros((5, 3), np.float32)), "centers_ has 5 rows, k is 3"),
    (lambda h, a: h["state"].pop("centers_"), "its learned state has no centers_"),
    (lambda h, a: h["state"].update(extra_=1), "unknown extra_"),
    (lambda h, a: a.pop("a0"), "the array 'a0' the header names is not in the file"),
    (lambda h, a: h["params"].update(k=0), "k must be an integer >= 1"),
    (lambda h, a: h["params"].update(nonsense=1), "has no parameter nonsense"),
    (lambda h, a: h.update(method="nonsense"), "unknown method 'nonsense'"),
    (lambda h, a: h["state"].update(centers_={"$object": "Popen", "fields": {}}),
     "unknown object type 'Popen'"),
    (lambda h, a: h.update(format_version=1), "model format 1 is no longer read"),
])
def test_a_model_that_does_not_fit_together_is_refused(saved: Path, change, message) -> None:
    _rewrite(saved, change)
    with pytest.raises(InputError, match=message):
        methods.load_model(saved)


def test_networks_are_checked_against_their_architecture(tmp_path: Path) -> None:
    images = [quadrants(size=32, random_state=s)[0] for s in range(4)]
    model = methods.save_model(methods.create("air", k=2, input_size=16, epochs=1, batch_size=2)
                               .fit(images), tmp_path / "air.npz")
    loaded = methods.load_model(model)
    assert np.array_equal(loaded.predict(images[0]),
                          methods.load_model(model).predict(images[0]))

    def wider(header: dict, arrays: dict) -> None:
        key = header["state"]["segmenter_"]["head.weight"]["$tensor"]
        arrays[key] = np.concatenate([arrays[key]] * 2)

    _rewrite(model, wider)
    with pytest.raises(InputError, match=r"not a valid air model: segmenter_\['head.weight'\]"):
        methods.load_model(model)
