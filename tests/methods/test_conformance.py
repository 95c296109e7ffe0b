"""One conformance test over every registered method: the Segmenter contract of DESIGN.md."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import sklearn.base

from unseg import methods
from unseg.data.synthetic import quadrants
from unseg.data.weak_labels import WeakLabels
from unseg.errors import NotFittedError, ParameterError

ALL = methods.list()
LEARNING = [n for n in ALL if methods.get(n).requires_fit]


@pytest.fixture(scope="module")
def images() -> list[np.ndarray]:
    rgb = quadrants(size=48, random_state=1)[0][:, :40]  # not square: catches swapped H and W
    gray = rgb.mean(axis=2).astype(np.uint8)
    rgb16 = rgb.astype(np.uint16) * 257
    return [rgb, gray, rgb16]


def labels_for(name: str) -> WeakLabels | None:
    """Image-level labels of the three test images for the weakly supervised methods."""
    if not methods.get(name).requires_labels:
        return None
    return WeakLabels(("a", "b"), (0, 1), 2, "background", ("rgb", "gray", "rgb16"),
                      np.array([[1, 0], [0, 1], [1, 1]], dtype=bool))


def quick(name: str, **params: object) -> methods.Segmenter:
    """The method with its quick test parameters (and ``params`` on top)."""
    return methods.create(name, **(methods.get(name).test_params | params))


@pytest.fixture(scope="module")
def fitted(images) -> dict[str, methods.Segmenter]:
    """Every method fitted once on the test images with its quick parameters."""
    return {name: quick(name).fit(images, labels_for(name)) for name in ALL}


def test_registry_holds_the_baselines() -> None:
    expected = {"random", "kmeans-color", "kmeans-color-dataset", "watershed", "felzenszwalb",
                "slic"}
    assert expected <= set(ALL)


@pytest.mark.parametrize("name", ALL)
def test_parameters_are_declared_once_documented_and_constrained(name: str) -> None:
    cls = methods.get(name)
    declared = cls.parameters()
    signature = inspect.signature(cls)
    assert list(signature.parameters) == list(declared)
    for pname, p in signature.parameters.items():
        assert p.kind is inspect.Parameter.KEYWORD_ONLY, f"{name}.{pname} is not keyword-only"
        assert p.default == declared[pname].default
        assert declared[pname].check.accepts(p.default)
        assert declared[pname].doc.strip(), f"{name}.{pname} has no help"
    doc = inspect.getdoc(cls) or ""
    assert cls.summary() and "Parameters\n----------" in doc
    assert all(f"\n{pname} : " in doc for pname in declared)
    assert set(cls.predict_param_names()) <= set(declared)


@pytest.mark.parametrize("name", ALL)
def test_fit_returns_self_and_labels_have_the_input_size(name: str, images) -> None:
    segmenter = quick(name)
    assert segmenter.fit(images, labels_for(name)) is segmenter
    n_labels = segmenter.n_labels_
    assert n_labels is None or (isinstance(n_labels, int) and n_labels >= 1)
    for image in images:
        labels = segmenter.predict(image)
        assert labels.shape == image.shape[:2]
        assert labels.dtype == np.int32
        assert labels.min() >= 0
        if n_labels is not None:
            assert labels.max() < n_labels


@pytest.mark.parametrize("name", ALL)
def test_predict_batch_equals_predict_image_by_image(name: str, fitted, images) -> None:
    segmenter = fitted[name]
    same_size = [images[0], images[2], np.ascontiguousarray(images[0][::-1])]
    for batch in (images, same_size):
        results = segmenter.predict_batch(iter(batch))  # any iterable
        assert len(results) == len(batch)
        for from_batch, image in zip(results, batch, strict=True):
            assert np.array_equal(from_batch, segmenter.predict(image))
    assert segmenter.predict_batch([]) == []


BAD_IMAGES = [np.zeros(10), np.zeros((0, 5, 3)), np.zeros((5, 0)), np.zeros((6, 6, 4)),
              np.zeros((2, 3, 4, 3))]


@pytest.mark.parametrize("name", ALL)
def test_bad_images_raise_a_clear_error_from_predict_and_predict_batch(name, fitted, images):
    segmenter = fitted[name]
    for bad in BAD_IMAGES:
        with pytest.raises(ParameterError, match=rf"{name}: expected an \(H, W\) or \(H, W, 3\)"):
            segmenter.predict(bad)
        with pytest.raises(ParameterError, match=rf"{name}: expected an \(H, W\) or \(H, W, 3\)"):
            segmenter.predict_batch([images[0], bad])
    if segmenter.requires_fit:
        with pytest.raises(ParameterError, match=rf"{name}: expected an \(H, W\)"):
            quick(name).fit([images[0], np.zeros(10)], labels_for(name))


@pytest.mark.parametrize("name", ALL)
def test_clone_gives_the_parameters_without_the_learned_state(name: str, fitted) -> None:
    segmenter = fitted[name]
    copy = sklearn.base.clone(segmenter)
    assert type(copy) is type(segmenter) and copy is not segmenter
    assert copy.get_params() == segmenter.get_params()
    assert copy.get_params(deep=False) == segmenter.get_params()
    assert copy.learned_state() == {}
    assert copy.is_fitted() is False
    assert bool(segmenter.learned_state()) is segmenter.requires_fit
    assert repr(copy) == repr(segmenter)


@pytest.mark.parametrize("name", ALL)
def test_set_params_changes_parameters_and_refuses_unknown_ones(name: str) -> None:
    segmenter = quick(name)
    pname, p = next(iter(segmenter.parameters().items()))
    assert segmenter.set_params(**{pname: p.default}) is segmenter
    assert getattr(segmenter, pname) == p.default
    with pytest.raises(ParameterError, match="has no parameter nonsense; its parameters are"):
        segmenter.set_params(nonsense=1)


@pytest.mark.parametrize("name", ALL)
def test_fit_sets_exactly_the_declared_learned_state(name: str, fitted) -> None:
    segmenter = fitted[name]
    public_state = {k for k in vars(segmenter) if k.endswith("_") and not k.startswith("_")}
    assert public_state == set(segmenter.learned)
    assert segmenter.learned_state().keys() == set(segmenter.learned)
    assert segmenter.is_fitted() is segmenter.requires_fit


@pytest.mark.parametrize("name", ALL)
def test_same_parameters_give_the_same_labels(name: str, images) -> None:
    first = quick(name).fit(images, labels_for(name)).predict(images[0])
    second = quick(name).fit(images, labels_for(name)).predict(images[0])
    assert np.array_equal(first, second)


@pytest.mark.parametrize("name", ALL)
def test_fit_predict_is_fit_then_predict_batch(name: str, images) -> None:
    together = quick(name).fit_predict(iter(images), labels_for(name))
    apart = quick(name).fit(images, labels_for(name)).predict_batch(images)
    assert all(np.array_equal(a, b) for a, b in zip(together, apart, strict=True))


@pytest.mark.parametrize("name", ALL)
def test_bad_parameters_raise_a_clear_error(name: str, images) -> None:
    declared = methods.get(name).parameters()
    methods.create(name, **{next(iter(declared)): "bad"})  # constructors do no work
    for pname, p in declared.items():
        for bad in p.check.invalid_examples():
            segmenter = quick(name, **{pname: bad})
            with pytest.raises(ParameterError, match=rf"{name}: {pname} must be .*got"):
                segmenter.fit(images, labels_for(name)).predict(images[0])


@pytest.mark.parametrize("name", ALL)
def test_unknown_parameter_names_the_valid_ones(name: str) -> None:
    with pytest.raises(ParameterError, match="has no parameter nonsense"):
        methods.create(name, nonsense=1)


@pytest.mark.parametrize("name", LEARNING)
def test_predict_before_fit_raises_and_saved_models_reload(name: str, fitted, images,
                                                           tmp_path) -> None:
    unfitted = quick(name)
    for call in (lambda: unfitted.predict(images[0]), lambda: unfitted.predict_batch(images),
                 lambda: unfitted.n_labels_):
        with pytest.raises(NotFittedError):
            call()
    path = methods.save_model(fitted[name], tmp_path / "model.npz")
    loaded = methods.load_model(path)
    assert loaded.get_params() == fitted[name].get_params()
    assert loaded.learned_state().keys() == fitted[name].learned_state().keys()
    assert np.array_equal(loaded.predict(images[0]), fitted[name].predict(images[0]))
