"""ConceptBank: k-means centres of backbone features, with where they came from.

One ``.npz`` file holds the centres for several k (arrays ``k16``, ``k32``, ...: the layout of
the published F-SEG banks) and a JSON ``provenance`` record: backbone name, layer, feature size,
what the centres were fitted on, and when.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from unseg.errors import InputError, ParameterError, UnsegError

if TYPE_CHECKING:
    from unseg.backbones.base import Backbone

#: Provenance of a bank whose file carries none (an array-only ``.npz`` from elsewhere).
UNKNOWN = "unknown"


@dataclass
class ConceptBank:
    """Concept centres for one or more k, all of one feature size ``C``.

    Attributes
    ----------
    centres : dict of int -> ndarray (k, C) float32
        The centres for each k.
    backbone : str
        Name of the backbone whose features were clustered (``unknown`` if not recorded).
    layer : str
        The backbone layer.
    source : str
        ``fitted`` (by ``fit_bank``) or ``published:<name>``.
    fitted_on : dict
        A summary of the data: images, tiles, tile size, sampled vectors, seed.
    created : str
        ISO date of fitting.
    path : Path or None
        The file it was loaded from, for messages.
    """

    centres: dict[int, np.ndarray]
    backbone: str = UNKNOWN
    layer: str = UNKNOWN
    source: str = "fitted"
    fitted_on: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    path: Path | None = None

    def __post_init__(self) -> None:
        sizes = {c.shape[1] for c in self.centres.values()}
        if not self.centres or len(sizes) != 1:
            raise UnsegError(f"{self.where}: a bank needs centres of one feature size, got {sizes}")

    @property
    def where(self) -> str:
        return str(self.path) if self.path else "concept bank"

    @property
    def channels(self) -> int:
        """Feature size ``C``."""
        return next(iter(self.centres.values())).shape[1]

    @property
    def ks(self) -> list[int]:
        return sorted(self.centres)

    def get(self, k: int) -> np.ndarray:
        """Centres ``(k, C)`` float32 for ``k``."""
        if k not in self.centres:
            raise ParameterError(
                f"{self.where} has no bank of k={k}; it holds k = "
                f"{', '.join(map(str, self.ks))}. Fix: pass one of those as k, or fit a bank "
                f"with `unseg concepts fit --k {k}`."
            )
        return self.centres[k]

    def check(self, backbone: Backbone) -> None:
        """Raise if the bank was not made from this backbone's features."""
        if self.channels != backbone.channels:
            raise UnsegError(
                f"{self.where} holds {self.channels}-dimensional concepts (from {self.backbone}) "
                f"but backbone {backbone.name} gives {backbone.channels} channels. Fix: use the "
                f"backbone the bank was fitted with, or fit a bank for {backbone.name}."
            )
        if self.backbone not in (UNKNOWN, backbone.name):
            raise UnsegError(
                f"{self.where} was fitted on features of {self.backbone}, not {backbone.name}: "
                f"its concepts would mean nothing here. Fix: pass --backbone {self.backbone}, "
                f"or fit a bank for {backbone.name}."
            )

    def provenance(self) -> dict[str, Any]:
        return {
            "backbone": self.backbone,
            "layer": self.layer,
            "channels": self.channels,
            "ks": self.ks,
            "source": self.source,
            "fitted_on": self.fitted_on,
            "created": self.created,
        }

    def save(self, path: str | Path) -> Path:
        """Write the bank atomically as one ``.npz``."""
        from unseg.io import atomic_write

        path = Path(path)
        if path.suffix != ".npz":
            raise ParameterError(f"{path}: a concept bank is saved as .npz; name it {path}.npz")
        arrays = {f"k{k}": c.astype(np.float32) for k, c in self.centres.items()}
        with atomic_write(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, provenance=np.array(json.dumps(self.provenance())), **arrays)  # type: ignore[arg-type]
        return path

    @classmethod
    def load(cls, path: str | Path, **defaults: Any) -> ConceptBank:
        """Read a bank file; ``defaults`` fill provenance the file does not record."""
        path = Path(path)
        if not path.is_file():
            raise InputError(path, "concept bank not found",
                             "pass a .npz from `unseg concepts fit` or a published bank's name")
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
        except Exception as exc:  # numpy raises several types for a bad file
            raise InputError(path, f"not a concept bank file ({exc})",
                             "pass a .npz from `unseg concepts fit`") from exc
        centres = {
            int(name[1:]): np.asarray(a, dtype=np.float32)
            for name, a in arrays.items()
            if name[:1] == "k" and name[1:].isdigit()
        }
        if not centres or any(c.ndim != 2 or c.shape[0] != k for k, c in centres.items()):
            raise InputError(path, "no concept arrays k<K> of shape (K, C) in the file",
                             "pass a .npz from `unseg concepts fit`")
        record = json.loads(str(arrays["provenance"])) if "provenance" in arrays else {}
        meta = {key: record.get(key, defaults.get(key)) for key in
                ("backbone", "layer", "source", "fitted_on", "created")}
        return cls(centres=centres, path=path,
                   **{k: v for k, v in meta.items() if v is not None})
