"""The Segmenter contract shared by every method.

A segmenter is a keyword-only dataclass of its declared parameters and does no work in
``__init__``; ``fit(images)`` learns from unlabelled images and returns ``self`` (nothing to
learn for training-free methods); ``predict(image)`` and ``predict_batch(images)`` return label
maps with each image's height and width; ``n_labels_`` says how many label ids they use.
Learned state lives in attributes ending in ``_``. ``get_params``, ``set_params`` and
``sklearn.base.clone`` work as for scikit-learn estimators.
"""

from __future__ import annotations

import dataclasses
import inspect
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Self, dataclass_transform

import numpy as np

from unseg.errors import NotFittedError, ParameterError
from unseg.methods.params import Param, Text, check_params, param
from unseg.types import Image, LabelMap

if TYPE_CHECKING:
    import torch

    from unseg.backbones.base import Backbone
    from unseg.data.names import LabelNames
    from unseg.data.weak_labels import WeakLabels

@dataclass
class Hierarchy:
    """The label maps of a multigranular method for one image, coarse to fine."""

    #: (H, W) int32 label maps, coarse to fine; each finer one only splits segments.
    levels: list[LabelMap]
    #: How long each level lasted in the method's own scale (for diffusion condensation: the
    #: steps before its next merge); the longest-lasting levels are where the number of
    #: segments plateaus.
    persistence: list[int]
    #: The index of the level ``predict`` returns.
    chosen: int


