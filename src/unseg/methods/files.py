"""Fitted models on disk: arrays and a JSON header in one ``.npz``, never a pickle.

A model file holds the method's name, its parameters, the package and format versions, what it
was fitted on, and its learned state. Arrays (NumPy arrays, torch tensors) are stored as
``.npz`` members and read with ``allow_pickle=False``; everything else is JSON: numbers,
strings, lists, dicts, and the few data classes of unseg a learned state may hold
(``Centres``, ``FittedABC``, ``ConceptBank``), rebuilt field by field. Loading checks the
method, every parameter, the learned attributes the method declares and, through the method's
own check, every array's shape and dtype, and says what is wrong. Nothing in a model file can
run code.
"""

from __future__ import annotations

import dataclasses
import json
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from unseg.errors import InputError, NotFittedError, UnsegError

if TYPE_CHECKING:
    from unseg.methods.base import Segmenter

MODEL_FORMAT = "unseg-model"
MODEL_FORMAT_VERSION = 2
_HEADER = "header.json"
_REFIT = "fit the model again with `unseg fit` (or methods.save_model)"


def _objects() -> dict[str, type]:
    """The data classes a learned state may hold, by name: nothing else is ever rebuilt."""
    from unseg.cluster.attention import FittedABC
    from unseg.cluster.kmeans import Centres
    from unseg.concepts.bank import ConceptBank

    return {cls.__name__: cls for cls in (Centres, FittedABC, ConceptBank)}


class _Encoder:
    """Learned state -> JSON tree + arrays (``{"$array": name}`` marks where each goes)."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def _store(self, array: np.ndarray, tag: str) -> dict[str, str]:
        if array.dtype.kind not in "biuf":
            raise UnsegError(f"cannot save an array of dtype {array.dtype} in a model file")
        name = f"a{len(self.arrays)}"
        self.arrays[name] = np.asarray(array, order="C")  # keeps 0-d arrays 0-d
        return {tag: name}

    def encode(self, value: Any) -> Any:
        import torch

        if isinstance(value, torch.Tensor):
            return self._store(value.detach().cpu().numpy(), "$tensor")
        if isinstance(value, np.ndarray):
            return self._store(value, "$array")
        if isinstance(value, np.generic):
            return value.item()
        if value is None or isinstance(value, bool | int | float | str):
            return value
        if isinstance(value, Path):
            return {"$path": str(value)}
        if isinstance(value, list | tuple):
            return [self.encode(v) for v in value]
        if isinstance(value, dict):
            if all(isinstance(k, str) and not k.startswith("$") for k in value):
                return {k: self.encode(v) for k, v in value.items()}
            return {"$items": [[self.encode(k), self.encode(v)] for k, v in value.items()]}
        name = type(value).__name__
        if dataclasses.is_dataclass(value) and _objects().get(name) is type(value):
            return {"$object": name, "fields": {f.name: self.encode(getattr(value, f.name))
                                                for f in dataclasses.fields(value)}}
        raise UnsegError(f"cannot save a {type(value).__name__} in a model file")


def _decode(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    import torch

    if isinstance(value, list):
        return [_decode(v, arrays) for v in value]
    if not isinstance(value, dict):
        return value
    if "$array" in value or "$tensor" in value:
        name = value.get("$array", value.get("$tensor"))
        if name not in arrays:
            raise ValueError(f"the array {name!r} the header names is not in the file")
        array = arrays[name]
        return torch.from_numpy(array.copy()) if "$tensor" in value else array
    if "$path" in value:
        return Path(value["$path"])
    if "$items" in value:
        return {_decode(k, arrays): _decode(v, arrays) for k, v in value["$items"]}
    if "$object" in value:
        cls = _objects().get(value["$object"])
        if cls is None:
            raise ValueError(f"unknown object type {value['$object']!r} (known: "
                             f"{', '.join(_objects())})")
        return cls(**{k: _decode(v, arrays) for k, v in value["fields"].items()})
    return {k: _decode(v, arrays) for k, v in value.items()}


def expect_array(name: str, value: Any, dtype: str, shape: tuple[int | None, ...]) -> None:
    """Raise ValueError unless ``value`` is an array of ``dtype`` and ``shape`` (None: any)."""
    import torch

    if isinstance(value, torch.Tensor):
        value = value.numpy()
    if not isinstance(value, np.ndarray):
        raise ValueError(f"{name} is a {type(value).__name__}, not an array")
    fits = value.ndim == len(shape) and all(
        want is None or got == want for got, want in zip(value.shape, shape, strict=True))
    if value.dtype != np.dtype(dtype) or not fits:
        wanted = "(" + ", ".join("*" if d is None else str(d) for d in shape) + ")"
        raise ValueError(f"{name} is {value.dtype} {value.shape}, expected {dtype} {wanted}")


def expect_module_state(name: str, module: Any, state: Any) -> None:
    """Raise ValueError unless ``state`` has exactly the keys, shapes and dtypes of the torch
    module's own state dict."""
    if not isinstance(state, dict):
        raise ValueError(f"{name} is a {type(state).__name__}, not a state dict")
    own = module.state_dict()
    if set(state) != set(own):
        missing, extra = sorted(set(own) - set(state)), sorted(set(state) - set(own))
        raise ValueError(f"{name} does not fit the network: missing {missing[:3]}, "
                         f"unknown {extra[:3]}")
    for key, tensor in own.items():
        expect_array(f"{name}[{key!r}]", state[key], str(tensor.numpy().dtype),
                     tuple(tensor.shape))


