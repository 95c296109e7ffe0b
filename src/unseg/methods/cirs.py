"""Segmentation networks trained without labels through hard masks: CIRS and AIR.

A U-Net segmenter S with K output channels is trained on a folder of images resized to
``input_size``; its argmax (taken in place, with softmax gradients) gives K masked images, and
the loss asks either that each segment look alike across the images of a batch and unlike the
other segments (``cirs``, ``cirs-imbalanced``), or that K small autoencoders, one per segment,
rebuild the image from its segments (``air``). Labels are S's argmax, the same channel meaning
the same kind of region in every image. The defaults are the thesis's (Bishop, 2020: 170
epochs, batch 40, dropout 0.4, Adam at 1e-3, g fully connected and trained on the CIRS loss);
docs/cirs.md lists every choice. See :mod:`unseg.models.cirs`.

The epoch whose weights are kept is chosen by a label-free held-out loss (``select_by="loss"``)
or, as in the thesis, by the mIoU on a labelled validation folder (``select_by="val-miou"``,
``val=DIR``): that protocol uses validation labels.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from unseg.errors import ParameterError
from unseg.methods import register
from unseg.methods.base import Segmenter
from unseg.methods.files import expect_module_state
from unseg.methods.params import SEED, Interval, Options, Text, param
from unseg.types import Image, LabelMap

if TYPE_CHECKING:
    import torch
    from torch import nn


def resized_square(image: Image, size: int) -> np.ndarray:
    """``(3, size, size)`` float32 in [0, 1]: grayscale repeated, bilinear resize."""
    from skimage.transform import resize

    from unseg.io.images import as_float32

    x = as_float32(np.asarray(image))
    if x.ndim == 2:
        x = np.repeat(x[..., None], 3, axis=2)
    if x.shape[:2] != (size, size):
        x = resize(x, (size, size), order=1, anti_aliasing=True)
    return np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32)


def labels_at_size(labels: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Square ``labels`` resized to ``shape[:2]`` by nearest neighbour."""
    h, w = shape[:2]
    rows = np.arange(h) * labels.shape[0] // h
    cols = np.arange(w) * labels.shape[1] // w
    return labels[rows[:, None], cols[None, :]]


def best_mapping_miou(pred: np.ndarray, gt: np.ndarray, *, ignore_index: int = 255) -> float:
    """One image's mIoU under the thesis's protocol: the one-to-one mapping of predicted
    segments to ground-truth classes with the highest mean IoU, averaged over the classes
    present in ``gt`` (a class left without a segment scores 0).

    The same figure as ``unseg.eval.evaluate(..., match="best-iou", scope="image")``'s
    per-image mIoU; here for model selection, which may not import the evaluation package.
    """
    from scipy.optimize import linear_sum_assignment

    valid = gt != ignore_index
    p, g = pred[valid].astype(np.int64), gt[valid].astype(np.int64)
    classes = np.unique(g)
    if classes.size == 0:
        return float("nan")
    n_classes = int(g.max()) + 1
    counts = np.bincount(p * n_classes + g, minlength=(int(p.max()) + 1) * n_classes)
    confusion = counts.reshape(-1, n_classes)[:, classes].astype(np.float64)
    union = confusion.sum(1, keepdims=True) + confusion.sum(0, keepdims=True) - confusion
    iou = np.divide(confusion, union, out=np.zeros_like(confusion), where=union > 0)
    rows, cols = linear_sum_assignment(iou, maximize=True)
    return float(iou[rows, cols].sum() / classes.size)


