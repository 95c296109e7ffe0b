"""One conformance test over every registered method: the Segmenter contract of DESIGN.md."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from unseg import methods
from unseg.cli._options import param_docs
from unseg.data.synthetic import quadrants
from unseg.errors import NotFittedError, ParameterError

ALL = methods.list()


@pytest.fixture(scope="module")
def images() -> list[np.ndarray]:
    rgb = quadrants(size=48, random_state=1)[0][:, :40]  # not square: catches swapped H and W
    gray = rgb.mean(axis=2).astype(np.uint8)
    rgb16 = rgb.astype(np.uint16) * 257
    return [rgb, gray, rgb16]


def test_registry_holds_the_baselines() -> None:
    expected = {"random", "kmeans-color", "kmeans-color-dataset", "watershed", "felzenszwalb",
                "slic"}
    assert expected <= set(ALL)


@pytest.mark.parametrize("name", ALL)
def test_parameters_are_keyword_only_documented_and_constrained(name: str) -> None:
    cls = methods.get(name)
    params = inspect.signature(cls.__init__).parameters
    for pname, p in params.items():
        if pname == "self":
            continue
        assert p.kind is inspect.Parameter.KEYWORD_ONLY, f"{name}.{pname} is not keyword-only"
        assert p.default is not inspect.Parameter.empty, f"{name}.{pname} has no default"
    assert set(cls._constraints) == set(cls.param_names())
    assert set(param_docs(cls)) == set(cls.param_names())
    assert cls.summary()


def quick(name: str, **params: object) -> methods.Segmenter:
    """The method with its quick test parameters (and ``params`` on top)."""
    return methods.create(name, **(methods.get(name).test_params | params))


@pytest.mark.parametrize("name", ALL)
def test_fit_returns_self_and_labels_have_the_input_size(name: str, images) -> None:
    segmenter = quick(name)
    assert segmenter.fit(images) is segmenter
    for image in images:
        labels = segmenter.predict(image)
        assert labels.shape == image.shape[:2]
        assert labels.dtype == np.int32
        assert labels.min() >= 0
    # Batched float arithmetic rounds differently, which may flip a pixel at a near tie.
    batch = segmenter.predict_batch(images)
    for from_batch, image in zip(batch, images, strict=True):
        assert (from_batch == segmenter.predict(image)).mean() >= 0.99


@pytest.mark.parametrize("name", ALL)
def test_same_parameters_give_the_same_labels(name: str, images) -> None:
    first = quick(name).fit(images).predict(images[0])
    second = quick(name).fit(images).predict(images[0])
    assert np.array_equal(first, second)


@pytest.mark.parametrize("name", ALL)
def test_bad_parameters_raise_a_clear_error(name: str, images) -> None:
    cls = methods.get(name)
    methods.create(name, **{next(iter(cls._constraints)): "bad"})  # constructors do no work
    for pname, constraint in cls._constraints.items():
        for bad in constraint.invalid_examples():
            segmenter = quick(name, **{pname: bad})
            with pytest.raises(ParameterError, match=rf"{name}: {pname} must be .*got"):
                segmenter.fit(images).predict(images[0])


@pytest.mark.parametrize("name", ALL)
def test_unknown_parameter_names_the_valid_ones(name: str) -> None:
    with pytest.raises(ParameterError, match="has no parameter nonsense"):
        methods.create(name, nonsense=1)


@pytest.mark.parametrize("name", [n for n in ALL if methods.get(n).requires_fit])
def test_predict_before_fit_raises_and_saved_models_reload(name: str, images, tmp_path) -> None:
    with pytest.raises(NotFittedError):
        quick(name).predict(images[0])
    fitted = quick(name).fit(images)
    path = methods.save_model(fitted, tmp_path / "model.pkl")
    loaded = methods.load_model(path)
    assert loaded.get_params() == fitted.get_params()
    assert np.array_equal(loaded.predict(images[0]), fitted.predict(images[0]))
