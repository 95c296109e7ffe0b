"""Where pretrained weights live and how local checkpoints are read and loaded.

Nothing here touches the network by itself: the cache helpers only look at files, and downloads
happen in :func:`download_hf_file` / :func:`download_url_file`, which callers use only when the
cache misses and ``HF_HUB_OFFLINE`` is not set. Cache locations are read from the environment at
call time (``HF_HUB_CACHE``, ``HF_HOME``, ``XDG_CACHE_HOME``, ``TORCH_HOME``), so a changed
environment is honoured without re-importing anything.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from unseg.errors import InputError, MissingWeightsError

#: Weight files of a Hugging Face hub repository, in the order they are preferred.
HF_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
#: Suffixes read as checkpoint files.
CHECKPOINT_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors", ".ckpt")
_NESTING_KEYS = ("state_dict", "model")
_TRUE = ("1", "on", "yes", "true")


def offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` asks for no network access (read at call time)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


def hf_cache_dir() -> Path:
    """The folder huggingface_hub caches repositories in, as the environment sets it now."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser() / "huggingface" / "hub"


def torch_hub_checkpoints() -> Path:
    """Where ``torch.hub`` keeps downloaded checkpoints (``$TORCH_HOME/hub/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def cached_hf_file(repo_id: str, filenames: Sequence[str] = HF_WEIGHT_FILES) -> Path | None:
    """The first of ``filenames`` present in the local cache of ``repo_id``, without network.

    Parameters
    ----------
    repo_id : str
        ``owner/name`` on the Hugging Face hub.
    filenames : sequence of str
        Candidate files, most preferred first.

    Returns
    -------
    Path or None
        The cached file, or None when none of the files is cached.
    """
    from huggingface_hub import try_to_load_from_cache

    for filename in filenames:
        found = try_to_load_from_cache(repo_id, filename, cache_dir=hf_cache_dir())
        if isinstance(found, str) and Path(found).is_file():
            return Path(found)
    return None


def cached_url_file(url: str) -> Path | None:
    """The torch hub cache copy of a checkpoint URL, or None when it was never downloaded."""
    path = torch_hub_checkpoints() / os.path.basename(url)
    return path if path.is_file() else None


def download_hf_file(repo_id: str, filenames: Sequence[str] = HF_WEIGHT_FILES) -> Path:
    """Download the first of ``filenames`` that ``repo_id`` has into the hub cache.

    Raises
    ------
    OSError
        (or a huggingface_hub error) when no file could be downloaded; the caller turns it into
        :class:`~unseg.errors.MissingWeightsError`.
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    for filename in filenames[:-1]:
        try:
            return Path(hf_hub_download(repo_id, filename, cache_dir=hf_cache_dir()))
        except EntryNotFoundError:
            continue
    return Path(hf_hub_download(repo_id, filenames[-1], cache_dir=hf_cache_dir()))


def download_url_file(url: str) -> Path:
    """Download a checkpoint URL into the torch hub cache and return the file."""
    target = torch_hub_checkpoints() / os.path.basename(url)
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.hub.download_url_to_file(url, str(target), progress=False)
    return target


def hub_weights(repo_id: str, model: str, note: str = "") -> Path:
    """The weights file of ``repo_id`` from the local hub cache, downloaded only when online.

    Raises
    ------
    MissingWeightsError
        If they are not cached and ``HF_HUB_OFFLINE`` is set or the download fails; ``note`` is
        added to the reason (what else the user must do, e.g. for a gated repository).
    """
    found = cached_hf_file(repo_id)
    if found is not None:
        return found
    if offline():
        raise missing_weights(model, [hf_cache_dir()],
                              f"HF_HUB_OFFLINE is set and {repo_id} is not cached{note}")
    try:
        return download_hf_file(repo_id)
    except Exception as exc:  # network and hub errors come in many types
        raise missing_weights(model, [hf_cache_dir()], f"download failed: {exc}{note}") from exc


