"""Reading joblib files of NumPy arrays without unpickling anything else.

``joblib.load`` unpickles whatever the file names, so a crafted file runs code when it is loaded.
:func:`load_arrays` reads the same files with joblib's own unpickler (which turns its
``NumpyArrayWrapper`` placeholders into arrays) but resolves only the globals that a file of
NumPy arrays in builtin containers needs; any other global is refused before it is imported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from joblib.numpy_pickle import NumpyUnpickler

from unseg.errors import InputError

#: The only globals a joblib file of NumPy arrays may name: joblib's array placeholder, the array
#: type and its reconstructor (NumPy 1 and 2 module names; for object arrays and plain pickles),
#: dtypes, and the builtin containers that pickle protocol 3 names (dicts, lists and tuples
#: have opcodes of their own).
ALLOWED = frozenset({
    ("joblib.numpy_pickle", "NumpyArrayWrapper"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
})


class ArrayUnpickler(NumpyUnpickler):
    """joblib's unpickler, restricted to the globals in :data:`ALLOWED`.

    Parameters
    ----------
    path : Path
        The file being read, for messages.
    file : binary file
        The open file.
    """

    def __init__(self, path: Path, file: Any) -> None:
        super().__init__(str(path), file, ensure_native_byte_order=True)
        self.path = path

    def find_class(self, module: str, name: str) -> Any:
        """Resolve an allowed global; refuse any other with an :class:`InputError`."""
        if (module, name) not in ALLOWED:
            raise InputError(
                self.path,
                f"refused to load the global {module}.{name}: only NumPy arrays in builtin "
                "containers are read from a joblib file, since loading anything else can run code",
                "use a joblib file of NumPy arrays only (the published banks are downloaded and "
                "checked against pinned hashes when absent), or a bank .npz",
            )
        return super().find_class(module, name)


def load_arrays(path: Path) -> Any:
    """Read an uncompressed joblib (or pickle) file of NumPy arrays in builtin containers.

    Parameters
    ----------
    path : Path
        The file.

    Returns
    -------
    object
        What the file holds: arrays, or dicts, lists, tuples and sets of them (and of builtin
        values).

    Raises
    ------
    InputError
        If the file names any other global (nothing of it is imported or called), or is not an
        uncompressed joblib or pickle file.
    """
    try:
        with open(path, "rb") as file:
            return ArrayUnpickler(path, file).load()
    except InputError:
        raise
    except Exception as exc:  # a corrupt pickle raises many types
        raise InputError(
            path, f"not an uncompressed joblib file of NumPy arrays ({type(exc).__name__}: {exc})",
            "pass the joblib file as published (uncompressed), or a bank .npz",
        ) from exc
