"""DFC: unsupervised segmentation by differentiable feature clustering, one image at a time.

A small CNN is trained on the image alone: each pixel's response is pushed towards its own
argmax (feature similarity) and towards its neighbours' responses (spatial continuity), until
few labels remain. The colour-contiguity comparison of the CIRS benchmark; ids are per image.
See :mod:`unseg.models.dfc`.
"""

from __future__ import annotations

import numpy as np

from unseg.methods import register
from unseg.methods.base import Segmenter
from unseg.methods.params import SEED, Interval, Text, param
from unseg.types import Image, LabelMap


@register("dfc")
class DFCSegmenter(Segmenter):
    """DFC: a small CNN trained on each image by feature similarity and spatial continuity
    (ids not shared between images)."""

    test_params = {"max_labels": 8, "max_iter": 3, "width": 4}
    max_labels: int = param(default=100, check=Interval(int, low=2),
                            doc="Response channels: the most labels.")
    min_labels: int = param(default=3, check=Interval(int, low=1),
                            doc="Training stops once the argmax uses this few labels.")
    max_iter: int = param(default=100, check=Interval(int, low=1),
                          doc="Most training iterations per image.")
    continuity: float = param(default=5.0, check=Interval(float, low=0),
                              doc="Weight of the spatial continuity loss.")
    lr: float = param(default=0.1, check=Interval(float, low=0, low_open=True),
                      doc="SGD learning rate (momentum 0.9).")
    width: int = param(default=32, check=Interval(int, low=1),
                       doc="Channels of the convolutions.")
    device: str = param(default="cpu", check=Text(),
                        doc='Where training runs: "cpu", "cuda", "auto".')
    random_state: int | None = param(default=0, check=SEED,
                                     doc="Seed of the network's initial weights.")

    def _n_labels(self) -> int:
        return self.max_labels

    def _predict(self, image: Image) -> LabelMap:
        import torch

        from unseg.io.images import as_float32
        from unseg.models.dfc import DFCNet, dfc_loss
        from unseg.train import resolve_device, seeded

        x = as_float32(np.asarray(image))
        x = x[..., None] if x.ndim == 2 else x
        mean, std = x.mean((0, 1)), x.std((0, 1)) + 1e-6
        device = resolve_device(self.device)
        batch = torch.from_numpy(((x - mean) / std).transpose(2, 0, 1)[None].copy()).to(device)
        with seeded(self.random_state):
            net = DFCNet(batch.shape[1], width=self.width, max_labels=self.max_labels).to(device)
            optimizer = torch.optim.SGD(net.parameters(), lr=self.lr, momentum=0.9)
            for _ in range(self.max_iter):
                response = net(batch)
                loss = dfc_loss(response, self.continuity)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                if len(response.argmax(1).unique()) <= self.min_labels:
                    break
            with torch.no_grad():
                labels = net(batch).argmax(1)[0].cpu().numpy()
        return np.unique(labels, return_inverse=True)[1].reshape(labels.shape).astype(np.int32)
