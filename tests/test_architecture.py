"""The layering of DESIGN.md (docs/architecture.md), checked on every run of the suite."""

from __future__ import annotations

from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_imports_keep_the_layers_and_no_package_has_a_cycle() -> None:
    from importlinter.cli import lint_imports

    # 0 when every contract in pyproject.toml's [tool.importlinter] is kept; the broken
    # contract and the offending imports are printed (pytest shows them on failure)
    assert lint_imports(config_filename=str(PYPROJECT), no_cache=True, no_logo=True) == 0
