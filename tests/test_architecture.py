"""The layering of DESIGN.md (docs/architecture.md), checked on every run of the suite."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_imports_keep_the_layers_and_no_package_has_a_cycle() -> None:
    # In its own process: import-linter reconfigures logging (it disables existing loggers).
    code = ("import sys; from importlinter.cli import lint_imports; "
            "sys.exit(lint_imports(config_filename=sys.argv[1], no_cache=True, no_logo=True))")
    done = subprocess.run([sys.executable, "-c", code, str(PYPROJECT)], capture_output=True,
                          text=True)
    # 0 when every contract in pyproject.toml's [tool.importlinter] is kept; otherwise the
    # output names the broken contract and the offending imports
    assert done.returncode == 0, done.stdout + done.stderr
