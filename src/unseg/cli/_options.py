"""Method options on the command line, derived from the constructor signature and docstring.

A method's keyword-only parameters become options (``random_state`` -> ``--random-state``) with
types from the annotations and help from the numpydoc ``Parameters`` section, so a new method
gets its command-line interface for free.
"""

from __future__ import annotations

import argparse
import inspect
import re
import typing
from typing import Any, Literal

from unseg.methods.base import Segmenter

_PREFIX = "param_"


def method_in_argv(command: str, argv: list[str]) -> str | None:
    """The METHOD named after ``command`` in ``argv`` (a registered name), if any."""
    from unseg import methods

    if not argv or argv[0] != command:
        return None
    names = set(methods.list())
    return next((token for token in argv[1:] if token in names), None)


def param_docs(cls: type[Segmenter]) -> dict[str, str]:
    """Parameter descriptions from the numpydoc ``Parameters`` section of ``cls``."""
    doc = inspect.getdoc(cls) or ""
    match = re.search(r"Parameters\n-+\n(.*?)(?:\n\n[A-Z][a-z]+\n-+\n|\Z)", doc, re.S)
    if not match:
        return {}
    docs: dict[str, str] = {}
    name = None
    for line in match.group(1).splitlines():
        if line and not line.startswith(" "):
            name = line.split(":")[0].strip()
            docs[name] = ""
        elif name and line.strip():
            docs[name] = (docs[name] + " " + line.strip()).strip()
    return docs


def _none_or(kind: type) -> typing.Callable[[str], Any]:
    def convert(text: str) -> Any:
        return None if text.lower() == "none" else kind(text)

    convert.__name__ = kind.__name__
    return convert


def _argument_spec(hint: Any) -> dict[str, Any]:
    if hint is bool:
        return {"action": argparse.BooleanOptionalAction}
    if typing.get_origin(hint) is Literal:
        return {"choices": list(typing.get_args(hint))}
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if len(args) == 1 and type(None) in typing.get_args(hint):
        return {"type": _none_or(args[0]), "nullable": True}
    return {"type": hint}


def add_method_options(parser: argparse.ArgumentParser, cls: type[Segmenter]) -> None:
    """Add one option per constructor parameter of ``cls`` to ``parser``."""
    group = parser.add_argument_group(f"{cls.name} options", cls.summary())
    hints = typing.get_type_hints(cls.__init__)
    docs = param_docs(cls)
    for name, param in inspect.signature(cls.__init__).parameters.items():
        if name == "self":
            continue
        spec = _argument_spec(hints[name])
        if "type" in spec:
            spec["metavar"] = name.upper() + ("|none" if spec.pop("nullable", False) else "")
        group.add_argument(
            "--" + name.replace("_", "-"),
            dest=_PREFIX + name,
            default=argparse.SUPPRESS,
            help=f"{docs.get(name, '')} (default: {param.default!r})".strip(),
            **spec,
        )


def method_params(args: argparse.Namespace) -> dict[str, Any]:
    """The method options the user gave (the method's own defaults apply to the rest)."""
    return {k[len(_PREFIX):]: v for k, v in vars(args).items() if k.startswith(_PREFIX)}
