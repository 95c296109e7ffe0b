"""The Segmenter contract shared by every method.

A segmenter stores its keyword-only constructor parameters and does no work in ``__init__``;
``fit(images)`` learns from unlabelled images and returns ``self`` (nothing to learn for
training-free methods); ``predict(image)`` returns a label map with the image's height and width.
Learned state lives in attributes ending in ``_``.
"""

from __future__ import annotations

import inspect
import pickle
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np

from unseg.errors import InputError, NotFittedError, ParameterError
from unseg.methods.params import Constraint, Text, check_params
from unseg.types import Image, LabelMap

if TYPE_CHECKING:
    import torch

    from unseg.backbones.base import Backbone

MODEL_FORMAT = "unseg-model"
MODEL_FORMAT_VERSION = 1


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


class Segmenter:
    """Base class of every registered method.

    Subclasses declare ``_constraints`` (one per constructor parameter), implement
    ``_predict`` and, when they learn, ``_fit`` with ``requires_fit = True``.
    """

    name: ClassVar[str] = ""
    requires_fit: ClassVar[bool] = False
    _constraints: ClassVar[dict[str, Constraint]] = {}
    #: Parameters that make the method quick on tiny images, for the conformance test.
    test_params: ClassVar[dict[str, Any]] = {}
    #: Parameters that only affect prediction: a fitted model takes new values for them.
    predict_params: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def param_names(cls) -> list[str]:
        """The constructor's parameter names, in signature order."""
        signature = inspect.signature(cls.__init__)
        return [p for p in signature.parameters if p != "self"]

    @classmethod
    def summary(cls) -> str:
        """The first docstring line: the description ``unseg methods`` shows."""
        doc = inspect.getdoc(cls) or ""
        return doc.splitlines()[0] if doc else ""

    def _set_params(self, arguments: dict[str, Any]) -> None:
        """Store the constructor's arguments (its ``locals()``) as attributes of the same name."""
        for name in self.param_names():
            setattr(self, name, arguments[name])

    def get_params(self) -> dict[str, Any]:
        """The constructor parameters as given (or defaulted)."""
        return {name: getattr(self, name) for name in self.param_names()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def __getstate__(self) -> dict[str, Any]:
        """Parameters and learned state; private caches (``_name``) are rebuilt where needed."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def _validate_params(self) -> None:
        check_params(self.name or type(self).__name__, self.get_params(), self._constraints)

    def is_fitted(self) -> bool:
        """Whether learned state (attributes ending in ``_``) is present."""
        return any(k.endswith("_") and not k.startswith("_") for k in vars(self))

    def fit(self, images: Iterable[Image], y: Any = None) -> Self:
        """Learn from unlabelled images; returns ``self``.

        Parameters
        ----------
        images : iterable of (H, W, 3) or (H, W) arrays
            Read lazily and at most once, so a generator over a large folder is fine.
        y : ignored
            Present for scikit-learn compatibility; methods here use no pixel labels.
        """
        self._validate_params()
        if self.requires_fit:
            self._fit(images)
        return self

    def _check_ready(self) -> None:
        """Validate the parameters and, for learning methods, that ``fit`` has run."""
        self._validate_params()
        if self.requires_fit and not self.is_fitted():
            raise NotFittedError(
                f"{self.name}: this segmenter learns from the images first. Fix: call fit(images) "
                "before predict, or on the command line pass --model from `unseg fit`."
            )

    def predict(self, image: Image) -> LabelMap:
        """Segment one image into an (H, W) int32 label map."""
        self._check_ready()
        if image.ndim not in (2, 3) or min(image.shape[:2]) == 0:
            raise ParameterError(
                f"{self.name}: expected an (H, W) or (H, W, 3) image, got shape {image.shape}."
            )
        labels = self._predict(image)
        if labels.shape != image.shape[:2]:
            raise RuntimeError(
                f"{self.name} returned labels of shape {labels.shape} for an image of shape "
                f"{image.shape[:2]}"
            )
        return labels.astype(np.int32, copy=False)

    def predict_batch(self, images: Iterable[Image]) -> list[LabelMap]:
        """Segment several images; methods that batch faster override this."""
        return [self.predict(image) for image in images]

    @property
    def multigranular(self) -> bool:
        """Whether :meth:`hierarchy` gives several levels with the current parameters."""
        return False

    def hierarchy(self, image: Image) -> Hierarchy:
        """The coarse-to-fine label maps of one image, for multigranular methods."""
        raise ParameterError(
            f"{self.name} gives one label map per image, not a hierarchy of levels."
        )

    def predict_levels(self, image: Image) -> list[LabelMap]:
        """The label maps of one image, coarse to fine (multigranular methods)."""
        return self.hierarchy(image).levels

    def _fit(self, images: Iterable[Image]) -> None:
        raise NotImplementedError

    def _predict(self, image: Image) -> LabelMap:
        raise NotImplementedError


class BackboneFeatures:
    """Mixin of the methods built on a backbone: its parameters, a cached instance, and
    features of same-size images padded (mirrored) to the backbone's size rule."""

    backbone: str
    weights: str | None
    layer: str | None
    device: str
    #: The constraints of the four backbone parameters.
    constraints: ClassVar[dict[str, Constraint]] = {
        "backbone": Text(),
        "weights": Text(allow_none=True),
        "layer": Text(allow_none=True),
        "device": Text(),
    }

    def _backbone(self) -> Backbone:
        from unseg import backbones

        key = (self.backbone, self.weights, self.layer, self.device)
        cache = getattr(self, "_backbone_cache", None)
        if cache is None or cache[0] != key:
            model = backbones.create(self.backbone, weights=self.weights, layer=self.layer,
                                     device=self.device)
            self._backbone_cache = (key, model)
        return self._backbone_cache[1]

    def _features(self, images: list[Image]) -> tuple[torch.Tensor, tuple[int, int]]:
        """(B, h*w, C) features of same-size images and the feature grid (h, w)."""
        backbone = self._backbone()
        h, w = images[0].shape[:2]
        m = backbone.config.size_multiple
        ph, pw = -(-h // m) * m, -(-w // m) * m
        padded = [
            np.pad(im, [(0, ph - h), (0, pw - w)] + [(0, 0)] * (im.ndim - 2), mode="symmetric")
            for im in images
        ]
        feats = backbone.features(padded)
        return feats.flatten(2).transpose(1, 2).contiguous(), (feats.shape[2], feats.shape[3])


def save_model(segmenter: Segmenter, path: str | Path) -> Path:
    """Save a fitted segmenter (its method, parameters and learned state) atomically.

    The file is a pickle: load only models you trust.
    """
    from unseg import __version__
    from unseg.io import atomic_write

    if not segmenter.is_fitted():
        raise NotFittedError(f"{segmenter.name}: fit the segmenter before saving it.")
    state = {k: v for k, v in vars(segmenter).items() if k.endswith("_")}
    payload = {
        "format": MODEL_FORMAT,
        "format_version": MODEL_FORMAT_VERSION,
        "unseg_version": __version__,
        "method": segmenter.name,
        "params": segmenter.get_params(),
        "state": state,
    }
    path = Path(path)
    with atomic_write(path) as tmp, open(tmp, "wb") as f:
        pickle.dump(payload, f, protocol=pickle.HIGHEST_PROTOCOL)
    return path


def load_model(path: str | Path) -> Segmenter:
    """Load a segmenter saved by :func:`save_model` (a pickle: load only models you trust)."""
    from unseg import methods

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "model file not found", "pass the file written by `unseg fit`")
    try:
        with open(path, "rb") as f:
            payload = pickle.load(f)
    except Exception as exc:  # any unpickling failure means "not a model file"
        raise InputError(
            path, f"not an unseg model file ({exc})", "pass the file written by `unseg fit`"
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise InputError(path, "not an unseg model file", "pass the file written by `unseg fit`")
    if payload["format_version"] > MODEL_FORMAT_VERSION:
        raise InputError(
            path,
            f"model format {payload['format_version']} is newer than this unseg reads",
            "upgrade unseg",
        )
    segmenter = methods.create(payload["method"], **payload["params"])
    for key, value in payload["state"].items():
        setattr(segmenter, key, value)
    return segmenter
