"""W-Net (Xia and Kulis, 2017): the colour-clustering network the CIRS thesis compares with.

Two U-Nets form an autoencoder through a K-way soft segmentation: per mini-batch the encoder
takes a step on the soft normalised cut of its segmentation (segments of one colour, compact in
space), then both networks a step on the reconstruction error. Labels are the encoder's argmax;
no post-processing (the thesis compares W-Net without its CRF and hierarchical merging). The
training loop, model selection and defaults are those of the CIRS networks
(:mod:`unseg.methods.cirs`); see :mod:`unseg.models.wnet` and docs/cirs.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from unseg.methods import register
from unseg.methods.cirs import MaskNetSegmenter
from unseg.methods.params import Interval, param

if TYPE_CHECKING:
    import torch
    from torch import nn


@register("wnet")
class WNetSegmenter(MaskNetSegmenter):
    """W-Net: a U-Net encoder-decoder trained on the soft normalised cut of its segmentation
    and on reconstruction (colour clustering); labels consistent across images."""

    radius: int = param(default=5, check=Interval(int, low=2),
                        doc="Pixels closer than this are linked in the normalised cut.")
    sigma_colour: float = param(
        default=10.0, check=Interval(float, low=0, low_open=True),
        doc="Colour scale of the links, in 0-255 units: exp(-|colour difference|^2 / "
            "sigma_colour^2).")
    sigma_distance: float = param(
        default=4.0, check=Interval(float, low=0, low_open=True),
        doc="Distance scale of the links, in pixels: exp(-distance^2 / sigma_distance^2).")

    def _build(self) -> dict[str, nn.Module]:
        from unseg.models.cirs import UNet

        return {"segmenter": UNet(3, self.k, dropout=self.dropout),
                "decoder": UNet(self.k, 3, dropout=self.dropout)}

    def _ncut(self, modules: dict[str, nn.Module], x: torch.Tensor) -> torch.Tensor:
        import torch

        from unseg.models.wnet import soft_ncut_loss

        probs = torch.softmax(modules["segmenter"](x), dim=1)
        return soft_ncut_loss(x, probs, radius=self.radius, sigma_colour=self.sigma_colour / 255,
                              sigma_distance=self.sigma_distance)

    def _reconstruction(self, modules: dict[str, nn.Module], x: torch.Tensor) -> torch.Tensor:
        from unseg.models.wnet import reconstruction_loss

        return reconstruction_loss(x, modules["segmenter"], modules["decoder"])

    def _loss(self, modules: dict[str, nn.Module], x: torch.Tensor) -> torch.Tensor:
        return self._ncut(modules, x) + self._reconstruction(modules, x)

    def _optimizers(self, modules: dict[str, nn.Module]) -> dict[str, torch.optim.Optimizer]:
        import torch

        return {"ncut": torch.optim.Adam(modules["segmenter"].parameters(), lr=self.lr),
                "reconstruction": torch.optim.Adam(
                    [p for m in modules.values() for p in m.parameters()], lr=self.lr)}

    def _step(self, modules: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer],
              x: torch.Tensor, step_index: int) -> float:
        """The encoder on the normalised cut, then both networks on the reconstruction."""
        ncut = self._ncut(modules, x)
        optimizers["ncut"].zero_grad()
        ncut.backward()
        optimizers["ncut"].step()
        reconstruction = self._reconstruction(modules, x)
        optimizers["reconstruction"].zero_grad()
        reconstruction.backward()
        optimizers["reconstruction"].step()
        return ncut.item() + reconstruction.item()
