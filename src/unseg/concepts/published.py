"""The published F-SEG concept banks (k-means centres of TCGA tile features), by name.

A name is looked up as ``<file>`` in the folders of ``UNSEG_CONCEPTS_DIR`` (``:``-separated) and
in ``~/.cache/unseg/concepts``; when absent it is downloaded once from the F-SEG repository and
converted to a bank file in the cache.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from unseg.concepts.bank import ConceptBank
from unseg.errors import InputError, UnsegError

REPOSITORY = "https://github.com/deepathology/fseg/raw/main/model_embeddings"


@dataclass(frozen=True)
class PublishedBank:
    name: str
    file: str  # the bank file name in a concepts folder
    remote: str  # the file in the F-SEG repository
    backbone: str
    layer: str
    channels: int
    description: str


PUBLISHED = {
    bank.name: bank
    for bank in (
        PublishedBank("tcga-resnet50", "resnet50-layer3.npz", "resnet.joblib", "resnet50.tv_in1k",
                      "layer3", 1024, "ResNet50 ImageNet, second-to-last stage, TCGA tiles"),
        PublishedBank("tcga-uni", "uni.npz", "uni.joblib", "uni", "blocks.23", 1024,
                      "UNI ViT-L/16, last block tokens after ReLU, TCGA tiles"),
        PublishedBank("tcga-prov-gigapath", "prov-gigapath.npz", "prov_gigapath.joblib",
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
    """Convert the repository's joblib file (k -> centres) into a bank ``.npz``."""
    import joblib

    content = joblib.load(source)
    items = content.items() if isinstance(content, dict) else enumerate(content)
    centres = {}
    for _, value in items:
        array = np.asarray(value, dtype=np.float32)
        if array.ndim == 2 and array.shape[1] == bank.channels:
            centres[array.shape[0]] = array
    if not centres:
        raise InputError(source, f"holds no ({bank.channels}-channel) concept arrays")
    return ConceptBank(centres=centres, **_provenance(bank)).save(target)  # type: ignore[arg-type]


def download(bank: PublishedBank) -> Path:
    """Fetch a published bank from the F-SEG repository into the cache (once)."""
    import tempfile
    import urllib.request

    target = cache_dir() / bank.file
    url = f"{REPOSITORY}/{bank.remote}"
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / bank.remote
        try:
            urllib.request.urlretrieve(url, local)  # noqa: S310 - a fixed https URL
        except OSError as exc:
            folders = ", ".join(str(d) for d in search_dirs())
            raise UnsegError(
                f"published concept bank {bank.name} ({bank.file}) is not in {folders} and "
                f"could not be downloaded from {url} ({exc}). Fix: put {bank.file} in one of "
                "those folders or point UNSEG_CONCEPTS_DIR at a folder holding it."
            ) from exc
        return convert_joblib(local, target, bank)
