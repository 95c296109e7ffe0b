"""Pathology foundation models: UNI, Prov-GigaPath, Phikon and CTransPath.

Each model is described by a :class:`PathologyModel`: its architecture (built in code, so that
``weights="random"`` works offline), where its pretrained weights live, its licence and its
normalisation. UNI and Prov-GigaPath are timm ViTs, CTransPath is timm's Swin-T with the
convolutional stem of its authors, Phikon is a Hugging Face transformers ViT.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from unseg._optional import optional_import
from unseg.backbones.base import Backbone, BackboneConfig
from unseg.backbones.timm_backbones import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    TimmSpec,
    TorchBackbone,
    create_random,
    drop_classifier,
    tokens_to_grid,
    wrap,
)
from unseg.backbones.weights import (
    cached_hf_file,
    hub_weights,
    load_strict,
    missing_weights,
    read_state_dict,
    torch_hub_checkpoints,
    weights_file_in,
)
from unseg.errors import InputError, ParameterError


class ConvStem(nn.Module):
    """CTransPath's patch embedding: two stride-2 3x3 convolutions instead of one 4x4 patchify.

    ``conv(3 -> D/8, s2) - BN - ReLU - conv(D/8 -> D/4, s2) - BN - ReLU - conv1x1(D/4 -> D)``,
    then LayerNorm over channels; output channel-last ``(B, H/4, W/4, D)`` as timm's Swin wants.
    Parameter names (``proj.0``, ``proj.1``, ``proj.3``, ``proj.4``, ``proj.6``, ``norm``)
    follow the published checkpoint.

    Parameters
    ----------
    img_size : int
        Nominal input size (timm reads ``grid_size`` from it).
    patch_size : int
        Must be 4 (two stride-2 convolutions).
    in_chans : int
        Input channels.
    embed_dim : int
        Output channels ``D``, a multiple of 8.
    norm_layer : callable or None
        Norm applied to the tokens (LayerNorm in Swin).
    **_ : Any
        Further arguments timm passes to patch embeddings (``strict_img_size``,
        ``output_fmt``, ``device``, ``dtype``); the stem takes any multiple of 4 and is always
        channel-last.
    """

    def __init__(
        self,
        img_size: int = 224,
        patch_size: int = 4,
        in_chans: int = 3,
        embed_dim: int = 96,
        norm_layer: Callable[[int], nn.Module] | None = None,
        **_: Any,
    ) -> None:
        super().__init__()
        if patch_size != 4 or embed_dim % 8:
            raise ParameterError(
                f"ConvStem needs patch_size 4 and embed_dim a multiple of 8, got {patch_size}, "
                f"{embed_dim}"
            )
        size = img_size if isinstance(img_size, tuple) else (img_size, img_size)
        self.img_size = size
        self.patch_size = (patch_size, patch_size)
        self.grid_size = (size[0] // patch_size, size[1] // patch_size)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        quarter, half = embed_dim // 8, embed_dim // 4
        self.proj = nn.Sequential(
            nn.Conv2d(in_chans, quarter, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(quarter),
            nn.ReLU(inplace=True),
            nn.Conv2d(quarter, half, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(half),
            nn.ReLU(inplace=True),
            nn.Conv2d(half, embed_dim, 1),
        )
        self.norm = norm_layer(embed_dim) if norm_layer else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` -> ``(B, H/4, W/4, D)``."""
        return self.norm(self.proj(x).permute(0, 2, 3, 1))


