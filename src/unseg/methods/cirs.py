"""Segmentation networks trained without labels through hard masks: CIRS and AIR.

A U-Net segmenter S with K output channels is trained on a folder of images resized to
``input_size``; its argmax (taken in place, with softmax gradients) gives K masked images, and
the loss asks either that each segment look alike across the images of a batch and unlike the
other segments (``cirs``, ``cirs-imbalanced``), or that K small autoencoders, one per segment,
rebuild the image from its segments (``air``). Labels are S's argmax, the same channel meaning
the same kind of region in every image. See :mod:`unseg.models.cirs`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from unseg.errors import ParameterError
from unseg.methods import register
from unseg.methods.base import Segmenter
from unseg.methods.params import SEED, Constraint, Interval, Text
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


class _MaskNetSegmenter(Segmenter):
    """Shared training and prediction of the mask networks."""

    requires_fit = True
    k: int
    input_size: int
    epochs: int
    batch_size: int
    lr: float
    balance: float
    validation_fraction: float
    patience: int | None
    checkpoint: str | None
    device: str
    random_state: int | None
    test_params: ClassVar[dict[str, Any]] = {"k": 2, "input_size": 16, "epochs": 1,
                                             "batch_size": 2}

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

        from unseg.train import holdout_split, resolve_device, seeded, train

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
        train_idx, val_idx = holdout_split(len(x), self.validation_fraction, self.random_state)
        key = hashlib.sha256(repr((self.name, {k: v for k, v in self.get_params().items()
                                                if k not in ("checkpoint", "device")},
                                   data.shape, float(data.sum()))).encode()).hexdigest()

        def chunks(idx: np.ndarray) -> list[np.ndarray]:
            return [idx[i : i + self.batch_size] for i in range(0, len(idx), self.batch_size)]

        with seeded(self.random_state):
            modules = {name: m.to(device) for name, m in self._build().items()}
            optimizers = self._optimizers(modules)

            def step(batch: np.ndarray, step_index: int) -> float:
                return self._step(modules, optimizers, x[batch].to(device), step_index)

            def batches(rng: np.random.Generator) -> list[np.ndarray]:
                return chunks(train_idx[rng.permutation(len(train_idx))])

            def validate() -> float:
                losses = [self._loss(modules, x[b].to(device)).item() * len(b)
                          for b in chunks(val_idx)]
                return float(np.sum(losses) / len(val_idx))

            history = train(modules, optimizers, step, batches, epochs=self.epochs,
                            validate=validate if len(val_idx) else None,
                            patience=self.patience, checkpoint=self.checkpoint, key=key,
                            random_state=self.random_state, desc=f"training {self.name}")
        self.segmenter_ = {k: v.detach().cpu() for k, v in
                           modules["segmenter"].state_dict().items()}
        self.history_ = {"train_loss": history.train_loss, "val_loss": history.val_loss,
                         "epoch_seconds": history.epoch_seconds,
                         "best_epoch": history.best_epoch}

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

    def _predict(self, image: Image) -> LabelMap:
        return self.predict_batch([image])[0]

    def predict_batch(self, images: Iterable[Image]) -> list[LabelMap]:
        """Segment several images in one pass of the network."""
        import torch

        images = list(images)
        if not images:
            return []
        self._check_ready()
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


_SHARED_DOC = """
    k : int
        Output channels of S: the number of labels.
    input_size : int
        Images are resized to input_size x input_size (a multiple of 8) for training and
        prediction; labels are resized back to each input.
    epochs : int
        Most training epochs.
    batch_size : int
        Images per mini-batch.
    lr : float
        Adam learning rate.
    balance : float
        Weight of the penalty that keeps S from emptying all segments but one.
    validation_fraction : float
        Share of the images held out for the label-free validation loss; the weights of the
        epoch with the lowest held-out loss are kept.
    patience : int or None
        Stop when the held-out loss has not improved for this many epochs; None never stops
        early.
    checkpoint : str or None
        File the training state is saved to after every epoch, and resumed from when it exists
        (`unseg fit` uses OUT.ckpt).
    device : str
        Where training and prediction run: "cpu", "cuda", "auto".
    random_state : int or None
        Seed of the weights, the held-out split and the mini-batches.
