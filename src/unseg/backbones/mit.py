"""SegFormer's Mix Transformer encoders, MiT-B0 .. B5 (Xie et al., 2021), through transformers.

Four stages of stride 4, 8, 16 and 32 (:data:`LAYERS`), the hierarchical encoder LPD's
reference uses (MiT-B1). The ImageNet weights are NVIDIA's hub repositories ``nvidia/mit-b0``
.. ``nvidia/mit-b5`` (their licence is NVIDIA's SegFormer licence, for non-commercial use): read
from the Hugging Face cache, downloaded once when online, or given as a local file or hub-style
folder (``weights=PATH``). Their classification checkpoints load with the ``segformer.`` prefix
and the head removed, written by transformers 4 or 5 (whose module names differ).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch

from unseg._optional import optional_import
from unseg.backbones.base import Backbone, BackboneConfig
from unseg.backbones.timm_backbones import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    RANDOM_WEIGHTS_SEED,
    TorchBackbone,
)
from unseg.backbones.weights import hub_weights, load_strict, read_state_dict, weights_file_in
from unseg.errors import InputError, ParameterError

LAYERS = ("stage1", "stage2", "stage3", "stage4")
STRIDES = (4, 8, 16, 32)
#: The default layer: stride 16, the second-to-last stage (as for the other CNN-like backbones).
DEFAULT_LAYER = "stage3"
LICENCE = "NVIDIA SegFormer licence (non-commercial)"


@dataclass(frozen=True)
class MiTModel:
    """One MiT variant: its stage widths and depths, and its hub repository."""

    name: str
    hidden_sizes: tuple[int, int, int, int]
    depths: tuple[int, int, int, int]

    @property
    def hub_id(self) -> str:
        return f"nvidia/{self.name}"


_WIDE = (64, 128, 320, 512)
MODELS = {m.name: m for m in (
    MiTModel("mit-b0", (32, 64, 160, 256), (2, 2, 2, 2)),
    MiTModel("mit-b1", _WIDE, (2, 2, 2, 2)),
    MiTModel("mit-b2", _WIDE, (3, 4, 6, 3)),
    MiTModel("mit-b3", _WIDE, (3, 4, 18, 3)),
    MiTModel("mit-b4", _WIDE, (3, 8, 27, 3)),
    MiTModel("mit-b5", _WIDE, (3, 6, 40, 3)),
)}


class MiTBackbone(TorchBackbone):
    """One stage of a transformers ``SegformerModel`` encoder, after ReLU."""

    def __init__(self, model: torch.nn.Module, index: int, config: BackboneConfig,
                 stage_channels: tuple[int, ...]) -> None:
        super().__init__(model, config)
        self.index = index
        self.stage_channels = stage_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` -> ``(B, C, H / stride, W / stride)``, non-negative."""
        return torch.relu(stages(self.model, x)[self.index])


def stages(model: torch.nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """The four stage outputs ``(B, C_s, H / s, W / s)`` of a ``SegformerModel``."""
    return list(model(pixel_values=x, output_hidden_states=True).hidden_states)


def _source(model: MiTModel, name: str, weights: str | None) -> Path | None:
    """The checkpoint to load; None for random weights."""
    if weights == "random":
        return None
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.exists():
            raise InputError(path, "weights not found",
                             fix=f"give the {model.hub_id} checkpoint (a file, or a folder with "
                                 "config.json and the weights), or 'random'")
        return weights_file_in(path) if path.is_dir() else path
    return hub_weights(model.hub_id, name)


# transformers 4's module names (the published checkpoints') -> transformers 5's
_RENAMES = (
    (r"^encoder\.patch_embeddings\.(\d+)\.", r"stages.\1.patch_embeddings."),
    (r"^encoder\.block\.(\d+)\.", r"stages.\1.blocks."),
    (r"^encoder\.layer_norm\.(\d+)\.", r"stages.\1.layer_norm."),
    (r"\.attention\.self\.query\.", ".attention.q_proj."),
    (r"\.attention\.self\.key\.", ".attention.k_proj."),
    (r"\.attention\.self\.value\.", ".attention.v_proj."),
    (r"\.attention\.self\.sr\.", ".attention.sequence_reduction.sequence_reduction."),
    (r"\.attention\.self\.layer_norm\.", ".attention.sequence_reduction.layer_norm."),
    (r"\.attention\.output\.dense\.", ".attention.o_proj."),
    (r"\.mlp\.dense1\.", ".mlp.fc1."),
    (r"\.mlp\.dense2\.", ".mlp.fc2."),
    (r"\.layer_norm_1\.", ".layernorm_before."),
    (r"\.layer_norm_2\.", ".layernorm_after."),
)


def _canonical(key: str) -> str:
    """A SegformerModel key in transformers 5's names, whichever version wrote it."""
    for pattern, replacement in _RENAMES:
        key = re.sub(pattern, replacement, key)
    return key


def _encoder_state(state: dict[str, torch.Tensor], model: torch.nn.Module
                   ) -> dict[str, torch.Tensor]:
    """A checkpoint's encoder weights under ``model``'s own key names: the ``segformer.``
    prefix of classification and segmentation checkpoints removed, their heads dropped, and
    the module names of either transformers version mapped to the installed one's."""
    prefix = "segformer."
    if any(k.startswith(prefix) for k in state):
        state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    own = {_canonical(k): k for k in model.state_dict()}
    return {own.get(_canonical(k), k): v for k, v in state.items()}


def create(model: MiTModel, name: str, /, *, weights: str | None, layer: str | None,
           device: str) -> Backbone:
    """Build MiT ``model``; the registry's factory (see :func:`unseg.backbones.create`).

    Raises
    ------
    ParameterError
        For a layer not in :data:`LAYERS`, or the meta device with real weights.
    MissingDependencyError
        Without transformers (``pip install 'unseg[hub]'``).
    """
    transformers = optional_import("transformers", "hub")
    chosen = DEFAULT_LAYER if layer is None else layer
    if chosen not in LAYERS:
        offered = ", ".join(f"{n} (stride {s}, {c} channels)" for n, s, c in
                            zip(LAYERS, STRIDES, model.hidden_sizes, strict=True))
        raise ParameterError(f"{name}: unknown layer {layer!r}; choose one of {offered}; "
                             f"default {DEFAULT_LAYER}")
    source = _source(model, name, weights)
    if device == "meta" and source is not None:
        raise ParameterError(f"{name}: the meta device builds shapes only; use weights='random'")
    config = transformers.SegformerConfig(
        hidden_sizes=list(model.hidden_sizes), depths=list(model.depths),
        num_attention_heads=[1, 2, 5, 8], sr_ratios=[8, 4, 2, 1], drop_path_rate=0.1)
    with torch.random.fork_rng(devices=[]), torch.device("meta" if device == "meta" else "cpu"):
        torch.manual_seed(RANDOM_WEIGHTS_SEED)
        net = transformers.SegformerModel(config)
    if source is not None:
        load_strict(net, _encoder_state(read_state_dict(source), net), source)
    index = LAYERS.index(chosen)
    weights_text = ("random" if source is None else
                    "pretrained" if weights is None else str(source.resolve()))
    return MiTBackbone(net, index, BackboneConfig(
        name=name, source="hf-hub", layer=chosen, channels=model.hidden_sizes[index],
        stride=STRIDES[index], size_multiple=32, input_size=224, mean=IMAGENET_MEAN,
        std=IMAGENET_STD, licence=LICENCE if source is not None else "none (random weights)",
        weights=weights_text), model.hidden_sizes)
