"""The published F-SEG concept banks (k-means centres of TCGA tile features), by name.

A name is looked up as ``<file>`` in the folders of ``UNSEG_CONCEPTS_DIR`` (``:``-separated) and
in ``~/.cache/unseg/concepts``; when absent it is downloaded once from a fixed commit of the F-SEG
repository, checked against its pinned sha256 and converted to a bank file in the cache without
unpickling anything but NumPy arrays (:mod:`unseg.concepts.joblib_arrays`).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from unseg.concepts.bank import ConceptBank
from unseg.errors import InputError, UnsegError

#: The newest commit of deepathology/fseg holding the banks (unchanged since they were added).
COMMIT = "eb893969bb59e7f1ec88597e8ed8547731037580"
REPOSITORY = f"https://github.com/deepathology/fseg/raw/{COMMIT}/model_embeddings"


@dataclass(frozen=True)
class PublishedBank:
    """One published bank.

    Attributes
    ----------
    name : str
        The name it is known by (``tcga-uni``, ...).
    file : str
        The bank file name in a concepts folder.
    remote : str
        The joblib file in the F-SEG repository's ``model_embeddings`` folder.
    sha256 : str
        The hex sha256 of ``remote`` at :data:`COMMIT`.
    backbone, layer : str
        The backbone and layer whose features were clustered.
    channels : int
        Feature size ``C``.
    description : str
        One line for ``unseg concepts list``.
    """

    name: str
    file: str
    remote: str
    sha256: str
    backbone: str
    layer: str
    channels: int
    description: str


PUBLISHED = {
    bank.name: bank
    for bank in (
        PublishedBank("tcga-resnet50", "resnet50-layer3.npz", "resnet.joblib",
                      "d8fe4411715ff53460594c5d574f88ac850c09e0d658423905c2dd0274a95f9c",
                      "resnet50.tv_in1k", "layer3", 1024,
                      "ResNet50 ImageNet, second-to-last stage, TCGA tiles"),
        PublishedBank("tcga-uni", "uni.npz", "uni.joblib",
                      "6b87f0082187cb48c060eb5f390fb73b70de15c6bc2467b6d1a870298a2fd7fd",
                      "uni", "blocks.23", 1024,
                      "UNI ViT-L/16, last block tokens after ReLU, TCGA tiles"),
        PublishedBank("tcga-prov-gigapath", "prov-gigapath.npz", "prov_gigapath.joblib",
                      "82f3cf7cafd607c182cea1b1eab50f5fc6fabef6f47f9849ad1a960c2ad12c3d",
                      "prov-gigapath", "blocks.39", 1536,
                      "Prov-GigaPath ViT-g/14, last block tokens after ReLU, TCGA tiles"),
    )
}


def search_dirs() -> list[Path]:
    """Folders searched for published bank files, in order."""
    env = os.environ.get("UNSEG_CONCEPTS_DIR", "")
    return [Path(p) for p in env.split(os.pathsep) if p] + [cache_dir()]


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "unseg" / "concepts"


def _provenance(bank: PublishedBank) -> dict[str, object]:
    return {"backbone": bank.backbone, "layer": bank.layer, "source": f"published:{bank.name}",
            "fitted_on": {"data": "TCGA tiles (F-SEG paper)"}}


def published_for(path: Path) -> PublishedBank | None:
    """The published bank a file is a copy of, judged by its file name."""
    return next((b for b in PUBLISHED.values() if b.file == path.name), None)


def load_bank(name_or_path: str | Path) -> ConceptBank:
    """A bank from a file path or a published name (``tcga-resnet50``, ``tcga-uni``, ...)."""
    path = Path(name_or_path)
    if str(name_or_path) not in PUBLISHED:
        if not path.exists():
            raise InputError(
                path, "concept bank not found",
                "pass a .npz from `unseg concepts fit` or a published bank: "
                + ", ".join(PUBLISHED) + " (`unseg concepts list`)",
            )
        known = published_for(path)
        return ConceptBank.load(path, **(_provenance(known) if known else {}))
    bank = PUBLISHED[str(name_or_path)]
    for folder in search_dirs():
        if (folder / bank.file).is_file():
            return ConceptBank.load(folder / bank.file, **_provenance(bank))
    return ConceptBank.load(download(bank), **_provenance(bank))


def convert_joblib(source: Path, target: Path, bank: PublishedBank) -> Path:
    """Convert the repository's joblib file (k -> centres) into a bank ``.npz``.

    Parameters
    ----------
    source : Path
        The joblib file; only NumPy arrays in builtin containers are read from it.
    target : Path
        The bank file to write.
    bank : PublishedBank
        The bank it holds.

    Returns
    -------
    Path
        ``target``.

    Raises
    ------
    InputError
        If ``source`` names any global but those of NumPy arrays (nothing of it is run), is not a
        joblib file, or holds no ``(k, C)`` arrays of the bank's ``C``.
    """
    from unseg.concepts.joblib_arrays import load_arrays

    content = load_arrays(source)
    items = content.items() if isinstance(content, dict) else enumerate(content)
    centres = {}
    for _, value in items:
        array = np.asarray(value, dtype=np.float32)
        if array.ndim == 2 and array.shape[1] == bank.channels:
            centres[array.shape[0]] = array
    if not centres:
        raise InputError(source, f"holds no ({bank.channels}-channel) concept arrays")
    return ConceptBank(centres=centres, **_provenance(bank)).save(target)  # type: ignore[arg-type]


def file_sha256(path: Path) -> str:
    """The hex sha256 of a file's content."""
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def download(bank: PublishedBank) -> Path:
    """Fetch a published bank from the pinned F-SEG commit into the cache (once).

    Parameters
    ----------
    bank : PublishedBank
        The bank.

    Returns
    -------
    Path
        The converted bank file in :func:`cache_dir`.

    Raises
    ------
    UnsegError
        If the download fails, or the file's sha256 is not the pinned one (then nothing is
        converted or cached).
    InputError
        If the file cannot be converted (see :func:`convert_joblib`).
    """
    import tempfile
    import urllib.request

    target = cache_dir() / bank.file
    url = f"{REPOSITORY}/{bank.remote}"
    folders = ", ".join(str(d) for d in search_dirs())
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / bank.remote
        try:
            urllib.request.urlretrieve(url, local)  # noqa: S310 - a fixed https URL
        except OSError as exc:
            raise UnsegError(
                f"published concept bank {bank.name} ({bank.file}) is not in {folders} and "
                f"could not be downloaded from {url} ({exc}). Fix: put {bank.file} in one of "
                "those folders or point UNSEG_CONCEPTS_DIR at a folder holding it."
            ) from exc
        digest = file_sha256(local)
        if digest != bank.sha256:
            raise UnsegError(
                f"{bank.remote} downloaded from {url} has sha256 {digest}, not the pinned "
                f"{bank.sha256}: it is not the published file, so it was neither converted nor "
                "cached. Fix: retry the download (a proxy or a cut connection can alter it), or "
                f"put {bank.file} in one of {folders} or point UNSEG_CONCEPTS_DIR at a folder "
                "holding it."
            )
        return convert_joblib(local, target, bank)
