"""The runs a report is made from, read from their output folders.

- a folder run (``unseg segment``): ``OUT/run.json`` beside the label maps;
- a benchmark (``unseg benchmark``): ``OUT/benchmark.json`` and ``OUT/predictions/<method>/``;
- slides (``unseg slide segment``): each finished slide's summary ``OUT/<slide>.json``.

Metrics of a folder run are not computed here (the report runs no method and no evaluation):
whoever builds the report evaluates and sets :attr:`FolderRun.metrics`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unseg.data import LabelNames, class_names
from unseg.errors import InputError

_RUN_FIX = ("give the --out folder of `unseg segment`, `unseg benchmark` or "
            "`unseg slide segment` (or a slide's summary OUT/<slide>.json)")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(path, f"cannot read this run record ({error})",
                         "run the command that wrote it again") from error
    if not isinstance(data, dict):
        raise InputError(path, "is not a run record (a JSON object)", _RUN_FIX)
    return data


@dataclass
class FolderRun:
    """An ``unseg segment`` output folder.

    Attributes
    ----------
    folder : Path
        The output folder (label maps ``<id>.png``, overlays, ``run.json``).
    record : dict
        ``run.json``.
    names : LabelNames
        The names and colours of the labels: those the run recorded, or given to the report.
    metrics : dict or None
        :meth:`unseg.eval.EvaluationResult.to_dict` of the label maps against the masks, set by
        the caller; None without masks.
    """

    folder: Path
    record: dict[str, Any]
    names: LabelNames
    metrics: dict[str, Any] | None = None

    @property
    def samples(self) -> list[tuple[str, Path, Path | None]]:
        """``(id, image, mask or None)`` of every image the run wrote a label map for."""
        recorded = self.record["samples"]
        return [(i, Path(recorded[i]["image"]),
                 None if recorded[i]["mask"] is None else Path(recorded[i]["mask"]))
                for i in self.record["written"]]

    @property
    def mask_folder(self) -> Path | None:
        """The one folder holding every image's mask; None when an image has no mask or the
        masks come from several folders."""
        folders = {None if mask is None else mask.parent for _, _, mask in self.samples}
        return folders.pop() if len(folders) == 1 else None

    @property
    def class_names(self) -> LabelNames:
        """Names of the mask classes, from the dataset's ``classes.json``/``classes.txt``."""
        folder = self.mask_folder
        return class_names(folder) if folder is not None else LabelNames(unnamed="class")


@dataclass
class BenchmarkRun:
    """An ``unseg benchmark`` output folder: ``benchmark.json`` and the methods' label maps."""

    folder: Path
    record: dict[str, Any]

    @property
    def data(self) -> Path:
        return Path(self.record["data"])

    @property
    def class_names(self) -> LabelNames:
        return class_names(self.data)


@dataclass
class SlideRun:
    """One finished slide of an ``unseg slide segment`` output folder (its summary)."""

    summary_path: Path
    summary: dict[str, Any]
    names: LabelNames = field(default_factory=LabelNames)

    @property
    def id(self) -> str:
        return self.summary_path.stem

    def output(self, kind: str) -> Path:
        """An output file named in the summary (``labels``, ``areas``, ...), found beside the
        summary (the folder may have moved since)."""
        return self.summary_path.parent / Path(self.summary["outputs"][kind]).name


Run = FolderRun | BenchmarkRun | SlideRun


def _is_slide_summary(data: dict[str, Any]) -> bool:
    return {"slide", "state", "outputs"} <= set(data)


def load_runs(paths: Sequence[str | os.PathLike[str]]) -> list[Run]:
    """Read the runs in the given output folders (or slide summary files), in order.

    Raises
    ------
    InputError
        If a path is neither a run folder nor a slide summary, or a record lacks what a report
        needs (a record of an older unseg: run the command again).
    """
    runs: list[Run] = []
    for path in map(Path, paths):
        if not path.exists():
            raise InputError(path, "run folder not found", _RUN_FIX)
        if path.is_file():
            data = _read_json(path) if path.suffix == ".json" else {}
            if _is_slide_summary(data):
                runs.append(_slide_run(path, data))
                continue
            if path.name in ("run.json", "benchmark.json"):
                path = path.parent
            else:
                raise InputError(path, "is not a run record", _RUN_FIX)
        if (path / "run.json").is_file():
            runs.append(_folder_run(path))
        elif (path / "benchmark.json").is_file():
            runs.append(BenchmarkRun(path, _read_json(path / "benchmark.json")))
        else:
            slides = [(p, _read_json(p)) for p in sorted(path.glob("*.json"))
                      if not p.name.startswith(".")]
            found = [_slide_run(p, data) for p, data in slides if _is_slide_summary(data)]
            if not found:
                raise InputError(path, "holds no run.json, benchmark.json or finished slide "
                                 "summary (<slide>.json)", _RUN_FIX)
            runs.extend(found)
    return runs


def _folder_run(folder: Path) -> FolderRun:
    record = _read_json(folder / "run.json")
    if "samples" not in record:
        raise InputError(folder / "run.json", "records no input images (written by an older "
                         "unseg)", "run `unseg segment` again into this folder")
    return FolderRun(folder, record, LabelNames.from_json(record.get("names", {}),
                                                          source=folder / "run.json"))


def _slide_run(path: Path, summary: dict[str, Any]) -> SlideRun:
    return SlideRun(path, summary, LabelNames.from_json(summary.get("names", {}), source=path))
