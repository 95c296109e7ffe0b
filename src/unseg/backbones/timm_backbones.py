"""Backbones built from timm models: stage outputs of CNN-like models and ViT patch tokens.

Two adapters cover timm's model zoo:

- :class:`StageBackbone` returns the output of one stage named in the model's ``feature_info``
  (``layer3`` of a ResNet, ``layers.3`` of a Swin), after ReLU.
- :class:`ViTBackbone` returns the patch tokens of one block of a
  :class:`timm.models.VisionTransformer` (the block's output, before the model's final norm, as
  F-SEG and its published concept banks use it), with the class and register tokens removed,
  laid out on the patch grid ``(B, C, H / p, W / p)``, after ReLU; :meth:`ViTBackbone.keys`
  gives that block's attention keys instead, signs kept (Deep Spectral Methods' features).

:func:`build` creates the timm model and puts weights in it (random, the pretrained weights from
the local cache or a download, or a local checkpoint); :func:`wrap` chooses the adapter.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from unseg.backbones.base import Backbone, BackboneConfig
from unseg.backbones.weights import (
    HF_WEIGHT_FILES,
    cached_hf_file,
    cached_url_file,
    download_hf_file,
    download_url_file,
    hf_cache_dir,
    load_strict,
    missing_weights,
    offline,
    read_state_dict,
    torch_hub_checkpoints,
    weights_file_in,
)
from unseg.errors import InputError, ParameterError, UnsegError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class TorchBackbone(Backbone):
    """A backbone around a frozen torch module in eval mode."""

    def __init__(self, model: torch.nn.Module, config: BackboneConfig) -> None:
        self.model = model.eval().requires_grad_(False)
        self.config = config

    def to(self, device: str | torch.device) -> TorchBackbone:
        """Move the module and the preprocessing to ``device``; returns ``self``."""
        self.model.to(device)
        self.device = torch.device(device)
        return self


class StageBackbone(TorchBackbone):
    """The output of one stage of a timm model with ``feature_info``, after ReLU.

    Parameters
    ----------
    model : torch.nn.Module
        A timm model with ``feature_info`` and ``forward_intermediates``.
    index : int
        Index of the stage in ``model.feature_info``.
    config : BackboneConfig
        Its ``layer`` names the stage, ``stride`` its reduction.
    """

    def __init__(self, model: torch.nn.Module, index: int, config: BackboneConfig) -> None:
        super().__init__(model, config)
        self.index = index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` -> ``(B, C, H / stride, W / stride)``, non-negative."""
        out = self.model.forward_intermediates(  # type: ignore[operator]
            x, indices=[self.index], norm=True, stop_early=True, intermediates_only=True
        )[0]
        return torch.relu(out)


