"""Segmentation networks trained without labels through hard masks: CIRS and AIR.

A U-Net segmenter S with K output channels is trained on a folder of images resized to
``input_size``; its argmax (taken in place, with softmax gradients) gives K masked images, and
the loss asks either that each segment look alike across the images of a batch and unlike the
other segments (``cirs``, ``cirs-imbalanced``), or that K small autoencoders, one per segment,
rebuild the image from its segments (``air``). Labels are S's argmax, the same channel meaning
the same kind of region in every image. See :mod:`unseg.models.cirs`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

from unseg.errors import ParameterError
from unseg.methods import register
from unseg.methods.base import Segmenter
from unseg.methods.files import expect_module_state
from unseg.methods.params import SEED, Interval, Text, param
from unseg.types import Image, LabelMap

if TYPE_CHECKING:
    import torch
    from torch import nn


def _resized(image: Image, size: int) -> np.ndarray:
    """``(3, size, size)`` float32 in [0, 1]: grayscale repeated, bilinear resize."""
    from skimage.transform import resize

    from unseg.io.images import as_float32

    x = as_float32(np.asarray(image))
    if x.ndim == 2:
        x = np.repeat(x[..., None], 3, axis=2)
    if x.shape[:2] != (size, size):
        x = resize(x, (size, size), order=1, anti_aliasing=True)
    return np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32)


class MaskNetSegmenter(Segmenter):
    """Shared training and prediction of the mask networks."""

    requires_fit = True
    learned = ("segmenter_", "history_")
    test_params = {"k": 2, "input_size": 16, "epochs": 1, "batch_size": 2}
    k: int = param(default=4, check=Interval(int, low=2),
                   doc="Output channels of S: the number of labels.")
    input_size: int = param(
        default=64, check=Interval(int, low=8),
        doc="Images are resized to input_size x input_size (a multiple of 8) for training and "
            "prediction; labels are resized back to each input.")
    epochs: int = param(default=30, check=Interval(int, low=1), doc="Most training epochs.")
    batch_size: int = param(default=32, check=Interval(int, low=2),
                            doc="Images per mini-batch.")
    lr: float = param(default=1e-3, check=Interval(float, low=0, low_open=True),
                      doc="Adam learning rate.")
    balance: float = param(
        default=0.5, check=Interval(float, low=0),
        doc="Weight of the penalty that keeps S from emptying all segments but one.")
    validation_fraction: float = param(
        default=0.1, check=Interval(float, low=0, high=0.9),
        doc="Share of the images held out for the label-free validation loss; the weights of "
            "the epoch with the lowest held-out loss are kept.")
    patience: int | None = param(
        default=5, check=Interval(int, low=1, allow_none=True),
        doc="Stop when the held-out loss has not improved for this many epochs; None never "
            "stops early.")
    checkpoint: str | None = param(
        default=None, check=Text(allow_none=True),
        doc="File the training state is saved to after every epoch, and resumed from when it "
            "exists (`unseg fit` uses OUT.ckpt).")
    device: str = param(default="cpu", check=Text(),
                        doc='Where training and prediction run: "cpu", "cuda", "auto".')
    random_state: int | None = param(
        default=0, check=SEED, doc="Seed of the weights, the held-out split and the mini-batches.")

    def _n_labels(self) -> int:
        return self.k

    def _check_state(self) -> None:
        from unseg.models.cirs import UNet

        expect_module_state("segmenter_", UNet(3, self.k), self.segmenter_)
        if not isinstance(self.history_, dict):
            raise ValueError(f"history_ is a {type(self.history_).__name__}, not a dict")

    # -- what each method defines --------------------------------------------------------
    def _build(self) -> dict[str, nn.Module]:
        """The modules; ``"segmenter"`` is S, the others only serve training."""
        raise NotImplementedError

    def _loss(self, modules: dict[str, nn.Module], x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _optimizers(self, modules: dict[str, nn.Module]) -> dict[str, torch.optim.Optimizer]:
        import torch

        params = [p for m in modules.values() for p in m.parameters()]
        return {"adam": torch.optim.Adam(params, lr=self.lr)}

    def _step(self, modules: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer],
              x: torch.Tensor, step_index: int) -> float:
        """One optimisation step on the batch ``x``; returns the loss."""
        loss = self._loss(modules, x)
        for optimizer in optimizers.values():
            optimizer.zero_grad()
        loss.backward()
        for optimizer in optimizers.values():
            optimizer.step()
        return loss.item()

    # -- training ---------------------------------------------------------------------------
    def _fit(self, images: Iterable[Image]) -> None:
        import torch

        from unseg.train import resolve_device, run_key, seeded, train_on_items

        if self.input_size % 8:
            raise ParameterError(
                f"{self.name}: input_size must be a multiple of 8, got {self.input_size}. "
                f"Fix: pass --input-size {max(8, self.input_size // 8 * 8)}."
            )
        data = np.stack([_resized(im, self.input_size) for im in images])
        if len(data) < 2:
            raise ParameterError(
                f"{self.name}: training needs at least 2 images, got {len(data)}. Fix: fit on "
                "a folder of images."
            )
        device = resolve_device(self.device)
        x = torch.from_numpy(data)
        key = run_key(self.name, {k: v for k, v in self.get_params().items()
                                  if k not in ("checkpoint", "device")}, [data])
        with seeded(self.random_state):
            modules = {name: m.to(device) for name, m in self._build().items()}
            optimizers = self._optimizers(modules)

            def step(batch: list[int], step_index: int) -> float:
                return self._step(modules, optimizers, x[batch].to(device), step_index)

            history = train_on_items(
                modules, optimizers, step,
                lambda batch, _: self._loss(modules, x[batch].to(device)), len(x),
                draw=lambda _, i: i, batch_size=self.batch_size,
                validation_fraction=self.validation_fraction, epochs=self.epochs,
                patience=self.patience, checkpoint=self.checkpoint, key=key,
                random_state=self.random_state, desc=f"training {self.name}")
        self.segmenter_ = {k: v.detach().cpu() for k, v in
                           modules["segmenter"].state_dict().items()}
        self.history_ = dataclasses.asdict(history)

    # -- prediction ---------------------------------------------------------------------------
    def _net(self) -> nn.Module:
        from unseg.models.cirs import UNet
        from unseg.train import resolve_device

        cache = getattr(self, "_net_cache", None)
        if cache is None:
            cache = UNet(3, self.k)
            cache.load_state_dict(self.segmenter_)
            cache.to(resolve_device(self.device)).eval()
            self._net_cache = cache
        return cache

    def _predict_batch(self, images: list[Image]) -> list[LabelMap]:
        """Segment several images in one pass of the network."""
        import torch

        net = self._net()
        device = next(net.parameters()).device
        x = torch.from_numpy(np.stack([_resized(im, self.input_size) for im in images]))
        with torch.no_grad():
            labels = net(x.to(device)).argmax(1).cpu().numpy().astype(np.int32)
        out = []
        for image, small in zip(images, labels, strict=True):
            h, w = image.shape[:2]
            rows = np.arange(h) * self.input_size // h
            cols = np.arange(w) * self.input_size // w
            out.append(small[rows[:, None], cols[None, :]])
        return out


@register("cirs")
class CIRSSegmenter(MaskNetSegmenter):
    """CIRS: a U-Net trained so each segment looks alike across images (cross-instance
    representation similarity); labels consistent across images."""

    alpha1: float = param(default=1.0, check=Interval(float, low=0),
                          doc="Weight of the within-segment variance of g across the batch.")
    alpha2: float = param(default=1.0, check=Interval(float, low=0),
                          doc="Weight of the variance between the segment means (subtracted).")

    def _build(self) -> dict[str, nn.Module]:
        from unseg.models.cirs import FeatureNet, UNet

        return {"segmenter": UNet(3, self.k), "g": FeatureNet(3, self.k)}

    def _losses(self, modules: dict[str, nn.Module], x: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        from unseg.models.cirs import FeatureNet, cirs_losses

        g = modules["g"]
        if not isinstance(g, FeatureNet):
            raise TypeError(f"expected the feature network, got {type(g).__name__}")
        return cirs_losses(x, modules["segmenter"], g, alpha1=self.alpha1,
                           alpha2=self.alpha2, balance=self.balance)

    def _loss(self, modules: dict[str, nn.Module], x: torch.Tensor) -> torch.Tensor:
        return self._losses(modules, x)[0]

    def _optimizers(self, modules: dict[str, nn.Module]) -> dict[str, torch.optim.Optimizer]:
        import torch

        return {name: torch.optim.Adam(m.parameters(), lr=self.lr)
                for name, m in modules.items()}

    def _turns(self, step_index: int) -> tuple[str, ...]:
        """Which of S and g step after this mini-batch: both, in balanced training."""
        return ("segmenter", "g")

    def _step(self, modules: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer],
              x: torch.Tensor, step_index: int) -> float:
        import torch

        loss_s, loss_g = self._losses(modules, x)
        turns = self._turns(step_index)
        for name, loss in (("segmenter", loss_s), ("g", loss_g)):
            if name in turns:
                params = list(modules[name].parameters())
                grads = torch.autograd.grad(loss, params, retain_graph=name == "segmenter")
                for p, grad in zip(params, grads, strict=True):
                    p.grad = grad
                optimizers[name].step()
        return loss_s.item()


@register("cirs-imbalanced")
class ImbalancedCIRSSegmenter(CIRSSegmenter):
    """CIRS trained in turns: S for s_steps mini-batches for every g_steps of g."""

    s_steps: int = param(default=5, check=Interval(int, low=1),
                         doc="Mini-batches in each turn of the segmenter S.")
    g_steps: int = param(default=100, check=Interval(int, low=1),
                         doc="Mini-batches in each turn of the feature network g.")

    def _turns(self, step_index: int) -> tuple[str, ...]:
        in_s_turn = step_index % (self.s_steps + self.g_steps) < self.s_steps
        return ("segmenter",) if in_s_turn else ("g",)


@register("air")
class AIRSegmenter(MaskNetSegmenter):
    """AIR: a U-Net trained so K per-segment bottleneck autoencoders rebuild the image;
    labels consistent across images."""

    capacity: int = param(
        default=16, check=Interval(int, low=1),
        doc="Bottleneck channels shared by the K autoencoders (capacity // k each).")

    def _build(self) -> dict[str, nn.Module]:
        from unseg.models.cirs import SegmentAutoencoders, UNet

        return {"segmenter": UNet(3, self.k),
                "coders": SegmentAutoencoders(3, self.k, capacity=self.capacity)}

    def _loss(self, modules: dict[str, nn.Module], x: torch.Tensor) -> torch.Tensor:
        from unseg.models.cirs import SegmentAutoencoders, air_loss

        coders = modules["coders"]
        if not isinstance(coders, SegmentAutoencoders):
            raise TypeError(f"expected the autoencoders, got {type(coders).__name__}")
        return air_loss(x, modules["segmenter"], coders, balance=self.balance)
