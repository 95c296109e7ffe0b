"""Write files so that readers never see a half-written one."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from unseg.errors import InputError


def output_dir(path: str | Path) -> Path:
    """Create the folder ``path`` (and its parents) if needed and return it.

    Raises
    ------
    InputError
        If ``path`` is an existing file, or the folder cannot be created.
    """
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise InputError(folder, "exists and is not a folder", "choose another output folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(folder, f"cannot create the output folder ({exc.strerror})") from exc
    return folder


def writable_file(path: str | Path) -> Path:
    """Check before any work that ``path`` can be written as a file: not a folder, its folder
    created if needed and writable.

    Raises
    ------
    InputError
        Naming the path and the fix.
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(path, "is a folder, and a file is written here",
                         "give a file name, such as model.npz")
    folder = output_dir(path.parent)
    if not os.access(folder, os.W_OK):
        raise InputError(folder, "is not writable", "write to another folder")
    return path


def refuse_inputs_as_outputs(outputs: Iterable[str | Path], inputs: Iterable[str | Path]
                             ) -> None:
    """Raise before any work if an output path is an input (file or folder).

    Paths are compared after resolving symbolic links, so ``--out`` given as a link to the
    input folder is caught too.

    Raises
    ------
    InputError
        Naming the output, the input it would overwrite, and the fix.
    """
    taken = {Path(p).resolve(): Path(p) for p in inputs}
    for output in outputs:
        clash = taken.get(Path(output).resolve())
        if clash is not None:
            raise InputError(
                output, f"is an input ({clash}); writing there would overwrite it",
                "write to another --out folder or file")


@contextmanager
def atomic_write(path: str | Path) -> Iterator[Path]:
    """Give a temporary path to write to, then move it onto ``path`` in one step.

    The temporary file sits in the target's folder (so the final rename stays on one file
    system) under a hidden name that is unique to this call and keeps the target's suffix, so
    writers that infer the format from the suffix work unchanged. Missing parent folders are
    created.

    Parameters
    ----------
    path : str or Path
        The file to write.

    Yields
    ------
    Path
        The temporary path the caller writes to.

    Raises
    ------
    InputError
        If the output folder cannot be created or the written file cannot be moved into place.

    Notes
    -----
    If the ``with`` block raises, the temporary file is removed and ``path`` is left exactly as
    it was (an existing file keeps its old content).

    Examples
    --------
    >>> with atomic_write("out/labels.png") as tmp:  # doctest: +SKIP
    ...     PIL.Image.fromarray(labels).save(tmp)
    """
    target = Path(path)
    output_dir(target.parent)
    tmp = target.with_name(f".{target.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}{target.suffix}")
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InputError(target, f"cannot write the file ({exc.strerror})") from exc
