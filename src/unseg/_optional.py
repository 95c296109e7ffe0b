"""Optional dependencies, imported when first needed, with the extra that provides them."""

from __future__ import annotations

import importlib
from types import ModuleType

from unseg.errors import MissingDependencyError


def optional_import(module: str, extra: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming ``unseg[extra]``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{module} is not installed; it comes with `pip install 'unseg[{extra}]'`"
        ) from exc