def save_model(segmenter: Segmenter, path: str | Path, *,
               fitted_on: dict[str, Any] | None = None) -> Path:
    """Save a fitted segmenter atomically: method, parameters, learned state, provenance.

    Parameters
    ----------
    segmenter : Segmenter
        Fitted.
    path : str or Path
        The file to write (any name; ``.npz`` is the natural suffix).
    fitted_on : dict, optional
        JSON-able summary of what it was fitted on, returned by :func:`model_info`.
    """
    from unseg import __version__
    from unseg.io import atomic_write

    if not segmenter.is_fitted():
        raise NotFittedError(f"{segmenter.name}: fit the segmenter before saving it.")
    encoder = _Encoder()
    header = {
        "format": MODEL_FORMAT,
        "format_version": MODEL_FORMAT_VERSION,
        "unseg_version": __version__,
        "method": segmenter.name,
        "params": segmenter.get_params(),
        "fitted_on": fitted_on or {},
        "state": encoder.encode(segmenter.learned_state()),
    }
    text = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    path = Path(path)
    with atomic_write(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **{_HEADER: text}, **encoder.arrays)  # type: ignore[arg-type]
    return path


def _read(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The header and the arrays of a model file, with nothing unpickled."""
    if not path.is_file():
        raise InputError(path, "model file not found", "pass the file written by `unseg fit`")
    with open(path, "rb") as f:
        start = f.read(4)
    if start[:1] == b"\x80":
        raise InputError(path, "is a Python pickle (a model file of unseg before 0.2), which "
                         "could run code when loaded and is never read", _REFIT)
    if not zipfile.is_zipfile(path):
        raise InputError(path, "not an unseg model file", "pass the file written by `unseg fit`")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except Exception as exc:  # a truncated zip, a member that is not an array
        raise InputError(path, f"not a readable unseg model file ({exc})", _REFIT) from exc
    if _HEADER not in arrays and any(name[:1] == "k" and name[1:].isdigit() for name in arrays):
        raise InputError(path, "is a concept bank, not a fitted model",
                         "pass it to fseg as --concepts (a model comes from `unseg fit`)")
    try:
        header = json.loads(arrays.pop(_HEADER).tobytes().decode())
    except Exception as exc:  # no header, or one that is not JSON
        raise InputError(path, f"not a readable unseg model file ({exc})", _REFIT) from exc
    if not isinstance(header, dict) or header.get("format") != MODEL_FORMAT:
        raise InputError(path, "not an unseg model file", "pass the file written by `unseg fit`")
    version = header.get("format_version")
    if not isinstance(version, int) or version > MODEL_FORMAT_VERSION:
        raise InputError(path, f"model format {version} is newer than this unseg reads",
                         "upgrade unseg")
    if version < MODEL_FORMAT_VERSION:
        raise InputError(path, f"model format {version} is no longer read", _REFIT)
    return header, arrays


def model_info(path: str | Path) -> dict[str, Any]:
    """A model file's header without its learned state: method, params, versions, fitted_on."""
    header, _ = _read(Path(path))
    return {k: v for k, v in header.items() if k != "state"}


def load_model(path: str | Path) -> Segmenter:
    """Load a segmenter saved by :func:`save_model`, checking everything it holds.

    Raises
    ------
    InputError
        If the file is missing, not a model file (a pickle included), or holds a method,
        parameters or learned state that do not fit together; the message says what.
    """
    from unseg import methods

    path = Path(path)
    header, arrays = _read(path)
    try:
        segmenter = methods.create(header["method"], **header["params"])
        segmenter._validate_params()
        state = _decode(header["state"], arrays)
        if not isinstance(state, dict):
            raise ValueError("its learned state is not a mapping")
        expected = set(type(segmenter).learned)
        if set(state) != expected:
            missing, extra = sorted(expected - set(state)), sorted(set(state) - expected)
            raise ValueError("its learned state has "
                             + "; ".join(part for part in (
                                 f"no {', '.join(missing)}" if missing else "",
                                 f"unknown {', '.join(extra)}" if extra else "") if part))
        for key, value in state.items():
            setattr(segmenter, key, value)
        segmenter._check_state()
    except (UnsegError, ValueError, TypeError, KeyError, AttributeError) as exc:
        method = header.get("method", "?")
        raise InputError(path, f"not a valid {method} model: {exc}", _REFIT) from exc
    return segmenter