class MaskNetSegmenter(Segmenter):
    """Shared training, model selection and prediction of the segmentation networks."""

    requires_fit = True
    learned = ("segmenter_", "history_")
    test_params = {"k": 2, "input_size": 16, "epochs": 1, "batch_size": 2}
    k: int = param(default=4, check=Interval(int, low=2),
                   doc="Output channels of S: the number of labels.")
    input_size: int = param(
        default=64, check=Interval(int, low=8),
        doc="Images are resized to input_size x input_size (a multiple of 8) for training and "
            "prediction; labels are resized back to each input.")
    epochs: int = param(default=170, check=Interval(int, low=1), doc="Training epochs.")
    batch_size: int = param(default=40, check=Interval(int, low=2),
                            doc="Images per mini-batch.")
    lr: float = param(default=1e-3, check=Interval(float, low=0, low_open=True),
                      doc="Adam learning rate.")
    dropout: float = param(default=0.4, check=Interval(float, low=0, high=0.9),
                           doc="Dropout rate after every block of the networks.")
    select_by: str = param(
        default="loss", check=Options(("loss", "val-miou")),
        doc='Which epoch\'s weights are kept: "loss", the lowest label-free loss on '
            'validation_fraction of the images held out; "val-miou", the highest mIoU on the '
            "labelled folder val (the thesis's protocol: it uses validation labels; all the "
            "images are trained on).")
    val: str | None = param(
        default=None, check=Text(allow_none=True),
        doc='Labelled folder (img/ and mask/) scored after every epoch when select_by is '
            '"val-miou".')
    validation_fraction: float = param(
        default=0.1, check=Interval(float, low=0, high=0.9),
        doc='Share of the images held out for the label-free loss (select_by "loss").')
    patience: int | None = param(
        default=None, check=Interval(int, low=1, allow_none=True),
        doc="Stop when the selection score has not improved for this many epochs; None "
            "trains every epoch.")
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
    def _validation_set(self) -> tuple[np.ndarray, list[np.ndarray]]:
        """The resized images and the masks of the labelled folder ``val``."""
        from unseg.data import discover, load_sample

        if self.val is None:
            raise ParameterError(
                f"{self.name}: select_by 'val-miou' scores a labelled folder after every epoch, "
                "but no val was given. Fix: pass --val DIR (a folder with img/ and mask/), or "
                "--select-by loss.")
        samples = discover([self.val])
        unlabelled = [s.image for s in samples if s.mask is None]
        if unlabelled:
            raise ParameterError(
                f"{self.name}: val must be labelled, but {unlabelled[0]} has no mask "
                f"({len(unlabelled)} images without one). Fix: pass a folder with img/ and "
                "mask/.")
        pairs = [load_sample(s) for s in samples]
        masks = [np.asarray(m) for _, m in pairs]
        return np.stack([resized_square(im, self.input_size) for im, _ in pairs]), masks

    def _val_miou(self, segmenter: nn.Module, x: np.ndarray, masks: list[np.ndarray],
                  device: torch.device) -> float:
        """Mean over the validation images of :func:`best_mapping_miou`."""
        import torch

        scores = []
        for start in range(0, len(x), self.batch_size):
            batch = torch.from_numpy(x[start : start + self.batch_size]).to(device)
            labels = segmenter(batch).argmax(1).cpu().numpy()
            scores += [best_mapping_miou(labels_at_size(small, mask.shape), mask)
                       for small, mask in zip(labels, masks[start:], strict=False)]
        return float(np.nanmean(scores))

    def _fit(self, images: Iterable[Image]) -> None:
        import torch

        from unseg.train import resolve_device, run_key, seeded, train, train_on_items

        if self.input_size % 8:
            raise ParameterError(
                f"{self.name}: input_size must be a multiple of 8, got {self.input_size}. "
                f"Fix: pass --input-size {max(8, self.input_size // 8 * 8)}."
            )
        by_miou = self.select_by == "val-miou"
        if self.val is not None and not by_miou:
            raise ParameterError(
                f"{self.name}: val is scored only when select_by is 'val-miou', but select_by "
                f"is {self.select_by!r}. Fix: pass --select-by val-miou to choose the epoch by "
                "its labels, or leave out --val.")
        val_x, val_masks = (self._validation_set() if by_miou
                            else (np.zeros((0, 3, self.input_size, self.input_size)), []))
        data = np.stack([resized_square(im, self.input_size) for im in images])
        if len(data) < 2:
            raise ParameterError(
                f"{self.name}: training needs at least 2 images, got {len(data)}. Fix: fit on "
                "a folder of images."
            )
        device = resolve_device(self.device)
        x = torch.from_numpy(data)
        key = run_key(self.name, {k: v for k, v in self.get_params().items()
                                  if k not in ("checkpoint", "device")},
                      [data, val_x, *val_masks])
        with seeded(self.random_state):
            modules = {name: m.to(device) for name, m in self._build().items()}
            optimizers = self._optimizers(modules)

            def step(batch: list[int], step_index: int) -> float:
                return self._step(modules, optimizers, x[batch].to(device), step_index)

            common: dict[str, Any] = {
                "epochs": self.epochs, "patience": self.patience, "checkpoint": self.checkpoint,
                "key": key, "random_state": self.random_state, "desc": f"training {self.name}"}
            if by_miou:
                size = self.batch_size

                def batches(rng: np.random.Generator) -> list[list[int]]:
                    order = [int(i) for i in rng.permutation(len(x))]
                    return [order[s : s + size] for s in range(0, len(order), size)]

                history = train(
                    modules, optimizers, step, batches,
                    validate=lambda: -self._val_miou(modules["segmenter"], val_x, val_masks,
                                                     device), **common)
            else:
                history = train_on_items(
                    modules, optimizers, step,
                    lambda batch, _: self._loss(modules, x[batch].to(device)), len(x),
                    draw=lambda _, i: i, batch_size=self.batch_size,
                    validation_fraction=self.validation_fraction, **common)
        self.segmenter_ = {k: v.detach().cpu() for k, v in
                           modules["segmenter"].state_dict().items()}
        self.history_ = dataclasses.asdict(history)
        if by_miou:  # the loop minimises: it was given minus the mIoU
            self.history_["val_miou"] = [-v for v in self.history_.pop("val_loss")]

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
        x = torch.from_numpy(np.stack([resized_square(im, self.input_size) for im in images]))
        with torch.no_grad():
            labels = net(x.to(device)).argmax(1).cpu().numpy().astype(np.int32)
        return [labels_at_size(small, image.shape)
                for image, small in zip(images, labels, strict=True)]