"""

_ALPHA_DOC = """
    alpha1 : float
        Weight of the within-segment variance of g across the batch.
    alpha2 : float
        Weight of the variance between the segment means (subtracted)."""

_SHARED_CONSTRAINTS: dict[str, Constraint] = {
    "k": Interval(int, low=2),
    "input_size": Interval(int, low=8),
    "epochs": Interval(int, low=1),
    "batch_size": Interval(int, low=2),
    "lr": Interval(float, low=0, low_open=True),
    "balance": Interval(float, low=0),
    "validation_fraction": Interval(float, low=0, high=0.9),
    "patience": Interval(int, low=1, allow_none=True),
    "checkpoint": Text(allow_none=True),
    "device": Text(),
    "random_state": SEED,
}


@register("cirs")
class CIRSSegmenter(_MaskNetSegmenter):
    """CIRS: a U-Net trained so each segment looks alike across images (cross-instance
    representation similarity); labels consistent across images.

    Parameters
    ----------
    """

    alpha1: float
    alpha2: float
    _constraints = _SHARED_CONSTRAINTS | {
        "alpha1": Interval(float, low=0),
        "alpha2": Interval(float, low=0),
    }

    def __init__(self, *, alpha1: float = 1.0, alpha2: float = 1.0, k: int = 4,
                 input_size: int = 64, epochs: int = 30, batch_size: int = 32,
                 lr: float = 1e-3, balance: float = 0.5, validation_fraction: float = 0.1,
                 patience: int | None = 5, checkpoint: str | None = None, device: str = "cpu",
                 random_state: int | None = 0) -> None:
        self._set_params(locals())

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
    """CIRS trained in turns: S for s_steps mini-batches for every g_steps of g.

    Parameters
    ----------
    s_steps : int
        Mini-batches in each turn of the segmenter S.
    g_steps : int
        Mini-batches in each turn of the feature network g.
    """

    s_steps: int
    g_steps: int
    _constraints = CIRSSegmenter._constraints | {
        "s_steps": Interval(int, low=1),
        "g_steps": Interval(int, low=1),
    }

    def __init__(self, *, s_steps: int = 5, g_steps: int = 100, alpha1: float = 1.0,
                 alpha2: float = 1.0, k: int = 4, input_size: int = 64, epochs: int = 30,
                 batch_size: int = 32, lr: float = 1e-3, balance: float = 0.5,
                 validation_fraction: float = 0.1, patience: int | None = 5,
                 checkpoint: str | None = None, device: str = "cpu",
                 random_state: int | None = 0) -> None:
        self._set_params(locals())

    def _turns(self, step_index: int) -> tuple[str, ...]:
        in_s_turn = step_index % (self.s_steps + self.g_steps) < self.s_steps
        return ("segmenter",) if in_s_turn else ("g",)


@register("air")
class AIRSegmenter(_MaskNetSegmenter):
    """AIR: a U-Net trained so K per-segment bottleneck autoencoders rebuild the image;
    labels consistent across images.

    Parameters
    ----------
    capacity : int
        Bottleneck channels shared by the K autoencoders (capacity // k each).
    """

    capacity: int
    _constraints = _SHARED_CONSTRAINTS | {"capacity": Interval(int, low=1)}

    def __init__(self, *, capacity: int = 16, k: int = 4, input_size: int = 64,
                 epochs: int = 30, batch_size: int = 32, lr: float = 1e-3,
                 balance: float = 0.5, validation_fraction: float = 0.1,
                 patience: int | None = 5, checkpoint: str | None = None, device: str = "cpu",
                 random_state: int | None = 0) -> None:
        self._set_params(locals())

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


for _cls in (CIRSSegmenter, ImbalancedCIRSSegmenter, AIRSegmenter):
    _alphas = _ALPHA_DOC if issubclass(_cls, CIRSSegmenter) else ""
    _cls.__doc__ = (_cls.__doc__ or "").rstrip() + _alphas + _SHARED_DOC


@register("dfc")
class DFCSegmenter(Segmenter):
    """DFC: a small CNN trained on each image by feature similarity and spatial continuity
    (ids not shared between images).

    Parameters
    ----------
    max_labels : int
        Response channels: the most labels.
    min_labels : int
        Training stops once the argmax uses this few labels.
    max_iter : int
        Most training iterations per image.
    continuity : float
        Weight of the spatial continuity loss.
    lr : float
        SGD learning rate (momentum 0.9).
    width : int
        Channels of the convolutions.
    device : str
        Where training runs: "cpu", "cuda", "auto".
    random_state : int or None
        Seed of the network's initial weights.
    """

    test_params = {"max_labels": 8, "max_iter": 3, "width": 4}
    _constraints = {
        "max_labels": Interval(int, low=2),
        "min_labels": Interval(int, low=1),
        "max_iter": Interval(int, low=1),
        "continuity": Interval(float, low=0),
        "lr": Interval(float, low=0, low_open=True),
        "width": Interval(int, low=1),
        "device": Text(),
        "random_state": SEED,
    }

    def __init__(self, *, max_labels: int = 100, min_labels: int = 3, max_iter: int = 100,
                 continuity: float = 5.0, lr: float = 0.1, width: int = 32,
                 device: str = "cpu", random_state: int | None = 0) -> None:
        self.max_labels = max_labels
        self.min_labels = min_labels
        self.max_iter = max_iter
        self.continuity = continuity
        self.lr = lr
        self.width = width
        self.device = device
        self.random_state = random_state

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
