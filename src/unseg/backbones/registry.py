"""``create(name)`` and ``list()``: every way a backbone can be named.

Names, tried in this order:

1. ``default``: the embedded handcrafted backbone (:mod:`unseg.backbones.embedded`).
2. A pathology model alias or hub id: ``uni`` / ``hf-hub:MahmoodLab/UNI``, ``prov-gigapath`` /
   ``hf_hub:prov-gigapath/prov-gigapath``, ``phikon`` / ``hf-hub:owkin/phikon``,
   ``ctranspath``.
3. ``local-dir:/path``: a local copy of a timm hub repository (``config.json`` + weights).
4. ``hf-hub:owner/name``: any timm model on the Hugging Face hub (its config must be cached
   or downloadable).
5. A timm name with an optional pretrained tag: ``resnet50.tv_in1k``,
   ``vit_small_patch16_224.dino``.

Nothing falls back to another backbone: a name that cannot be built raises.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from pathlib import Path

from unseg.backbones import pathology
from unseg.backbones.base import Backbone
from unseg.backbones.embedded import EmbeddedBackbone
from unseg.backbones.timm_backbones import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    TimmSpec,
    build,
    create_random,
    load_file_into,
    pretrained_available,
    read_folder_config,
    wrap,
)
from unseg.backbones.weights import (
    cached_hf_file,
    download_hf_file,
    hf_cache_dir,
    missing_weights,
    offline,
)
from unseg.errors import InputError, ParameterError, UnsegError

_HUB_PREFIXES = ("hf-hub:", "hf_hub:")


@dataclass(frozen=True)
class BackboneInfo:
    """One named backbone, as ``unseg backbones`` lists it.

    Attributes
    ----------
    name : str
        What to pass to :func:`create`.
    source : str
        ``embedded``, ``timm``, ``hf-hub`` or ``file``.
    channels, stride : int
        Of the default layer.
    licence : str
        Licence of the pretrained weights.
    weights_available_offline : bool
        The weights are in the local cache (always True for ``default``).
    description : str
        One line.
    """

    name: str
    source: str
    channels: int
    stride: int
    licence: str
    weights_available_offline: bool
    description: str


# Listed timm models: name -> (channels, stride of the default layer, description).
_TIMM_LISTED = {
    "resnet50.tv_in1k": (1024, 16, "ResNet50, torchvision ImageNet weights; layer3 as in F-SEG"),
    "resnet50.a1_in1k": (1024, 16, "ResNet50, timm ImageNet weights (A1 recipe); layer3"),
    "resnet18.a1_in1k": (256, 16, "ResNet18, timm ImageNet weights; layer3"),
    "vit_small_patch16_224.dino": (384, 16, "ViT-S/16 DINO self-supervised; last block tokens"),
    "vit_base_patch16_224.dino": (768, 16, "ViT-B/16 DINO self-supervised; last block tokens"),
    "vit_large_patch16_224": (1024, 16, "ViT-L/16 ImageNet-21k, fine-tuned on ImageNet-1k"),
}


def list() -> builtins.list[BackboneInfo]:  # noqa: A001 - the public name of the registry
    """The named backbones, with whether their weights are cached (no network is used).

    Returns
    -------
    list of BackboneInfo
        ``default``, the listed timm models and the pathology foundation models.
    """
    import timm

    infos = [
        BackboneInfo(
            "default", "embedded", EmbeddedBackbone.CHANNELS, EmbeddedBackbone.STRIDE,
            "Apache-2.0 (part of unseg)", True, EmbeddedBackbone.DESCRIPTION,
        )
    ]
    for name, (channels, stride, description) in _TIMM_LISTED.items():
        cfg = timm.models.get_pretrained_cfg(name)
        licence = (cfg.license if cfg is not None else None) or "see the model card"
        arch, tag = timm.models.split_model_name_tag(name)
        infos.append(
            BackboneInfo(
                name, "timm", channels, stride, licence,
                pretrained_available(TimmSpec(arch, pretrained_tag=tag or None)), description,
            )
        )
    for model in pathology.MODELS.values():
        infos.append(
            BackboneInfo(
                model.alias, "hf-hub" if model.hub_id else "file", model.channels, model.stride,
                model.licence, pathology.available_offline(model), model.description,
            )
        )
    return infos


def create(
    name: str, *, weights: str | None = None, layer: str | None = None, device: str = "cpu"
) -> Backbone:
    """Build a backbone by name.

    Parameters
    ----------
    name : str
        ``default``, a pathology alias or hub id (``uni``, ``prov-gigapath``, ``phikon``,
        ``ctranspath``), ``local-dir:/path``, ``hf-hub:owner/name`` or a timm name
        (``resnet50.tv_in1k``); see the module docstring.
    weights : str or None
        None: the model's pretrained weights, from the local cache (huggingface_hub's or torch
        hub's), downloaded only when ``HF_HUB_OFFLINE`` is not set. ``"random"``: random
        initialisation. Otherwise a local checkpoint file (``.pth``, ``.pt``, ``.bin``,
        ``.safetensors``; a state dict, possibly nested under ``"state_dict"`` or
        ``"model"``) or a folder holding a hub repository's files; it must fit exactly.
    layer : str or None
        The layer to take features from: a ``feature_info`` module of a CNN (``layer3``) or
        ``blocks.<i>`` of a ViT. None: the second-to-last stage of a CNN (the last of
        CTransPath), the last block of a ViT.
    device : str
        ``cpu``, ``cuda``, ... ; ``meta`` builds the architecture without memory (random
        weights only), for checking shapes.

    Returns
    -------
    Backbone
        With ``config`` filled in.

    Raises
    ------
    MissingWeightsError
        If pretrained weights are asked for and neither cached nor downloadable.
    InputError
        If a weights file or folder is missing, unreadable or does not fit the architecture.
    ParameterError
        If ``layer`` or ``weights`` does not apply to the backbone.
    UnsegError
        If ``name`` names no backbone.
    """
    if not isinstance(name, str) or not name.strip():
        raise ParameterError(f"a backbone name is a non-empty string, got {name!r}")
    name = name.strip()
    if name == "default":
        return _default(weights, layer).to(device)
    model = pathology.lookup(name)
    if model is not None:
        return pathology.create(model, name, weights=weights, layer=layer, device=device).to(
            device
        )
    if name.lower().startswith("local-dir:"):
        return _local_dir(name, weights, layer, device).to(device)
    if name.lower().startswith(_HUB_PREFIXES):
        return _hub_timm(name, weights, layer, device).to(device)
    return _timm(name, weights, layer, device).to(device)


def _default(weights: str | None, layer: str | None) -> Backbone:
    if weights not in (None, "none"):
        raise ParameterError(
            f"the default backbone has no weights, got weights={weights!r}. Fix: leave "
            "weights unset, or name a backbone that has weights"
        )
    if layer not in (None, EmbeddedBackbone.LAYER):
        raise ParameterError(
            f"the default backbone has one layer, {EmbeddedBackbone.LAYER!r}; got {layer!r}"
        )
    return EmbeddedBackbone()


def _unknown(name: str) -> UnsegError:
    return UnsegError(
        f"unknown backbone {name!r}. Fix: run `unseg backbones` (or unseg.backbones.list()) for "
        "the named backbones; any timm name also works (timm.list_models() lists them, "
        "timm.list_pretrained() those with weights), as do hf-hub:owner/name and "
        "local-dir:/path/to/folder"
    )


def _timm(name: str, weights: str | None, layer: str | None, device: str) -> Backbone:
    import timm

    try:
        arch, tag = timm.models.split_model_name_tag(name)
    except ValueError:
        raise _unknown(name) from None
    if not timm.is_model(arch) or (tag and name not in timm.list_pretrained(name)):
        raise _unknown(name)
    spec = TimmSpec(arch, pretrained_tag=tag or None)
    net, weights_text = build(name, spec, weights, device)
    cfg: dict = getattr(net, "pretrained_cfg", {})
    licence = {
        "pretrained": cfg.get("license") or "see the model card",
        "random": "none (random weights)",
    }.get(weights_text, "of the local checkpoint")
    return wrap(
        name, net, layer=layer, source="timm", weights=weights_text, licence=licence,
        mean=tuple(cfg.get("mean", IMAGENET_MEAN)), std=tuple(cfg.get("std", IMAGENET_STD)),
        input_size=int(cfg.get("input_size", (3, 224, 224))[-1]),
    )


def _from_folder(
    name: str, config_folder: Path, weights_path: Path | None, layer: str | None,
    source: str, weights_text: str, device: str,
) -> Backbone:
    spec, cfg = read_folder_config(config_folder)
    net = create_random(spec, "meta" if device == "meta" and weights_path is None else "cpu")
    if weights_path is not None:
        load_file_into(net, weights_path)
    licence = (cfg.get("license") or "see the model card") if weights_path else (
        "none (random weights)"
    )
    size = cfg.get("input_size") or (3, 224, 224)
    return wrap(
        name, net, layer=layer, source=source, weights=weights_text, licence=licence,
        mean=tuple(cfg.get("mean", IMAGENET_MEAN)), std=tuple(cfg.get("std", IMAGENET_STD)),
        input_size=int(size[-1]),
    )


def _local_dir(name: str, weights: str | None, layer: str | None, device: str) -> Backbone:
    folder = Path(name.split(":", 1)[1]).expanduser()
    if not folder.is_dir():
        raise InputError(folder, "folder not found", fix="give local-dir:/path/to/model_folder")
    if weights not in (None, "random"):
        raise ParameterError(
            f"{name} holds its own weights; weights= must be left unset (or 'random' for the "
            f"architecture only), got {weights!r}"
        )
    path = None if weights == "random" else folder
    text = "random" if weights == "random" else str(folder.resolve())
    return _from_folder(name, folder, path, layer, "local-dir", text, device)


def _hub_timm(name: str, weights: str | None, layer: str | None, device: str) -> Backbone:
    repo = name.split(":", 1)[1].strip()
    config = cached_hf_file(repo, ("config.json",))
    if config is None:
        if offline():
            raise missing_weights(
                name, [hf_cache_dir()], "HF_HUB_OFFLINE is set and its config.json is not cached"
            )
        try:
            config = download_hf_file(repo, ("config.json",))
        except Exception as exc:  # network and hub errors come in many types
            raise missing_weights(name, [hf_cache_dir()], f"download failed: {exc}") from exc
    if weights == "random":
        return _from_folder(name, config.parent, None, layer, "hf-hub", "random", device)
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.exists():
            raise InputError(path, "weights not found")
        return _from_folder(name, config.parent, path, layer, "hf-hub", str(path.resolve()), device)
    found = cached_hf_file(repo)
    if found is None:
        if offline():
            raise missing_weights(name, [hf_cache_dir()], "HF_HUB_OFFLINE is set and not cached")
        try:
            found = download_hf_file(repo)
        except Exception as exc:  # network and hub errors come in many types
            raise missing_weights(name, [hf_cache_dir()], f"download failed: {exc}") from exc
    return _from_folder(name, config.parent, found, layer, "hf-hub", "pretrained", device)