class HardMaskSegmenter(MaskNetSegmenter):
    """The parameters CIRS and AIR share: the second network's kind and the balance term."""

    network: str = param(
        default="dense", check=Options(("dense", "conv")),
        doc='The network after the masks (g of CIRS, the autoencoders of AIR): "dense", fully '
            'connected on the flattened masked image as in the thesis, or "conv", '
            "convolutional.")
    balance: float = param(
        default=0.0, check=Interval(float, low=0),
        doc="Weight of log K minus the entropy of the batch's mean soft assignment, which "
            "keeps S from emptying all segments but one (not in the thesis: 0).")


@register("cirs")
class CIRSSegmenter(HardMaskSegmenter):
    """CIRS: a U-Net trained so each segment looks alike across images (cross-instance
    representation similarity); labels consistent across images."""

    alpha1: float = param(default=1.0, check=Interval(float, low=0),
                          doc="Weight of the within-segment variance of g across the batch.")
    alpha2: float = param(default=1.0, check=Interval(float, low=0),
                          doc="Weight of the variance between the segment means (subtracted).")
    reduction: str = param(
        default="sum", check=Options(("sum", "mean")),
        doc='"sum": the thesis\'s sums over images and segments; "mean": the within term '
            "averaged over the batch, the between term over the segments.")
    g_training: str = param(
        default="shared", check=Options(("shared", "critic")),
        doc='"shared": g minimises the CIRS loss with S, as in the thesis; "critic": g '
            "maximises the within-segment term, as S's adversary.")

    def _build(self) -> dict[str, nn.Module]:
        from unseg.models.cirs import ConvFeatureNet, DenseFeatureNet, UNet

        segmenter = UNet(3, self.k, dropout=self.dropout)  # first: S's weights depend on the
        g = (DenseFeatureNet(3, self.k, self.input_size, dropout=self.dropout)  # seed alone
             if self.network == "dense" else ConvFeatureNet(3, self.k))
        return {"segmenter": segmenter, "g": g}

    def _losses(self, modules: dict[str, nn.Module], x: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        from unseg.models.cirs import cirs_losses

        return cirs_losses(x, modules["segmenter"], modules["g"], alpha1=self.alpha1,
                           alpha2=self.alpha2, balance=self.balance, reduction=self.reduction,
                           g_training=self.g_training)

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
        # one backward pass per distinct loss: S and g share one under g_training "shared"
        groups: dict[int, tuple[torch.Tensor, list[str]]] = {}
        for name, loss in (("segmenter", loss_s), ("g", loss_g)):
            if name in turns:
                groups.setdefault(id(loss), (loss, []))[1].append(name)
        for loss, names in groups.values():
            params = [p for name in names for p in modules[name].parameters()]
            grads = torch.autograd.grad(loss, params, retain_graph=True)
            for p, grad in zip(params, grads, strict=True):
                p.grad = grad
        for name in turns:
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
class AIRSegmenter(HardMaskSegmenter):
    """AIR: a U-Net trained so K per-segment bottleneck autoencoders rebuild the image;
    labels consistent across images."""

    capacity: int = param(
        default=64, check=Interval(int, low=1),
        doc="Bottleneck units (dense) or channels (conv) shared by the K autoencoders "
            "(capacity // k each).")
    width: int = param(
        default=512, check=Interval(int, low=1),
        doc="Hidden units (dense) or channels (conv) shared by the K autoencoders "
            "(width // k each).")

    def _build(self) -> dict[str, nn.Module]:
        from unseg.models.cirs import ConvSegmentAutoencoders, DenseSegmentAutoencoders, UNet

        segmenter = UNet(3, self.k, dropout=self.dropout)
        coders = (DenseSegmentAutoencoders(3, self.k, self.input_size, capacity=self.capacity,
                                           width=self.width, dropout=self.dropout)
                  if self.network == "dense"
                  else ConvSegmentAutoencoders(3, self.k, capacity=self.capacity,
                                               width=self.width))
        return {"segmenter": segmenter, "coders": coders}

    def _loss(self, modules: dict[str, nn.Module], x: torch.Tensor) -> torch.Tensor:
        from unseg.models.cirs import air_loss

        return air_loss(x, modules["segmenter"], modules["coders"], balance=self.balance)