def _swin_filter(state: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Convert an old-timm (0.5) Swin checkpoint to the current timm layout."""
    from timm.models.swin_transformer import checkpoint_filter_fn

    return checkpoint_filter_fn(state, model)


def _identity_filter(state: dict[str, torch.Tensor], _: nn.Module) -> dict[str, torch.Tensor]:
    return state


@dataclass(frozen=True)
class PathologyModel:
    """One pathology foundation model.

    Attributes
    ----------
    alias : str
        Short name (``uni``).
    hub_id : str or None
        Hugging Face repository (``MahmoodLab/UNI``); None when the weights are only a file.
    spec : TimmSpec or None
        The timm architecture; None for a transformers ViT (Phikon).
    channels, stride : int
        Of the default layer, for :func:`unseg.backbones.list` without building the model.
    licence : str
        Licence of the weights.
    description : str
        One line for ``unseg backbones``.
    gated : bool
        The hub repository asks users to accept terms (and log in) before downloading.
    weights_file : str or None
        File name of file-only weights, looked for in torch hub's checkpoint folder.
    weights_url : str or None
        Where to get file-only weights by hand.
    default_layer : int
        ``feature_info`` index of the default layer for stage models (-1: the last stage).
    filter_fn : callable
        Converts the published checkpoint's keys to the architecture's (identity for most).
    mean, std : tuple of 3 floats
        Normalisation from the model card.
    """

    alias: str
    hub_id: str | None
    spec: TimmSpec | None
    channels: int
    stride: int
    licence: str
    description: str
    gated: bool = False
    weights_file: str | None = None
    weights_url: str | None = None
    default_layer: int = -1
    filter_fn: Callable[[dict[str, torch.Tensor], nn.Module], dict[str, torch.Tensor]] = field(
        default=_identity_filter
    )
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    @property
    def display_name(self) -> str:
        return f"hf-hub:{self.hub_id}" if self.hub_id else self.alias


MODELS: dict[str, PathologyModel] = {
    m.alias: m
    for m in (
        PathologyModel(
            alias="uni",
            hub_id="MahmoodLab/UNI",
            spec=TimmSpec(
                "vit_large_patch16_224", {"img_size": 224, "patch_size": 16, "init_values": 1e-5}
            ),
            channels=1024,
            stride=16,
            licence="CC-BY-NC-ND-4.0",
            description="UNI ViT-L/16 (Mass General Brigham), 100k H&E slides; gated on the hub",
            gated=True,
        ),
        PathologyModel(
            alias="prov-gigapath",
            hub_id="prov-gigapath/prov-gigapath",
            # The published config builds timm's DINOv2 ViT-g with 16-pixel patches.
            spec=TimmSpec(
                "vit_giant_patch14_dinov2",
                {
                    "img_size": 224, "patch_size": 16, "embed_dim": 1536, "depth": 40,
                    "num_heads": 24, "init_values": 1e-5, "mlp_ratio": 5.33334,
                },
            ),
            channels=1536,
            stride=16,
            licence="Apache-2.0",
            description="Prov-GigaPath tile encoder ViT-g (1.1 B parameters), 171k slides; gated",
            gated=True,
        ),
        PathologyModel(
            alias="phikon",
            hub_id="owkin/phikon",
            spec=None,
            channels=768,
            stride=16,
            licence="Owkin non-commercial",
            description="Phikon ViT-B/16 (Owkin, iBOT on 40M TCGA tiles); needs transformers",
        ),
        PathologyModel(
            alias="ctranspath",
            hub_id=None,
            spec=TimmSpec("swin_tiny_patch4_window7_224", {"embed_layer": ConvStem}),
            channels=768,
            stride=32,
            licence="unknown: see github.com/Xiyue-Wang/TransPath",
            description="CTransPath Swin-T with a convolutional stem; weights only as a file",
            weights_file="ctranspath.pth",
            weights_url="https://github.com/Xiyue-Wang/TransPath (ctranspath.pth, Google Drive)",
            filter_fn=_swin_filter,
        ),
    )
}


def _file_place(model: PathologyModel) -> Path:
    """Where file-only weights are looked for: torch hub's checkpoint folder."""
    return torch_hub_checkpoints() / (model.weights_file or f"{model.alias}.pth")


def _cached(model: PathologyModel) -> Path | None:
    if model.hub_id:
        return cached_hf_file(model.hub_id)
    path = _file_place(model)
    return path if path.is_file() else None


def available_offline(model: PathologyModel) -> bool:
    """Whether the pretrained weights are in the local cache (no network)."""
    return _cached(model) is not None


def pretrained_path(model: PathologyModel, name: str) -> Path:
    """The local pretrained weights of ``model``, downloading them only when online.

    Raises
    ------
    MissingWeightsError
        If they are not cached and cannot be downloaded (or are file-only).
    """
    if model.hub_id is None:
        place = _file_place(model)
        if place.is_file():
            return place
        raise missing_weights(
            name, [place],
            f"its weights are published only as the file {model.weights_file}; get it from "
            f"{model.weights_url} and pass weights=PATH, or put it at {place}",
        )
    gated = (
        f"; the repository is gated: accept its terms at huggingface.co/{model.hub_id} and "
        "log in (huggingface-cli login) before going online"
        if model.gated else ""
    )
    return hub_weights(model.hub_id, name, gated)


def _weights_source(model: PathologyModel, name: str, weights: str | None) -> Path | None:
    """None for random weights, else the file to load."""
    if weights == "random":
        return None
    if weights is None:
        return pretrained_path(model, name)
    path = Path(weights).expanduser()
    if not path.exists():
        raise InputError(
            path, "weights not found",
            fix="give a checkpoint file, a folder holding the hub repository's files, or 'random'",
        )
    return weights_file_in(path) if path.is_dir() else path


def create(
    model: PathologyModel, name: str, *, weights: str | None, layer: str | None,
    device: str = "cpu",
) -> Backbone:
    """Build a pathology model as a :class:`Backbone`.

    Parameters
    ----------
    model : PathologyModel
        Which model.
    name : str
        The name the user gave (kept in the config).
    weights : str or None
        None: pretrained (cache, else download when online); ``"random"``; or a local file or
        hub-style folder.
    layer : str or None
        A layer of the architecture (see :func:`unseg.backbones.timm_backbones.wrap`); None for
        the model's default.
    device : str
        ``"meta"`` builds the architecture without memory (shapes only); weights must then be
        ``"random"``.
    """
    source = _weights_source(model, name, weights)
    if device == "meta" and source is not None:
        raise ParameterError(f"{name}: the meta device builds shapes only; use weights='random'")
    weights_text = "random" if source is None else (
        "pretrained" if weights is None else str(source.resolve())
    )
    licence = "none (random weights)" if source is None else model.licence
    if model.spec is None:
        return _phikon(model, name, source, layer, weights_text, licence, device)
    net = create_random(model.spec, "meta" if device == "meta" else "cpu")
    if source is not None:
        state = model.filter_fn(read_state_dict(source), net)
        load_strict(net, drop_classifier(state, net), source)
    return wrap(
        name, net, layer=layer, source="hf-hub" if model.hub_id else "file",
        weights=weights_text, licence=licence, mean=model.mean, std=model.std, input_size=224,
        default_layer=model.default_layer,
    )


class TransformersViTBackbone(TorchBackbone):
    """Last-layer patch tokens of a Hugging Face ``ViTModel`` (after its final LayerNorm, ReLU).

    The class token is removed and the rest laid out on the patch grid; position embeddings are
    interpolated for inputs other than 224x224.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` -> ``(B, 768, H / 16, W / 16)``, non-negative."""
        hidden = self.model(pixel_values=x, interpolate_pos_encoding=True).last_hidden_state
        p = self.stride
        return torch.relu(tokens_to_grid(hidden[:, 1:], x.shape[-2] // p, x.shape[-1] // p))


def _phikon(
    model: PathologyModel, name: str, source: Path | None, layer: str | None,
    weights_text: str, licence: str, device: str,
) -> Backbone:
    transformers = optional_import("transformers", "hub")
    if layer not in (None, "last_hidden_state"):
        raise ParameterError(f"{name}: only layer 'last_hidden_state' (the default) is available")
    config = transformers.ViTConfig(
        hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
        image_size=224, patch_size=16, num_channels=3, qkv_bias=True, layer_norm_eps=1e-12,
    )
    with torch.device("meta" if device == "meta" else "cpu"):
        net = transformers.ViTModel(config, add_pooling_layer=False)
    if source is not None:
        # The pooler is not used for token features; checkpoints with or without it load.
        state = {k: v for k, v in read_state_dict(source).items() if not k.startswith("pooler.")}
        load_strict(net, state, source)
    return TransformersViTBackbone(
        net,
        BackboneConfig(
            name=name, source="hf-hub", layer="last_hidden_state", channels=768, stride=16,
            size_multiple=16, input_size=224, mean=model.mean, std=model.std, licence=licence,
            weights=weights_text,
        ),
    )