@dataclass_transform(kw_only_default=True, field_specifiers=(param,))
class Segmenter:
    """Base class of every registered method.

    Subclasses declare their parameters with :func:`~unseg.methods.params.param` (each subclass
    becomes a keyword-only dataclass of them), implement ``_predict`` (or ``_predict_batch``
    where batching is faster) and ``_n_labels``, and, when they learn, ``_fit`` with
    ``requires_fit = True``. The public methods here check inputs and outputs around those hooks.
    """

    name: ClassVar[str] = ""
    requires_fit: ClassVar[bool] = False
    #: Whether ``fit`` needs image-level labels (``y``, a
    #: :class:`~unseg.data.weak_labels.WeakLabels`): the weakly supervised methods, whose label
    #: ids are the classes.
    requires_labels: ClassVar[bool] = False
    #: Parameters that make the method quick on tiny images, for the conformance test.
    test_params: ClassVar[dict[str, Any]] = {}
    #: The attributes ``fit`` sets: what :meth:`learned_state` returns and a model file holds.
    learned: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        dataclasses.dataclass(cls, kw_only=True, eq=False, repr=False)
        fields = dataclasses.fields(cls)  # type: ignore[arg-type]
        undeclared = [f.name for f in fields if "check" not in f.metadata]
        if undeclared:
            raise TypeError(
                f"{cls.__qualname__}: {', '.join(undeclared)} must be declared with param() "
                "(learned state is not annotated on the class)"
            )
        cls.__doc__ = _with_parameters_section(cls.__doc__ or "", cls.parameters().values())

    # -- parameters ---------------------------------------------------------------------------
    @classmethod
    def parameters(cls) -> dict[str, Param]:
        """The declared parameters, in constructor order."""
        return {f.name: Param.of(f) for f in dataclasses.fields(cls)}  # type: ignore[arg-type]

    @classmethod
    def param_names(cls) -> list[str]:
        """The constructor's parameter names, in order."""
        return list(cls.parameters())

    @classmethod
    def predict_param_names(cls) -> list[str]:
        """The parameters that only act at prediction time: a fitted model takes new values."""
        return [name for name, p in cls.parameters().items() if p.predict]

    @classmethod
    def summary(cls) -> str:
        """The docstring's first paragraph on one line: what ``unseg methods`` shows."""
        doc = inspect.getdoc(cls) or ""
        return " ".join(doc.split("\n\n")[0].split())

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor parameters as given or defaulted (scikit-learn's contract).

        ``deep`` is accepted for scikit-learn compatibility; no parameter is an estimator.
        """
        return {name: getattr(self, name) for name in self.param_names()}

    def set_params(self, **params: Any) -> Self:
        """Change parameters by name; returns ``self``. Cached helpers are rebuilt on next use.

        Raises
        ------
        ParameterError
            For a name that is not a parameter (the message lists the parameters).
        """
        unknown = sorted(set(params) - set(self.param_names()))
        if unknown:
            raise ParameterError(
                f"{self.name or type(self).__name__} has no parameter {', '.join(unknown)}; "
                f"its parameters are: {', '.join(self.param_names())}."
            )
        for key, value in params.items():
            setattr(self, key, value)
        for key in [k for k in vars(self) if k.startswith("_")]:
            delattr(self, key)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def _validate_params(self) -> None:
        check_params(self.name or type(self).__name__, self.get_params(), self.parameters())

    # -- learned state ------------------------------------------------------------------------
    def learned_state(self) -> dict[str, Any]:
        """What ``fit`` learned: the attributes the class declares in :attr:`learned` (names
        ending in ``_``) that are set.

        The one definition used to save a model, to fingerprint it and to tell whether it is
        fitted; private attributes (``_name``) are caches rebuilt where needed.
        """
        return {name: vars(self)[name] for name in self.learned if name in vars(self)}

    def is_fitted(self) -> bool:
        """Whether every learned attribute is set (never, for methods that learn nothing)."""
        return bool(self.learned) and len(self.learned_state()) == len(self.learned)

    def __getstate__(self) -> dict[str, Any]:
        """Parameters and learned state, without private caches (for copies and Dask)."""
        return self.get_params() | self.learned_state()

    @property
    def n_labels_(self) -> int | None:
        """How many label ids ``predict`` gives (``0 .. n_labels_ - 1``), or None when each
        image has its own number of regions (superpixels, objects).

        Raises
        ------
        NotFittedError
            For a method that learns, before ``fit``.
        """
        self._check_ready()
        return self._n_labels()

    # -- fit and predict ----------------------------------------------------------------------
    def fit(self, images: Iterable[Image], y: WeakLabels | None = None) -> Self:
        """Learn from the images; returns ``self``.

        Parameters
        ----------
        images : iterable of (H, W, 3) or (H, W) arrays
            Read lazily and at most once, so a generator over a large folder is fine.
        y : WeakLabels or None
            Image-level labels, one row per image in order, for the methods that need them
            (:attr:`requires_labels`); ignored by the others (scikit-learn's signature). No
            method uses pixel labels.

        Raises
        ------
        ParameterError
            When the method needs image-level labels and ``y`` is None.
        """
        self._validate_params()
        if self.requires_labels:
            if y is None:
                raise ParameterError(
                    f"{self.name} learns from image-level labels (which classes each image "
                    f"contains). Fix: `unseg fit {self.name} DATA --labels CSV|names|masks "
                    "--out MODEL`, then segment with --model MODEL; in Python, "
                    "fit(images, y=WeakLabels).")
            self._fit_weak((self._checked(image) for image in images), y)
        elif self.requires_fit:
            self._fit(self._checked(image) for image in images)
        return self

    def fit_predict(self, images: Iterable[Image], y: WeakLabels | None = None
                    ) -> list[LabelMap]:
        """Fit on the images, then segment each of them (the images are held in memory)."""
        images = list(images)
        return self.fit(images, y).predict_batch(images)

    def _check_ready(self) -> None:
        """Validate the parameters and, for learning methods, that ``fit`` has run."""
        self._validate_params()
        if self.requires_fit and not self.is_fitted():
            raise NotFittedError(
                f"{self.name}: this segmenter learns from the images first. Fix: call fit(images) "
                "before predict, or on the command line pass --model from `unseg fit`."
            )

    def _checked(self, image: Any) -> Image:
        """The image as an array, after checking it is (H, W) or (H, W, 3) and not empty."""
        array = np.asarray(image)
        if (array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] != 3)
                or min(array.shape[:2], default=0) == 0):
            raise ParameterError(
                f"{self.name}: expected an (H, W) or (H, W, 3) image, got shape {array.shape}. "
                "Fix: pass one image as read by unseg.io.read_image."
            )
        return array

    def _checked_labels(self, labels: LabelMap, image: Image) -> LabelMap:
        if labels.shape != image.shape[:2]:
            raise RuntimeError(
                f"{self.name} returned labels of shape {labels.shape} for an image of shape "
                f"{image.shape[:2]}"
            )
        return labels.astype(np.int32, copy=False)

    def predict(self, image: Image) -> LabelMap:
        """Segment one image into an (H, W) int32 label map."""
        return self.predict_batch([image])[0]

    def predict_batch(self, images: Iterable[Image]) -> list[LabelMap]:
        """Segment several images; each result equals :meth:`predict` of that image."""
        checked = [self._checked(image) for image in images]
        self._check_ready()
        if not checked:
            return []
        labels = self._predict_batch(checked)
        return [self._checked_labels(lab, im) for lab, im in zip(labels, checked, strict=True)]

    @property
    def multigranular(self) -> bool:
        """Whether :meth:`hierarchy` gives several levels with the current parameters."""
        return False

    def hierarchy(self, image: Image) -> Hierarchy:
        """The coarse-to-fine label maps of one image, for multigranular methods."""
        if not self.multigranular:
            raise ParameterError(
                f"{self.name} gives one label map per image with these parameters, not a "
                "hierarchy of levels."
            )
        image = self._checked(image)
        self._check_ready()
        found = self._hierarchy(image)
        found.levels = [self._checked_labels(level, image) for level in found.levels]
        return found

    def predict_levels(self, image: Image) -> list[LabelMap]:
        """The label maps of one image, coarse to fine (multigranular methods)."""
        return self.hierarchy(image).levels

    # -- what subclasses implement ------------------------------------------------------------
    def _fit(self, images: Iterable[Image]) -> None:
        raise NotImplementedError

    def _fit_weak(self, images: Iterable[Image], labels: WeakLabels) -> None:
        raise NotImplementedError

    def label_names(self) -> LabelNames | None:
        """Names of the label ids where the method knows them (the classes of a weakly
        supervised model), else None."""
        return None

    def _predict(self, image: Image) -> LabelMap:
        raise NotImplementedError

    def _predict_batch(self, images: list[Image]) -> list[LabelMap]:
        """Labels of checked images; override where a batch is faster than one at a time."""
        return [self._predict(image) for image in images]

    def _hierarchy(self, image: Image) -> Hierarchy:
        raise NotImplementedError

    def _n_labels(self) -> int | None:
        raise NotImplementedError

    def _check_state(self) -> None:
        """Raise ValueError when the learned state does not fit the parameters (its arrays'
        shapes and dtypes); run on every loaded model. Learning methods implement it."""
        if self.learned:
            raise NotImplementedError


def _with_parameters_section(doc: str, params: Iterable[Param]) -> str:
    """``doc`` followed by a numpydoc ``Parameters`` section of the declared parameters."""
    lines = [inspect.cleandoc(doc), "", "Parameters", "----------"]
    for p in params:
        lines.append(f"{p.name} : {p.type}")
        lines += ["    " + line for line in textwrap.wrap(p.doc, 92)]
    return "\n".join(lines) + "\n"


class BackboneSegmenter(Segmenter):
    """Base of the methods built on a backbone: its parameters, a cached instance, and
    features of same-size images padded (mirrored) to the backbone's size rule."""

    backbone: str = param(
        default="default", check=Text(),
        doc='Feature extractor (see `unseg backbones`); "default" is embedded and needs no '
            "download.")
    weights: str | None = param(
        default=None, check=Text(allow_none=True),
        doc='Backbone weights: None for its pretrained weights, a local file or folder, or '
            '"random".')
    layer: str | None = param(
        default=None, check=Text(allow_none=True),
        doc="Backbone layer; None for the backbone's default.")
    device: str = param(
        default="cpu", check=Text(),
        doc='Where the backbone and the method run: "cpu", "cuda", "cuda:1", ...')

    def _backbone(self) -> Backbone:
        from unseg import backbones

        cache = getattr(self, "_backbone_cache", None)
        if cache is None:
            cache = backbones.create(self.backbone, weights=self.weights, layer=self.layer,
                                     device=self.device)
            self._backbone_cache = cache
        return cache

    def _features(self, images: list[Image]) -> tuple[torch.Tensor, tuple[int, int]]:
        """(B, h*w, C) features of same-size images and the feature grid (h, w)."""
        backbone = self._backbone()
        padded = pad_to_multiple(images, backbone.config.size_multiple)
        return as_cells(backbone.features(padded))


def pad_to_multiple(images: list[Image], multiple: int) -> list[np.ndarray]:
    """Same-size images padded (mirrored) at the bottom and right to a multiple of ``multiple``."""
    h, w = images[0].shape[:2]
    ph, pw = -(-h // multiple) * multiple, -(-w // multiple) * multiple
    return [np.pad(im, [(0, ph - h), (0, pw - w)] + [(0, 0)] * (im.ndim - 2), mode="symmetric")
            for im in images]


def as_cells(feats: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
    """A ``(B, C, h, w)`` feature map as ``(B, h*w, C)`` cells and the grid (h, w)."""
    return feats.flatten(2).transpose(1, 2).contiguous(), (feats.shape[2], feats.shape[3])