def missing_weights(
    model: str, looked_in: Iterable[Path | str], reason: str
) -> MissingWeightsError:
    """The error for pretrained weights that are neither cached nor downloadable.

    Parameters
    ----------
    model : str
        The name the user asked for.
    looked_in : iterable of Path or str
        The cache paths that were searched.
    reason : str
        Why they could not be had (offline, download failed with ..., gated, ...).
    """
    places = ", ".join(str(p) for p in looked_in)
    return MissingWeightsError(
        f"{model}: pretrained weights are not available ({reason}). Looked in: {places}. Fix: "
        f"pass weights=PATH, a local checkpoint file or a folder holding config.json and the "
        f"weights (command line: --weights PATH); or use the embedded backbone, which needs no "
        f"weights (--backbone default); or go online once (unset HF_HUB_OFFLINE) so that the "
        f"weights fill the cache."
    )


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a checkpoint file into a flat state dict of tensors.

    ``.safetensors`` files are read with safetensors, anything else with ``torch.load``
    (``weights_only=True``: no code in the file is run). A dict nested under ``"state_dict"`` or
    ``"model"`` is unwrapped (repeatedly), and a ``module.`` prefix on every key (left by
    ``DataParallel``) is removed.

    Parameters
    ----------
    path : str or Path
        The checkpoint file.

    Returns
    -------
    dict
        Parameter name -> tensor.

    Raises
    ------
    InputError
        If the file is missing, unreadable, or holds no state dict of tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "checkpoint file not found")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            loaded: Any = load_file(str(path), device="cpu")
        else:
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load and safetensors raise many types for bad files
        raise InputError(
            path, f"cannot read the checkpoint ({type(exc).__name__}: {exc})",
            fix="give a .pth/.pt/.bin/.safetensors file holding a state dict",
        ) from exc
    while isinstance(loaded, Mapping):
        nested = [k for k in _NESTING_KEYS if isinstance(loaded.get(k), Mapping)]
        if not nested:
            break
        loaded = loaded[nested[0]]
    if not isinstance(loaded, Mapping) or not loaded or not all(
        isinstance(v, torch.Tensor) for v in loaded.values()
    ):
        raise InputError(
            path, "holds no state dict of tensors",
            fix="save the weights with torch.save(model.state_dict(), path)",
        )
    state = {str(k): v for k, v in loaded.items()}
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def load_strict(module: torch.nn.Module, state: Mapping[str, torch.Tensor], source: Path) -> None:
    """Load ``state`` into ``module``; every key must match in name and shape.

    Raises
    ------
    InputError
        Naming ``source`` and the first few missing, unexpected and mismatched keys; nothing is
        loaded in that case.
    """
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in own
        if k in state and state[k].shape != own[k].shape
    ]
    problems = [
        f"{label} ({len(keys)}): {', '.join(keys[:5])}{', ...' if len(keys) > 5 else ''}"
        for label, keys in (
            ("missing keys", missing), ("unexpected keys", unexpected),
            ("shape mismatches (file vs model)", shapes),
        )
        if keys
    ]
    if problems:
        raise InputError(
            source,
            f"weights do not fit the {type(module).__name__} architecture; " + "; ".join(problems),
            fix="give the checkpoint of this exact architecture (and name the matching backbone)",
        )
    module.load_state_dict(state, strict=True)


def weights_file_in(folder: Path) -> Path:
    """The weight file of a local hub-style folder (``model.safetensors`` preferred).

    Raises
    ------
    InputError
        If the folder holds neither ``model.safetensors`` nor ``pytorch_model.bin``.
    """
    for name in HF_WEIGHT_FILES:
        if (folder / name).is_file():
            return folder / name
    raise InputError(
        folder, f"holds none of {', '.join(HF_WEIGHT_FILES)}",
        fix="give a folder laid out like a Hugging Face hub repository (config.json + weights)",
    )
