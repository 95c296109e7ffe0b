"""Names and colours of label ids, where people read them: concepts named by a user
(``--names names.json``) and the classes of a dataset (``classes.json`` / ``classes.txt``).

One JSON format serves both: an object mapping ids to a name, or to an object with a name and
a colour::

    {"0": "tumour", "1": {"name": "stroma", "colour": "#e6a0c0"}, "4": {"colour": [40, 40, 40]}}

A colour is ``"#rrggbb"`` or ``[r, g, b]`` in 0..255 (``"color"`` is accepted as the key too).
Ids left out keep their default: the name ``"concept 3"`` (``"class 3"`` for classes) and the
colour :func:`unseg.io.palette` gives the id, the same in every output.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from unseg.errors import InputError

Colour = tuple[int, int, int]


@dataclass(frozen=True)
class LabelNames:
    """The name and colour of each label id, with defaults for the ids not given.

    Attributes
    ----------
    names : mapping of int to str
        Names given, by id.
    colours : mapping of int to (r, g, b)
        Colours given, by id; the others get :func:`unseg.io.palette`'s.
    unnamed : str
        The word of an id without a name: ``"concept"`` gives ``"concept 3"``.
    """

    names: Mapping[int, str] = field(default_factory=dict)
    colours: Mapping[int, Colour] = field(default_factory=dict)
    unnamed: str = "concept"

    def __bool__(self) -> bool:
        return bool(self.names or self.colours)

    def name(self, label: int) -> str:
        """The name of ``label``: the one given, else ``"<unnamed> <label>"``."""
        return self.names.get(int(label), f"{self.unnamed} {int(label)}")

    def colour(self, label: int) -> Colour:
        """The RGB colour of ``label``: the one given, else its palette colour."""
        row = self.colour_table(int(label) + 1)[int(label)]
        return (int(row[0]), int(row[1]), int(row[2]))

    def name_list(self, n: int) -> list[str]:
        """Names of ids ``0 .. n - 1``."""
        return [self.name(i) for i in range(n)]

    def colour_table(self, n: int) -> np.ndarray:
        """``(n, 3)`` ``uint8`` RGB: row ``i`` the colour of id ``i``."""
        from unseg.io import palette

        table = palette(n)
        for label, colour in self.colours.items():
            if label < n:
                table[label] = colour
        return table

    def to_json(self) -> dict[str, dict[str, Any]]:
        """The names and colours given, in the JSON format of :func:`read_label_names`."""
        ids = sorted(set(self.names) | set(self.colours))
        entries: dict[str, dict[str, Any]] = {str(i): {} for i in ids}
        for i in ids:
            if i in self.names:
                entries[str(i)]["name"] = self.names[i]
            if i in self.colours:
                entries[str(i)]["colour"] = list(self.colours[i])
        return entries

    @classmethod
    def from_json(cls, data: Any, *, source: str | Path = "names",
                  unnamed: str = "concept") -> LabelNames:
        """Parse the JSON format (a decoded object); ``source`` names it in errors.

        Raises
        ------
        InputError
            If an id is not an integer >= 0, a name is not text, or a colour is not
            ``"#rrggbb"`` or three integers in 0..255.
        """
        if not isinstance(data, dict):
            raise InputError(source, f"expected an object of label id -> name, got "
                             f"{type(data).__name__}", _FIX)
        names: dict[int, str] = {}
        colours: dict[int, Colour] = {}
        for key, value in data.items():
            label = _label_id(key, source)
            if isinstance(value, str):
                names[label] = value
                continue
            if not isinstance(value, dict):
                raise InputError(source, f"label {key}: expected a name or an object with "
                                 f"'name' and/or 'colour', got {value!r}", _FIX)
            unknown = set(value) - {"name", "colour", "color"}
            if unknown:
                raise InputError(source, f"label {key}: unknown key(s) {', '.join(sorted(unknown))}"
                                 " (expected 'name' and 'colour')", _FIX)
            if "name" in value:
                if not isinstance(value["name"], str):
                    raise InputError(source, f"label {key}: the name must be text, got "
                                     f"{value['name']!r}", _FIX)
                names[label] = value["name"]
            colour = value.get("colour", value.get("color"))
            if colour is not None:
                colours[label] = _colour(colour, key, source)
        return cls(names, colours, unnamed)


_FIX = ('write it as {"0": "tumour", "1": {"name": "stroma", "colour": "#e6a0c0"}}: label id '
        '-> name, or -> {"name": ..., "colour": "#rrggbb" or [r, g, b]}')


def _label_id(key: str, source: str | Path) -> int:
    try:
        label = int(key)
    except ValueError:
        label = -1
    if label < 0:
        raise InputError(source, f"{key!r} is not a label id (an integer >= 0)", _FIX)
    return label


def _colour(value: Any, key: str, source: str | Path) -> Colour:
    if isinstance(value, str) and len(value) == 7 and value.startswith("#"):
        try:
            return (int(value[1:3], 16), int(value[3:5], 16), int(value[5:7], 16))
        except ValueError:
            pass
    elif (isinstance(value, list) and len(value) == 3
          and all(isinstance(v, int) and 0 <= v <= 255 for v in value)):
        return (value[0], value[1], value[2])
    raise InputError(source, f"label {key}: colour {value!r} is neither '#rrggbb' nor "
                     "[r, g, b] in 0..255", _FIX)


def read_label_names(path: str | os.PathLike[str], *, unnamed: str = "concept") -> LabelNames:
    """Read a names file: JSON as above, or text with one name per line (line ``i``, counted
    from 0, names id ``i``; empty lines keep the default name).

    Raises
    ------
    InputError
        If the file cannot be read or is not in one of these formats; the message names the
        file and shows the format.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(path, "names file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(path, f"cannot read it ({error})") from error
    if path.suffix.lower() == ".txt":
        lines = [line.strip() for line in text.splitlines()]
        return LabelNames({i: line for i, line in enumerate(lines) if line}, unnamed=unnamed)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(path, f"not valid JSON ({error})", _FIX) from error
    return LabelNames.from_json(data, source=path, unnamed=unnamed)
