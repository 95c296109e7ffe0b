"""The segmenter a command asks for: a new one from parameters, or a fitted model from a file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from unseg.errors import ParameterError
from unseg.methods import Segmenter


def make_segmenter(method: str, params: dict[str, Any], model: Path | None) -> Segmenter:
    """Method ``method`` created with ``params``, or loaded from ``model``.

    A loaded model keeps its fitted parameters; ``params`` may change only those that act at
    prediction time (``Segmenter.predict_param_names``).
    """
    from unseg import methods

    if model is None:
        return methods.create(method, **params)
    segmenter = methods.load_model(model)
    if segmenter.name != method:
        raise ParameterError(
            f"{model} holds a fitted {segmenter.name!r} segmenter, not {method!r}. "
            f"Fix: run `unseg segment {segmenter.name} ... --model {model}`."
        )
    changeable = segmenter.predict_param_names()
    fixed = [k for k in params if k not in changeable]
    if fixed:
        options = ", ".join("--" + k.replace("_", "-") for k in changeable)
        raise ParameterError(
            f"the parameters of {method} come from {model}; drop "
            + ", ".join("--" + k.replace("_", "-") for k in fixed)
            + " or fit a new model."
            + (f" With --model only {options} can change." if options else "")
        )
    return segmenter.set_params(**params)
