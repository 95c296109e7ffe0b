"""Method options on the command line, derived from each method's declared parameters.

A method's parameters become options (``random_state`` -> ``--random-state``) with their type,
choices and help from the parameter's declaration (:func:`unseg.methods.params.param`), so a new
method gets its command-line interface for free.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from unseg.methods import Segmenter
from unseg.methods.params import Constraint, Flag, Interval, Options

_PREFIX = "param_"


def method_in_argv(command: str, argv: list[str]) -> str | None:
    """The METHOD named after ``command`` in ``argv`` (a registered name), if any."""
    from unseg import methods

    if not argv or argv[0] != command:
        return None
    names = set(methods.list())
    return next((token for token in argv[1:] if token in names), None)


def _none_or(kind: type) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        return None if text.lower() == "none" else kind(text)

    convert.__name__ = kind.__name__
    return convert


def _argument_spec(name: str, check: Constraint) -> dict[str, Any]:
    """argparse keywords for a parameter with constraint ``check``."""
    if isinstance(check, Flag):
        return {"action": argparse.BooleanOptionalAction}
    if isinstance(check, Options):
        return {"choices": list(check.values)}
    kind = check.kind if isinstance(check, Interval) else str
    if check.allow_none:
        return {"type": _none_or(kind), "metavar": name.upper() + "|none"}
    return {"type": kind, "metavar": name.upper()}


def add_method_options(parser: argparse.ArgumentParser, cls: type[Segmenter]) -> None:
    """Add one option per declared parameter of ``cls`` to ``parser``."""
    group = parser.add_argument_group(f"{cls.name} options", cls.summary())
    for name, p in cls.parameters().items():
        group.add_argument(
            "--" + name.replace("_", "-"),
            dest=_PREFIX + name,
            default=argparse.SUPPRESS,
            help=f"{p.doc} (default: {p.default!r})",
            **_argument_spec(name, p.check),
        )


def method_params(args: argparse.Namespace) -> dict[str, Any]:
    """The method options the user gave (the method's own defaults apply to the rest)."""
    return {k[len(_PREFIX):]: v for k, v in vars(args).items() if k.startswith(_PREFIX)}