class ViTBackbone(TorchBackbone):
    """Patch tokens of one block of a timm VisionTransformer (its output, no final norm), ReLU.

    The first ``model.num_prefix_tokens`` tokens (class and register tokens) are removed and the
    rest laid out on the patch grid.

    Parameters
    ----------
    model : timm.models.VisionTransformer
        Created with ``dynamic_img_size=True`` so that any multiple of the patch size works.
    block : int
        Index of the block whose tokens are returned (the last by default).
    config : BackboneConfig
        ``stride`` and ``size_multiple`` are the patch size.
    """

    def __init__(self, model: torch.nn.Module, block: int, config: BackboneConfig) -> None:
        super().__init__(model, config)
        self.block = block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` -> ``(B, C, H / p, W / p)``, non-negative."""
        tokens = self.model.forward_intermediates(  # type: ignore[operator]
            x, indices=[self.block], norm=False, output_fmt="NLC", intermediates_only=True,
            return_prefix_tokens=False,
        )[0]
        grid = tokens_to_grid(tokens, x.shape[-2] // self.stride, x.shape[-1] // self.stride)
        return torch.relu(grid)

    def keys(self, x: torch.Tensor) -> torch.Tensor:
        """The attention keys of the chosen block (the last by default), signs kept.

        The key part of the block's ``attn.qkv`` projection, heads side by side, for the patch
        tokens (prefix tokens removed): the features Deep Spectral Methods and ACSeg take from
        a ViT. Unlike :meth:`forward` they are not made non-negative.

        Parameters
        ----------
        x : torch.Tensor
            Normalised ``(B, 3, H, W)``, H and W multiples of the patch size.

        Returns
        -------
        torch.Tensor
            ``(B, D, H / p, W / p)`` with D the key width (the embedding width of timm ViTs).

        Raises
        ------
        UnsegError
            If the block has no ``attn.qkv`` linear projection.
        """
        blocks: Any = self.model.blocks
        qkv = getattr(getattr(blocks[self.block], "attn", None), "qkv", None)
        if not isinstance(qkv, torch.nn.Linear):
            raise UnsegError(f"{self.name}: block {self.block} has no attn.qkv projection, so it "
                             "gives no key features; use the block outputs instead")
        captured: list[torch.Tensor] = []
        handle = qkv.register_forward_hook(lambda _m, _i, out: captured.append(out))
        try:
            self.model.forward_intermediates(  # type: ignore[operator]
                x, indices=[self.block], stop_early=True, intermediates_only=True)
        finally:
            handle.remove()
        out = captured[-1]
        dim = out.shape[-1] // 3
        tokens = out[:, int(getattr(self.model, "num_prefix_tokens", 0)):, dim:2 * dim]
        return tokens_to_grid(tokens, x.shape[-2] // self.stride, x.shape[-1] // self.stride)

    def key_features(self, images: np.ndarray | Sequence[np.ndarray]) -> torch.Tensor:
        """:meth:`keys` of a batch of same-size channel-last images: ``(B, D, h, w)`` float32."""
        with torch.inference_mode():
            return self.keys(self.preprocess(images))


def tokens_to_grid(tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Patch tokens ``(B, h * w, C)`` in row-major order -> feature map ``(B, C, h, w)``.

    Raises
    ------
    UnsegError
        If the token count is not ``h * w`` (prefix tokens left in, or a wrong patch size).
    """
    b, n, c = tokens.shape
    if n != height * width:
        raise UnsegError(
            f"expected {height}x{width} = {height * width} patch tokens, got {n}; the model's "
            "prefix (class/register) token count or patch size is not what it reports"
        )
    return tokens.transpose(1, 2).reshape(b, c, height, width)


@dataclass(frozen=True)
class TimmSpec:
    """How to build one timm architecture.

    Attributes
    ----------
    architecture : str
        timm model name without a pretrained tag (``resnet50``, ``vit_large_patch16_224``).
    model_args : dict
        Keyword arguments for :func:`timm.create_model` beyond ``num_classes=0``.
    pretrained_tag : str or None
        The pretrained tag whose weights ``weights=None`` means (timm's default when None).
    """

    architecture: str
    model_args: dict[str, Any] = field(default_factory=dict)
    pretrained_tag: str | None = None


def size_args(architecture: str) -> dict[str, Any]:
    """The timm arguments that let ``architecture`` take any multiple of its stride."""
    import timm

    if timm.models.is_model_in_modules(architecture, ["vision_transformer"]):
        return {"dynamic_img_size": True}
    if timm.models.is_model_in_modules(architecture, ["swin_transformer"]):
        return {"strict_img_size": False}
    return {}


# Seed of random weights: ``weights="random"`` gives the same network every time, so that a random
# baseline is reproducible. The global torch generator is left as it was.
RANDOM_WEIGHTS_SEED = 0


def create_random(spec: TimmSpec, device: str | torch.device = "cpu") -> torch.nn.Module:
    """The architecture of ``spec`` with seeded random weights and no classifier head."""
    import timm

    with torch.random.fork_rng(devices=[]), torch.device(device):
        torch.manual_seed(RANDOM_WEIGHTS_SEED)
        return timm.create_model(
            spec.architecture, pretrained=False, num_classes=0,
            **{**size_args(spec.architecture), **spec.model_args},
        )


def drop_classifier(state: dict[str, torch.Tensor], model: torch.nn.Module) -> dict[str, Any]:
    """Remove the classifier weights from a checkpoint (the backbone has no head).

    The classifier is the module named by the model's ``pretrained_cfg["classifier"]``
    (``fc``, ``head``, ``head.fc``); a checkpoint with or without it loads the same.
    """
    cfg = getattr(model, "pretrained_cfg", {}) or {}
    heads = cfg.get("classifier") or ()
    heads = (heads,) if isinstance(heads, str) else tuple(heads)
    own = model.state_dict()
    return {
        k: v for k, v in state.items()
        if k in own or not any(k.startswith(f"{h}.") for h in heads)
    }


def load_file_into(model: torch.nn.Module, path: Path) -> None:
    """Load a checkpoint file (or the weights of a hub-style folder) into ``model`` strictly."""
    source = weights_file_in(path) if path.is_dir() else path
    load_strict(model, drop_classifier(read_state_dict(source), model), source)


def _pretrained_cfg(name: str, spec: TimmSpec) -> Any:
    """timm's pretrained config of ``spec``; UnsegError when timm has no weights for it."""
    import timm

    full = spec.architecture + (f".{spec.pretrained_tag}" if spec.pretrained_tag else "")
    cfg = timm.models.get_pretrained_cfg(full)
    if cfg is None or not (cfg.hf_hub_id or cfg.url):
        raise UnsegError(
            f"{name}: timm has no pretrained weights for this name. Fix: pass weights='random' "
            "or weights=PATH, or choose a name with a pretrained tag (timm.list_pretrained())."
        )
    return cfg


def _cached_pretrained(cfg: Any) -> Path | None:
    files = (cfg.hf_hub_filename,) if cfg.hf_hub_filename else HF_WEIGHT_FILES
    return (cached_hf_file(cfg.hf_hub_id, files) if cfg.hf_hub_id else None) or (
        cached_url_file(cfg.url) if cfg.url else None
    )


def pretrained_available(spec: TimmSpec) -> bool:
    """Whether the pretrained weights of ``spec`` are in a local cache (no network)."""
    try:
        cfg = _pretrained_cfg(spec.architecture, spec)
    except UnsegError:
        return False
    return _cached_pretrained(cfg) is not None


def pretrained_file(name: str, spec: TimmSpec) -> Path:
    """The local file of the pretrained weights of a timm name, downloading only when online.

    The huggingface_hub cache is searched first (timm's preferred source), then torch hub's
    checkpoint folder.

    Parameters
    ----------
    name : str
        The name the user gave (for messages).
    spec : TimmSpec
        Architecture and pretrained tag.

    Raises
    ------
    UnsegError
        If timm knows no pretrained weights for the name.
    MissingWeightsError
        If the weights are not cached and cannot be downloaded.
    """
    cfg = _pretrained_cfg(name, spec)
    found = _cached_pretrained(cfg)
    if found is not None:
        return found
    looked_in = [hf_cache_dir(), torch_hub_checkpoints()]
    if offline():
        raise missing_weights(name, looked_in, "HF_HUB_OFFLINE is set and they are not cached")
    files = (cfg.hf_hub_filename,) if cfg.hf_hub_filename else HF_WEIGHT_FILES
    try:
        if cfg.hf_hub_id:
            return download_hf_file(cfg.hf_hub_id, files)
        return download_url_file(cfg.url)
    except Exception as exc:  # network and hub errors come in many types
        raise missing_weights(name, looked_in, f"download failed: {exc}") from exc


def build(
    name: str, spec: TimmSpec, weights: str | None, device: str = "cpu"
) -> tuple[torch.nn.Module, str]:
    """Create the timm model of ``spec`` and fill its weights.

    Parameters
    ----------
    name : str
        The name the user gave (for messages).
    spec : TimmSpec
        What to build.
    weights : str or None
        None: the pretrained weights (cache, else download when online); ``"random"``: random
        initialisation; else a checkpoint file or a hub-style folder.
    device : str
        ``"meta"`` builds random weights without memory (shapes only); anything else builds
        on the CPU (the caller moves the backbone).

    Returns
    -------
    model : torch.nn.Module
        In eval mode, no classifier head.
    weights_text : str
        ``pretrained``, ``random`` or the resolved path, for the config.
    """
    import timm

    if weights == "random":
        return create_random(spec, "meta" if device == "meta" else "cpu"), "random"
    if device == "meta":
        raise ParameterError(f"{name}: the meta device builds shapes only; use weights='random'")
    if weights is None:
        path = pretrained_file(name, spec)
        full = spec.architecture + (f".{spec.pretrained_tag}" if spec.pretrained_tag else "")
        model = timm.create_model(
            full, pretrained=True, num_classes=0, pretrained_cfg_overlay={"file": str(path)},
            **{**size_args(spec.architecture), **spec.model_args},
        )
        return model, "pretrained"
    path = Path(weights).expanduser()
    if not path.exists():
        raise InputError(
            path, "weights not found",
            fix="give a checkpoint file, a folder with config.json + weights, or 'random'",
        )
    model = create_random(spec)
    load_file_into(model, path)
    return model, str(path.resolve())


def read_folder_config(folder: Path) -> tuple[TimmSpec, dict[str, Any]]:
    """The architecture and pretrained config of a timm hub-style folder's ``config.json``.

    Returns
    -------
    spec : TimmSpec
        ``architecture`` and ``model_args`` from the file.
    pretrained_cfg : dict
        Its ``pretrained_cfg`` entry (mean, std, input_size, licence), empty if absent.

    Raises
    ------
    InputError
        If the file is missing, not JSON, or names no timm architecture.
    """
    import timm

    path = folder / "config.json"
    if not path.is_file():
        raise InputError(
            folder, "has no config.json",
            fix="give a local copy of a timm hub repository (config.json + model.safetensors)",
        )
    try:
        cfg = json.loads(path.read_text())
        architecture = cfg["architecture"]
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(path, f"not a timm model config ({exc})") from exc
    if not timm.is_model(architecture):
        raise InputError(path, f"names architecture {architecture!r}, which timm does not know")
    args = {k: v for k, v in (cfg.get("model_args") or {}).items() if k != "num_classes"}
    return TimmSpec(architecture, args), dict(cfg.get("pretrained_cfg") or {})


def wrap(
    name: str,
    model: torch.nn.Module,
    *,
    layer: str | None,
    source: str,
    weights: str,
    licence: str,
    mean: tuple[float, float, float],
    std: tuple[float, float, float],
    input_size: int,
    default_layer: int = -2,
) -> Backbone:
    """Choose the adapter for a timm model and fill its :class:`BackboneConfig`.

    Parameters
    ----------
    name : str
        The name it was created by.
    model : torch.nn.Module
        The timm model, weights loaded.
    layer : str or None
        ``blocks.<i>`` of a ViT (default: the last block) or a ``feature_info`` module name of
        other models (default: ``feature_info[default_layer]``).
    source, weights, licence, mean, std, input_size
        Copied into the config.
    default_layer : int
        Index into ``feature_info`` used when ``layer`` is None; -2 is the second-to-last stage.

    Raises
    ------
    ParameterError
        If ``layer`` is not one of the model's layers; the message lists them.
    """
    import timm

    def config(chosen: str, channels: int, stride: int) -> BackboneConfig:
        return BackboneConfig(
            name=name, source=source, layer=chosen, channels=channels, stride=stride,
            size_multiple=stride, input_size=input_size, mean=mean, std=std, licence=licence,
            weights=weights,
        )

    if isinstance(model, timm.models.VisionTransformer):
        names = [f"blocks.{i}" for i in range(len(model.blocks))]
        chosen = names[-1] if layer is None else layer
        if chosen not in names:
            raise ParameterError(
                f"{name}: unknown layer {layer!r}; a ViT backbone takes blocks.0 .. "
                f"{names[-1]} (default {names[-1]}, the last block)"
            )
        patch = model.patch_embed.patch_size
        if patch[0] != patch[1]:
            raise UnsegError(f"{name}: non-square patches {patch} are not supported")
        return ViTBackbone(model, names.index(chosen), config(chosen, model.embed_dim, patch[0]))
    info = getattr(model, "feature_info", None)
    if not info or not hasattr(model, "forward_intermediates"):
        raise UnsegError(
            f"{name}: this timm model exposes no stages (feature_info / forward_intermediates); "
            "choose a CNN, Swin or ViT"
        )
    modules = [entry["module"] for entry in info]
    index = len(modules) + default_layer if layer is None else -1
    if layer is not None:
        if layer not in modules:
            raise ParameterError(
                f"{name}: unknown layer {layer!r}; choose one of {', '.join(modules)} "
                f"(default {modules[default_layer]})"
            )
        index = modules.index(layer)
    entry = info[index]
    return StageBackbone(model, index, config(modules[index], entry["num_chs"], entry["reduction"]))
