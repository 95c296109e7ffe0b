"""CUTS: a pixel encoder trained by intra-image contrast and patch reconstruction, then
multigranular clustering of each image's pixel embeddings.

``fit`` trains :class:`unseg.models.cuts.CUTSEncoder` on random crops of a folder of images;
``predict`` embeds every pixel of an image and clusters the embeddings (see
:mod:`unseg.cluster.diffusion`), on at most ``n_landmarks`` weighted landmarks so that memory
does not grow with the square of the pixel count. Label ids are per image.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from unseg.errors import ParameterError
from unseg.methods import register
from unseg.methods.base import Hierarchy, Segmenter
from unseg.methods.files import expect_module_state
from unseg.methods.params import SEED, Interval, Options, Text, param
from unseg.types import Image, LabelMap

if TYPE_CHECKING:
    import torch

CLUSTERINGS = ("kmeans", "diffusion", "persistent")


def _as_input(image: Image, channels: int) -> np.ndarray:
    """(channels, H, W) float32 in [0, 1]; grayscale repeated to 3 channels when needed."""
    from unseg.io.images import as_float32

    x = as_float32(np.asarray(image))
    if x.ndim == 2:
        x = x[..., None]
    if x.shape[2] != channels:
        if x.shape[2] == 1:
            x = np.repeat(x, channels, axis=2)
        else:  # RGB given to a grayscale model
            x = x.mean(axis=2, keepdims=True)
    return np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32)


def _crop(x: np.ndarray, top: int, left: int, size: int) -> np.ndarray:
    """A size x size crop of (C, H, W) at (top, left), mirrored where the image is smaller."""
    _, h, w = x.shape
    if h < size or w < size:
        x = np.pad(x, [(0, 0), (0, max(0, size - h)), (0, max(0, size - w))], mode="symmetric")
    return x[:, top : top + size, left : left + size]


@register("cuts")
class CUTSSegmenter(Segmenter):
    """CUTS: a contrastive + reconstruction pixel encoder, then multigranular clustering.

    Each image's pixel embeddings are clustered by k-means on a diffusion map, by diffusion
    condensation (every level) or into persistent structures; ids are per image.
    """

    requires_fit = True
    learned = ("channels_", "encoder_", "history_")
    test_params = {
        "embedding_dim": 8, "epochs": 1, "crop_size": 28, "anchors_per_crop": 4,
        "batch_size": 2, "n_landmarks": 50, "k": 3,
    }
    cluster: str = param(
        default="kmeans", check=Options(CLUSTERINGS), predict=True,
        doc='How each image\'s embeddings become segments: "kmeans" k-means on a diffusion-map '
            'embedding (k segments); "diffusion" a level of diffusion condensation (the level '
            'that lasts longest, or --level), with every level available; "persistent" one map '
            "of the segments that persist longest through condensation.")
    k: int = param(default=10, check=Interval(int, low=2), predict=True,
                   doc='Segments of the "kmeans" clustering.')
    level: int | None = param(
        default=None, check=Interval(int, low=0, allow_none=True), predict=True,
        doc='"diffusion": the level to return, 0 being the coarsest (2 or more segments); a '
            "level beyond the finest gives the finest. None picks the level where the number "
            "of segments plateaus longest.")
    max_clusters: int = param(
        default=32, check=Interval(int, low=2), predict=True,
        doc="Condensation levels with more segments than this are not returned, and do not "
            'take part in "persistent".')
    n_landmarks: int = param(
        default=1000, check=Interval(int, low=2), predict=True,
        doc="Pixels are summarised by at most this many weighted k-means landmarks before "
            "clustering; memory and time of clustering grow with it, not with the image.")
    embedding_dim: int = param(default=128, check=Interval(int, low=1),
                               doc="Size of the pixel embedding (channels of the last "
                                   "convolution).")
    patch_size: int = param(
        default=7, check=Interval(int, low=1),
        doc="Side of the patches compared by SSIM and rebuilt from the embedding (odd).")
    radius: int = param(
        default=3, check=Interval(int, low=1),
        doc="Positives are mined among the pixels at most this far from the anchor (a square).")
    ssim_threshold: float = param(
        default=0.5, check=Interval(float, low=-1, high=1),
        doc="An anchor takes part in the contrastive loss only when its best neighbour's patch "
            "has at least this SSIM with its own.")
    temperature: float = param(default=0.5, check=Interval(float, low=0, low_open=True),
                               doc="Temperature of the NT-Xent loss.")
    contrastive_weight: float = param(
        default=0.01, check=Interval(float, low=0, high=1),
        doc="lambda: loss = lambda * contrastive + (1 - lambda) * reconstruction.")
    crop_size: int = param(default=64, check=Interval(int, low=8),
                           doc="Training crops are crop_size x crop_size pixels.")
    anchors_per_crop: int = param(default=32, check=Interval(int, low=2),
                                  doc="Anchor pixels drawn in each crop.")
    epochs: int = param(
        default=50, check=Interval(int, low=1),
        doc="Most training epochs; an epoch takes one crop from every training image.")
    batch_size: int = param(default=8, check=Interval(int, low=1), doc="Crops per mini-batch.")
    lr: float = param(default=1e-3, check=Interval(float, low=0, low_open=True),
                      doc="Adam learning rate.")
    validation_fraction: float = param(
        default=0.1, check=Interval(float, low=0, high=0.9),
        doc="Share of the images held out for the label-free validation loss (fixed crops and "
            "anchors); the weights of the epoch with the lowest held-out loss are kept.")
    patience: int | None = param(
        default=10, check=Interval(int, low=1, allow_none=True),
        doc="Stop when the held-out loss has not improved for this many epochs.")
    checkpoint: str | None = param(
        default=None, check=Text(allow_none=True),
        doc="File the training state is saved to after every epoch and resumed from when it "
            "exists (`unseg fit` uses OUT.ckpt).")
    device: str = param(default="cpu", check=Text(), predict=True,
                        doc='Where training and embedding run: "cpu", "cuda", "auto".')
    random_state: int | None = param(
        default=0, check=SEED, doc="Seed of the weights, crops, anchors, landmarks and k-means.")

    def _n_labels(self) -> int:
        return self.k if self.cluster == "kmeans" else self.max_clusters

    def _check_state(self) -> None:
        from unseg.models.cuts import CUTSEncoder

        if self.channels_ not in (1, 3):
            raise ValueError(f"channels_ is {self.channels_!r}, not 1 or 3")
        expect_module_state("encoder_", CUTSEncoder(self.channels_, self.embedding_dim),
                            self.encoder_)
        if not isinstance(self.history_, dict):
            raise ValueError(f"history_ is a {type(self.history_).__name__}, not a dict")

    # -- training ---------------------------------------------------------------------------
    def _margin(self) -> int:
        from unseg.models.cuts import RECEPTIVE_RADIUS

        return max(RECEPTIVE_RADIUS, self.patch_size // 2) + self.radius

    def _loss_kwargs(self) -> dict[str, Any]:
        return {"n_anchors": self.anchors_per_crop, "patch_size": self.patch_size,
                "radius": self.radius, "ssim_threshold": self.ssim_threshold,
                "temperature": self.temperature, "contrastive_weight": self.contrastive_weight}

    def _fit(self, images: Iterable[Image]) -> None:
        import torch

        from unseg.models.cuts import CUTSEncoder, cuts_loss
        from unseg.train import resolve_device, run_key, seeded, train_on_items

        if self.patch_size % 2 == 0:
            raise ParameterError(
                f"cuts: patch_size must be odd, got {self.patch_size}. "
                f"Fix: pass --patch-size {self.patch_size + 1}."
            )
        if self.crop_size <= 2 * self._margin():
            raise ParameterError(
                f"cuts: crop_size must exceed {2 * self._margin()} (twice the receptive radius "
                f"plus radius), got {self.crop_size}. Fix: pass --crop-size "
                f"{2 * self._margin() + 16}."
            )
        raw = list(images)
        if len(raw) < 1:
            raise ParameterError("cuts: training needs at least 1 image. Fix: fit on a folder.")
        self.channels_ = 1 if all(np.asarray(im).ndim == 2 for im in raw) else 3
        data = [_as_input(im, self.channels_) for im in raw]
        size = self.crop_size
        skipped = ("checkpoint", "device", *self.predict_param_names())
        key = run_key(self.name, {k: v for k, v in self.get_params().items()
                                  if k not in skipped}, data)

        def corner(rng: np.random.Generator, i: int) -> tuple[int, int, int]:
            _, h, w = data[i].shape
            return (i, int(rng.integers(0, max(h - size, 0) + 1)),
                    int(rng.integers(0, max(w - size, 0) + 1)))

        def stack(crops: list[tuple[int, int, int]]) -> torch.Tensor:
            return torch.from_numpy(np.stack([_crop(data[i], t, left, size)
                                              for i, t, left in crops])).to(device)

        device = resolve_device(self.device)
        with seeded(self.random_state):
            encoder = CUTSEncoder(self.channels_, self.embedding_dim).to(device)
            head = torch.nn.Linear(self.embedding_dim,
                                   self.channels_ * self.patch_size**2).to(device)
            modules: dict[str, torch.nn.Module] = {"encoder": encoder, "head": head}
            optimizer = torch.optim.Adam([*encoder.parameters(), *head.parameters()],
                                         lr=self.lr)

            def step(batch: list[tuple[int, int, int]], step_index: int) -> float:
                loss = cuts_loss(encoder, head, stack(batch), **self._loss_kwargs())
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                return loss.item()

            def held_out_loss(batch: list[tuple[int, int, int]], generator: torch.Generator
                              ) -> torch.Tensor:
                return cuts_loss(encoder, head, stack(batch), generator=generator,
                                 **self._loss_kwargs())

            history = train_on_items(
                modules, {"adam": optimizer}, step, held_out_loss, len(data), draw=corner,
                batch_size=self.batch_size, validation_fraction=self.validation_fraction,
                epochs=self.epochs, patience=self.patience, checkpoint=self.checkpoint, key=key,
                random_state=self.random_state, desc="training cuts")
        self.encoder_ = {k: v.detach().cpu() for k, v in encoder.state_dict().items()}
        self.history_ = dataclasses.asdict(history)

    # -- prediction ---------------------------------------------------------------------------
    def embed(self, image: Image) -> np.ndarray:
        """The (H, W, embedding_dim) float32 pixel embeddings of one image."""
        import torch

        from unseg.models.cuts import CUTSEncoder
        from unseg.train import resolve_device

        image = self._checked(image)
        self._check_ready()
        device = resolve_device(self.device)
        cache = getattr(self, "_encoder_cache", None)
        if cache is None or next(cache.parameters()).device != device:
            cache = CUTSEncoder(self.channels_, self.embedding_dim)
            cache.load_state_dict(self.encoder_)
            self._encoder_cache = cache.to(device).eval()
        x = torch.from_numpy(_as_input(image, self.channels_))[None].to(device)
        with torch.no_grad():
            z = cache(x)[0]
        return z.permute(1, 2, 0).cpu().numpy()

    def _landmarks(self, image: Image) -> Any:
        from unseg.cluster.diffusion import landmarks

        z = self.embed(image).reshape(-1, self.embedding_dim)
        z /= np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
        return landmarks(z, self.n_landmarks, random_state=self.random_state)

    @property
    def multigranular(self) -> bool:
        return self.cluster == "diffusion"

    def _hierarchy(self, image: Image) -> Hierarchy:
        """Every diffusion condensation level with 2 to ``max_clusters`` segments, coarse to
        fine, how many steps each lasted, and the level ``predict`` returns."""
        from unseg.cluster.diffusion import condense

        marks = self._landmarks(image)
        result = condense(marks.centres, weights=marks.weights)
        counts = result.n_clusters
        kept = [lv for lv in range(len(counts) - 1, -1, -1)
                if 2 <= counts[lv] <= self.max_clusters]
        if not kept:  # no level between 2 and max_clusters segments: the single cluster
            kept = [len(counts) - 1]
        shape = np.asarray(image).shape[:2]
        levels = [result.labels[lv][marks.assignment].reshape(shape).astype(np.int32)
                  for lv in kept]
        durations = [int(result.durations[lv]) for lv in kept]
        if self.level is not None:
            chosen = min(self.level, len(kept) - 1)
        else:
            chosen = int(np.lexsort((np.arange(len(kept)), -np.asarray(durations)))[0])
        return Hierarchy(levels, durations, chosen)

    def _predict(self, image: Image) -> LabelMap:
        from unseg.cluster.diffusion import condense, diffusion_kmeans

        if self.cluster == "diffusion":
            found = self._hierarchy(image)
            return found.levels[found.chosen]
        marks = self._landmarks(image)
        if self.cluster == "kmeans":
            labels = diffusion_kmeans(marks.centres, self.k, weights=marks.weights,
                                      random_state=self.random_state)
        else:
            labels = condense(marks.centres, weights=marks.weights).persistent(
                self.max_clusters)
        return labels[marks.assignment].reshape(np.asarray(image).shape[:2]).astype(np.int32)
