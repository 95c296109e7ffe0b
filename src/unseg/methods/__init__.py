"""The Segmenter registry: every method a user can name on the command line.

>>> from unseg import methods
>>> seg = methods.create("kmeans-color", k=4, random_state=0)
>>> methods.list()  # doctest: +ELLIPSIS
[...]

Methods register themselves with :func:`register`; the built-in modules are imported on the first
look-up, never at ``import unseg``.
"""

from __future__ import annotations

import builtins
import difflib
import importlib
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from unseg.errors import ParameterError
from unseg.methods.base import Segmenter
from unseg.methods.files import load_model, model_info, save_model

__all__ = [
    "Segmenter", "create", "get", "list", "load_model", "model_info", "register", "save_model",
]

_BUILTIN_MODULES = (
    "unseg.methods.classical", "unseg.methods.factorization", "unseg.methods.twostep",
    "unseg.methods.cirs", "unseg.methods.dfc", "unseg.methods.cuts", "unseg.methods.wnet",
    "unseg.methods.weak",
)
_REGISTRY: dict[str, type[Segmenter]] = {}
_loaded = False

S = TypeVar("S", bound=type[Segmenter])


def register(name: str) -> Callable[[S], S]:
    """Class decorator adding a Segmenter to the registry under ``name``."""

    def decorator(cls: S) -> S:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            warnings.warn(
                f"method {name!r} is registered twice ({_REGISTRY[name].__module__} and "
                f"{cls.__module__}); the later one is used",
                stacklevel=2,
            )
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorator


def _load_builtins() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for module in _BUILTIN_MODULES:
            importlib.import_module(module)


def get(name: str) -> type[Segmenter]:
    """The Segmenter class registered as ``name``."""
    _load_builtins()
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, _REGISTRY, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ParameterError(
            f"unknown method {name!r}.{hint} Registered methods: {', '.join(list())} "
            "(`unseg methods` describes them)."
        ) from None


def create(name: str, **params: Any) -> Segmenter:
    """Instantiate method ``name`` with keyword parameters (validated when it is used)."""
    cls = get(name)
    unknown = sorted(set(params) - set(cls.param_names()))
    if unknown:
        raise ParameterError(
            f"{name} has no parameter {', '.join(unknown)}; its parameters are: "
            f"{', '.join(cls.param_names())}."
        )
    return cls(**params)


def list() -> builtins.list[str]:  # noqa: A001 - the registry's public name, as in DESIGN.md
    """The registered method names, sorted."""
    _load_builtins()
    return sorted(_REGISTRY)
