"""Multi-scale encoders to fine-tune: the stages of a CNN backbone as one trainable module.

Weakly supervised methods (LPD, CAM) train their encoder end to end and read it at four scales.
:func:`multiscale` builds the named backbone through the registry (so its weights load the one
way every backbone's do) and returns its network's last four stages of stride 4 and more: a
timm CNN's, or the four stages of a SegFormer MiT encoder (LPD's reference uses MiT-B1).
"""

from __future__ import annotations

import torch
from torch import nn

from unseg.backbones.mit import STRIDES, MiTBackbone, stages
from unseg.backbones.registry import create
from unseg.backbones.timm_backbones import StageBackbone
from unseg.errors import ParameterError

#: How many stages an encoder returns, finest first.
N_SCALES = 4


class MultiScaleEncoder(nn.Module):
    """A CNN's stage outputs (no ReLU), finest first; trainable.

    Attributes
    ----------
    channels : tuple of int
        Channels of each returned stage.
    strides : tuple of int
        Input pixels per cell of each stage.
    mean, std : tuple of 3 floats
        The normalisation of RGB in [0, 1] the weights expect (:meth:`normalize`).
    """

    def __init__(self, model: nn.Module, indices: list[int], channels: tuple[int, ...],
                 strides: tuple[int, ...], mean: tuple[float, float, float],
                 std: tuple[float, float, float]) -> None:
        super().__init__()
        self.model = model.requires_grad_(True)
        self.indices = indices
        self.channels = channels
        self.strides = strides
        self.mean = mean
        self.std = std

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` RGB in [0, 1] -> the network's input."""
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Normalised ``(B, 3, H, W)`` -> one ``(B, C_s, H / s, W / s)`` map per stage."""
        return list(self.model.forward_intermediates(  # type: ignore[operator]
            x, indices=self.indices, norm=False, stop_early=True, intermediates_only=True))


class MiTEncoder(MultiScaleEncoder):
    """The four stages of a SegFormer MiT encoder (:mod:`unseg.backbones.mit`)."""

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return stages(self.model, x)


def multiscale(name: str, *, weights: str | None = None) -> MultiScaleEncoder:
    """The last :data:`N_SCALES` stages (stride >= 4) of the CNN backbone ``name``.

    Parameters
    ----------
    name : str
        A backbone with stages: ``efficientnet-lite0`` .. ``-lite2``, a timm CNN name, a
        ``local-dir:`` or ``hf-hub:`` CNN (``unseg backbones``).
    weights : str or None
        As for :func:`unseg.backbones.create`: None for its pretrained weights, a local file,
        or ``"random"`` (the architecture only, as when a saved model is loaded).

    Raises
    ------
    ParameterError
        For a backbone without stages (ViTs, the embedded backbone) or with fewer than four of
        stride 4 and more.
    """
    backbone = create(name, weights=weights, device="cpu")
    config = backbone.config
    if isinstance(backbone, MiTBackbone):
        return MiTEncoder(backbone.model.train(), list(range(N_SCALES)),
                          backbone.stage_channels, STRIDES, config.mean,
                          config.std)
    if not isinstance(backbone, StageBackbone):
        raise ParameterError(
            f"{name} is not a CNN with stages, which a multi-scale encoder needs. Fix: choose "
            "efficientnet-lite0 (offline ImageNet weights), a timm CNN such as resnet50, or "
            "mit-b1.")
    info = [(i, e) for i, e in enumerate(backbone.model.feature_info)  # type: ignore[arg-type]
            if e["reduction"] >= 4][-N_SCALES:]
    if len(info) < N_SCALES:
        raise ParameterError(f"{name} has {len(info)} stages of stride 4 or more; a "
                             f"multi-scale encoder needs {N_SCALES}")
    return MultiScaleEncoder(
        backbone.model.train(), [i for i, _ in info], tuple(e["num_chs"] for _, e in info),
        tuple(e["reduction"] for _, e in info), config.mean, config.std)
