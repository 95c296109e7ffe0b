"""Method parameters, declared once: default, constraint and help in one :func:`param`.

A method declares each parameter as a class attribute, ``k: int = param(default=4,
check=Interval(int, low=1), doc="Number of clusters.")``. From that one declaration come the
keyword-only constructor, validation with one message template (at the start of ``fit`` and
``predict``), the ``Parameters`` section of the class docstring, and the command-line option with
its type, choices and help. The conformance test derives invalid values from the same
constraints, so a method cannot forget to validate a parameter.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from unseg.errors import ParameterError


@dataclass(frozen=True)
class Interval:
    """A number of type ``kind`` (``int`` or ``float``) within ``[low, high]``.

    ``None`` bounds are open; ``low_open`` excludes ``low`` itself (for example ``sigma > 0``).
    ``allow_none`` also accepts ``None`` (for example an optional seed).
    """

    kind: type
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    allow_none: bool = False

    def accepts(self, value: Any) -> bool:
        if value is None:
            return self.allow_none
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return False
        if self.kind is int and not isinstance(value, numbers.Integral):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or value <= self.high

    def describe(self) -> str:
        noun = "an integer" if self.kind is int else "a number"
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.low_open else '>='} {self.low:g}")
        if self.high is not None:
            parts.append(f"<= {self.high:g}")
        text = f"{noun} {' and '.join(parts)}".strip()
        return f"{text} or None" if self.allow_none else text

    def invalid_examples(self) -> list[Any]:
        examples: list[Any] = ["not-a-number"]
        if self.low is not None:
            examples.append(self.kind(self.low) if self.low_open else self.kind(self.low - 1))
        if self.high is not None:
            examples.append(self.kind(self.high + 1))
        if self.kind is int:
            examples.append(2.5)
        if not self.allow_none:
            examples.append(None)
        return examples


@dataclass(frozen=True)
class Options:
    """One of a fixed set of strings."""

    values: Sequence[str]

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str) and value in self.values

    def describe(self) -> str:
        return "one of " + ", ".join(repr(v) for v in self.values)

    def invalid_examples(self) -> list[Any]:
        return ["not-an-option", 3]


@dataclass(frozen=True)
class Text:
    """A non-empty string (a name, a path, a device), or ``None`` when ``allow_none``."""

    allow_none: bool = False

    def accepts(self, value: Any) -> bool:
        if value is None:
            return self.allow_none
        return isinstance(value, str) and bool(value.strip())

    def describe(self) -> str:
        return "a non-empty string" + (" or None" if self.allow_none else "")

    def invalid_examples(self) -> list[Any]:
        return [3, ""] + ([] if self.allow_none else [None])


@dataclass(frozen=True)
class Flag:
    """True or False."""

    def accepts(self, value: Any) -> bool:
        return isinstance(value, bool)

    def describe(self) -> str:
        return "True or False"

    def invalid_examples(self) -> list[Any]:
        return ["yes", 1, None]


Constraint = Interval | Options | Text | Flag

#: The constraint of every ``random_state`` parameter.
SEED = Interval(int, low=0, allow_none=True)


def check_params(method: str, values: dict[str, Any], declared: dict[str, Param]) -> None:
    """Raise :class:`ParameterError` for the first value its parameter's constraint rejects."""
    for name, value in values.items():
        constraint = declared[name].check
        if not constraint.accepts(value):
            option = "--" + name.replace("_", "-")
            raise ParameterError(
                f"{method}: {name} must be {constraint.describe()}, got {value!r}. "
                f"Fix: pass {name}= (command line: {option}) with {constraint.describe()}."
            )


def param(*, default: Any, check: Constraint, doc: str, predict: bool = False) -> Any:
    """Declare a method parameter (a dataclass field of the Segmenter).

    Parameters
    ----------
    default : object
        The value when the parameter is not given; it must satisfy ``check``.
    check : Constraint
        What values are accepted; gives the validation and the command-line type or choices.
    doc : str
        One or more sentences of help: the docstring's and the command line's.
    predict : bool
        The parameter only acts at prediction time, so a fitted model takes a new value for it
        (``unseg segment METHOD --model FILE --OPTION VALUE``).
    """
    if not check.accepts(default):
        raise TypeError(f"default {default!r} does not satisfy its constraint {check}")
    return dataclasses.field(
        default=default, metadata={"check": check, "doc": doc, "predict": predict}
    )



@dataclass(frozen=True)
class Param:
    """A declared parameter, as the command line and the tests read it."""

    name: str
    default: Any
    check: Constraint
    doc: str
    predict: bool
    #: The annotation as written (``"int"``, ``"str | None"``), for the docstring.
    type: str

    @classmethod
    def of(cls, field: dataclasses.Field) -> Param:
        """The parameter declared by a :func:`param` field."""
        meta = field.metadata
        return cls(field.name, field.default, meta["check"], meta["doc"], meta["predict"],
                   field.type if isinstance(field.type, str) else field.type.__name__)
